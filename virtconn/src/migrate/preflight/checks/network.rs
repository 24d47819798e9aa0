//! Checks about the path between the hosts: `name-resolution`, `ports`, `networks`.

use super::{or_pass, NAME_RESOLUTION, NETWORKS, PORTS};
use crate::migrate::preflight::addr::{uri_host, uri_host_literal};
use crate::migrate::preflight::facts::{
    DestFacts, DomainFacts, HostFacts, NetFacts, Presence, ProbeOutcome,
};
use crate::migrate::preflight::Check;
use crate::migrate::request::{MigrateRequest, MoveKind};

/// The address to suggest for `--migrate-uri`: the destination URI's host when it can be
/// used from here, loopback when the destination is this machine.
fn migrate_uri_fix(req: &MigrateRequest, net: &NetFacts) -> String {
    let host = uri_host(&req.dest_uri);
    if host.is_empty() {
        "pass --migrate-uri tcp://127.0.0.1".into()
    } else if net.dest_uri_host_usable {
        format!("pass --migrate-uri tcp://{}", uri_host_literal(&host))
    } else {
        "pass --migrate-uri tcp://ADDRESS-OF-DESTINATION".into()
    }
}

/// The source's libvirt and QEMU connect to the name the destination calls itself; when
/// that does not resolve on the source, libvirt fails with "Unable to resolve address".
pub(crate) fn name_resolution(
    req: &MigrateRequest,
    src: &HostFacts,
    dest: &HostFacts,
    net: &NetFacts,
) -> Check {
    if req.kind == MoveKind::Offline {
        return Check::skip(NAME_RESOLUTION, "offline move: no guest data travels");
    }
    if req.tunnelled {
        return Check::skip(
            NAME_RESOLUTION,
            "tunnelled: the data goes through the libvirt connection, not to the destination's host name",
        );
    }
    if let Some(uri) = &req.migrate_uri {
        return Check::skip(
            NAME_RESOLUTION,
            format!("--migrate-uri {uri} names the address"),
        );
    }
    let name = match &dest.hostname {
        Ok(n) => n,
        Err(e) => {
            return Check::warn(
                NAME_RESOLUTION,
                format!("could not read the destination's host name: {e}"),
                migrate_uri_fix(req, net),
            )
        }
    };
    if name.starts_with("localhost") {
        return Check::fail(
            NAME_RESOLUTION,
            format!(
                "the destination calls itself '{name}'; libvirt refuses it as a migration address"
            ),
            migrate_uri_fix(req, net),
        );
    }
    // With p2p the source daemon resolves the name; from here we can only stand in for it.
    let here = if src.local {
        "the source"
    } else {
        "this machine"
    };
    match &net.resolved {
        None => Check::skip(NAME_RESOLUTION, format!("'{name}' was not resolved")),
        Some(Err(e)) => Check::fail_or_warn(
            src.local,
            NAME_RESOLUTION,
            format!("the destination's host name '{name}' does not resolve on {here} ({e})"),
            migrate_uri_fix(req, net),
        ),
        Some(Ok(addrs)) if !dest.local && addrs.iter().all(|a| a.is_loopback()) => {
            Check::fail_or_warn(
                src.local,
                NAME_RESOLUTION,
                format!(
                    "the destination's host name '{name}' resolves to loopback {} on {here}, not to the destination",
                    addrs[0]
                ),
                migrate_uri_fix(req, net),
            )
        }
        Some(Ok(addrs)) => Check::pass(
            NAME_RESOLUTION,
            format!("the destination's host name '{name}' resolves to {} on {here}", addrs[0]),
        ),
    }
}

pub(crate) fn ports(req: &MigrateRequest, net: &NetFacts) -> Check {
    if req.kind == MoveKind::Offline {
        return Check::skip(PORTS, "offline move: no guest data travels");
    }
    if req.tunnelled {
        return Check::skip(
            PORTS,
            "tunnelled: the data goes through the libvirt connection",
        );
    }
    let Some(p) = &net.probe else {
        return Check::skip(PORTS, "no destination address to probe");
    };
    let at = format!("{}:{}", uri_host_literal(&p.host), p.port);
    let fix = if req.copy_storage.is_some() {
        // --tunnelled cannot carry --copy-storage, so it is no way out here.
        "open TCP 49152-49215 on the destination firewall".to_string()
    } else {
        "open TCP 49152-49215 on the destination firewall, or use --tunnelled".to_string()
    };
    match &p.outcome {
        ProbeOutcome::Accepted => Check::pass(PORTS, format!("{at} accepts connections")),
        ProbeOutcome::Refused => Check::pass(
            PORTS,
            format!("{at} answered (connection refused: nothing listens yet, nothing drops it)"),
        ),
        ProbeOutcome::TimedOut => Check::fail(
            PORTS,
            format!("{at} did not answer within 1 s: a firewall drops the migration ports"),
            fix,
        ),
        ProbeOutcome::Unreachable(e) => Check::fail(
            PORTS,
            format!("{at} is unreachable from this machine ({e})"),
            fix,
        ),
        ProbeOutcome::NoAddress(e) => Check::fail(
            PORTS,
            format!("the migration address {} does not resolve ({e})", p.host),
            migrate_uri_fix(req, net),
        ),
    }
}

