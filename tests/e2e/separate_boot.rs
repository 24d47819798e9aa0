//! Issue 3: a guest whose `/boot` is its own partition (Debian's layout with LVM, RHEL's
//! always): inspection finds the kernels and GRUB there, and `ferry fixup` edits
//! `grub.cfg` on the boot partition and `fstab` on the root, both `e2fsck -fn` clean.

use std::path::Path;
use std::process::Command;

use crate::util::*;

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn mkfs(kind: &str, label: &str, tree: &Path, image: &Path, size: &str) {
    run_ok(Command::new(format!("mkfs.{kind}")).args([
        "-q",
        "-F",
        "-L",
        label,
        "-d",
        p(tree),
        p(image),
        size,
    ]));
}

fn fsck_partition(disk: &Path, number: usize, dir: &Path) {
    let out = run_ferry(["info", "--json", "-f", "raw", p(disk)]);
    let info: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("info json");
    let part = &info["layout"]["partitions"][number - 1];
    let (start, size) = (
        part["start"].as_u64().expect("start"),
        part["size"].as_u64().expect("size"),
    );
    let image = dir.join(format!("p{number}.img"));
    run_ok(Command::new("dd").args([
        &format!("if={}", p(disk)),
        &format!("of={}", p(&image)),
        "bs=1M",
        &format!("skip={}", start >> 20),
        &format!("count={}", size >> 20),
        "status=none",
    ]));
    let out = Command::new("e2fsck")
        .args(["-fn", p(&image)])
        .output()
        .expect("e2fsck");
    assert!(out.status.success(), "partition {number}: {}", stdout(&out));
}

#[test]
fn boot_partition_is_inspected_and_fixed() {
    if !have_tool("mkfs.ext4") {
        return;
    }
    let dir = tmpdir();
    let boot = dir.path().join("boot");
    write(&boot, "vmlinuz-6.1.0-50-amd64", "kernel");
    write(&boot, "initrd.img-6.1.0-50-amd64", "initrd");
    write(
        &boot,
        "grub/grub.cfg",
        "menuentry 'Debian' {\n\tlinux /vmlinuz-6.1.0-50-amd64 root=/dev/sda2 ro quiet\n\tinitrd /initrd.img-6.1.0-50-amd64\n}\n",
    );
    let root = dir.path().join("root");
    write(
        &root,
        "etc/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
    );
    write(
        &root,
        "etc/fstab",
        "/dev/sda2 / ext4 errors=remount-ro 0 1\n/dev/sda1 /boot ext2 defaults 0 2\n",
    );
    write(&root, "lib/modules/6.1.0-50-amd64/modules.dep", "");
    std::fs::create_dir_all(root.join("boot")).expect("mount point");
    let (boot_img, root_img) = (dir.path().join("boot.img"), dir.path().join("root.img"));
    mkfs("ext2", "boot", &boot, &boot_img, "16M");
    mkfs("ext4", "root", &root, &root_img, "32M");
    let disk = dir.path().join("disk.raw");
    mbr_disk_of(&[&boot_img, &root_img], &disk);

    let out = run_ferry(["inspect", "--json", "-f", "raw", p(&disk)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let r = v[0]["root"].as_u64().expect("root") as usize;
    let os = &v[0]["filesystems"][r]["os"];
    assert_eq!(v[0]["mounts"][0]["mountpoint"], "/boot", "{v:#}");
    assert_eq!(os["kernels"][0]["version"], "6.1.0-50-amd64", "{os:#}");
    assert_eq!(os["root_device"], "/dev/sda2", "{os:#}");

    let out = run_ferry(["fixup", "--json", "-f", "raw", p(&disk)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_ferry(["inspect", "--json", "-f", "raw", p(&disk)]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let os = &v[0]["filesystems"][r]["os"];
    for device in [
        &os["root_device"],
        &os["fstab"][0]["spec"],
        &os["fstab"][1]["spec"],
    ] {
        assert!(
            device.as_str().is_some_and(|d| d.starts_with("UUID=")),
            "{device} in {os:#}"
        );
    }
    fsck_partition(&disk, 1, dir.path());
    fsck_partition(&disk, 2, dir.path());
}
