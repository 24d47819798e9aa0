//! Inspection of hand-built guests on `MemFs`: Debian on VMware, a Xen PV guest, RHEL with
//! dracut and BootLoaderSpec, netplan and networkd samples, and hostile files.

use super::*;
use crate::guestfs::memfs::MemFs;
use crate::guestfs::{GuestFsError, GuestPath};

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
            ("/usr/lib/systemd/system/open-vm-tools.service", "[Unit]\n"),
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

#[test]
fn debian_ifupdown_static_with_mac() {
    let g = inspect(&debian_vmware());
    assert_eq!(
        g.network,
        vec![NetConfig {
            style: NetStyle::Ifupdown,
            file: "/etc/network/interfaces".into(),
            interface: Some("ens192".into()),
            mac: Some("00:50:56:ab:cd:ef".into()),
            method: Some("static".into()),
        }]
    );
}

#[test]
fn debian_open_vm_tools_enabled_not_vmware_tools() {
    let g = inspect(&debian_vmware());
    assert_eq!(
        g.guest_tools,
        vec![GuestTool {
            name: "open-vm-tools".into(),
            evidence: vec![
                "/usr/bin/vmtoolsd".into(),
                "/lib/systemd/system/open-vm-tools.service".into(),
                "/etc/systemd/system/multi-user.target.wants/open-vm-tools.service".into(),
            ],
        }]
    );
}

/// A Xen PV guest: /dev/xvda1, console hvc0, PV drivers forced into the initramfs.
fn xen_guest() -> MemFs {
    let fs = debian_vmware();
    add(
        &fs,
        &[
            ("/etc/fstab", "/dev/xvda1 / ext4 defaults 0 1\n/dev/xvda2 none swap sw 0 0\n"),
            (
                "/boot/grub/grub.cfg",
                "menuentry 'Debian' {\n  linux /boot/vmlinuz-6.1.0-13-amd64 root=/dev/xvda1 ro console=hvc0 earlyprintk=xen\n}\n",
            ),
            (
                "/etc/default/grub",
                "GRUB_CMDLINE_LINUX='console=hvc0 console=tty0'\n",
            ),
            ("/etc/modules", "# modules\nxen_blkfront\nxen-netfront # nic\n"),
            ("/etc/modules-load.d/virtio.conf", "virtio_blk\n# xen_blkfront\n"),
            ("/etc/initramfs-tools/modules", "xen-blkfront\n"),
            ("/etc/network/interfaces", "auto lo\niface lo inet loopback\n"),
            ("/etc/network/interfaces.d/eth0", "allow-hotplug eth0\niface eth0 inet dhcp\n"),
            ("/etc/network/interfaces.d/eth0.ferry-orig", "iface eth0 inet static\n"),
            ("/usr/sbin/xe-daemon", "ELF"),
            ("/etc/udev/rules.d/70-persistent-net.rules", "SUBSYSTEM==\"net\"\n"),
        ],
    );
    for path in [
        "/usr/bin/vmtoolsd",
        "/etc/systemd/system/multi-user.target.wants/open-vm-tools.service",
        "/usr/lib/systemd/system/open-vm-tools.service",
    ] {
        fs.remove(&crate::guestfs::GuestPath::new(path).unwrap())
            .unwrap();
    }
    fs.add_symlink(
        "/etc/systemd/system/getty.target.wants/serial-getty@hvc0.service",
        "/lib/systemd/system/serial-getty@.service",
    )
    .unwrap();
    fs
}