pub(crate) fn networks(
    req: &MigrateRequest,
    dest: &HostFacts,
    dom: &DomainFacts,
    at_dest: &DestFacts,
) -> Vec<Check> {
    // An offline move only defines the guest; a missing network stops it from starting.
    let hard = req.kind == MoveKind::Live;
    let mut out = Vec::new();
    for nic in &dom.def.nics {
        let mac = &nic.mac;
        let source = nic.source.as_deref().unwrap_or_default();
        match nic.kind.as_str() {
            "network" => match at_dest.network(source) {
                Some(Presence::Active) => {}
                Some(Presence::Inactive) => out.push(Check::fail_or_warn(
                    hard,
                    NETWORKS,
                    format!("network '{source}' (NIC {mac}) exists at the destination but is not active"),
                    format!("run virsh net-start {source} (and net-autostart) on the destination"),
                )),
                Some(Presence::Missing) => out.push(Check::fail_or_warn(
                    hard,
                    NETWORKS,
                    format!("the destination has no network '{source}' (NIC {mac})"),
                    format!("define and start network '{source}' at the destination (virsh net-define, net-start)"),
                )),
                Some(Presence::Unknown(e)) => out.push(Check::warn(
                    NETWORKS,
                    format!("cannot verify network '{source}' at the destination: {e}"),
                    format!("make sure network '{source}' is active at the destination"),
                )),
                None => out.push(Check::warn(
                    NETWORKS,
                    format!("network '{source}' (NIC {mac}) was not looked up at the destination"),
                    format!("make sure network '{source}' is active at the destination"),
                )),
            },
            "bridge" | "direct" => {
                let what = if nic.kind == "bridge" { "bridge" } else { "device" };
                match at_dest.device(source) {
                    Some(Presence::Active | Presence::Inactive) => {}
                    Some(Presence::Missing) => out.push(Check::fail_or_warn(
                        hard,
                        NETWORKS,
                        format!("the destination has no {what} '{source}' (NIC {mac})"),
                        format!("create {what} '{source}' on the destination, or edit the NIC to one that exists there"),
                    )),
                    Some(Presence::Unknown(e)) => out.push(Check::warn(
                        NETWORKS,
                        format!("cannot verify {what} '{source}' at {}: {e}", dest.uri),
                        format!("make sure {what} '{source}' exists on the destination (ip link show {source})"),
                    )),
                    None => out.push(Check::warn(
                        NETWORKS,
                        format!("{what} '{source}' (NIC {mac}) was not looked up at the destination"),
                        format!("make sure {what} '{source}' exists on the destination"),
                    )),
                }
            }
            "user" => {}
            other => out.push(Check::warn(
                NETWORKS,
                format!("NIC {mac} of type '{other}' is not checked"),
                "make sure its backend exists on the destination",
            )),
        }
    }
    let n = dom.def.nics.len();
    or_pass(
        NETWORKS,
        out,
        if n == 0 {
            "the domain has no network interfaces".to_string()
        } else {
            format!("the destination has what all {n} network interface(s) attach to")
        },
    )
}

