//! Inspection of hand-built guests on `MemFs`: Debian on VMware, a Xen PV guest, RHEL with
//! dracut and BootLoaderSpec, netplan and networkd samples, and hostile files.

use super::*;
use crate::guestfs::memfs::MemFs;

const DEBIAN_OS_RELEASE: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"#;

const DEBIAN_GRUB_CFG: &str = "\
set default=\"0\"
menuentry 'Debian GNU/Linux' --class debian {
\tinsmod ext2
\tset root='hd0,msdos1'
\techo\t'Loading Linux 6.1.0-13-amd64 ...'
\tlinux\t/boot/vmlinuz-6.1.0-13-amd64 root=/dev/sda1 ro  quiet
\tinitrd\t/boot/initrd.img-6.1.0-13-amd64
}
menuentry 'Debian GNU/Linux, with Linux 6.1.0-9-amd64' {
\tlinux\t/boot/vmlinuz-6.1.0-9-amd64 root=/dev/sda1 ro single console=ttyS0,115200n8
}
";

fn add(fs: &MemFs, files: &[(&str, &str)]) {
    for (path, data) in files {
        fs.add_file(path, data).unwrap();
    }
}

fn inspect(fs: &MemFs) -> GuestOs {
    inspect_filesystem(fs).unwrap().expect("an OS root")
}

/// Debian 12 as installed on VMware: /dev/sda1, ens192 static, open-vm-tools enabled.
fn debian_vmware() -> MemFs {
    let fs = MemFs::new();
    add(
        &fs,
        &[
            ("/usr/lib/os-release", DEBIAN_OS_RELEASE),
            (
                "/etc/fstab",
                "# /etc/fstab: static file system information.\n\
                 #\n\
                 /dev/sda1 / ext4 errors=remount-ro 0 1\n\
                 \n\
                 /dev/sda5 none swap sw 0 0\n\
                 /dev/sr0 /media/cdrom0 udf,iso9660 user,noauto\n",
            ),
            ("/boot/grub/grub.cfg", DEBIAN_GRUB_CFG),
            (
                "/etc/default/grub",
                "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX=\"\"\n",
            ),
            ("/boot/vmlinuz-6.1.0-13-amd64", "kernel"),
            ("/boot/initrd.img-6.1.0-13-amd64", "initrd"),
            ("/boot/vmlinuz-6.1.0-9-amd64", "kernel"),
            ("/boot/System.map-6.1.0-13-amd64", "map"),
            ("/boot/config-6.1.0-13-amd64", "config"),
            ("/usr/lib/modules/6.1.0-13-amd64/modules.dep", ""),
            ("/usr/sbin/update-initramfs", "#!/bin/sh"),
            ("/etc/initramfs-tools/initramfs.conf", "MODULES=dep\n"),
            (
                "/etc/network/interfaces",
                "source /etc/network/interfaces.d/*\n\n\
                 auto lo\niface lo inet loopback\n\n\
                 allow-hotplug ens192\n\
                 iface ens192 inet static\n\
                 \taddress 192.0.2.10/24\n\
                 \tgateway 192.0.2.1\n\
                 \thwaddress ether 00:50:56:AB:CD:EF\n",
            ),
            ("/usr/bin/vmtoolsd", "ELF"),
            ("/lib/systemd/system/open-vm-tools.service", "[Unit]\n"),
            ("/etc/vmware-tools/tools.conf", "[logging]\n"),
        ],
    );
    fs.add_symlink("/etc/os-release", "../usr/lib/os-release")
        .unwrap();
    fs.add_symlink("/lib", "usr/lib").unwrap();
    fs.add_symlink("/vmlinuz", "boot/vmlinuz-6.1.0-13-amd64")
        .unwrap();
    fs.add_symlink(
        "/etc/systemd/system/multi-user.target.wants/open-vm-tools.service",
        "/lib/systemd/system/open-vm-tools.service",
    )
    .unwrap();
    fs.add_symlink(
        "/etc/systemd/system/getty.target.wants/getty@tty1.service",
        "/lib/systemd/system/getty@.service",
    )
    .unwrap();
    fs
}

#[test]
fn debian_os_release_through_relative_symlink() {
    let g = inspect(&debian_vmware());
    assert_eq!(g.os.id, "debian");
    assert_eq!(g.os.version_id.as_deref(), Some("12"));
    assert_eq!(
        g.os.pretty_name.as_deref(),
        Some("Debian GNU/Linux 12 (bookworm)")
    );
    assert!(g.os.id_like.is_empty());
    assert!(g.warnings.is_empty(), "{:?}", g.warnings);
}