#[test]
fn xen_guest_devices_consoles_and_modules() {
    let g = inspect(&xen_guest());
    assert_eq!(g.fstab[0].spec, "/dev/xvda1");
    assert_eq!(g.root_device.as_deref(), Some("/dev/xvda1"));
    assert_eq!(g.consoles, vec!["hvc0", "tty0", "tty1"]);
    assert!(g.persistent_net_rules);
    let names: Vec<&str> = g.guest_tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["vmware-tools", "xe-guest-utilities", "xen-kernel-modules"]
    );
    // /etc/vmware-tools alone, without open-vm-tools, is VMware's own installer.
    assert_eq!(g.guest_tools[0].evidence, vec!["/etc/vmware-tools"]);
    assert_eq!(g.guest_tools[1].evidence, vec!["/usr/sbin/xe-daemon"]);
    assert_eq!(
        g.guest_tools[2].evidence,
        vec!["/etc/modules", "/etc/initramfs-tools/modules"]
    );
    assert_eq!(g.network.len(), 1);
    assert_eq!(g.network[0].file, "/etc/network/interfaces.d/eth0");
    assert_eq!(g.network[0].interface.as_deref(), Some("eth0"));
    assert_eq!(g.network[0].method.as_deref(), Some("dhcp"));
    assert_eq!(g.network[0].mac, None);
}

/// RHEL 9: dracut, BootLoaderSpec entries under /boot/grub2, UEFI, ifcfg and NM keyfiles.
fn rhel_guest() -> MemFs {
    let fs = MemFs::new();
    add(
        &fs,
        &[
            (
                "/etc/os-release",
                "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.3 (Plow)\"\nID=\"rhel\"\n\
                 ID_LIKE=\"fedora\"\nVERSION_ID=\"9.3\"\n\
                 PRETTY_NAME=\"Red Hat Enterprise Linux 9.3 (Plow)\"\n",
            ),
            (
                "/etc/fstab",
                "/dev/mapper/rhel-root / xfs defaults 0 0\n\
                 UUID=7B77-95E7 /boot/efi vfat umask=0077,shortname=winnt 0 2\n",
            ),
            ("/boot/grub2/grub.cfg", "set default=0\nblscfg\n"),
            ("/boot/grub2/grubenv", "# GRUB Environment Block\nkernelopts=root=/dev/mapper/rhel-root ro resume=/dev/mapper/rhel-swap\n######\n"),
            (
                "/boot/loader/entries/abc-5.14.0-362.8.1.el9_3.x86_64.conf",
                "title RHEL\nversion 5.14.0-362.8.1.el9_3.x86_64\nlinux /vmlinuz-5.14.0-362.8.1.el9_3.x86_64\n\
                 options $kernelopts console=ttyS0,115200\n",
            ),
            (
                "/boot/loader/entries/abc-0-rescue.conf",
                "title rescue\noptions root=/dev/sda3 ro\n",
            ),
            ("/boot/vmlinuz-5.14.0-362.8.1.el9_3.x86_64", "kernel"),
            ("/boot/initramfs-5.14.0-362.8.1.el9_3.x86_64.img", "cpio"),
            ("/boot/vmlinuz-0-rescue-abc", "kernel"),
            ("/boot/initramfs-0-rescue-abc.img", "cpio"),
            ("/lib/modules/5.14.0-362.8.1.el9_3.x86_64/modules.dep", ""),
            ("/usr/bin/dracut", "#!/bin/bash"),
            ("/etc/dracut.conf", "# dracut\n"),
            ("/etc/default/grub", "GRUB_CMDLINE_LINUX=\"crashkernel=1G-4G:192M rd.lvm.lv=rhel/root\"\n"),
            (
                "/etc/sysconfig/network-scripts/ifcfg-eth0",
                "TYPE=Ethernet\nBOOTPROTO=none\nDEVICE=eth0\nONBOOT=yes\n\
                 HWADDR=\"52:54:00:12:34:56\"\nIPADDR=192.0.2.20\nPREFIX=24\n",
            ),
            ("/etc/sysconfig/network-scripts/ifcfg-eth0.ferry-orig", "DEVICE=eth0\n"),
            ("/etc/sysconfig/network-scripts/ifcfg-lo", "DEVICE=lo\n"),
            ("/etc/sysconfig/network-scripts/ifcfg-eth1", "BOOTPROTO=dhcp\nMACADDR=00-16-3E-00-00-01\n"),
            (
                "/etc/NetworkManager/system-connections/ens3.nmconnection",
                "[connection]\nid=ens3\nuuid=5fb06bd0-0bb0-7ffb-45f1-d6edd65f3e03\ntype=ethernet\n\
                 interface-name=ens3\n\n[ethernet]\nmac-address=52:54:00:AB:CD:EF\n\n\
                 [ipv4]\nmethod=auto\n\n[ipv6]\nmethod=manual\n",
            ),
            (
                "/etc/NetworkManager/system-connections/lo.nmconnection",
                "[connection]\nid=lo\ntype=loopback\ninterface-name=lo\n",
            ),
            ("/etc/NetworkManager/system-connections/old.nmconnection~", "[connection]\n"),
        ],
    );
    fs.add_dir("/boot/efi").unwrap();
    fs
}

