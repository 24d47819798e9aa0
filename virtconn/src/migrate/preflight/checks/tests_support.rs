//! Facts for a healthy move that each test then breaks in one way.

use crate::migrate::preflight::facts::{
    CapsFacts, DestFacts, Disk, DiskPlace, DomainDef, DomainFacts, HostFacts, Presence,
};
use crate::migrate::preflight::{Check, CheckStatus};
use crate::migrate::request::{MigrateRequest, MoveKind};
use crate::model::{DomainState, InterfaceInfo};

pub(crate) const DISK: &str = "/var/lib/libvirt/images/web.qcow2";

pub(crate) fn host(uri: &str) -> HostFacts {
    HostFacts {
        uri: uri.to_string(),
        local: false,
        alive: Ok(true),
        hostname: Ok("dst".into()),
        hv_type: Ok("QEMU".into()),
        lib_version: Ok(11_003_000),
        hyp_version: Ok(10_000_000),
        free_memory: Ok(8 << 30),
        caps: Ok(CapsFacts {
            host_uuid: Some(format!("uuid-of-{uri}")),
            machines: vec![
                ("x86_64".into(), "q35".into()),
                ("x86_64".into(), "pc-q35-10.0".into()),
            ],
        }),
        clock_offset_s: None,
    }
}

pub(crate) fn disk(target: &str, path: &str) -> Disk {
    Disk {
        target: target.into(),
        device: "disk".into(),
        kind: "file".into(),
        source: Some(path.into()),
        readonly: false,
        shareable: false,
        cache: Some("none".into()),
    }
}

pub(crate) fn domain() -> DomainFacts {
    DomainFacts {
        state: DomainState::Running,
        persistent: true,
        def: DomainDef {
            name: "web".into(),
            uuid: Some("1b4e28ba-2fa1-11d2-883f-0016d3cca427".into()),
            virt_type: "kvm".into(),
            arch: Some("x86_64".into()),
            machine: Some("pc-q35-10.0".into()),
            memory_kib: 1 << 20,
            cpu: None,
            disks: vec![disk("vda", DISK)],
            nics: vec![InterfaceInfo {
                mac: "52:54:00:00:00:01".into(),
                kind: "network".into(),
                source: Some("default".into()),
                model: Some("virtio".into()),
            }],
            hostdevs: Vec::new(),
            char_devs: Vec::new(),
        },
    }
}

pub(crate) fn place(path: &str, at_dest: Option<bool>) -> DiskPlace {
    DiskPlace {
        path: path.into(),
        at_dest,
        dest_pool: Some("default".into()),
        source_fs: Some("nfs4".into()),
    }
}

pub(crate) fn dest_facts() -> DestFacts {
    DestFacts {
        disks: vec![place(DISK, Some(true))],
        networks: vec![("default".into(), Presence::Active)],
        devices: Vec::new(),
        cpu: None,
        same_name: Ok(None),
    }
}

pub(crate) fn live() -> MigrateRequest {
    MigrateRequest::new("web", "qemu:///system", "qemu+tcp://10.0.0.5/system")
}

pub(crate) fn offline() -> MigrateRequest {
    let mut r = live();
    r.kind = MoveKind::Offline;
    r.persistent = true;
    r
}

/// `c` has this status, its message contains `msg` and its fix contains `fix`.
#[track_caller]
pub(crate) fn assert_status(c: &Check, status: CheckStatus, msg: &str, fix: &str) {
    assert_eq!(c.status, status, "{c:?}");
    assert!(
        c.message.contains(msg),
        "message {:?} lacks {msg:?}",
        c.message
    );
    assert!(
        c.fix.as_deref().is_some_and(|f| f.contains(fix)),
        "fix {:?} lacks {fix:?}",
        c.fix
    );
    assert!(!c.message.contains('\n'), "{c:?}");
}

/// The only finding in `found`.
#[track_caller]
pub(crate) fn single(found: &[Check]) -> &Check {
    assert_eq!(found.len(), 1, "{found:#?}");
    &found[0]
}
