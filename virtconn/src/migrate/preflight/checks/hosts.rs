//! Checks about the two hosts: `dest-reachable`, `hypervisor`, `cpu`, `memory`, `clock`.

use super::{version, CLOCK, CPU, DEST_REACHABLE, HYPERVISOR, MEMORY};
use crate::migrate::preflight::facts::{CpuVerdict, DestFacts, DomainFacts, HostFacts};
use crate::migrate::preflight::Check;
use crate::migrate::request::{MigrateRequest, MoveKind};
use crate::ConnError;

/// libvirt ≥ 5.7 lets disks with a host page cache migrate when QEMU can drop that cache
/// at switchover (QEMU ≥ 4.0, `drop-cache`); older stacks call it unsafe.
pub(crate) const LIBVIRT_DROP_CACHE: u32 = 5_007_000;
pub(crate) const QEMU_DROP_CACHE: u32 = 4_000_000;

pub(crate) fn unreachable(dest_uri: &str, err: &ConnError) -> Check {
    let fix = match err {
        ConnError::NoDaemon { .. } => {
            "start libvirtd on the destination and make its port reachable \
             (16509 for qemu+tcp, 22 for qemu+ssh), or correct the URI"
        }
        ConnError::PermissionDenied { .. } => {
            "use an account the destination's libvirtd accepts (root or group libvirt; \
             qemu+ssh://root@HOST/system)"
        }
        _ => "check the destination URI and that its libvirtd answers (virsh -c URI version)",
    };
    Check::fail(
        DEST_REACHABLE,
        format!("cannot open {dest_uri}: {err}"),
        fix,
    )
}

pub(crate) fn dest_reachable(dest: &HostFacts) -> Check {
    let uri = &dest.uri;
    match (&dest.alive, &dest.hostname, &dest.lib_version) {
        (Ok(false), _, _) => Check::fail(
            DEST_REACHABLE,
            format!("the connection to {uri} is open but no longer alive"),
            "check the destination's libvirtd and the network path to it",
        ),
        (Ok(true), Ok(host), Ok(lib)) => Check::pass(
            DEST_REACHABLE,
            format!("{uri} answers: host '{host}', libvirt {}", version(*lib)),
        ),
        (alive, host, lib) => {
            let errs: Vec<&str> = [
                alive.as_ref().err(),
                host.as_ref().err(),
                lib.as_ref().err(),
            ]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
            Check::warn(
                DEST_REACHABLE,
                format!(
                    "{uri} is open but did not answer everything: {}",
                    errs.join("; ")
                ),
                "check the destination's libvirtd log",
            )
        }
    }
}

pub(crate) fn hypervisor(src: &HostFacts, dest: &HostFacts, dom: Option<&DomainFacts>) -> Check {
    let (Ok(st), Ok(dt)) = (&src.hv_type, &dest.hv_type) else {
        let err = src.hv_type.as_ref().err().or(dest.hv_type.as_ref().err());
        return Check::warn(
            HYPERVISOR,
            format!(
                "could not read the hypervisor type: {}",
                err.map_or("unknown error", String::as_str)
            ),
            "check both libvirtd logs",
        );
    };
    if !st.eq_ignore_ascii_case(dt) {
        return Check::fail(
            HYPERVISOR,
            format!("the source runs {st}, the destination {dt}"),
            "pick a destination with the same hypervisor",
        );
    }
    if let (Ok(sc), Ok(dc)) = (&src.caps, &dest.caps) {
        if let (Some(su), Some(du)) = (&sc.host_uuid, &dc.host_uuid) {
            if su == du {
                return Check::fail(
                    HYPERVISOR,
                    format!("both hosts report host UUID {su}; libvirt refuses to migrate to the same host"),
                    "migrate to another host, or give the destination its own host_uuid in libvirtd.conf",
                );
            }
        }
        if let Some(machine) = dom.and_then(|d| d.def.machine.as_deref()) {
            let arch = dom.and_then(|d| d.def.arch.as_deref());
            let offered = |m: &str| {
                dc.machines
                    .iter()
                    .any(|(a, name)| name == m && arch.is_none_or(|arch| arch == a))
            };
            if !dc.machines.is_empty() && !offered(machine) {
                return Check::fail(
                    HYPERVISOR,
                    format!(
                        "the destination {dt} {} does not offer machine type {machine}",
                        dest.hyp_version.as_ref().map_or(String::new(), |v| version(*v))
                    ),
                    "upgrade the destination's QEMU, or pick a destination at least as new as the source",
                );
            }
        }
    }
    let pair = |s: &Result<u32, String>, d: &Result<u32, String>| match (s, d) {
        (Ok(s), Ok(d)) => Some((*s, *d)),
        _ => None,
    };
    let mut older = Vec::new();
    let lib = pair(&src.lib_version, &dest.lib_version);
    let hyp = pair(&src.hyp_version, &dest.hyp_version);
    if let Some((s, d)) = lib.filter(|(s, d)| d < s) {
        older.push(format!("libvirt {} < {}", version(d), version(s)));
    }
    if let Some((s, d)) = hyp.filter(|(s, d)| d < s) {
        older.push(format!("{dt} {} < {}", version(d), version(s)));
    }
    if !older.is_empty() {
        return Check::warn(
            HYPERVISOR,
            format!(
                "the destination is older than the source: {}; newer device or machine features may be refused",
                older.join(", ")
            ),
            "upgrade the destination, or expect the move to fail on features it lacks",
        );
    }
    let show = |v: Option<(u32, u32)>, name: &str| {
        v.map(|(s, d)| {
            if s == d {
                format!("{name} {}", version(s))
            } else {
                format!("{name} {} → {}", version(s), version(d))
            }
        })
    };
    let versions: Vec<String> = [show(lib, "libvirt"), show(hyp, st)]
        .into_iter()
        .flatten()
        .collect();
    Check::pass(
        HYPERVISOR,
        format!("{st} on both hosts ({})", versions.join(", ")),
    )
}

