//! The demo's sample guest disk: an MBR-partitioned raw disk whose first partition is an
//! ext4 filesystem built by `mkfs.ext4 -d` from a small folder tree (no loop mounts),
//! naming its root `/dev/sda1` the way a VMware guest would.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

pub const DISK_SIZE: u64 = 64 << 20;
const PARTITION_START: u64 = 1 << 20;

/// Builds `raw` in `work` (a scratch folder) and returns the files it put in the guest.
pub fn build(work: &Path, raw: &Path) -> io::Result<Vec<String>> {
    let tree = work.join("root");
    let files = write_tree(&tree)?;
    let fs_img = work.join("root.ext4");
    let fs_size = DISK_SIZE - PARTITION_START;
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "demo-root", "-d"])
        .arg(&tree)
        .arg(&fs_img)
        .arg(format!("{}k", fs_size / 1024))
        .output()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run mkfs.ext4 (install e2fsprogs): {e}"),
            )
        })?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(io::Error::other(format!(
            "mkfs.ext4 failed: {}",
            why.trim()
        )));
    }
    let disk = File::create(raw)?;
    disk.set_len(DISK_SIZE)?;
    write_mbr(&disk)?;
    copy_sparse(&fs_img, &disk, PARTITION_START)?;
    disk.sync_all()?;
    fs::remove_file(&fs_img)?;
    fs::remove_dir_all(&tree)?;
    Ok(files)
}

fn write_tree(tree: &Path) -> io::Result<Vec<String>> {
    let mut random = vec![0u8; 1 << 20];
    let mut x = 0x2545_f491_u32;
    for b in &mut random {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = (x >> 24) as u8;
    }
    let entries: Vec<(&str, Vec<u8>)> = vec![
        ("etc/hostname", b"ferry-demo\n".to_vec()),
        (
            "etc/fstab",
            b"/dev/sda1 / ext4 errors=remount-ro 0 1\n".to_vec(),
        ),
        (
            "etc/os-release",
            b"PRETTY_NAME=\"ferry demo guest\"\nID=debian\nVERSION_ID=\"12\"\n".to_vec(),
        ),
        (
            "home/demo/README.txt",
            b"This guest was born on VMware and moved to KVM by ferry.\n".to_vec(),
        ),
        (
            "etc/network/interfaces",
            b"auto lo\niface lo inet loopback\n\nauto ens192\niface ens192 inet dhcp\n    hwaddress ether 00:50:56:8a:3c:01\n".to_vec(),
        ),
        (
            "boot/grub/grub.cfg",
            b"menuentry 'ferry demo' {\n\tlinux /boot/vmlinuz root=/dev/sda1 ro\n}\n".to_vec(),
        ),
        (
            "lib/systemd/system/open-vm-tools.service",
            b"[Unit]\nDescription=Service for virtual machines hosted on VMware\nConditionVirtualization=vmware\n\n[Install]\nWantedBy=multi-user.target\n".to_vec(),
        ),
        ("lib/systemd/systemd-udevd", b"placeholder for the demo\n".to_vec()),
        (
            "lib/udev/rules.d/80-net-setup-link.rules",
            b"SUBSYSTEM==\"net\", ACTION==\"add\", IMPORT{builtin}=\"net_setup_link\"\n".to_vec(),
        ),
        ("usr/bin/vmtoolsd", b"placeholder for the demo\n".to_vec()),
        ("var/lib/demo/random.bin", random),
    ];
    let mut names = Vec::new();
    for (name, data) in entries {
        let path = tree.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, &data)?;
        names.push(format!("/{name}"));
    }
    // Enabled as on a VMware machine; an absolute guest symlink, never followed on the host.
    let wants = tree.join("etc/systemd/system/multi-user.target.wants");
    fs::create_dir_all(&wants)?;
    std::os::unix::fs::symlink(
        "/lib/systemd/system/open-vm-tools.service",
        wants.join("open-vm-tools.service"),
    )?;
    names.push("/etc/systemd/system/multi-user.target.wants/open-vm-tools.service".into());
    Ok(names)
}

fn write_mbr(disk: &File) -> io::Result<()> {
    let mut writer = disk;
    let mut mbr = mbrman::MBR::new_from(&mut writer, 512, [0xfe, 0xed, 0xfa, 0xce])
        .map_err(io::Error::other)?;
    mbr[1] = mbrman::MBRPartitionEntry {
        boot: mbrman::BOOT_ACTIVE,
        first_chs: mbrman::CHS::empty(),
        sys: 0x83,
        last_chs: mbrman::CHS::empty(),
        starting_lba: u32::try_from(PARTITION_START / 512).map_err(io::Error::other)?,
        sectors: u32::try_from((DISK_SIZE - PARTITION_START) / 512).map_err(io::Error::other)?,
    };
    mbr.write_into(&mut writer).map_err(io::Error::other)?;
    writer.flush()
}

/// Copies `src` into `disk` at `offset`, skipping all-zero blocks so the disk stays sparse.
fn copy_sparse(src: &Path, disk: &File, offset: u64) -> io::Result<()> {
    let input = File::open(src)?;
    let len = input.metadata()?.len();
    let mut buf = vec![0u8; 1 << 16];
    let mut pos = 0u64;
    while pos < len {
        let n = usize::try_from((len - pos).min(buf.len() as u64)).map_err(io::Error::other)?;
        input.read_exact_at(&mut buf[..n], pos)?;
        if buf[..n].iter().any(|&b| b != 0) {
            disk.write_all_at(&buf[..n], offset + pos)?;
        }
        pos += n as u64;
    }
    Ok(())
}