#[test]
fn rhel_dracut_kernels_and_bls() {
    let g = inspect(&rhel_guest());
    assert_eq!(g.os.id, "rhel");
    assert_eq!(g.os.id_like, vec!["fedora"]);
    assert_eq!(g.kernels.len(), 2);
    let k = &g.kernels[0];
    assert_eq!(k.version, "5.14.0-362.8.1.el9_3.x86_64");
    assert_eq!(
        k.initramfs.as_deref(),
        Some("/boot/initramfs-5.14.0-362.8.1.el9_3.x86_64.img")
    );
    assert_eq!(k.initramfs_kind, Some(InitramfsKind::Dracut));
    assert!(k.modules_dir);
    assert_eq!(g.kernels[1].version, "0-rescue-abc");
    assert!(!g.kernels[1].modules_dir);
    let boot = g.bootloader.expect("grub2");
    assert_eq!(boot.config, "/boot/grub2/grub.cfg");
    assert_eq!(boot.firmware, Firmware::Uefi);
    assert_eq!(g.root_device.as_deref(), Some("/dev/mapper/rhel-root"));
    assert_eq!(g.consoles, vec!["ttyS0,115200"]);
}

#[test]
fn rhel_ifcfg_and_networkmanager() {
    let g = inspect(&rhel_guest());
    let summary: Vec<_> = g
        .network
        .iter()
        .map(|n| {
            (
                n.style,
                n.file.as_str(),
                n.interface.as_deref(),
                n.mac.as_deref(),
                n.method.as_deref(),
            )
        })
        .collect();
    let nm = "/etc/NetworkManager/system-connections/ens3.nmconnection";
    assert_eq!(
        summary,
        vec![
            (
                NetStyle::NetworkManager,
                nm,
                Some("ens3"),
                Some("52:54:00:ab:cd:ef"),
                Some("dhcp")
            ),
            (
                NetStyle::Ifcfg,
                "/etc/sysconfig/network-scripts/ifcfg-eth0",
                Some("eth0"),
                Some("52:54:00:12:34:56"),
                Some("static")
            ),
            (
                NetStyle::Ifcfg,
                "/etc/sysconfig/network-scripts/ifcfg-eth1",
                Some("eth1"),
                Some("00:16:3e:00:00:01"),
                Some("dhcp")
            ),
        ]
    );
    assert!(g.guest_tools.is_empty());
}

#[test]
fn uefi_from_efi_directory_without_fstab_entry() {
    let fs = rhel_guest();
    add(
        &fs,
        &[
            ("/etc/fstab", "/dev/sda2 / ext4 defaults 0 1\n"),
            ("/boot/efi/EFI/debian/grubx64.efi", "PE"),
        ],
    );
    let boot = inspect(&fs).bootloader.expect("grub2");
    assert_eq!(boot.firmware, Firmware::Uefi);
    let fs = rhel_guest();
    add(&fs, &[("/etc/fstab", "/dev/sda2 / ext4 defaults 0 1\n")]);
    fs.add_dir("/boot/efi/EFI").unwrap();
    let boot = inspect(&fs).bootloader.expect("grub2");
    assert_eq!(boot.firmware, Firmware::Bios);
}

