//! The ext2/3/4 backend against filesystems made by `mke2fs -d` at test time, checked with
//! `debugfs` and `e2fsck -fn`.

mod image;

use std::sync::Arc;
use std::time::Instant;

use image::{build, into_mbr_disk, pattern, populate_guest, tools_present, Image};

use super::{Access, Ext4Fs, Ext4OpenError};
use crate::blockdev::FileRange;
use crate::guestfs::{FileKind, GuestFs, GuestFsError, GuestPath};

fn p(s: &str) -> GuestPath {
    GuestPath::new(s).unwrap()
}

fn guest(kind: &str) -> Image {
    build(kind, 32, &[], populate_guest)
}

/// Reads through the backend, symlinks resolved inside the guest.
fn check_reads(fs: &Ext4Fs) {
    assert_eq!(
        fs.read_file(&p("/etc/fstab")).unwrap(),
        b"/dev/sda1 / ext4 errors=remount-ro 0 1\n"
    );
    assert_eq!(
        fs.read_file(&p("/etc/resolv.conf")).unwrap(),
        b"nameserver 127.0.0.53\n"
    );
    assert_eq!(
        fs.resolve(&p("/etc/resolv.conf")).unwrap(),
        p("/run/systemd/resolve/stub-resolv.conf")
    );
    // The hostile link climbs past the root and lands on the guest's own shadow file.
    assert_eq!(fs.resolve(&p("/var/www/evil")).unwrap(), p("/etc/shadow"));
    assert_eq!(
        fs.read_file(&p("/var/www/evil")).unwrap(),
        b"root:*:19000:0:99999:7:::\n"
    );
    assert_eq!(
        fs.read_link(&p("/var/www/evil")).unwrap(),
        b"../../../../etc/shadow"
    );
    assert_eq!(fs.read_file(&p("/bin/sh")).unwrap(), b"#!ELF");
    assert_eq!(fs.read_file(&p("/boot/big")).unwrap(), pattern(40_000, 7));
    let shadow = fs.metadata(&p("/etc/shadow")).unwrap();
    assert_eq!(
        (shadow.kind, shadow.mode, shadow.uid, shadow.gid),
        (FileKind::File, 0o640, 0, 42)
    );
    assert_eq!(
        fs.symlink_metadata(&p("/bin")).unwrap().kind,
        FileKind::Symlink
    );
    let etc: Vec<_> = fs.read_dir(&p("/etc")).unwrap();
    let names: Vec<&[u8]> = etc.iter().map(|e| e.name.as_slice()).collect();
    assert_eq!(
        names,
        [&b"fstab"[..], b"os-release", b"resolv.conf", b"shadow"]
    );
    assert_eq!(etc[2].kind, FileKind::Symlink);
    assert!(fs
        .read_dir(&p("/"))
        .unwrap()
        .iter()
        .any(|e| e.name == b"lost+found" && e.kind == FileKind::Dir));
    assert!(fs.read_file(&p("/etc/missing")).unwrap_err().is_not_found());
    assert!(!fs.exists(&p("/etc/fstab/x")).unwrap());
}

/// Rewrites larger and smaller (many blocks), new file, new directory, backup by rename,
/// idempotent second write; then the e2fsprogs oracles.
fn check_writes(img: &Image) {
    img.debugfs_w("ea_set /etc/shadow user.ferry keepme");
    img.debugfs_w("ea_set /etc/shadow security.selinux system_u:object_r:shadow_t:s0");
    let fs = img.open(Access::ReadWrite);
    let large = pattern(300_000, 3);
    fs.write_file(&p("/etc/shadow"), &large).unwrap();
    assert_eq!(fs.read_file(&p("/etc/shadow")).unwrap(), large);
    fs.write_file(&p("/var/www/evil"), b"small\n").unwrap(); // through the hostile link
    fs.rename(&p("/etc/fstab"), &p("/etc/fstab.ferry-orig"))
        .unwrap();
    fs.write_file(
        &p("/etc/fstab"),
        b"/dev/vda1 / ext4 errors=remount-ro 0 1\n",
    )
    .unwrap();
    fs.write_file(
        &p("/etc/fstab"),
        b"/dev/vda1 / ext4 errors=remount-ro 0 1\n",
    )
    .unwrap();
    fs.create_dir(&p("/etc/ferry"), 0o750).unwrap();
    fs.write_file(&p("/etc/ferry/report"), &pattern(20_000, 9))
        .unwrap();
    fs.write_file(&p("/etc/resolv.conf"), b"nameserver 10.0.2.3\n")
        .unwrap();
    fs.remove(&p("/usr/bin/sh")).unwrap();
    fs.close().unwrap();

    img.assert_fsck_clean();
    assert_eq!(img.cat("/etc/shadow"), b"small\n");
    assert_eq!(
        img.cat("/etc/fstab"),
        b"/dev/vda1 / ext4 errors=remount-ro 0 1\n"
    );
    assert_eq!(
        img.cat("/etc/fstab.ferry-orig"),
        b"/dev/sda1 / ext4 errors=remount-ro 0 1\n"
    );
    assert_eq!(img.cat("/etc/ferry/report"), pattern(20_000, 9));
    assert_eq!(
        img.cat("/run/systemd/resolve/stub-resolv.conf"),
        b"nameserver 10.0.2.3\n"
    );
    let stat = img.debugfs("stat /etc/shadow");
    assert!(stat.contains("Mode:  0640"), "{stat}");
    assert!(stat.contains("User:     0   Group:    42"), "{stat}");
    let xattrs = img.debugfs("ea_list /etc/shadow");
    assert!(xattrs.contains("user.ferry (6) = \"keepme\""), "{xattrs}");
    assert!(xattrs.contains("security.selinux"), "{xattrs}");
    let dir = img.debugfs("stat /etc/ferry");
    assert!(
        dir.contains("Type: directory") && dir.contains("Mode:  0750"),
        "{dir}"
    );
    assert!(img.debugfs("ls /usr/bin").find("sh").is_none());

    // Reopened, the files read back the same through ferry.
    let fs = img.open(Access::ReadOnly);
    assert_eq!(
        fs.read_file(&p("/etc/ferry/report")).unwrap(),
        pattern(20_000, 9)
    );
    assert_eq!(
        fs.read_file(&p("/etc/fstab")).unwrap(),
        b"/dev/vda1 / ext4 errors=remount-ro 0 1\n"
    );
}

