//! The tools fixup on `MemFs` guests: Debian on VMware with open-vm-tools (merged /usr),
//! Debian on Xen with xe-guest-utilities and PV modules, VMware's own installer on
//! systemd and on RHEL 6's SysV init.

use super::super::guestio::testing::{fix, fix_for, p, plan, plan_for, text};
use super::*;
use crate::guestfs::memfs::MemFs;
use crate::guestfs::GuestFs;

fn base(merged_usr: bool) -> MemFs {
    let fs = MemFs::new();
    fs.add_file("/usr/lib/os-release", "ID=debian\nVERSION_ID=12\n")
        .unwrap();
    fs.add_file("/etc/fstab", "/dev/sda1 / ext4 errors=remount-ro 0 1\n")
        .unwrap();
    if merged_usr {
        fs.add_symlink("/lib", "usr/lib").unwrap();
    } else {
        fs.add_dir("/lib/systemd/system").unwrap();
    }
    fs.add_file("/usr/lib/systemd/system/ssh.service", "[Unit]\n")
        .unwrap();
    fs.add_symlink(
        "/etc/systemd/system/multi-user.target.wants/ssh.service",
        "/lib/systemd/system/ssh.service",
    )
    .unwrap();
    fs
}

/// Debian 12 on VMware: open-vm-tools as Debian packages it.
fn debian_vmware() -> MemFs {
    let fs = base(true);
    for unit in [
        "open-vm-tools.service",
        "vgauth.service",
        "run-vmblock\\x2dfuse.mount",
    ] {
        fs.add_file(&format!("/usr/lib/systemd/system/{unit}"), "[Unit]\n")
            .unwrap();
    }
    fs.add_file("/usr/bin/vmtoolsd", "ELF").unwrap();
    fs.add_file("/etc/init.d/open-vm-tools", "#!/bin/sh\n")
        .unwrap();
    fs.add_symlink("/etc/rc2.d/S01open-vm-tools", "../init.d/open-vm-tools")
        .unwrap();
    fs.add_symlink(
        "/etc/systemd/system/vmtoolsd.service",
        "/lib/systemd/system/open-vm-tools.service",
    )
    .unwrap();
    fs.add_symlink(
        "/etc/systemd/system/multi-user.target.wants/open-vm-tools.service",
        "/lib/systemd/system/open-vm-tools.service",
    )
    .unwrap();
    fs
}

const XEN_MODULES_FILE: &str = "\
# /etc/modules: kernel modules to load at boot time.
#
# This file contains the names of kernel modules that should be loaded
# at boot time, one per line. Lines beginning with \"#\" are ignored.
loop
xen-blkfront
xen_netfront # the NIC
  xenfs
xen-blkback
";

/// Debian 12 on XenServer: xe-guest-utilities and PV modules forced in, /lib a directory.
fn debian_xen() -> MemFs {
    let fs = base(false);
    fs.add_file(
        "/lib/systemd/system/xe-linux-distribution.service",
        "[Unit]\n",
    )
    .unwrap();
    fs.add_file("/usr/sbin/xe-daemon", "ELF").unwrap();
    fs.add_symlink(
        "/etc/systemd/system/multi-user.target.wants/xe-linux-distribution.service",
        "/lib/systemd/system/xe-linux-distribution.service",
    )
    .unwrap();
    fs.add_file("/etc/modules", XEN_MODULES_FILE).unwrap();
    fs
}

fn mask(unit: &str) -> Change {
    Change::CreateSymlink {
        path: p(&format!("/etc/systemd/system/{unit}")),
        target: "/dev/null".into(),
    }
}

#[test]
fn vmware_guest_masks_open_vm_tools_once_each() {
    let fs = debian_vmware();
    let made = fix(&ForeignTools, &fs, &[]);
    assert_eq!(
        made,
        vec![
            mask("open-vm-tools.service"),
            mask("vgauth.service"),
            mask("run-vmblock\\x2dfuse.mount"),
        ]
    );
    assert_eq!(
        fs.read_link(&p("/etc/systemd/system/open-vm-tools.service"))
            .unwrap(),
        b"/dev/null"
    );
    // The alias and the SysV start link stay: systemd runs neither once the unit is
    // masked.
    assert!(fs
        .exists(&p("/etc/systemd/system/vmtoolsd.service"))
        .unwrap());
    assert!(fs.exists(&p("/etc/rc2.d/S01open-vm-tools")).unwrap());
}

