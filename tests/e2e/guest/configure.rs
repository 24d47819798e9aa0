//! Configures a copied debootstrap tree as a VMware or Xen guest, by plain file edits.
//!
//! What each flavour names (root device, console, NIC) is what issue 3's fixups must find
//! and change; the boot marker unit is what the boot check waits for. The one step that
//! runs guest code is the VMware initramfs rebuild (see [`rebuild_initramfs`]).

use super::boot::MARKER;
use super::build::{Flavour, GuestSpec};
use crate::util::{run_ok, stdout};
use std::fs;
use std::path::Path;
use std::process::Command;

/// SATA/IDE/SCSI drivers a host-only initramfs built on VMware carries, and nothing of
/// virtio: `ahci` for SATA, `ata_piix` for QEMU's IDE, `mptspi`/`vmw_pvscsi` for
/// VMware's SCSI controllers.
const VMWARE_MODULES: &[&str] = &[
    "ahci",
    "ata_piix",
    "ata_generic",
    "sd_mod",
    "mptspi",
    "vmw_pvscsi",
    "ext4",
    "crc32c_generic",
];

/// Writes the flavour's files into `root` and returns the kernel version.
pub fn configure(root: &Path, spec: &GuestSpec) -> String {
    let kernel = kernel_version(root);
    let (name, console) = match spec.flavour {
        Flavour::Vmware => ("vmware-guest", "console=tty0 console=ttyS0,115200"),
        Flavour::Xen => ("xen-guest", "console=hvc0"),
    };
    write(root, "etc/hostname", &format!("{name}\n"));
    write(
        root,
        "etc/hosts",
        &format!("127.0.0.1 localhost\n127.0.1.1 {name}\n"),
    );
    // A fixed machine id: an empty one makes systemd treat the boot as its first and may
    // prompt on the console (systemd-firstboot).
    write(root, "etc/machine-id", "5e7c0f3a9d2b4c81a6e4f0b1c2d3e4f5\n");
    let dev = spec.root_device();
    write(
        root,
        "etc/fstab",
        &format!("{dev} / ext4 errors=remount-ro 0 1\n"),
    );
    let cmdline = format!("root={dev} ro {console}");
    write(
        root,
        "etc/default/grub",
        &format!("GRUB_DEFAULT=0\nGRUB_TIMEOUT=1\nGRUB_CMDLINE_LINUX=\"{console}\"\n"),
    );
    write(root, "boot/grub/grub.cfg", &grub_cfg(&kernel, &cmdline));
    empty_root_password(root);
    marker_unit(root);
    match spec.flavour {
        Flavour::Vmware => vmware(root, spec),
        Flavour::Xen => xen(root, spec),
    }
    kernel
}

fn vmware(root: &Path, spec: &GuestSpec) {
    let ifname = spec.ifname();
    write(
        root,
        "etc/network/interfaces",
        &format!(
            "auto lo\niface lo inet loopback\n\nauto {ifname}\niface {ifname} inet dhcp\n    \
             hwaddress ether {}\n",
            spec.mac
        ),
    );
    // An absolute guest symlink: look at the link, never follow it on the host.
    assert!(
        root.join("etc/systemd/system/multi-user.target.wants/open-vm-tools.service")
            .symlink_metadata()
            .is_ok(),
        "open-vm-tools is not enabled in the base tree"
    );
    let conf = root.join("etc/initramfs-tools/initramfs.conf");
    let text = fs::read_to_string(&conf).expect("read initramfs.conf");
    let text = text.replace("MODULES=most", "MODULES=list");
    assert!(text.contains("\nMODULES=list"), "initramfs.conf: {text}");
    fs::write(&conf, text).expect("write initramfs.conf");
    write(
        root,
        "etc/initramfs-tools/modules",
        &format!("{}\n", VMWARE_MODULES.join("\n")),
    );
    let listing = rebuild_initramfs(root);
    assert!(
        !listing.contains("virtio"),
        "virtio in initramfs:\n{listing}"
    );
    assert!(
        listing.contains("/ahci.ko"),
        "no ahci in initramfs:\n{listing}"
    );
}

