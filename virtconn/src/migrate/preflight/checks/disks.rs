//! Checks about the guest's devices: `storage`, `cache`, `host-devices`.

use super::hosts::{LIBVIRT_DROP_CACHE, QEMU_DROP_CACHE};
use super::{or_pass, version, CACHE, HOST_DEVICES, STORAGE};
use crate::migrate::preflight::addr::is_shared_fs;
use crate::migrate::preflight::facts::{DestFacts, Disk, DomainFacts, HostFacts};
use crate::migrate::preflight::Check;
use crate::migrate::request::{CopyStorage, MigrateRequest, MoveKind};

/// Whether libvirt copies this disk with `--copy-storage`: writable, not shareable,
/// with a source (libvirt's qemuMigrationAnyCopyDisk).
fn copied(req: &MigrateRequest, d: &Disk) -> bool {
    req.kind == MoveKind::Live
        && req.copy_storage.is_some()
        && !d.readonly
        && !d.shareable
        && d.source.is_some()
}

fn dir_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => path,
    }
}

pub(crate) fn storage(req: &MigrateRequest, dom: &DomainFacts, at_dest: &DestFacts) -> Vec<Check> {
    let live = req.kind == MoveKind::Live;
    let mut out = Vec::new();
    let mut checked = 0;
    for d in &dom.def.disks {
        // Removable media belong to `host-devices`; network disks are shared by nature.
        if d.is_removable() || d.kind == "network" {
            continue;
        }
        let Some(path) = d.source.as_deref() else {
            continue;
        };
        checked += 1;
        let t = &d.target;
        let place = at_dest.disk(path);
        let at = place.and_then(|p| p.at_dest);
        let pool = place.and_then(|p| p.dest_pool.as_deref());
        let dir = dir_of(path);
        if copied(req, d) {
            if at == Some(true) {
                continue;
            }
            let cannot_tell = at.is_none();
            match (req.copy_storage, d.kind.as_str(), pool) {
                (Some(CopyStorage::Inc), _, _) => out.push(Check::fail_or_warn(
                    !cannot_tell,
                    STORAGE,
                    format!(
                        "{t}: {path} {} at the destination, and --copy-storage inc cannot create it",
                        if cannot_tell { "may be missing" } else { "is missing" }
                    ),
                    format!("create {path} at the destination on the same backing image, or use --copy-storage all"),
                )),
                (_, "file" | "volume", Some(_)) => {}
                (_, "file", None) => out.push(Check::fail_or_warn(
                    !cannot_tell,
                    STORAGE,
                    format!(
                        "{t}: {path} {} at the destination and no active storage pool there has target {dir}, so libvirt cannot create it",
                        if cannot_tell { "may be missing" } else { "is missing" }
                    ),
                    format!("define a dir pool at the destination (virsh pool-define-as NAME dir --target {dir}; virsh pool-start NAME), or create {path} there"),
                )),
                (_, "volume", None) => out.push(Check::fail(
                    STORAGE,
                    format!("{t}: the destination has no active storage pool for volume {path}"),
                    format!("define and start the pool of {path} at the destination"),
                )),
                (_, kind, _) => out.push(Check::fail_or_warn(
                    !cannot_tell,
                    STORAGE,
                    format!(
                        "{t}: {kind} disk {path} {} at the destination, and libvirt only creates files and volumes",
                        if cannot_tell { "may be missing" } else { "is missing" }
                    ),
                    format!("create {path} at the destination, at least as large as the source"),
                )),
            }
            continue;
        }
        // Not copied: the destination QEMU opens the very same path.
        let source_fs = place.and_then(|p| p.source_fs.as_deref());
        if let (true, false, true, Some(fs)) = (live, d.readonly, d.kind == "file", source_fs) {
            if !is_shared_fs(fs) {
                out.push(Check::fail(
                    STORAGE,
                    format!("{t}: {path} is on a local {fs} filesystem; libvirt refuses: \"Migration without shared storage is unsafe\""),
                    format!("pass --copy-storage all, or put {path} on shared storage (NFS, Ceph, GlusterFS)"),
                ));
                continue;
            }
        }
        let fix = if live {
            format!("pass --copy-storage all, or make {path} available at the destination")
        } else {
            format!("copy {path} to the destination before starting the guest there")
        };
        match at {
            Some(true) => {}
            Some(false) => out.push(Check::fail_or_warn(
                live,
                STORAGE,
                format!("{t}: {path} does not exist at the destination"),
                fix,
            )),
            None => out.push(Check::warn(
                STORAGE,
                format!("{t}: cannot verify {path} at the destination (no storage pool there covers {dir})"),
                fix,
            )),
        }
    }
    let ok = match (checked, req.copy_storage.is_some() && live) {
        (0, _) => "the domain has no local disks".to_string(),
        (n, true) => format!("{n} disk(s) will be copied; the destination has or can create them"),
        (n, false) => format!("{n} disk(s) are reachable at the same path on the destination"),
    };
    or_pass(STORAGE, out, ok)
}