#[test]
fn xen_guest_masks_xe_utilities_and_comments_out_modules() {
    let fs = debian_xen();
    let made = fix(&ForeignTools, &fs, &[]);
    assert_eq!(made.len(), 2, "{made:#?}");
    assert_eq!(made[0], mask("xe-linux-distribution.service"));
    assert_eq!(
        text(&fs, "/etc/modules"),
        XEN_MODULES_FILE
            .replace("xen-blkfront\n", "# ferry: xen-blkfront\n")
            .replace("xen_netfront #", "# ferry: xen_netfront #")
            .replace("  xenfs\n", "# ferry:   xenfs\n")
    );
    assert_eq!(text(&fs, "/etc/modules.ferry-orig"), XEN_MODULES_FILE);
}

#[test]
fn module_lists_keep_unknown_lines_byte_for_byte() {
    let fs = debian_vmware();
    let conf: &[u8] = b"# xen_blkfront\r\nvirtio_blk\r\nxen_kbdfront\r\n\xff\xfe\x00 garbage\n\
                        xen-fbfront option=1\nxen_blkfront_extra\n\txen_netfront";
    fs.add_file("/etc/modules-load.d/xen.conf", conf).unwrap();
    fs.add_file("/etc/modules-load.d/xen.conf.ferry-orig", "xen_blkfront\n")
        .unwrap();
    fs.add_file("/etc/modules-load.d/README", "xen_blkfront\n")
        .unwrap();
    fix(&ForeignTools, &fs, &[]);
    let expected: &[u8] = b"# xen_blkfront\r\nvirtio_blk\r\n# ferry: xen_kbdfront\r\n\xff\xfe\x00 garbage\n\
                            # ferry: xen-fbfront option=1\nxen_blkfront_extra\n# ferry: \txen_netfront\n";
    assert_eq!(
        fs.read_file(&p("/etc/modules-load.d/xen.conf")).unwrap(),
        expected
    );
    assert_eq!(text(&fs, "/etc/modules-load.d/README"), "xen_blkfront\n");
}

#[test]
fn a_local_vmware_tools_unit_loses_its_wants_links() {
    let fs = base(true);
    fs.add_file("/etc/systemd/system/vmware-tools.service", "[Unit]\n")
        .unwrap();
    fs.add_symlink(
        "/etc/systemd/system/multi-user.target.wants/vmware-tools.service",
        "/etc/systemd/system/vmware-tools.service",
    )
    .unwrap();
    fs.add_file("/etc/init.d/vmware-tools", "#!/bin/sh\n")
        .unwrap();
    fs.add_symlink("/etc/rc3.d/S03vmware-tools", "../init.d/vmware-tools")
        .unwrap();
    let made = fix(&ForeignTools, &fs, &[]);
    assert_eq!(
        made,
        vec![Change::RemoveSymlink {
            path: p("/etc/systemd/system/multi-user.target.wants/vmware-tools.service"),
            target: "/etc/systemd/system/vmware-tools.service".into(),
        }]
    );
    assert!(fs
        .exists(&p("/etc/systemd/system/vmware-tools.service"))
        .unwrap());
}

#[test]
fn a_linked_unit_loses_its_wants_links() {
    let fs = base(true);
    fs.add_file("/opt/xe/xe-daemon.service", "[Unit]\n")
        .unwrap();
    fs.add_symlink(
        "/etc/systemd/system/xe-daemon.service",
        "/opt/xe/xe-daemon.service",
    )
    .unwrap();
    fs.add_symlink(
        "/etc/systemd/system/multi-user.target.requires/xe-daemon.service",
        "/opt/xe/xe-daemon.service",
    )
    .unwrap();
    let made = fix(&ForeignTools, &fs, &[]);
    assert_eq!(made.len(), 1, "{made:#?}");
    assert!(matches!(&made[0], Change::RemoveSymlink { .. }));
}

#[test]
fn rhel6_sysv_vmware_tools_start_links_removed_once() {
    let fs = MemFs::new();
    fs.add_file("/etc/fstab", "/dev/sda1 / ext4 defaults 1 1\n")
        .unwrap();
    fs.add_file("/etc/rc.d/init.d/vmware-tools", "#!/bin/sh\n")
        .unwrap();
    fs.add_symlink("/etc/init.d", "rc.d/init.d").unwrap();
    for n in 0..=6 {
        fs.add_dir(&format!("/etc/rc.d/rc{n}.d")).unwrap();
        fs.add_symlink(&format!("/etc/rc{n}.d"), format!("rc.d/rc{n}.d"))
            .unwrap();
    }
    for link in [
        "/etc/rc.d/rc3.d/S19vmware-tools",
        "/etc/rc.d/rc5.d/S19vmware-tools",
        "/etc/rc.d/rc0.d/K08vmware-tools",
        "/etc/rc.d/rc3.d/S19vmware-tools-thinprint",
    ] {
        fs.add_symlink(link, "../init.d/vmware-tools").unwrap();
    }
    let made = fix(&ForeignTools, &fs, &[]);
    let removed: Vec<String> = made.iter().map(|c| c.path().to_string()).collect();
    assert_eq!(
        removed,
        vec!["/etc/rc3.d/S19vmware-tools", "/etc/rc5.d/S19vmware-tools"]
    );
    assert!(fs.exists(&p("/etc/rc.d/rc0.d/K08vmware-tools")).unwrap());
    assert!(fs
        .exists(&p("/etc/rc.d/rc3.d/S19vmware-tools-thinprint"))
        .unwrap());
}