const NETPLAN: &str = "\
# This file is generated from information provided by the datasource.
network:
  version: 2
  renderer: networkd
  ethernets:
    ens192:
      dhcp4: true
      nameservers:
        addresses: [192.0.2.53]
    lan:
      match:
        macaddress: \"00:50:56:AA:BB:CC\"   # the NIC
      set-name: ens224
      addresses:
        - 192.0.2.30/24
      routes:
        - to: default
          via: 192.0.2.1
    byglob:
      match:
        name: en*
      dhcp4: no
  bridges:
    br0:
      interfaces: [ens192]
";

#[test]
fn netplan_ethernets() {
    let fs = MemFs::new();
    add(
        &fs,
        &[
            ("/etc/os-release", "ID=ubuntu\nVERSION_ID=\"22.04\"\n"),
            ("/etc/netplan/50-cloud-init.yaml", NETPLAN),
            ("/etc/netplan/README", "not yaml"),
        ],
    );
    let g = inspect(&fs);
    let summary: Vec<_> = g
        .network
        .iter()
        .map(|n| {
            (
                n.interface.as_deref(),
                n.mac.as_deref(),
                n.method.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (Some("ens192"), None, Some("dhcp")),
            (Some("ens224"), Some("00:50:56:aa:bb:cc"), Some("static")),
            (Some("byglob"), None, None),
        ]
    );
    assert!(g.network.iter().all(|n| n.style == NetStyle::Netplan));
    assert_eq!(g.network[0].file, "/etc/netplan/50-cloud-init.yaml");
}

#[test]
fn systemd_networkd_files() {
    let fs = MemFs::new();
    add(
        &fs,
        &[
            ("/etc/os-release", "ID=arch\n"),
            (
                "/etc/systemd/network/10-wired.network",
                "[Match]\nMACAddress=00:50:56:01:02:03 00:50:56:01:02:04\n\n[Network]\nDHCP=ipv4\n",
            ),
            (
                "/etc/systemd/network/20-static.network",
                "; comment\n[Match]\nName=eth1\n\n[Network]\nDHCP=no\n\n[Address]\nAddress=192.0.2.40/24\n",
            ),
            ("/etc/systemd/network/30-any.network", "[Match]\nName=en*\n"),
            ("/etc/systemd/network/99-default.link", "[Link]\nNamePolicy=kernel\n"),
        ],
    );
    let g = inspect(&fs);
    let summary: Vec<_> = g
        .network
        .iter()
        .map(|n| {
            (
                n.interface.as_deref(),
                n.mac.as_deref(),
                n.method.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (None, Some("00:50:56:01:02:03"), Some("dhcp")),
            (Some("eth1"), None, Some("static")),
            (Some("en*"), None, None),
        ]
    );
    assert!(g
        .network
        .iter()
        .all(|n| n.style == NetStyle::SystemdNetworkd));
}

#[test]
fn hostile_files_are_skipped_not_fatal() {
    let fs = MemFs::new();
    let mut garbage: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    garbage.extend_from_slice(b"\nID=evil\xff\xfe\n");
    fs.add_file("/etc/os-release", &garbage).unwrap();
    fs.add_file("/etc/fstab", vec![b'x'; 2 << 20]).unwrap();
    fs.add_dir("/boot/grub/grub.cfg").unwrap();
    fs.add_file("/boot/grub2/grub.cfg", "linux\nlinux /vmlinuz root=\n")
        .unwrap();
    fs.add_symlink("/etc/network/interfaces", "/etc/network/loop")
        .unwrap();
    fs.add_symlink("/etc/network/loop", "/etc/network/interfaces")
        .unwrap();
    fs.add_special("/etc/default/grub").unwrap();
    fs.add_symlink("/boot/vmlinuz-1", "../../../../../boot/vmlinuz-1")
        .unwrap();
    fs.add_file("/boot/vmlinuz-", "").unwrap();
    for i in 0..300 {
        let yaml = format!("network:\n  ethernets:\n    eth{i}:\n      dhcp4: true\n");
        fs.add_file(&format!("/etc/netplan/{i:03}.yaml"), yaml)
            .unwrap();
    }
    fs.add_file("/etc/modules", b"\xff\xfexen_blkfront\xff\n")
        .unwrap();
    let g = inspect(&fs);
    assert_eq!(g.os.id, "evil\u{fffd}\u{fffd}");
    assert!(g.fstab.is_empty());
    assert_eq!(
        g.bootloader.as_ref().map(|b| b.config.as_str()),
        Some("/boot/grub2/grub.cfg")
    );
    assert_eq!(g.root_device, None);
    assert!(g.kernels.is_empty(), "{:?}", g.kernels);
    assert_eq!(g.network.len(), read::MAX_DIR_ENTRIES);
    assert_eq!(g.guest_tools[0].name, "xen-kernel-modules");
    let warnings = g.warnings.join("\n");
    assert!(warnings.contains("/etc/fstab"), "{warnings}");
    assert!(warnings.contains("too many levels"), "{warnings}");
    assert!(
        warnings.contains("/etc/netplan: only the first 256"),
        "{warnings}"
    );
}

/// A backend whose disk fails under one file.
struct FailingFs {
    inner: MemFs,
    bad: &'static str,
}

impl crate::guestfs::GuestFs for FailingFs {
    fn raw_metadata(&self, path: &GuestPath) -> crate::guestfs::Result<crate::guestfs::Metadata> {
        self.inner.raw_metadata(path)
    }
    fn raw_read_link(&self, path: &GuestPath) -> crate::guestfs::Result<Vec<u8>> {
        self.inner.raw_read_link(path)
    }
    fn raw_read(&self, path: &GuestPath, limit: u64) -> crate::guestfs::Result<Vec<u8>> {
        if path.to_string() == self.bad {
            return Err(GuestFsError::Io {
                path: path.to_string(),
                source: std::io::Error::other("medium error"),
            });
        }
        self.inner.raw_read(path, limit)
    }
    fn raw_read_dir(
        &self,
        path: &GuestPath,
    ) -> crate::guestfs::Result<Vec<crate::guestfs::DirEntry>> {
        self.inner.raw_read_dir(path)
    }
    fn raw_write(&self, path: &GuestPath, data: &[u8]) -> crate::guestfs::Result<()> {
        self.inner.raw_write(path, data)
    }
    fn raw_create_file(&self, path: &GuestPath, mode: u32) -> crate::guestfs::Result<()> {
        self.inner.raw_create_file(path, mode)
    }
    fn raw_create_dir(&self, path: &GuestPath, mode: u32) -> crate::guestfs::Result<()> {
        self.inner.raw_create_dir(path, mode)
    }
    fn raw_rename(&self, from: &GuestPath, to: &GuestPath) -> crate::guestfs::Result<()> {
        self.inner.raw_rename(from, to)
    }
    fn raw_remove(&self, path: &GuestPath) -> crate::guestfs::Result<()> {
        self.inner.raw_remove(path)
    }
    fn raw_read_at(
        &self,
        path: &GuestPath,
        offset: u64,
        buf: &mut [u8],
    ) -> crate::guestfs::Result<usize> {
        self.inner.raw_read_at(path, offset, buf)
    }
    fn raw_write_at(
        &self,
        path: &GuestPath,
        offset: u64,
        data: &[u8],
    ) -> crate::guestfs::Result<()> {
        self.inner.raw_write_at(path, offset, data)
    }
    fn raw_symlink(&self, path: &GuestPath, target: &[u8]) -> crate::guestfs::Result<()> {
        self.inner.raw_symlink(path, target)
    }
}

#[test]
fn io_errors_fail_inspection() {
    let fs = FailingFs {
        inner: debian_vmware(),
        bad: "/usr/lib/os-release",
    };
    let err = inspect_filesystem(&fs).unwrap_err();
    assert!(matches!(err, InspectError::Guest(GuestFsError::Io { .. })));
    assert_eq!(err.to_string(), "cannot inspect the guest filesystem");
}

#[test]
fn macs_normalize() {
    use read::normalize_mac;
    assert_eq!(
        normalize_mac("00:50:56:AB:CD:EF").as_deref(),
        Some("00:50:56:ab:cd:ef")
    );
    assert_eq!(
        normalize_mac("0-50-56-ab-cd-e").as_deref(),
        Some("00:50:56:ab:cd:0e")
    );
    assert_eq!(
        normalize_mac("0;80;86;171;205;239;").as_deref(),
        Some("00:50:56:ab:cd:ef")
    );
    assert_eq!(normalize_mac("00:50:56:ab:cd"), None);
    assert_eq!(normalize_mac("00:50:56:ab:cd:+f"), None);
    assert_eq!(normalize_mac("zz:50:56:ab:cd:ef"), None);
    assert_eq!(normalize_mac(""), None);
}

#[test]
fn guest_os_is_serializable() {
    fn assert_serialize<T: serde::Serialize>(_: &T) {}
    assert_serialize(&inspect(&rhel_guest()));
}

/// The Debian VMware guest as a real ext4 filesystem (`mke2fs -d`), read through `Ext4Fs`.
#[test]
fn debian_guest_on_ext4() {
    use std::os::unix::fs::symlink;
    use std::process::Command;
    use std::sync::Arc;

    use crate::blockdev::FileRange;
    use crate::guestfs::ext4::{Access, Ext4Fs};

    if Command::new("mke2fs").arg("-V").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "mke2fs missing under CI");
        eprintln!("skipping: mke2fs not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let mk = |p: &str, data: &str| {
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    };
    mk("usr/lib/os-release", DEBIAN_OS_RELEASE);
    mk("etc/fstab", "/dev/sda1 / ext4 errors=remount-ro 0 1\n");
    mk("boot/grub/grub.cfg", DEBIAN_GRUB_CFG);
    mk("boot/vmlinuz-6.1.0-13-amd64", "kernel");
    mk("boot/initrd.img-6.1.0-13-amd64", "initrd");
    mk("usr/lib/modules/6.1.0-13-amd64/modules.dep", "");
    mk("usr/lib/systemd/system/open-vm-tools.service", "[Unit]\n");
    mk("usr/sbin/update-initramfs", "#!/bin/sh");
    mk(
        "etc/network/interfaces",
        "iface ens192 inet dhcp\n  hwaddress 00:50:56:AB:CD:EF\n",
    );
    std::fs::create_dir_all(root.join("etc/systemd/system/multi-user.target.wants")).unwrap();
    symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
    symlink("usr/lib", root.join("lib")).unwrap();
    symlink(
        "/lib/systemd/system/open-vm-tools.service",
        root.join("etc/systemd/system/multi-user.target.wants/open-vm-tools.service"),
    )
    .unwrap();
    let image = dir.path().join("fs.img");
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .arg(&root)
        .arg(&image)
        .arg("8M")
        .output()
        .unwrap();
    assert!(out.status.success(), "mke2fs: {out:?}");
    let file = std::fs::File::open(&image).unwrap();
    let len = file.metadata().unwrap().len();
    let range = FileRange::new(file, 0, len, false).unwrap();
    let fs = Ext4Fs::open(Arc::new(range), Access::ReadOnly).unwrap();

    let g = inspect_filesystem(&fs).unwrap().expect("an OS root");
    assert_eq!(g.os.id, "debian");
    assert_eq!(g.root_device.as_deref(), Some("/dev/sda1"));
    assert_eq!(g.kernels.len(), 1);
    assert!(g.kernels[0].modules_dir);
    assert_eq!(
        g.kernels[0].initramfs_kind,
        Some(InitramfsKind::InitramfsTools)
    );
    assert_eq!(g.network[0].mac.as_deref(), Some("00:50:56:ab:cd:ef"));
    assert_eq!(g.guest_tools[0].name, "open-vm-tools");
    assert_eq!(g.guest_tools[0].evidence.len(), 2);
    assert!(g.warnings.is_empty(), "{:?}", g.warnings);
}