pub(crate) fn cpu(req: &MigrateRequest, dom: &DomainFacts, dest: &DestFacts) -> Check {
    let hard = req.kind == MoveKind::Live;
    if dom.def.virt_type == "qemu" {
        return Check::pass(
            CPU,
            "TCG guest (type='qemu'): QEMU emulates the CPU on any host",
        );
    }
    let Some(cpu) = &dom.def.cpu else {
        return Check::pass(
            CPU,
            "no <cpu> element: the hypervisor's default model runs anywhere",
        );
    };
    if cpu.mode == "host-passthrough" || cpu.mode == "maximum" {
        return Check::warn(
            CPU,
            format!(
                "CPU mode {}: the destination needs an identical CPU and microcode",
                cpu.mode
            ),
            "move between identical hosts only, or switch the guest to host-model or a named model",
        );
    }
    let model = cpu.model.as_deref().unwrap_or(cpu.mode.as_str());
    match &dest.cpu {
        None => Check::skip(CPU, format!("CPU {model} was not compared")),
        Some(Ok(CpuVerdict::Identical | CpuVerdict::Superset)) => Check::pass(
            CPU,
            format!("the destination's CPU can run the guest's CPU {model}"),
        ),
        Some(Ok(CpuVerdict::Incompatible)) => Check::fail_or_warn(
            hard,
            CPU,
            format!("the destination's CPU cannot run the guest's CPU {model}"),
            "choose a CPU model both hosts support (virsh cpu-baseline) and restart the guest with it",
        ),
        Some(Err(e)) => Check::warn(
            CPU,
            format!("could not compare CPU {model} at the destination: {e}"),
            "compare by hand: virsh -c DEST hypervisor-cpu-compare on the domain XML",
        ),
    }
}

pub(crate) fn memory(req: &MigrateRequest, dest: &HostFacts, dom: &DomainFacts) -> Check {
    if req.kind == MoveKind::Offline {
        return Check::skip(
            MEMORY,
            "offline move: the guest does not start at the destination",
        );
    }
    let free = match &dest.free_memory {
        Ok(f) => *f,
        Err(e) => {
            return Check::warn(
                MEMORY,
                format!("could not read the destination's free memory: {e}"),
                "check free memory on the destination by hand",
            )
        }
    };
    let guest = dom.def.memory_kib.saturating_mul(1024);
    // Headroom for QEMU's own allocations and the page tables of the incoming guest.
    let need = guest.saturating_add(guest / 10);
    let mib = |b: u64| b / (1 << 20);
    if free < need {
        Check::fail(
            MEMORY,
            format!(
                "the destination has {} MiB free, the guest needs {} MiB plus 10%",
                mib(free),
                mib(guest)
            ),
            "free memory on the destination, shrink the guest's memory, or pick another host",
        )
    } else {
        Check::pass(
            MEMORY,
            format!(
                "the destination has {} MiB free for a {} MiB guest",
                mib(free),
                mib(guest)
            ),
        )
    }
}

