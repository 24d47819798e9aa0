//! `gather` and `preflight` end to end against libvirt's built-in test driver (no
//! daemon). Its state is shared by every connection in the process and tests run in
//! parallel, so each test uses domains of its own or only reads.

use super::checks::*;
use super::{preflight, Check, CheckStatus};
use crate::migrate::request::{CopyStorage, MigrateRequest};
use crate::Connection;

const TEST_URI: &str = "test:///default";

fn open() -> Connection {
    Connection::open(TEST_URI).expect("test driver opens")
}

fn find<'a>(checks: &'a [Check], id: &str) -> Vec<&'a Check> {
    checks.iter().filter(|c| c.id == id).collect()
}

fn one<'a>(checks: &'a [Check], id: &str) -> &'a Check {
    let found = find(checks, id);
    assert_eq!(found.len(), 1, "{id}: {found:#?}");
    found[0]
}

#[test]
fn builtin_test_domain_end_to_end() {
    let (src, dest) = (open(), open());
    let req = MigrateRequest::new("test", TEST_URI, TEST_URI);
    let checks = preflight(&src, &dest, &req);

    let ids: Vec<&str> = checks.iter().map(|c| c.id).collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(
        unique,
        [
            FLAGS,
            DEST_REACHABLE,
            HYPERVISOR,
            DOMAIN_STATE,
            NAME_RESOLUTION,
            PORTS,
            STORAGE,
            CACHE,
            NETWORKS,
            CPU,
            MEMORY,
            HOST_DEVICES,
            CLOCK
        ],
        "{checks:#?}"
    );
    for c in &checks {
        assert!(!c.message.is_empty() && !c.message.contains('\n'), "{c:?}");
        assert_eq!(
            c.fix.is_some(),
            matches!(c.status, CheckStatus::Warn | CheckStatus::Fail),
            "{c:?}"
        );
    }

    assert_eq!(one(&checks, FLAGS).status, CheckStatus::Pass);
    let reach = one(&checks, DEST_REACHABLE);
    assert_eq!(reach.status, CheckStatus::Pass, "{reach:?}");
    assert!(
        reach.message.starts_with("test:///default answers: host '"),
        "{reach:?}"
    );
    let hv = one(&checks, HYPERVISOR);
    assert_eq!(hv.status, CheckStatus::Pass, "{hv:?}");
    assert!(
        hv.message.starts_with("TEST on both hosts (libvirt "),
        "{hv:?}"
    );
    // Source and destination are the same driver, so "test" is already running there.
    let state = one(&checks, DOMAIN_STATE);
    assert_eq!(state.status, CheckStatus::Fail, "{state:?}");
    assert!(
        state.message.contains("already running at the destination"),
        "{state:?}"
    );
    // Nothing listens on 127.0.0.1:49215 here; a refusal proves the path is open.
    assert_eq!(one(&checks, PORTS).status, CheckStatus::Pass);
    // The test domain's disk /guest/diskimage1 does not exist on this machine.
    let storage = one(&checks, STORAGE);
    assert_eq!(storage.status, CheckStatus::Fail, "{storage:?}");
    assert!(
        storage.message.starts_with("vda: /guest/diskimage1"),
        "{storage:?}"
    );
    assert_eq!(one(&checks, CACHE).status, CheckStatus::Skip);
    let nets = one(&checks, NETWORKS);
    assert_eq!(nets.status, CheckStatus::Pass, "{nets:?}");
    assert_eq!(one(&checks, CPU).status, CheckStatus::Pass);
    // The test driver reports 3 MiB free against the domain's 2 GiB.
    let mem = one(&checks, MEMORY);
    assert_eq!(mem.status, CheckStatus::Fail, "{mem:?}");
    assert!(
        mem.message.contains("the guest needs 2048 MiB plus 10%"),
        "{mem:?}"
    );
    assert_eq!(one(&checks, HOST_DEVICES).status, CheckStatus::Pass);
    let clock = one(&checks, CLOCK);
    assert_eq!(
        (clock.status, clock.message.as_str()),
        (CheckStatus::Pass, "same machine clock")
    );
}

#[test]
fn own_domain_with_pool_disk_and_missing_network() {
    let c = open();
    let xml = "<domain type='test'><name>pf-e2e</name>\
        <uuid>7d1c6a52-5a8e-4c5e-9f2a-2b1d3c4e5f60</uuid>\
        <memory unit='MiB'>1</memory><os><type>hvm</type></os><devices>\
        <disk type='file' device='disk'><source file='/default-pool/pf-e2e.img'/><target dev='vda'/></disk>\
        <disk type='file' device='cdrom'><source file='/nonexistent/pf.iso'/><target dev='hdc'/><readonly/></disk>\
        <interface type='network'><mac address='52:54:00:aa:00:01'/><source network='pf-no-such-net'/></interface>\
        </devices></domain>";
    c.define(xml).expect("defines");
    c.start("pf-e2e").expect("starts");
    let dest = open();
    let mut req = MigrateRequest::new("pf-e2e", TEST_URI, TEST_URI);
    req.copy_storage = Some(CopyStorage::All);
    let checks = preflight(&c, &dest, &req);
    c.destroy("pf-e2e").expect("destroys");
    c.undefine("pf-e2e").expect("undefines");

    // The disk is missing, but pool default-pool has target /default-pool, so libvirt
    // could create it for the copy.
    let storage = one(&checks, STORAGE);
    assert_eq!(storage.status, CheckStatus::Pass, "{storage:?}");
    let nets = one(&checks, NETWORKS);
    assert_eq!(nets.status, CheckStatus::Fail, "{nets:?}");
    assert_eq!(
        nets.message,
        "the destination has no network 'pf-no-such-net' (NIC 52:54:00:aa:00:01)"
    );
    let cd = one(&checks, HOST_DEVICES);
    assert_eq!(cd.status, CheckStatus::Fail, "{cd:?}");
    assert!(
        cd.message.contains("cdrom hdc holds /nonexistent/pf.iso"),
        "{cd:?}"
    );
    assert_eq!(one(&checks, MEMORY).status, CheckStatus::Pass);
}

#[test]
fn missing_domain_skips_what_needs_it() {
    let (src, dest) = (open(), open());
    let req = MigrateRequest::new("pf-absent", TEST_URI, TEST_URI);
    let checks = preflight(&src, &dest, &req);
    let state = one(&checks, DOMAIN_STATE);
    assert_eq!(state.status, CheckStatus::Fail);
    assert!(
        state.message.contains("cannot read domain 'pf-absent'"),
        "{state:?}"
    );
    for id in [STORAGE, CACHE, NETWORKS, CPU, MEMORY, HOST_DEVICES] {
        assert_eq!(one(&checks, id).status, CheckStatus::Skip, "{id}");
    }
    let req = MigrateRequest::new("nul\0name", TEST_URI, TEST_URI);
    assert_eq!(
        one(&preflight(&src, &dest, &req), DOMAIN_STATE).status,
        CheckStatus::Fail
    );
}

#[test]
fn checks_serialize_for_json_output() {
    let c = Check::fail(
        PORTS,
        "10.0.0.5:49152 did not answer",
        "open TCP 49152-49215",
    );
    let v = serde_json::to_value(&c).expect("serializes");
    assert_eq!(v["id"], "ports");
    assert_eq!(v["status"], "fail");
    assert_eq!(v["fix"], "open TCP 49152-49215");
}