#[test]
fn debian_kernels_newest_first() {
    let g = inspect(&debian_vmware());
    let expected = vec![
        Kernel {
            version: "6.1.0-13-amd64".into(),
            image: "/boot/vmlinuz-6.1.0-13-amd64".into(),
            initramfs: Some("/boot/initrd.img-6.1.0-13-amd64".into()),
            initramfs_kind: Some(InitramfsKind::InitramfsTools),
            modules_dir: true,
        },
        Kernel {
            version: "6.1.0-9-amd64".into(),
            image: "/boot/vmlinuz-6.1.0-9-amd64".into(),
            initramfs: None,
            initramfs_kind: None,
            modules_dir: false,
        },
    ];
    assert_eq!(g.kernels, expected);
}

#[test]
fn debian_fstab_bootloader_and_root() {
    let g = inspect(&debian_vmware());
    assert_eq!(g.fstab.len(), 3);
    assert_eq!(
        g.fstab[0],
        FstabEntry {
            spec: "/dev/sda1".into(),
            mountpoint: "/".into(),
            fstype: "ext4".into(),
            options: "errors=remount-ro".into(),
            dump: 0,
            pass: 1,
        }
    );
    assert_eq!(g.fstab[2].options, "user,noauto");
    assert_eq!((g.fstab[2].dump, g.fstab[2].pass), (0, 0));
    let boot = g.bootloader.expect("grub");
    assert_eq!(boot.kind, "grub2");
    assert_eq!(boot.config, "/boot/grub/grub.cfg");
    assert_eq!(boot.firmware, Firmware::Bios);
    assert_eq!(boot.default_grub.as_deref(), Some("/etc/default/grub"));
    assert_eq!(g.root_device.as_deref(), Some("/dev/sda1"));
    assert_eq!(g.consoles, vec!["ttyS0,115200n8", "tty1"]);
    assert!(!g.persistent_net_rules);
}

#[test]
fn not_an_os_root() {
    let fs = MemFs::new();
    add(
        &fs,
        &[
            ("/vmlinuz-6.1.0-13-amd64", "kernel"),
            ("/grub/grub.cfg", ""),
            ("/etc", "a file, not a directory"),
        ],
    );
    assert_eq!(inspect_filesystem(&fs).unwrap(), None);
    assert_eq!(inspect_filesystem(&MemFs::new()).unwrap(), None);
}

#[test]
fn fstab_alone_marks_a_root() {
    let fs = MemFs::new();
    add(&fs, &[("/etc/fstab", "/dev/vda1 /\n")]);
    let g = inspect(&fs);
    assert_eq!(g.os.id, "linux");
    assert_eq!(g.fstab[0].fstype, "auto");
    assert_eq!(g.fstab[0].options, "defaults");
    assert!(g.bootloader.is_none());
    assert!(g.kernels.is_empty());
    assert_eq!(g.root_device, None);
}

#[test]
fn os_release_quoting_and_comments() {
    let os = os_release::parse(
        "# comment\n  ID = 'rhel'\nID_LIKE=\"fedora  centos\"\n\
         PRETTY_NAME=\"Say \\\"hi\\\" \\$HOME\"\nVERSION_ID=9.3\ngarbage line\n=x\n",
    );
    assert_eq!(os.id, "rhel");
    assert_eq!(os.id_like, vec!["fedora", "centos"]);
    assert_eq!(os.pretty_name.as_deref(), Some("Say \"hi\" $HOME"));
    assert_eq!(os.version_id.as_deref(), Some("9.3"));
}

#[test]
fn fstab_escapes_and_garbage() {
    let entries = fstab::parse(
        "LABEL=data /srv/my\\040disk xfs defaults,nofail x y\nlonely\n\t# indented comment\n",
    );
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].spec, "LABEL=data");
    assert_eq!(entries[0].mountpoint, "/srv/my disk");
    assert_eq!((entries[0].dump, entries[0].pass), (0, 0));
}

#[test]
fn kernel_versions_sort_numerically() {
    use std::cmp::Ordering;
    assert_eq!(
        boot::version_cmp("6.1.0-13-amd64", "6.1.0-9-amd64"),
        Ordering::Greater
    );
    assert_eq!(boot::version_cmp("5.14.0", "5.14.0"), Ordering::Equal);
    assert_eq!(boot::version_cmp("5.14", "5.14.0"), Ordering::Less);
    assert_eq!(boot::version_cmp("007", "7"), Ordering::Equal);
}
