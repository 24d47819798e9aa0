//! Issue 3: an XFS root (RHEL-style guest) is inspected read-only; `ferry fixup --dry-run`
//! shows what it needs, and `ferry fixup` refuses it with a message saying why, leaving
//! the disk untouched.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::util::*;

/// xfsprogs 6.x refuses filesystems under 300 MiB; the image is sparse.
const XFS_MIB: u64 = 320;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, text).expect("write host file");
    path.display().to_string()
}

/// A RHEL-like root on XFS, made with `mkfs.xfs -p` (no mount).
fn rhel_xfs(dir: &Path) -> std::path::PathBuf {
    let os_release = write(
        dir,
        "os-release",
        "NAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\nPRETTY_NAME=\"Rocky Linux 9.3 (Blue Onyx)\"\n",
    );
    let fstab = write(dir, "fstab", "/dev/sda1 / xfs defaults 0 0\n");
    let ifcfg = write(
        dir,
        "ifcfg-eth0",
        "DEVICE=eth0\nBOOTPROTO=dhcp\nHWADDR=00:50:56:aa:bb:cc\nONBOOT=yes\n",
    );
    let grub = write(
        dir,
        "grub.cfg",
        "menuentry 'Rocky' {\n\tlinux /boot/vmlinuz-5.14.0 root=/dev/sda1 ro\n\tinitrd /boot/initramfs-5.14.0.img\n}\n",
    );
    let proto = format!(
        "ferry-e2e\n0 0\nd--755 0 0\n\
         etc d--755 0 0\nfstab ---644 0 0 {fstab}\nos-release ---644 0 0 {os_release}\n\
         sysconfig d--755 0 0\nnetwork-scripts d--755 0 0\nifcfg-eth0 ---644 0 0 {ifcfg}\n$\n$\n$\n\
         boot d--755 0 0\ngrub2 d--755 0 0\ngrub.cfg ---644 0 0 {grub}\n$\n$\n$\n"
    );
    let proto_path = write(dir, "proto", &proto);
    let image = dir.join("root.xfs");
    fs::File::create(&image)
        .expect("image")
        .set_len(XFS_MIB << 20)
        .expect("size");
    run_ok(
        Command::new("mkfs.xfs")
            .args(["-q", "-f", "-p", &proto_path])
            .arg(&image),
    );
    let disk = dir.join("rhel.raw");
    mbr_disk(&image, &disk);
    fs::remove_file(image).expect("remove fs image");
    disk
}

#[test]
fn xfs_root_is_inspected_and_refused_for_writing() {
    if !have_tool("mkfs.xfs") {
        return;
    }
    let dir = tmpdir();
    let disk = rhel_xfs(dir.path());
    let before = fs::read(&disk).expect("read disk");

    let out = run_ferry(["inspect", "--json", "-f", "raw", p(&disk)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let root = &report[0]["filesystems"][0];
    assert_eq!(root["filesystem"], "xfs", "{report:#}");
    assert_eq!(root["os"]["os"]["id"], "rocky", "{report:#}");
    assert_eq!(root["os"]["fstab"][0]["spec"], "/dev/sda1", "{report:#}");
    assert_eq!(
        root["os"]["network"][0]["mac"], "00:50:56:aa:bb:cc",
        "{report:#}"
    );

    let dry = run_ferry(["fixup", "--dry-run", "-f", "raw", p(&disk)]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let text = stdout(&dry);
    assert!(text.contains("+UUID="), "{text}");
    assert!(text.contains("70-ferry-net-names.rules"), "{text}");

    let out = run_ferry(["fixup", "-f", "raw", p(&disk)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the root filesystem (or /boot) is xfs"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        fs::read(&disk).expect("read disk") == before,
        "the disk was written"
    );
}