#[test]
fn ext4_reads() {
    if !tools_present() {
        return;
    }
    check_reads(&guest("ext4").open(Access::ReadOnly));
}

#[test]
fn ext4_writes_keep_metadata_and_fsck_clean() {
    if !tools_present() {
        return;
    }
    check_writes(&guest("ext4"));
}

#[test]
fn ext4_4k_blocks() {
    if !tools_present() {
        return;
    }
    let img = build("ext4", 64, &["-b", "4096"], populate_guest);
    check_reads(&img.open(Access::ReadOnly));
    check_writes(&img);
}

#[test]
fn ext3_reads_and_writes() {
    if !tools_present() {
        return;
    }
    let img = guest("ext3");
    check_reads(&img.open(Access::ReadOnly));
    check_writes(&img);
}

#[test]
fn ext2_reads_and_writes() {
    if !tools_present() {
        return;
    }
    let img = guest("ext2");
    check_reads(&img.open(Access::ReadOnly));
    check_writes(&img);
}

#[test]
fn ext4_in_mbr_partition_at_1mib() {
    if !tools_present() {
        return;
    }
    let img = into_mbr_disk(guest("ext4"));
    let before = std::fs::read(&img.path).unwrap();
    let fs = img.open(Access::ReadWrite);
    assert_eq!(fs.label(), "guest");
    check_reads(&fs);
    let started = Instant::now();
    fs.write_file(&p("/etc/fstab"), b"UUID=x / ext4 defaults 0 1\n")
        .unwrap();
    fs.close().unwrap();
    eprintln!("rewrote /etc/fstab in {:?}", started.elapsed());
    img.assert_fsck_clean();
    assert_eq!(img.cat("/etc/fstab"), b"UUID=x / ext4 defaults 0 1\n");
    // Nothing outside the partition changed.
    let after = std::fs::read(&img.path).unwrap();
    assert_eq!(before[..1 << 20], after[..1 << 20]);
    let end = usize::try_from(img.offset + img.len).unwrap();
    assert_eq!(before[end..], after[end..]);
}

#[test]
fn read_only_open_refuses_writes() {
    if !tools_present() {
        return;
    }
    let img = guest("ext4");
    let before = std::fs::read(&img.path).unwrap();
    let fs = img.open(Access::ReadOnly);
    let err = fs.write_file(&p("/etc/fstab"), b"x").unwrap_err();
    assert!(matches!(err, GuestFsError::ReadOnly { .. }), "{err}");
    assert!(fs.create_dir(&p("/new"), 0o755).is_err());
    drop(fs);
    assert!(std::fs::read(&img.path).unwrap() == before);
}

fn open_bytes(bytes: Vec<u8>) -> Result<Ext4Fs, Ext4OpenError> {
    let mut tmp = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut tmp, &bytes).unwrap();
    let range = FileRange::open(tmp.path()).unwrap();
    Ext4Fs::open(Arc::new(range), Access::ReadOnly)
}

#[test]
fn bad_superblocks_are_clean_errors() {
    let err = open_bytes(vec![0u8; 1 << 20]).unwrap_err();
    assert!(matches!(err, Ext4OpenError::NotExt { found: 0 }), "{err}");
    assert!(open_bytes(vec![0u8; 100]).is_err());
    if !tools_present() {
        return;
    }
    let good = std::fs::read(guest("ext4").path).unwrap();
    // s_log_block_size (0x418 + 0x18 = 0x418) absurd, s_blocks_count past the device,
    // s_inodes_per_group zero, and the image cut short.
    let corruptions: [(usize, &[u8]); 4] = [
        (0x418, &[0xff, 0xff, 0, 0]),
        (0x404, &[0xff, 0xff, 0xff, 0x7f]),
        (0x428, &[0, 0, 0, 0]),
        (0x400, &[]),
    ];
    for (offset, bytes) in corruptions {
        let mut image = good.clone();
        if bytes.is_empty() {
            image.truncate(8192);
        } else {
            image[offset..offset + bytes.len()].copy_from_slice(bytes);
        }
        let err = open_bytes(image).unwrap_err();
        eprintln!("corruption at {offset:#x}: {err}");
    }
}