/// Where to probe the migration port, in the order libvirt would use: the explicit
/// migrate URI, the destination URI's host, the destination's own name.
pub(crate) fn probe_target(req: &MigrateRequest, dest: &HostFacts) -> Option<(String, u16)> {
    use crate::migrate::preflight::addr::{uri_host_port, MIGRATION_PROBE_PORT};
    if let Some(uri) = &req.migrate_uri {
        let (host, port) = uri_host_port(uri);
        if !host.is_empty() {
            return Some((host, port.unwrap_or(MIGRATION_PROBE_PORT)));
        }
    }
    let host = uri_host(&req.dest_uri);
    if !host.is_empty() {
        return Some((host, MIGRATION_PROBE_PORT));
    }
    if dest.local {
        return Some(("127.0.0.1".into(), MIGRATION_PROBE_PORT));
    }
    dest.hostname
        .as_ref()
        .ok()
        .map(|h| (h.clone(), MIGRATION_PROBE_PORT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::preflight::checks::tests_support::*;
    use crate::migrate::preflight::facts::PortProbe;
    use crate::migrate::preflight::CheckStatus;
    use crate::model::InterfaceInfo;

    fn net(resolved: Result<Vec<&str>, &str>) -> NetFacts {
        NetFacts {
            resolved: Some(
                resolved
                    .map(|v| v.iter().map(|a| a.parse().expect("ip")).collect())
                    .map_err(str::to_string),
            ),
            dest_uri_host_usable: true,
            probe: None,
        }
    }

    fn src_local() -> HostFacts {
        let mut h = host("qemu:///system");
        h.local = true;
        h
    }

    #[test]
    fn unresolvable_host_name_fails_with_migrate_uri_fix() {
        let c = name_resolution(
            &live(),
            &src_local(),
            &host("d"),
            &net(Err("Name or service not known")),
        );
        assert_status(
            &c,
            CheckStatus::Fail,
            "the destination's host name 'dst' does not resolve on the source (Name or service not known)",
            "pass --migrate-uri tcp://10.0.0.5",
        );
        // From a third machine the source might still resolve it.
        let c = name_resolution(&live(), &host("s"), &host("d"), &net(Err("x")));
        assert_status(
            &c,
            CheckStatus::Warn,
            "does not resolve on this machine",
            "tcp://10.0.0.5",
        );
    }

    #[test]
    fn fix_without_usable_dest_host_asks_for_address() {
        let mut n = net(Err("x"));
        n.dest_uri_host_usable = false;
        let mut r = live();
        r.dest_uri = "qemu+ssh://dst-alias/system".into();
        let c = name_resolution(&r, &src_local(), &host("d"), &n);
        assert_eq!(
            c.fix.as_deref(),
            Some("pass --migrate-uri tcp://ADDRESS-OF-DESTINATION")
        );
        r.dest_uri = "qemu+tcp://[fd00::5]/system".into();
        n.dest_uri_host_usable = true;
        let c = name_resolution(&r, &src_local(), &host("d"), &n);
        assert_eq!(c.fix.as_deref(), Some("pass --migrate-uri tcp://[fd00::5]"));
    }

    #[test]
    fn loopback_resolution_of_remote_destination_fails() {
        let c = name_resolution(
            &live(),
            &src_local(),
            &host("d"),
            &net(Ok(vec!["127.0.1.1"])),
        );
        assert_status(
            &c,
            CheckStatus::Fail,
            "resolves to loopback 127.0.1.1",
            "tcp://10.0.0.5",
        );
        let mut d = host("d");
        d.local = true;
        let c = name_resolution(&live(), &src_local(), &d, &net(Ok(vec!["127.0.1.1"])));
        assert_eq!(c.status, CheckStatus::Pass, "{c:?}");
    }

    #[test]
    fn localhost_name_fails() {
        let mut d = host("d");
        d.hostname = Ok("localhost.localdomain".into());
        let c = name_resolution(&live(), &src_local(), &d, &net(Ok(vec!["127.0.0.1"])));
        assert_status(
            &c,
            CheckStatus::Fail,
            "calls itself 'localhost.localdomain'",
            "--migrate-uri",
        );
    }

    #[test]
    fn resolution_passes_or_skips() {
        let c = name_resolution(
            &live(),
            &src_local(),
            &host("d"),
            &net(Ok(vec!["10.0.0.5"])),
        );
        assert_eq!(c.status, CheckStatus::Pass);
        assert_eq!(
            c.message,
            "the destination's host name 'dst' resolves to 10.0.0.5 on the source"
        );
        let mut r = live();
        r.migrate_uri = Some("tcp://10.0.0.5".into());
        assert_eq!(
            name_resolution(&r, &src_local(), &host("d"), &net(Err("x"))).status,
            CheckStatus::Skip
        );
        let mut r = live();
        r.tunnelled = true;
        assert_eq!(
            name_resolution(&r, &src_local(), &host("d"), &net(Err("x"))).status,
            CheckStatus::Skip
        );
        // p2p: the source daemon resolves, which this machine stands in for; still checked.
        let mut r = live();
        r.p2p = true;
        assert_eq!(
            name_resolution(&r, &src_local(), &host("d"), &net(Err("x"))).status,
            CheckStatus::Fail
        );
    }

    fn probed(outcome: ProbeOutcome) -> NetFacts {
        NetFacts {
            resolved: None,
            dest_uri_host_usable: true,
            probe: Some(PortProbe {
                host: "10.0.0.5".into(),
                port: 49152,
                outcome,
            }),
        }
    }

    #[test]
    fn filtered_port_fails() {
        let c = ports(&live(), &probed(ProbeOutcome::TimedOut));
        assert_status(
            &c,
            CheckStatus::Fail,
            "10.0.0.5:49152 did not answer within 1 s",
            "open TCP 49152-49215 on the destination firewall, or use --tunnelled",
        );
        let mut r = live();
        r.copy_storage = Some(crate::migrate::request::CopyStorage::All);
        let c = ports(
            &r,
            &probed(ProbeOutcome::Unreachable("No route to host".into())),
        );
        assert_status(
            &c,
            CheckStatus::Fail,
            "unreachable from this machine (No route to host)",
            "firewall",
        );
        assert!(!c.fix.as_deref().unwrap_or_default().contains("tunnelled"));
        let c = ports(&live(), &probed(ProbeOutcome::NoAddress("nope".into())));
        assert_status(&c, CheckStatus::Fail, "does not resolve", "--migrate-uri");
    }

    #[test]
    fn refused_or_accepted_port_passes() {
        for o in [ProbeOutcome::Refused, ProbeOutcome::Accepted] {
            assert_eq!(ports(&live(), &probed(o)).status, CheckStatus::Pass);
        }
        let mut r = live();
        r.tunnelled = true;
        assert_eq!(
            ports(&r, &probed(ProbeOutcome::TimedOut)).status,
            CheckStatus::Skip
        );
        assert_eq!(
            ports(&offline(), &probed(ProbeOutcome::TimedOut)).status,
            CheckStatus::Skip
        );
    }

    #[test]
    fn probe_target_prefers_migrate_uri() {
        let d = host("d");
        let mut r = live();
        assert_eq!(probe_target(&r, &d), Some(("10.0.0.5".into(), 49215)));
        r.migrate_uri = Some("tcp://10.9.9.9:49200".into());
        assert_eq!(probe_target(&r, &d), Some(("10.9.9.9".into(), 49200)));
        let mut r = live();
        r.dest_uri = "qemu:///system".into();
        assert_eq!(probe_target(&r, &d), Some(("dst".into(), 49215)));
        let mut local = host("d");
        local.local = true;
        assert_eq!(probe_target(&r, &local), Some(("127.0.0.1".into(), 49215)));
    }

    fn nic(kind: &str, source: &str) -> InterfaceInfo {
        InterfaceInfo {
            mac: "52:54:00:00:00:09".into(),
            kind: kind.into(),
            source: Some(source.into()),
            model: None,
        }
    }

    #[test]
    fn missing_or_inactive_network_fails() {
        let mut d = dest_facts();
        d.networks = vec![("default".into(), Presence::Missing)];
        let found = networks(&live(), &host("d"), &domain(), &d);
        assert_status(
            single(&found),
            CheckStatus::Fail,
            "has no network 'default'",
            "virsh net-define",
        );
        d.networks = vec![("default".into(), Presence::Inactive)];
        let found = networks(&live(), &host("d"), &domain(), &d);
        assert_status(
            single(&found),
            CheckStatus::Fail,
            "is not active",
            "virsh net-start default",
        );
        let found = networks(&offline(), &host("d"), &domain(), &d);
        assert_eq!(single(&found).status, CheckStatus::Warn);
    }

    #[test]
    fn bridges_missing_fail_unknown_warn() {
        let mut dom = domain();
        dom.def.nics = vec![nic("bridge", "br0"), nic("user", "")];
        let mut d = dest_facts();
        d.devices = vec![("br0".into(), Presence::Missing)];
        let found = networks(&live(), &host("d"), &dom, &d);
        assert_status(
            single(&found),
            CheckStatus::Fail,
            "has no bridge 'br0'",
            "create bridge 'br0'",
        );
        d.devices = vec![("br0".into(), Presence::Unknown("no netcf".into()))];
        let found = networks(&live(), &host("d"), &dom, &d);
        assert_status(
            single(&found),
            CheckStatus::Warn,
            "cannot verify bridge 'br0'",
            "ip link show br0",
        );
        d.devices = vec![("br0".into(), Presence::Active)];
        let found = networks(&live(), &host("d"), &dom, &d);
        assert_eq!(single(&found).status, CheckStatus::Pass);
    }

    #[test]
    fn healthy_networks_pass() {
        let found = networks(&live(), &host("d"), &domain(), &dest_facts());
        let c = single(&found);
        assert_eq!(c.status, CheckStatus::Pass);
        assert_eq!(
            c.message,
            "the destination has what all 1 network interface(s) attach to"
        );
    }
}