fn xen(root: &Path, spec: &GuestSpec) {
    let ifname = spec.ifname();
    write(
        root,
        "etc/network/interfaces",
        &format!("auto lo\niface lo inet loopback\n\nauto {ifname}\niface {ifname} inet dhcp\n"),
    );
    write(
        root,
        "etc/udev/rules.d/70-persistent-net.rules",
        &format!(
            "SUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"?*\", ATTR{{address}}==\"{}\", \
             NAME=\"{ifname}\"\n",
            spec.mac
        ),
    );
    // A Xen PV guest logs in on hvc0 and runs no VMware tools.
    let getty = root.join("etc/systemd/system/getty.target.wants");
    fs::create_dir_all(&getty).expect("create getty.target.wants");
    std::os::unix::fs::symlink(
        "/lib/systemd/system/serial-getty@.service",
        getty.join("serial-getty@hvc0.service"),
    )
    .expect("enable serial-getty@hvc0");
    let _ = fs::remove_file(
        root.join("etc/systemd/system/multi-user.target.wants/open-vm-tools.service"),
    );
}

/// Rebuilds every initramfs in a chroot (initramfs-tools reads the guest's config and
/// modules) and returns `lsinitramfs`' listing. /proc, /sys and /dev are mounted only in a
/// private mount namespace that dies with the command.
fn rebuild_initramfs(root: &Path) -> String {
    let script = r#"set -e
mount -t proc proc "$1/proc"
mount -t sysfs sys "$1/sys"
mount --rbind /dev "$1/dev"
chroot "$1" update-initramfs -u -k all >&2
chroot "$1" sh -c 'lsinitramfs /boot/initrd.img-*'
"#;
    let out = run_ok(
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
            .arg(root),
    );
    stdout(&out)
}

fn grub_cfg(kernel: &str, cmdline: &str) -> String {
    format!(
        "serial --unit=0 --speed=115200\nterminal_input serial console\n\
         terminal_output serial console\nset default=0\nset timeout=1\n\n\
         menuentry 'Debian GNU/Linux, with Linux {kernel}' {{\n\
         \tlinux /boot/vmlinuz-{kernel} {cmdline}\n\
         \tinitrd /boot/initrd.img-{kernel}\n}}\n"
    )
}

/// A oneshot unit that, once multi-user is reached and the network is up, prints one line
/// on ttyS0 (root mount options, kernel, addresses) and powers the guest off.
fn marker_unit(root: &Path) {
    let script = format!(
        "#!/bin/sh\n\
         opts=$(findmnt -n -o OPTIONS /)\n\
         links=$(ip -o link | awk -F': ' '{{printf \"%s,\", $2}}')\n\
         addrs=$(ip -o addr | awk '{{printf \"%s:%s:%s,\", $2, $3, $4}}')\n\
         echo \"{MARKER} root=$opts kernel=$(uname -r) links=$links addrs=$addrs end\" \
         >/dev/ttyS0\n"
    );
    write(root, "usr/local/sbin/ferry-boot-marker", &script);
    set_mode(root, "usr/local/sbin/ferry-boot-marker", 0o755);
    write(
        root,
        "etc/systemd/system/ferry-boot-marker.service",
        "[Unit]\nDescription=ferry boot marker\nAfter=multi-user.target network-online.target\n\
         Wants=network-online.target\n\n[Service]\nType=oneshot\n\
         ExecStart=/usr/local/sbin/ferry-boot-marker\n\
         ExecStartPost=/bin/systemctl --no-block poweroff\n\n\
         [Install]\nWantedBy=multi-user.target\n",
    );
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    fs::create_dir_all(&wants).expect("create multi-user.target.wants");
    std::os::unix::fs::symlink(
        "/etc/systemd/system/ferry-boot-marker.service",
        wants.join("ferry-boot-marker.service"),
    )
    .expect("enable marker unit");
}

fn empty_root_password(root: &Path) {
    let path = root.join("etc/shadow");
    let text = fs::read_to_string(&path).expect("read shadow");
    let text: Vec<String> = text
        .lines()
        .map(|l| {
            let mut fields: Vec<&str> = l.split(':').collect();
            if fields.first() == Some(&"root") && fields.len() > 1 {
                fields[1] = "";
            }
            fields.join(":")
        })
        .collect();
    fs::write(&path, text.join("\n") + "\n").expect("write shadow");
}

/// The single kernel debootstrap installed (`boot/vmlinuz-VERSION`).
fn kernel_version(root: &Path) -> String {
    let mut found: Vec<String> = fs::read_dir(root.join("boot"))
        .expect("read boot")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("vmlinuz-").map(str::to_owned)
        })
        .collect();
    assert_eq!(found.len(), 1, "expected one kernel in /boot: {found:?}");
    found.remove(0)
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().expect("parent")).expect("create dir");
    // Replace symlinks (e.g. a machine-id link) instead of writing through them.
    let _ = fs::remove_file(&path);
    fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn set_mode(root: &Path, rel: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(root.join(rel), fs::Permissions::from_mode(mode)).expect("chmod");
}
