//! Issue 3, `ferry inspect`: a VMware-style guest tree in an ext4 partition of an MBR disk,
//! converted to a VMDK, is recognised without booting it or mounting anything.

use std::path::Path;

use crate::util::*;

const MAC: &str = "00:50:56:ab:cd:ef";

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn vmware_tree(root: &Path) {
    write(
        root,
        "usr/lib/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
    );
    std::fs::create_dir_all(root.join("etc")).expect("etc");
    std::os::unix::fs::symlink("../usr/lib/os-release", root.join("etc/os-release"))
        .expect("symlink");
    write(root, "etc/fstab", "# <file system> <mount point> <type> <options> <dump> <pass>\n/dev/sda1 / ext4 errors=remount-ro 0 1\n/dev/sda5 none swap sw 0 0\n");
    write(root, "boot/vmlinuz-6.1.0-26-amd64", "kernel");
    write(root, "boot/initrd.img-6.1.0-26-amd64", "initrd");
    write(root, "lib/modules/6.1.0-26-amd64/modules.dep", "");
    write(root, "usr/sbin/update-initramfs", "#!/bin/sh\n");
    write(root, "boot/grub/grub.cfg", "menuentry 'Debian' {\n\tlinux /boot/vmlinuz-6.1.0-26-amd64 root=/dev/sda1 ro quiet\n\tinitrd /boot/initrd.img-6.1.0-26-amd64\n}\n");
    write(root, "etc/default/grub", "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX=\"console=tty0\"\n");
    write(root, "etc/network/interfaces", &format!("auto lo\niface lo inet loopback\n\nauto ens192\niface ens192 inet static\n    address 192.0.2.10/24\n    hwaddress ether {MAC}\n"));
    write(root, "usr/bin/vmtoolsd", "binary");
    write(root, "lib/systemd/system/open-vm-tools.service", "[Unit]\n");
}

#[test]
fn inspect_finds_a_vmware_guest_in_a_vmdk() {
    if !have_tool("mkfs.ext4") || !have_tool("qemu-img") {
        return;
    }
    let dir = tmpdir();
    let tree = dir.path().join("root");
    vmware_tree(&tree);
    let fs = dir.path().join("root.ext4");
    run_ok(std::process::Command::new("mkfs.ext4").args([
        "-q",
        "-F",
        "-L",
        "rootfs",
        "-d",
        p(&tree),
        p(&fs),
        "32M",
    ]));
    let raw = dir.path().join("disk.raw");
    mbr_disk(&fs, &raw);
    let vmdk = dir.path().join("web01.vmdk");
    qemu_img(&["convert", "-f", "raw", "-O", "vmdk", p(&raw), p(&vmdk)]);
    let before = std::fs::read(&vmdk).expect("vmdk");

    let out = run_ferry(["inspect", "--json", p(&vmdk)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let disk = &v[0];
    let root = disk["root"].as_u64().expect("a root filesystem") as usize;
    let fs = &disk["filesystems"][root];
    assert_eq!(fs["location"], "partition 1");
    assert_eq!(fs["label"], "rootfs");
    let os = &fs["os"];
    assert_eq!(os["os"]["id"], "debian");
    assert_eq!(os["os"]["version_id"], "12");
    assert_eq!(os["fstab"][0]["spec"], "/dev/sda1");
    assert_eq!(os["root_device"], "/dev/sda1");
    assert_eq!(os["kernels"][0]["version"], "6.1.0-26-amd64");
    assert_eq!(os["bootloader"]["config"], "/boot/grub/grub.cfg");
    let nets = os["network"].as_array().expect("network");
    assert!(
        nets.iter()
            .any(|n| n["interface"] == "ens192" && n["mac"] == MAC),
        "{nets:?}"
    );
    let tools = os["guest_tools"].as_array().expect("tools");
    assert!(
        tools.iter().any(|t| t["name"] == "open-vm-tools"),
        "{tools:?}"
    );
    assert_eq!(
        std::fs::read(&vmdk).expect("vmdk"),
        before,
        "inspect never writes to the disk"
    );

    let text = run_ferry(["inspect", p(&vmdk)]);
    assert!(
        stdout(&text).contains("Debian GNU/Linux 12"),
        "{}",
        stdout(&text)
    );
}