/// Before libvirt 5.7 / QEMU 4.0, a disk with the host page cache in use could serve
/// stale data on the destination, and libvirt refuses such a live move as unsafe.
pub(crate) fn cache(req: &MigrateRequest, src: &HostFacts, dom: &DomainFacts) -> Vec<Check> {
    if req.kind == MoveKind::Offline {
        return vec![Check::skip(CACHE, "offline move: no running disks")];
    }
    if src
        .hv_type
        .as_ref()
        .is_ok_and(|t| !t.eq_ignore_ascii_case("QEMU"))
    {
        return vec![Check::skip(
            CACHE,
            "cache modes matter only to the QEMU driver",
        )];
    }
    let drops_cache = match (&src.hv_type, &src.lib_version, &src.hyp_version) {
        (Ok(t), Ok(lib), Ok(hyp)) if t.eq_ignore_ascii_case("QEMU") => (*lib >= LIBVIRT_DROP_CACHE
            && *hyp >= QEMU_DROP_CACHE)
            .then(|| format!("libvirt {} with QEMU {}", version(*lib), version(*hyp))),
        _ => None,
    };
    let mut out = Vec::new();
    for d in &dom.def.disks {
        if d.readonly || d.shareable || d.source.is_none() || d.kind == "network" || copied(req, d)
        {
            continue;
        }
        let mode = d.cache.as_deref().unwrap_or("default (writeback)");
        if mode == "none" || mode == "directsync" {
            continue;
        }
        let t = &d.target;
        let fix = format!(
            "set <driver cache='none'/> on {t} (virsh edit {}) and restart the guest",
            dom.def.name
        );
        out.push(match &drops_cache {
            Some(stack) => Check::warn(
                CACHE,
                format!("{t} uses cache={mode}; {stack} allows it (QEMU drops the page cache at switchover), older stacks refuse it as unsafe"),
                fix,
            ),
            None => Check::fail(
                CACHE,
                format!("{t} uses cache={mode}; libvirt refuses this as an unsafe migration"),
                fix,
            ),
        });
    }
    or_pass(
        CACHE,
        out,
        "every disk that stays shared uses cache=none or directsync, or is read-only",
    )
}