#[test]
fn masked_already_changes_nothing() {
    let fs = debian_vmware();
    for unit in [
        "open-vm-tools.service",
        "vgauth.service",
        "run-vmblock\\x2dfuse.mount",
    ] {
        fs.add_symlink(&format!("/etc/systemd/system/{unit}"), "/dev/null")
            .unwrap();
    }
    assert_eq!(plan(&ForeignTools, &fs, &[]), Plan::Changes(Vec::new()));
}

#[test]
fn a_kvm_guest_is_skipped() {
    let fs = base(true);
    fs.add_file("/etc/modules", "# none\nvirtio_net\n").unwrap();
    fs.add_file("/etc/vmware-tools/tools.conf", "").unwrap();
    assert!(matches!(plan(&ForeignTools, &fs, &[]), Plan::Skip(_)));
}

#[test]
fn hostile_entries_are_left_alone() {
    let fs = debian_xen();
    fs.add_dir("/etc/systemd/system/vgauth.service").unwrap();
    fs.add_file("/lib/systemd/system/vgauth.service", "[Unit]\n")
        .unwrap();
    fs.remove(&p("/etc/modules")).unwrap();
    fs.add_special("/etc/modules").unwrap();
    fs.add_symlink("/etc/modules-load.d/loop.conf", "loop.conf")
        .unwrap();
    fs.add_symlink("/etc/rc2.d", "rc2.d").unwrap();
    fs.add_file("/etc/init.d/xe-linux-distribution", "")
        .unwrap();
    fs.add_symlink(
        "/etc/systemd/system/multi-user.target.wants/bad",
        b"\xff".as_slice(),
    )
    .unwrap();
    let made = fix(&ForeignTools, &fs, &[]);
    assert_eq!(made, vec![mask("xe-linux-distribution.service")]);
}

#[test]
fn start_link_names() {
    assert!(is_start_link(b"S01open-vm-tools", "open-vm-tools"));
    assert!(!is_start_link(b"S1open-vm-tools", "open-vm-tools"));
    assert!(!is_start_link(b"K01open-vm-tools", "open-vm-tools"));
    assert!(!is_start_link(b"S01open-vm-tools.sh", "open-vm-tools"));
    assert!(!is_start_link(b"S", "open-vm-tools"));
}

/// Debian 12 that ran on KVM: the QEMU guest agent and the SPICE agent installed.
fn debian_kvm() -> MemFs {
    let fs = base(true);
    for unit in ["qemu-guest-agent.service", "spice-vdagentd.service"] {
        fs.add_file(&format!("/usr/lib/systemd/system/{unit}"), "[Unit]\n")
            .unwrap();
    }
    fs
}

#[test]
fn physical_masks_the_kvm_agents() {
    let fs = debian_kvm();
    let made = fix_for(&ForeignTools, &fs, &[], Target::Physical);
    let masks: Vec<(String, String)> = made
        .iter()
        .map(|c| match c {
            Change::CreateSymlink { path, target } => (path.to_string(), target.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        masks,
        [
            (
                "/etc/systemd/system/qemu-guest-agent.service".to_string(),
                "/dev/null".to_string()
            ),
            (
                "/etc/systemd/system/spice-vdagentd.service".to_string(),
                "/dev/null".to_string()
            ),
        ]
    );
}

#[test]
fn kvm_keeps_the_kvm_agents() {
    let fs = debian_kvm();
    assert!(matches!(plan(&ForeignTools, &fs, &[]), Plan::Skip(_)));
    // Physical still masks VMware's tools as KVM does, and says what it looked for.
    let fs = debian_vmware();
    let kvm = fix(&ForeignTools, &debian_vmware(), &[]);
    let physical = fix_for(&ForeignTools, &fs, &[], Target::Physical);
    assert_eq!(kvm, physical);
    let fs = base(false);
    match plan_for(&ForeignTools, &fs, &[], Target::Physical) {
        Plan::Skip(why) => assert!(why.contains("QEMU"), "{why}"),
        other => panic!("{other:?}"),
    }
}