pub(crate) fn clock(src: &HostFacts, dest: &HostFacts) -> Check {
    if src.local && dest.local {
        return Check::pass(CLOCK, "same machine clock");
    }
    // Offsets are measured from the machine running ferry; the skew is their difference.
    let offset = |h: &HostFacts| -> Option<Result<f64, String>> {
        if h.local {
            Some(Ok(0.0))
        } else {
            h.clock_offset_s.clone()
        }
    };
    match (offset(src), offset(dest)) {
        (Some(Ok(a)), Some(Ok(b))) => clock_skew(b - a),
        (Some(Err(e)), _) | (_, Some(Err(e))) => Check::warn(
            CLOCK,
            format!("cannot read a host's clock: {e}"),
            "run chronyc tracking (or timedatectl) on both hosts",
        ),
        _ => {
            let mut c = Check::skip(
                CLOCK,
                "clock skew is not measurable through libvirt over this transport; check chrony/ntpd on both hosts",
            );
            c.fix = Some("run chronyc tracking (or timedatectl) on both hosts".into());
            c
        }
    }
}

/// Guests keep their clock across a live move; a destination off by seconds makes them
/// jump (TLS, Kerberos and log ordering notice). Half a second is NTP-synced hosts'
/// worst case; two seconds is a host without time sync.
pub(crate) fn clock_skew(dest_ahead_s: f64) -> Check {
    let abs = dest_ahead_s.abs();
    let side = if dest_ahead_s >= 0.0 {
        "ahead of"
    } else {
        "behind"
    };
    let text = format!("the destination's clock is {abs:.2} s {side} the source's");
    let fix = "enable time sync on both hosts (chronyc makestep, or systemctl enable --now chrony) before moving";
    if abs > 2.0 {
        Check::fail(CLOCK, text, fix)
    } else if abs > 0.5 {
        Check::warn(CLOCK, text, fix)
    } else {
        Check::pass(CLOCK, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::preflight::checks::tests_support::*;
    use crate::migrate::preflight::facts::{CapsFacts, CpuDef};
    use crate::migrate::preflight::CheckStatus;

    #[test]
    fn unreachable_names_uri_and_fix() {
        let err = ConnError::NoDaemon {
            uri: "qemu+tcp://10.0.0.5/system".into(),
            detail: "Connection refused".into(),
        };
        let c = unreachable("qemu+tcp://10.0.0.5/system", &err);
        assert_eq!((c.id, c.status), (DEST_REACHABLE, CheckStatus::Fail));
        assert!(
            c.message
                .starts_with("cannot open qemu+tcp://10.0.0.5/system: no libvirt daemon"),
            "{c:?}"
        );
        assert!(c
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("start libvirtd on the destination")));
        let err = ConnError::PermissionDenied {
            uri: "u".into(),
            detail: "d".into(),
        };
        assert!(unreachable("u", &err)
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("group libvirt")));
    }

    #[test]
    fn dest_reachable_reports_host_and_version() {
        let c = dest_reachable(&host("qemu+tcp://10.0.0.5/system"));
        assert_eq!(c.status, CheckStatus::Pass);
        assert_eq!(
            c.message,
            "qemu+tcp://10.0.0.5/system answers: host 'dst', libvirt 11.3.0"
        );
        let mut h = host("u");
        h.alive = Ok(false);
        assert_status(
            &dest_reachable(&h),
            CheckStatus::Fail,
            "no longer alive",
            "network path",
        );
        let mut h = host("u");
        h.hostname = Err("RPC failed".into());
        assert_status(
            &dest_reachable(&h),
            CheckStatus::Warn,
            "RPC failed",
            "libvirtd log",
        );
    }

    #[test]
    fn hypervisor_type_mismatch_fails() {
        let src = host("a");
        let mut dest = host("b");
        dest.hv_type = Ok("Xen".into());
        assert_status(
            &hypervisor(&src, &dest, None),
            CheckStatus::Fail,
            "the source runs QEMU, the destination Xen",
            "same hypervisor",
        );
    }

    #[test]
    fn hypervisor_same_host_uuid_fails() {
        let src = host("a");
        let mut dest = host("b");
        dest.caps = src.caps.clone();
        assert_status(
            &hypervisor(&src, &dest, None),
            CheckStatus::Fail,
            "both hosts report host UUID uuid-of-a",
            "own host_uuid",
        );
    }

    #[test]
    fn hypervisor_missing_machine_type_fails() {
        let src = host("a");
        let mut dest = host("b");
        dest.hyp_version = Ok(7_002_000);
        dest.caps = Ok(CapsFacts {
            host_uuid: Some("dest-uuid".into()),
            machines: vec![("x86_64".into(), "pc-q35-7.2".into())],
        });
        let dom = domain();
        assert_status(
            &hypervisor(&src, &dest, Some(&dom)),
            CheckStatus::Fail,
            "the destination QEMU 7.2.0 does not offer machine type pc-q35-10.0",
            "upgrade the destination's QEMU",
        );
    }

    #[test]
    fn hypervisor_older_destination_warns_with_both_versions() {
        let src = host("a");
        let mut dest = host("b");
        dest.lib_version = Ok(9_000_000);
        dest.hyp_version = Ok(9_002_000);
        assert_status(
            &hypervisor(&src, &dest, Some(&domain())),
            CheckStatus::Warn,
            "libvirt 9.0.0 < 11.3.0, QEMU 9.2.0 < 10.0.0",
            "upgrade the destination",
        );
        let c = hypervisor(&src, &host("b"), Some(&domain()));
        assert_eq!(c.status, CheckStatus::Pass);
        assert_eq!(
            c.message,
            "QEMU on both hosts (libvirt 11.3.0, QEMU 10.0.0)"
        );
    }

    #[test]
    fn cpu_incompatible_fails() {
        let r = live();
        let mut dom = domain();
        dom.def.virt_type = "kvm".into();
        dom.def.cpu = Some(CpuDef {
            mode: "custom".into(),
            model: Some("Skylake-Server".into()),
            xml: "<cpu/>".into(),
        });
        let mut d = dest_facts();
        d.cpu = Some(Ok(CpuVerdict::Incompatible));
        assert_status(
            &cpu(&r, &dom, &d),
            CheckStatus::Fail,
            "cannot run the guest's CPU Skylake-Server",
            "virsh cpu-baseline",
        );
        d.cpu = Some(Ok(CpuVerdict::Superset));
        assert_eq!(cpu(&r, &dom, &d).status, CheckStatus::Pass);
        d.cpu = Some(Err("unsupported".into()));
        assert_eq!(cpu(&r, &dom, &d).status, CheckStatus::Warn);
    }

    #[test]
    fn cpu_passthrough_warns_and_tcg_passes() {
        let r = live();
        let mut dom = domain();
        dom.def.virt_type = "kvm".into();
        dom.def.cpu = Some(CpuDef {
            mode: "host-passthrough".into(),
            model: None,
            xml: "<cpu mode='host-passthrough'/>".into(),
        });
        assert_status(
            &cpu(&r, &dom, &dest_facts()),
            CheckStatus::Warn,
            "needs an identical CPU",
            "identical hosts",
        );
        dom.def.virt_type = "qemu".into();
        let c = cpu(&r, &dom, &dest_facts());
        assert_eq!(c.status, CheckStatus::Pass, "{c:?}");
        assert!(c.message.contains("TCG"));
    }

    #[test]
    fn memory_short_fails() {
        let mut dest = host("b");
        dest.free_memory = Ok(1 << 30);
        let mut dom = domain();
        dom.def.memory_kib = 1 << 20; // 1 GiB: 10% more does not fit in 1 GiB
        assert_status(
            &memory(&live(), &dest, &dom),
            CheckStatus::Fail,
            "the destination has 1024 MiB free, the guest needs 1024 MiB plus 10%",
            "free memory on the destination",
        );
        dest.free_memory = Ok(2 << 30);
        assert_eq!(memory(&live(), &dest, &dom).status, CheckStatus::Pass);
        assert_eq!(memory(&offline(), &dest, &dom).status, CheckStatus::Skip);
    }

    #[test]
    fn clock_same_machine_or_skip() {
        let mut a = host("qemu:///system");
        let mut b = host("qemu+tcp://127.0.0.1:16510/system");
        a.local = true;
        b.local = true;
        let c = clock(&a, &b);
        assert_eq!(
            (c.status, c.message.as_str()),
            (CheckStatus::Pass, "same machine clock")
        );
        b.local = false;
        let c = clock(&a, &b);
        assert_eq!(c.status, CheckStatus::Skip);
        assert!(c.message.contains("not measurable through libvirt"));
        b.clock_offset_s = Some(Ok(3.5));
        let c = clock(&a, &b);
        assert_eq!(c.status, CheckStatus::Fail, "{c:?}");
        assert_eq!(
            c.message,
            "the destination's clock is 3.50 s ahead of the source's"
        );
        assert!(c.fix.as_deref().is_some_and(|f| f.contains("time sync")));
        b.clock_offset_s = Some(Ok(-0.8));
        assert_eq!(clock(&a, &b).status, CheckStatus::Warn);
        b.clock_offset_s = Some(Ok(0.1));
        assert_eq!(clock(&a, &b).status, CheckStatus::Pass);
        b.clock_offset_s = Some(Err("ssh kvm2: Permission denied".into()));
        assert_eq!(clock(&a, &b).status, CheckStatus::Warn);
    }
}