pub(crate) fn host_devices(
    req: &MigrateRequest,
    dom: &DomainFacts,
    at_dest: &DestFacts,
) -> Vec<Check> {
    let live = req.kind == MoveKind::Live;
    let name = &dom.def.name;
    let mut out = Vec::new();
    for h in &dom.def.hostdevs {
        let desc = &h.desc;
        out.push(match h.kind.as_str() {
            "usb" => Check::warn(
                HOST_DEVICES,
                format!("{desc} is passed through; the destination needs the same device plugged in"),
                format!("plug {desc} into the destination, or detach it (virsh detach-device {name} FILE --live)"),
            ),
            "mdev" => Check::warn(
                HOST_DEVICES,
                format!("{desc} is assigned; it moves only with vfio migration support and the same mdev type at the destination"),
                format!("detach it before the move (virsh detach-device {name} FILE --live)"),
            ),
            _ => Check::fail_or_warn(
                live,
                HOST_DEVICES,
                format!("{desc} is assigned to the guest; libvirt refuses to migrate assigned host devices"),
                format!("detach it before the move (virsh detach-device {name} FILE --live) and re-attach one at the destination"),
            ),
        });
    }
    for d in dom.def.disks.iter().filter(|d| d.is_removable()) {
        let Some(path) = d.source.as_deref() else {
            continue;
        };
        let t = &d.target;
        let fix = format!(
            "eject it (virsh change-media {name} {t} --eject), or copy {path} to the destination"
        );
        match at_dest.disk(path).and_then(|p| p.at_dest) {
            Some(true) => {}
            Some(false) => out.push(Check::fail_or_warn(
                live,
                HOST_DEVICES,
                format!(
                    "{} {t} holds {path}, which does not exist at the destination",
                    d.device
                ),
                fix,
            )),
            None => out.push(Check::warn(
                HOST_DEVICES,
                format!(
                    "{} {t} holds {path}; cannot verify it at the destination",
                    d.device
                ),
                fix,
            )),
        }
    }
    for dev in &dom.def.char_devs {
        out.push(Check::warn(
            HOST_DEVICES,
            format!("a serial/parallel/channel device uses host device {dev}, which must exist at the destination"),
            format!("make sure {dev} exists at the destination, or switch the device to a pty"),
        ));
    }
    or_pass(
        HOST_DEVICES,
        out,
        "no host devices or inserted media to carry over",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::preflight::checks::tests_support::*;
    use crate::migrate::preflight::facts::HostDev;
    use crate::migrate::preflight::CheckStatus;

    fn src() -> HostFacts {
        let mut h = host("qemu:///system");
        h.local = true;
        h
    }

    #[test]
    fn shared_disk_present_at_destination_passes() {
        let found = storage(&live(), &domain(), &dest_facts());
        let c = single(&found);
        assert_eq!(c.status, CheckStatus::Pass, "{c:?}");
        assert_eq!(
            c.message,
            "1 disk(s) are reachable at the same path on the destination"
        );
    }

    #[test]
    fn missing_disk_without_copy_storage_fails() {
        let mut d = dest_facts();
        d.disks = vec![place(DISK, Some(false))];
        let found = storage(&live(), &domain(), &d);
        assert_status(
            single(&found),
            CheckStatus::Fail,
            "vda: /var/lib/libvirt/images/web.qcow2 does not exist at the destination",
            "pass --copy-storage all, or make /var/lib/libvirt/images/web.qcow2 available at the destination",
        );
        let found = storage(&offline(), &domain(), &d);
        assert_status(
            single(&found),
            CheckStatus::Warn,
            "does not exist",
            "copy /var/lib/libvirt/images/web.qcow2 to the destination",
        );
    }

    #[test]
    fn unverifiable_disk_warns() {
        let mut d = dest_facts();
        d.disks = vec![place(DISK, None)];
        let found = storage(&live(), &domain(), &d);
        assert_status(
            single(&found),
            CheckStatus::Warn,
            "cannot verify /var/lib/libvirt/images/web.qcow2 at the destination (no storage pool there covers /var/lib/libvirt/images)",
            "--copy-storage all",
        );
    }

    #[test]
    fn local_filesystem_without_copy_storage_is_unsafe() {
        let mut d = dest_facts();
        d.disks[0].source_fs = Some("ext4".into());
        let found = storage(&live(), &domain(), &d);
        assert_status(
            single(&found),
            CheckStatus::Fail,
            "is on a local ext4 filesystem; libvirt refuses: \"Migration without shared storage is unsafe\"",
            "pass --copy-storage all, or put",
        );
        // Read-only disks are safe, and offline moves are not checked for it.
        assert_eq!(
            storage(&offline(), &domain(), &d)[0].status,
            CheckStatus::Pass
        );
    }

    #[test]
    fn copy_storage_needs_a_pool_for_missing_files() {
        let mut r = live();
        r.copy_storage = Some(CopyStorage::All);
        let mut d = dest_facts();
        d.disks = vec![place(DISK, Some(false))];
        let found = storage(&r, &domain(), &d);
        assert_eq!(
            single(&found).status,
            CheckStatus::Pass,
            "pool 'default' covers the directory"
        );
        assert_eq!(
            found[0].message,
            "1 disk(s) will be copied; the destination has or can create them"
        );
        d.disks[0].dest_pool = None;
        let found = storage(&r, &domain(), &d);
        assert_status(
            single(&found),
            CheckStatus::Fail,
            "no active storage pool there has target /var/lib/libvirt/images, so libvirt cannot create it",
            "virsh pool-define-as NAME dir --target /var/lib/libvirt/images",
        );
        d.disks[0].at_dest = None;
        assert_eq!(storage(&r, &domain(), &d)[0].status, CheckStatus::Warn);
    }

    #[test]
    fn copy_storage_inc_cannot_create() {
        let mut r = live();
        r.copy_storage = Some(CopyStorage::Inc);
        let mut d = dest_facts();
        d.disks = vec![place(DISK, Some(false))];
        let found = storage(&r, &domain(), &d);
        assert_status(
            single(&found),
            CheckStatus::Fail,
            "--copy-storage inc cannot create it",
            "use --copy-storage all",
        );
    }

    #[test]
    fn copy_storage_block_device_must_exist() {
        let mut r = live();
        r.copy_storage = Some(CopyStorage::All);
        let mut dom = domain();
        dom.def.disks[0].kind = "block".into();
        dom.def.disks[0].source = Some("/dev/vg/web".into());
        let mut d = dest_facts();
        d.disks = vec![place("/dev/vg/web", Some(false))];
        let found = storage(&r, &dom, &d);
        assert_status(
            single(&found),
            CheckStatus::Fail,
            "block disk /dev/vg/web is missing",
            "create /dev/vg/web at the destination",
        );
    }

    #[test]
    fn writeback_cache_fails_on_old_stack_and_warns_on_new() {
        let mut dom = domain();
        dom.def.disks[0].cache = None;
        let mut old = src();
        old.lib_version = Ok(5_006_000);
        let found = cache(&live(), &old, &dom);
        assert_status(
            single(&found),
            CheckStatus::Fail,
            "vda uses cache=default (writeback); libvirt refuses this as an unsafe migration",
            "set <driver cache='none'/> on vda (virsh edit web)",
        );
        let found = cache(&live(), &src(), &dom);
        assert_status(
            single(&found),
            CheckStatus::Warn,
            "libvirt 11.3.0 with QEMU 10.0.0 allows it",
            "cache='none'",
        );
    }

    #[test]
    fn cache_none_readonly_or_copied_passes() {
        assert_eq!(
            cache(&live(), &src(), &domain())[0].status,
            CheckStatus::Pass
        );
        let mut dom = domain();
        dom.def.disks[0].cache = Some("writeback".into());
        let mut r = live();
        r.copy_storage = Some(CopyStorage::All);
        assert_eq!(cache(&r, &src(), &dom)[0].status, CheckStatus::Pass);
        dom.def.disks[0].readonly = true;
        assert_eq!(cache(&live(), &src(), &dom)[0].status, CheckStatus::Pass);
        assert_eq!(cache(&offline(), &src(), &dom)[0].status, CheckStatus::Skip);
    }

    #[test]
    fn pci_passthrough_fails_usb_warns() {
        let mut dom = domain();
        dom.def.hostdevs = vec![HostDev {
            kind: "pci".into(),
            desc: "PCI 0000:03:00.1".into(),
        }];
        let found = host_devices(&live(), &dom, &dest_facts());
        assert_status(
            single(&found),
            CheckStatus::Fail,
            "PCI 0000:03:00.1 is assigned to the guest; libvirt refuses",
            "virsh detach-device web FILE --live",
        );
        dom.def.hostdevs[0] = HostDev {
            kind: "usb".into(),
            desc: "USB 0x046d:0xc52b".into(),
        };
        let found = host_devices(&live(), &dom, &dest_facts());
        assert_status(
            single(&found),
            CheckStatus::Warn,
            "same device plugged in",
            "plug USB 0x046d:0xc52b",
        );
    }

    #[test]
    fn cdrom_missing_at_destination_fails_with_eject_fix() {
        let mut dom = domain();
        let mut cd = disk("sda", "/iso/debian.iso");
        cd.device = "cdrom".into();
        cd.readonly = true;
        dom.def.disks.push(cd);
        let mut d = dest_facts();
        d.disks.push(place("/iso/debian.iso", Some(false)));
        let found = host_devices(&live(), &dom, &d);
        assert_status(
            single(&found),
            CheckStatus::Fail,
            "cdrom sda holds /iso/debian.iso, which does not exist at the destination",
            "eject it (virsh change-media web sda --eject)",
        );
        // The storage check leaves removable media alone.
        assert_eq!(storage(&live(), &dom, &d)[0].status, CheckStatus::Pass);
    }

    #[test]
    fn serial_host_device_warns() {
        let mut dom = domain();
        dom.def.char_devs = vec!["/dev/ttyS0".into()];
        let found = host_devices(&live(), &dom, &dest_facts());
        assert_status(
            single(&found),
            CheckStatus::Warn,
            "host device /dev/ttyS0",
            "switch the device to a pty",
        );
        dom.def.char_devs.clear();
        assert_eq!(
            host_devices(&live(), &dom, &dest_facts())[0].status,
            CheckStatus::Pass
        );
    }
}
