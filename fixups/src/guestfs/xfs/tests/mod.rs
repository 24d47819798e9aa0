//! The XFS backend against filesystems made by `mkfs.xfs -p PROTOFILE` at test time, with
//! `xfs_db -r` confirming that each image holds the on-disk format a test claims to cover.

mod image;

use std::sync::Arc;

use image::{
    build, into_mbr_disk, patch, pattern, same_contents, tools_present, variant, Image, Owner, Tree,
};

use super::{XfsFs, XfsOpenError, READ_ONLY_WHY};
use crate::blockdev::FileRange;
use crate::guestfs::{FileKind, GuestFs, GuestFsError, GuestPath};
use crate::inspect::{inspect_filesystem, NetStyle};

fn p(s: &str) -> GuestPath {
    GuestPath::new(s).unwrap()
}

const OS_RELEASE: &[u8] = b"NAME=\"Rocky Linux\"\nVERSION=\"9.3 (Blue Onyx)\"\nID=\"rocky\"\n\
ID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\nPRETTY_NAME=\"Rocky Linux 9.3 (Blue Onyx)\"\n";
const FSTAB: &[u8] = b"/dev/mapper/rl-root / xfs defaults 0 0\n\
UUID=0b0cdd37-0a19-4d55-8b5d-1a5e9a1c2d3e /boot xfs defaults 0 0\n\
/dev/mapper/rl-swap none swap defaults 0 0\n";
const IFCFG: &[u8] = b"TYPE=Ethernet\nBOOTPROTO=none\nDEVICE=eth0\nONBOOT=yes\n\
HWADDR=\"00:50:56:12:34:56\"\nIPADDR=192.0.2.20\nPREFIX=24\n";
const GRUB_CFG: &[u8] = b"set default=0\nblscfg\n";
const KERNEL: &str = "5.14.0-362.8.1.el9_3.x86_64";
/// Entries of the directory in node format (data, leaf and free-index blocks).
const MANY: usize = 2000;
/// Entries of the directory in leaf format (data blocks and one leaf block).
const LEAF: usize = 400;
/// Size of the file that spans allocation groups.
const BIG: usize = 21 << 20;

/// A target longer than the inode's literal area (336 bytes with 512-byte v5 inodes), so
/// it is stored in a data block; it names `/etc/fstab`.
fn long_target() -> String {
    format!("../..{}/etc/fstab", "/.".repeat(300))
}

/// A RHEL-like guest: relative, absolute and hostile symlinks, owners and modes, special
/// files, a directory of [`MANY`] entries, a file of [`BIG`] bytes and a remote symlink.
fn guest_tree() -> Tree {
    let mut t = Tree::new();
    t.file("/usr/lib/os-release", OS_RELEASE)
        .link("/etc/os-release", "../usr/lib/os-release")
        .file("/etc/fstab", FSTAB)
        .file("/etc/hostname", b"web01\n")
        .file("/etc/machine-id", b"")
        .file_owned(
            "/etc/shadow",
            Owner {
                mode: 0o640,
                uid: 0,
                gid: 42,
            },
            b"root:*:19000:0:99999:7:::\n",
        )
        .file("/etc/sysconfig/network-scripts/ifcfg-eth0", IFCFG)
        .file("/boot/grub2/grub.cfg", GRUB_CFG)
        .file(&format!("/boot/vmlinuz-{KERNEL}"), b"kernel")
        .file(&format!("/boot/initramfs-{KERNEL}.img"), b"cpio")
        .file("/usr/bin/dracut", b"#!/bin/bash\n")
        .file("/usr/share/zoneinfo/UTC", b"TZif2 UTC\n")
        .link("/etc/localtime", "/usr/share/zoneinfo/UTC")
        .link("/var/www/evil", "../../../../etc/shadow")
        .file("/usr/bin/sh", b"#!ELF")
        .file_owned(
            "/usr/bin/sudo",
            Owner {
                mode: 0o4111,
                uid: 0,
                gid: 0,
            },
            b"#!ELF sudo",
        )
        .link("/bin", "usr/bin")
        .dir(
            "/home/alice",
            Owner {
                mode: 0o700,
                uid: 1000,
                gid: 1000,
            },
        )
        .file_owned(
            "/home/alice/.bashrc",
            Owner {
                mode: 0o600,
                uid: 1000,
                gid: 1000,
            },
            b"alias ll='ls -l'\n",
        )
        .special("/dev/null", 'c', "1 3")
        .special("/run/initctl", 'p', "")
        .file("/var/lib/big", &pattern(BIG, 5))
        .link("/usr/share/longlink", &long_target());
    for i in 0..MANY {
        t.file(
            &format!("/usr/share/many/entry-{i:05}"),
            format!("entry {i}\n").as_bytes(),
        );
    }
    for i in 0..LEAF {
        t.file(&format!("/usr/share/leaf/entry-{i:05}"), b"leaf\n");
    }
    t
}

fn guest(extra: &[&str]) -> Image {
    build(&guest_tree(), extra)
}

/// Reads through the backend, symlinks resolved inside the guest, checked against the
/// host files the image was made from.
fn check_reads(fs: &XfsFs, img: &Image) {
    for path in [
        "/etc/fstab",
        "/usr/lib/os-release",
        "/etc/sysconfig/network-scripts/ifcfg-eth0",
        "/boot/grub2/grub.cfg",
        "/etc/machine-id",
        "/home/alice/.bashrc",
        "/usr/share/many/entry-01234",
    ] {
        assert_eq!(fs.read_file(&p(path)).unwrap(), img.host(path), "{path}");
    }
    assert_eq!(fs.read_file(&p("/etc/fstab")).unwrap(), FSTAB);
    // Relative, absolute and hostile links all land inside the guest.
    assert_eq!(fs.read_file(&p("/etc/os-release")).unwrap(), OS_RELEASE);
    assert_eq!(
        fs.read_link(&p("/etc/os-release")).unwrap(),
        b"../usr/lib/os-release"
    );
    assert_eq!(
        fs.resolve(&p("/etc/localtime")).unwrap(),
        p("/usr/share/zoneinfo/UTC")
    );
    assert_eq!(fs.read_file(&p("/etc/localtime")).unwrap(), b"TZif2 UTC\n");
    assert_eq!(fs.resolve(&p("/var/www/evil")).unwrap(), p("/etc/shadow"));
    assert_eq!(
        fs.read_file(&p("/var/www/evil")).unwrap(),
        b"root:*:19000:0:99999:7:::\n"
    );
    assert_eq!(fs.read_file(&p("/bin/sh")).unwrap(), b"#!ELF");
    // The remote symlink: its target read whole from its block.
    let long = long_target();
    assert_eq!(
        fs.read_link(&p("/usr/share/longlink")).unwrap(),
        long.as_bytes()
    );
    assert_eq!(fs.read_file(&p("/usr/share/longlink")).unwrap(), FSTAB);

    // Metadata: kinds, modes, owners, sizes.
    let meta = |path: &str| {
        let m = fs.symlink_metadata(&p(path)).unwrap();
        (m.kind, m.mode, m.uid, m.gid, m.size)
    };
    assert_eq!(meta("/etc/shadow"), (FileKind::File, 0o640, 0, 42, 26));
    let alice = meta("/home/alice");
    assert_eq!(
        (alice.0, alice.1, alice.2, alice.3),
        (FileKind::Dir, 0o700, 1000, 1000)
    );
    assert_eq!(
        meta("/home/alice/.bashrc"),
        (FileKind::File, 0o600, 1000, 1000, 17)
    );
    assert_eq!(meta("/usr/bin/sudo"), (FileKind::File, 0o4111, 0, 0, 10));
    assert_eq!(
        meta("/var/lib/big"),
        (FileKind::File, 0o644, 0, 0, BIG as u64)
    );
    assert_eq!(meta("/etc/os-release").0, FileKind::Symlink);
    assert_eq!(meta("/etc/os-release").4, 21);
    assert_eq!(meta("/usr/share/longlink").4, long.len() as u64);
    assert_eq!(meta("/dev/null").0, FileKind::Other);
    assert_eq!(meta("/run/initctl").0, FileKind::Other);
    assert_eq!(fs.metadata(&p("/bin")).unwrap().kind, FileKind::Dir);

    // Listings.
    let etc = fs.read_dir(&p("/etc")).unwrap();
    let names: Vec<&[u8]> = etc.iter().map(|e| e.name.as_slice()).collect();
    assert_eq!(
        names,
        [
            &b"fstab"[..],
            b"hostname",
            b"localtime",
            b"machine-id",
            b"os-release",
            b"shadow",
            b"sysconfig"
        ]
    );
    let kinds: Vec<FileKind> = etc.iter().map(|e| e.kind).collect();
    use FileKind::{Dir, File, Symlink};
    assert_eq!(kinds, [File, File, Symlink, File, Symlink, File, Dir]);
    let root: Vec<_> = fs
        .read_dir(&p("/"))
        .unwrap()
        .into_iter()
        .map(|e| (String::from_utf8(e.name).unwrap(), e.kind))
        .collect();
    assert!(root.contains(&("bin".to_string(), Symlink)), "{root:?}");
    assert!(root.contains(&("home".to_string(), Dir)), "{root:?}");
    let dev = fs.read_dir(&p("/dev")).unwrap();
    assert_eq!(dev.len(), 1);
    assert_eq!(dev[0].kind, FileKind::Other);
    let many = fs.read_dir(&p("/usr/share/many")).unwrap();
    assert_eq!(many.len(), MANY);
    for (i, entry) in many.iter().enumerate() {
        assert_eq!(entry.name, format!("entry-{i:05}").as_bytes());
        assert_eq!(entry.kind, FileKind::File);
    }
    assert_eq!(
        fs.read_file(&p("/usr/share/many/entry-01999")).unwrap(),
        b"entry 1999\n"
    );
    let leaf = fs.read_dir(&p("/usr/share/leaf")).unwrap();
    assert_eq!(leaf.len(), LEAF);
    assert_eq!(
        leaf[LEAF - 1].name,
        format!("entry-{:05}", LEAF - 1).as_bytes()
    );
    assert_eq!(
        fs.read_file(&p("/usr/share/leaf/entry-00399")).unwrap(),
        b"leaf\n"
    );

    // The large file, whole and in ranges (across blocks, extents and its end).
    let big = img.host("/var/lib/big");
    assert_eq!(fs.read_file(&p("/var/lib/big")).unwrap(), big);
    for (offset, len) in [
        (0usize, 100usize),
        (4095, 2),
        (123_457, 70_000),
        ((16 << 20) - 10, 20),
        (BIG - 5, 100),
        (BIG - 4096, 4096),
    ] {
        let mut buf = vec![0u8; len];
        let n = fs
            .read_at(&p("/var/lib/big"), offset as u64, &mut buf)
            .unwrap();
        let want = &big[offset..(offset + len).min(BIG)];
        assert_eq!(n, want.len(), "read_at({offset}, {len})");
        assert_eq!(&buf[..n], want, "read_at({offset}, {len})");
    }
    let mut buf = [0u8; 10];
    assert_eq!(
        fs.read_at(&p("/var/lib/big"), BIG as u64, &mut buf)
            .unwrap(),
        0
    );
    assert_eq!(
        fs.read_at(&p("/var/lib/big"), u64::MAX, &mut buf).unwrap(),
        0
    );
    let err = fs.raw_read(&p("/var/lib/big"), 1000).unwrap_err();
    assert!(matches!(err, GuestFsError::TooLarge { size, limit: 1000, .. } if size == BIG as u64));

    // Errors say what is wrong.
    assert!(fs.read_file(&p("/etc/missing")).unwrap_err().is_not_found());
    assert!(!fs.exists(&p("/etc/fstab/x")).unwrap());
    assert!(fs.exists(&p("/var/www/evil")).unwrap());
    let err = fs.read_file(&p("/etc")).unwrap_err();
    assert!(matches!(err, GuestFsError::IsADirectory { .. }), "{err}");
    let err = fs.read_file(&p("/dev/null")).unwrap_err();
    assert!(matches!(err, GuestFsError::NotAFile { .. }), "{err}");
    let err = fs.read_dir(&p("/etc/fstab")).unwrap_err();
    assert!(matches!(err, GuestFsError::NotADirectory { .. }), "{err}");
    let err = fs.read_link(&p("/etc/fstab")).unwrap_err();
    assert!(matches!(err, GuestFsError::NotASymlink { .. }), "{err}");
    let err = fs.raw_metadata(&p("/etc/../etc")).unwrap_err();
    assert!(matches!(err, GuestFsError::InvalidPath { .. }), "{err}");
}

/// The formats `check_reads` claims to cover are the ones on disk.
fn check_formats(img: &Image, v5: bool) {
    assert_eq!(img.inode_field("/etc", "core.format"), "1 (local)");
    assert_eq!(img.inode_field("/etc/fstab", "core.format"), "2 (extents)");
    assert_eq!(
        img.inode_field("/etc/os-release", "core.format"),
        "1 (local)"
    );
    assert_eq!(
        img.inode_field("/usr/share/longlink", "core.format"),
        "2 (extents)"
    );
    // Directory blocks past the leaf offset (32 GiB) and the free-index offset (64 GiB)
    // tell the formats apart: leaf has the first only, node both. The node directory
    // holds 19 extents: in the inode with 512-byte inodes, a B+tree with 256-byte ones.
    let offsets = |path: &str| img.xfs_db(&[&format!("path {path}"), "bmap"]);
    let leaf = offsets("/usr/share/leaf");
    assert!(leaf.contains("data offset 8388608 "), "{leaf}");
    assert!(!leaf.contains("data offset 16777216 "), "{leaf}");
    let node = offsets("/usr/share/many");
    assert!(node.contains("data offset 16777216 "), "{node}");
    let format = img.inode_field("/usr/share/many", "core.format");
    assert_eq!(format, if v5 { "2 (extents)" } else { "3 (btree)" });
    let version = img.xfs_db(&["version"]);
    assert_eq!(version.contains("V5"), v5, "{version}");
}

#[test]
fn xfs_v5_reads() {
    if !tools_present() {
        return;
    }
    let img = guest(&[]);
    check_formats(&img, true);
    let fs = img.open();
    assert_eq!(fs.label(), "guest");
    let uuid = img.xfs_db(&["uuid"]);
    assert!(uuid.contains(&fs.uuid()), "{uuid} vs {}", fs.uuid());
    check_reads(&fs, &img);
}

#[test]
fn xfs_v4_without_ftype_reads() {
    if !tools_present() {
        return;
    }
    let img = guest(&["-m", "crc=0", "-n", "ftype=0"]);
    check_formats(&img, false);
    check_reads(&img.open(), &img);
}

#[test]
fn xfs_1k_blocks_reads() {
    if !tools_present() {
        return;
    }
    let img = guest(&["-b", "size=1024"]);
    assert!(img.xfs_db(&["sb 0", "print blocksize"]).contains("1024"));
    check_reads(&img.open(), &img);
}

#[test]
fn inspect_finds_the_os_and_fstab() {
    if !tools_present() {
        return;
    }
    let img = guest(&[]);
    let fs = img.open();
    let g = inspect_filesystem(&fs).unwrap().expect("an OS root");
    assert_eq!(g.os.id, "rocky");
    assert_eq!(g.os.version_id.as_deref(), Some("9.3"));
    assert_eq!(g.os.id_like, ["rhel", "centos", "fedora"]);
    let mounts: Vec<(&str, &str)> = g
        .fstab
        .iter()
        .map(|e| (e.mountpoint.as_str(), e.fstype.as_str()))
        .collect();
    assert_eq!(mounts, [("/", "xfs"), ("/boot", "xfs"), ("none", "swap")]);
    assert_eq!(g.kernels.len(), 1);
    assert_eq!(g.kernels[0].version, KERNEL);
    assert_eq!(g.bootloader.expect("grub2").config, "/boot/grub2/grub.cfg");
    assert!(g
        .network
        .iter()
        .any(|n| n.style == NetStyle::Ifcfg && n.mac.as_deref() == Some("00:50:56:12:34:56")));
}

#[test]
fn xfs_in_mbr_partition_at_1mib() {
    if !tools_present() {
        return;
    }
    let img = into_mbr_disk(guest(&[]));
    let fs = img.open();
    assert_eq!(fs.label(), "guest");
    check_reads(&fs, &img);
    // A window shorter than the filesystem is refused at open.
    let file = std::fs::File::open(&img.path).unwrap();
    let short = FileRange::new(file, img.offset, img.len - 4096, false).unwrap();
    let err = XfsFs::open(Arc::new(short)).unwrap_err();
    assert!(matches!(err, XfsOpenError::Corrupt { .. }), "{err}");
}

#[test]
fn writes_are_refused_and_nothing_changes() {
    if !tools_present() {
        return;
    }
    let img = guest(&[]);
    let before = variant(&img, "before.img");
    // Read-write access to the range changes nothing: the backend never writes.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&img.path)
        .unwrap();
    let fs = XfsFs::open(Arc::new(FileRange::new(file, 0, img.len, true).unwrap())).unwrap();
    let fstab = p("/etc/fstab");
    let new = p("/etc/new");
    let results = [
        fs.raw_write(&fstab, b"x"),
        fs.raw_write_at(&fstab, 0, b"x"),
        fs.raw_create_file(&new, 0o644),
        fs.raw_create_dir(&new, 0o755),
        fs.raw_rename(&fstab, &new),
        fs.raw_remove(&fstab),
        fs.raw_symlink(&new, b"fstab"),
        fs.write_file(&fstab, b"x"),
        fs.write_file(&p("/var/www/evil"), b"x"),
        fs.append_file(&fstab, b"x"),
        fs.create_dir(&new, 0o755),
        fs.rename(&fstab, &new),
        fs.remove(&fstab),
        fs.symlink(&new, b"x"),
        fs.copy_file(&fstab, &new),
    ];
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Err(GuestFsError::Unsupported { what, .. }) => assert_eq!(what, READ_ONLY_WHY),
            other => panic!("write {i}: {other:?}"),
        }
    }
    let err = fs.write_file(&fstab, b"x").unwrap_err().to_string();
    assert!(
        err.starts_with("/etc/fstab: unsupported: xfs is read-only"),
        "{err}"
    );
    fs.flush().unwrap();
    drop(fs);
    assert!(same_contents(&img.path, &before));
}

/// A directory in B+tree format: more extents than the inode holds.
#[test]
fn btree_directory() {
    if !tools_present() {
        return;
    }
    const N: usize = 6000;
    let mut t = Tree::new();
    for i in 0..N {
        t.file(
            &format!("/huge/file-{i:05}-with-a-name-long-enough-to-fill-blocks"),
            b"x\n",
        );
    }
    t.file("/huge/last", b"last\n");
    let img = build(&t, &[]);
    assert_eq!(img.inode_field("/huge", "core.format"), "3 (btree)");
    let fs = img.open();
    let entries = fs.read_dir(&p("/huge")).unwrap();
    assert_eq!(entries.len(), N + 1);
    for (i, e) in entries.iter().take(N).enumerate() {
        let want = format!("file-{i:05}-with-a-name-long-enough-to-fill-blocks");
        assert_eq!(e.name, want.as_bytes());
    }
    assert_eq!(fs.read_file(&p("/huge/last")).unwrap(), b"last\n");
    assert_eq!(
        fs.read_file(&p(
            "/huge/file-04321-with-a-name-long-enough-to-fill-blocks"
        ))
        .unwrap(),
        b"x\n"
    );
}

fn open_path(path: &std::path::Path) -> Result<XfsFs, XfsOpenError> {
    XfsFs::open(Arc::new(FileRange::open(path).unwrap()))
}

/// Read everything reachable, ignoring errors: damaged images must give errors (or
/// data), never a panic or a hang.
fn read_everything(fs: &XfsFs) -> usize {
    let mut todo = vec![GuestPath::root()];
    let mut seen = 0usize;
    while let Some(dir) = todo.pop() {
        let Ok(entries) = fs.raw_read_dir(&dir) else {
            continue;
        };
        for e in entries.into_iter().take(3000) {
            seen += 1;
            let Ok(path) = dir.join(&e.name) else {
                continue;
            };
            let Ok(meta) = fs.raw_metadata(&path) else {
                continue;
            };
            match meta.kind {
                FileKind::Dir if todo.len() < 64 && path.components().len() < 16 => {
                    todo.push(path);
                }
                FileKind::File => {
                    let _ = fs.raw_read(&path, 1 << 20);
                    let mut buf = [0u8; 512];
                    let _ = fs.raw_read_at(&path, meta.size / 2, &mut buf);
                }
                FileKind::Symlink => {
                    let _ = fs.raw_read_link(&path);
                    let _ = fs.read_file(&path);
                }
                _ => {}
            }
        }
    }
    seen
}

#[test]
fn shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<XfsFs>();
}

#[test]
fn garbage_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let open = |bytes: &[u8]| {
        let path = dir.path().join("img");
        std::fs::write(&path, bytes).unwrap();
        XfsFs::open(Arc::new(FileRange::open(&path).unwrap()))
    };
    let err = open(&vec![0u8; 1 << 20]).unwrap_err();
    assert!(matches!(err, XfsOpenError::NotXfs { found: 0 }), "{err}");
    assert!(matches!(
        open(b"XFS").unwrap_err(),
        XfsOpenError::NotXfs { .. }
    ));
    assert!(open(b"").is_err());
    let mut sb = b"XFSB".to_vec();
    sb.resize(100, 0xff);
    let err = open(&sb).unwrap_err();
    assert!(matches!(err, XfsOpenError::Corrupt { .. }), "{err}");
    let mut sb = b"XFSB".to_vec();
    sb.resize(1 << 16, 0xff);
    assert!(open(&sb).is_err());
}

#[test]
fn damaged_superblocks_are_errors() {
    if !tools_present() {
        return;
    }
    for (extra, v5) in [
        (&[][..], true),
        (&["-m", "crc=0", "-n", "ftype=0"][..], false),
    ] {
        let img = guest(extra);
        let bad = variant(&img, "bad.img");
        // Block size, block log, inode size, AG count, root inode, data blocks, a byte
        // the v5 checksum covers.
        let corruptions: [(u64, &[u8]); 7] = [
            (4, &[0, 0, 0x30, 0]),
            (120, &[30]),
            (104, &[0x40, 0]),
            (88, &[0, 0, 0, 0]),
            (56, &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0x80]),
            (8, &[0, 0, 0, 0x10, 0, 0, 0, 0]),
            (200, &[0x5a]),
        ];
        for (offset, bytes) in corruptions {
            let old = patch(&bad, offset, bytes);
            match open_path(&bad) {
                Err(e) => eprintln!("superblock byte {offset:#x}: {e}"),
                // Without a checksum a changed field may still open; reads stay safe.
                Ok(fs) => {
                    assert!(!v5, "v5 opened with byte {offset:#x} changed");
                    let seen = read_everything(&fs);
                    eprintln!("superblock byte {offset:#x}: opened, {seen} entries");
                }
            }
            patch(&bad, offset, &old);
        }
        assert!(open_path(&bad).is_ok());
        // The image cut short: refused at open, before any read past its end.
        for len in [img.len / 2, 4096] {
            let cut = variant(&img, "cut.img");
            std::fs::OpenOptions::new()
                .write(true)
                .open(&cut)
                .unwrap()
                .set_len(len)
                .unwrap();
            let err = open_path(&cut).unwrap_err();
            assert!(matches!(err, XfsOpenError::Corrupt { .. }), "{err}");
        }
    }
}

#[test]
fn damaged_inodes_are_errors() {
    if !tools_present() {
        return;
    }
    // v5: any changed byte of an inode fails its checksum.
    let img = guest(&[]);
    let bad = variant(&img, "bad.img");
    patch(&bad, img.inode_byte("/etc/fstab") + 8, &[0x55]); // di_uid
    let fs = open_path(&bad).unwrap();
    let err = fs.read_file(&p("/etc/fstab")).unwrap_err();
    assert!(matches!(err, GuestFsError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("crc"), "{err}");
    assert_eq!(fs.read_file(&p("/etc/hostname")).unwrap(), b"web01\n");

    // v4 has no checksums: hostile values reach the parsers, which must stay bounded.
    let img = guest(&["-m", "crc=0", "-n", "ftype=0"]);
    let bad = variant(&img, "bad.img");
    let cases: [(&str, u64, &[u8]); 9] = [
        ("/etc/fstab", 0, b"XX"),                                  // magic
        ("/etc/fstab", 5, &[9]),                                   // unknown format
        ("/etc/fstab", 56, &[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]), // huge size
        ("/etc/fstab", 76, &[0x7f, 0xff, 0xff, 0xff]),             // many extents
        ("/usr/share/many", 76, &[0, 0, 0x10, 0]),                 // many extents
        ("/usr/share/many", 56, &[0, 0, 0, 0x10, 0, 0, 0, 0]),     // 64 GiB directory
        ("/usr/share/longlink", 56, &[0, 0, 0, 0, 0, 0, 0x40, 0]), // 16 KiB target
        ("/etc", 82, &[0xff]),                                     // fork offset
        ("/etc", 100, &[0xff, 0xff, 0xff, 0xff]),                  // shortform count
    ];
    for (path, field, bytes) in cases {
        let at = img.inode_byte(path) + field;
        let old = patch(&bad, at, bytes);
        let fs = open_path(&bad).unwrap();
        let outcome = match fs.symlink_metadata(&p(path)) {
            Ok(meta) if meta.kind == FileKind::Symlink => fs.read_link(&p(path)).map(|t| t.len()),
            Ok(meta) if meta.kind == FileKind::Dir => fs.read_dir(&p(path)).map(|d| d.len()),
            Ok(_) => fs.read_file(&p(path)).map(|d| d.len()),
            Err(e) => Err(e),
        };
        eprintln!("{path} byte {field}: {outcome:?}");
        read_everything(&fs);
        patch(&bad, at, &old);
    }

    // Seeded byte flips over metadata: the start of each AG (headers, B+trees, first
    // inodes) and the inodes and blocks around a few files. Every outcome is an error
    // or data.
    let mut head = [0u8; 512];
    std::os::unix::fs::FileExt::read_exact_at(
        &std::fs::File::open(&img.path).unwrap(),
        &mut head,
        0,
    )
    .unwrap();
    let agblocks = u64::from(u32::from_be_bytes(head[84..88].try_into().unwrap()));
    let blocksize = u64::from(u32::from_be_bytes(head[4..8].try_into().unwrap()));
    let mut regions: Vec<(u64, u64)> = (0..4)
        .map(|ag| (ag * agblocks * blocksize, 256 << 10))
        .collect();
    for path in [
        "/etc",
        "/etc/fstab",
        "/usr/share/many",
        "/usr/share/longlink",
    ] {
        regions.push((img.inode_byte(path).saturating_sub(8 << 10), 16 << 10));
    }
    // The first blocks of the node directory: data, and past 32 GiB its leaf and index.
    // `xfs_db bmap` lines read "data offset 0 startblock 32783 (1/15) count 1 flag 0".
    let bmap = img.xfs_db(&["path /usr/share/many", "bmap"]);
    for line in bmap.lines().take(3).chain(bmap.lines().rev().take(2)) {
        let (agno, agbno) = line
            .split(['(', ')'])
            .nth(1)
            .and_then(|a| a.split_once('/'))
            .unwrap();
        let block = agno.parse::<u64>().unwrap() * agblocks + agbno.parse::<u64>().unwrap();
        regions.push((block * blocksize, blocksize));
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..40 {
        let mut undo = Vec::new();
        for _ in 0..48 {
            let (start, len) = regions[usize::try_from(next() % regions.len() as u64).unwrap()];
            let at = (start + next() % len).max(512);
            let flip = u8::try_from(next() & 0xff).unwrap() | 1;
            let old = patch(&bad, at, &[0]);
            patch(&bad, at, &[old[0] ^ flip]);
            undo.push((at, old));
        }
        if let Ok(fs) = open_path(&bad) {
            let seen = read_everything(&fs);
            eprintln!("round {round}: {seen} entries");
        }
        for (at, old) in undo.into_iter().rev() {
            patch(&bad, at, &old);
        }
    }
    assert!(same_contents(&img.path, &bad));
}

/// A file split into extents out of physical order, with holes and an unwritten extent
/// (rewritten with `xfs_db -x`, as no mkfs protofile can make one).
#[test]
fn fragmented_file_with_holes() {
    if !tools_present() {
        return;
    }
    let img = guest(&[]);
    let bmx = img.xfs_db(&["path /var/lib/big", "print u3.bmx[0]"]);
    // u3.bmx[0] = [startoff,startblock,blockcount,extentflag] 0:[0,6168,5376,0]
    let fields: Vec<u64> = bmx
        .rsplit(":[")
        .next()
        .unwrap()
        .trim()
        .trim_end_matches(']')
        .split(',')
        .map(|f| f.parse().unwrap())
        .collect();
    let (start, blocks) = (fields[1], fields[2]);
    let piece = blocks / 16;
    assert_eq!(piece * 16, blocks);
    // Logical piece i comes from physical piece PERM[i]; `None` is a hole, and piece 9 is
    // unwritten (allocated, reads as zeros).
    const PERM: [Option<u64>; 16] = [
        Some(3),
        Some(0),
        None,
        Some(15),
        Some(1),
        Some(2),
        Some(14),
        None,
        Some(4),
        Some(5),
        Some(13),
        Some(6),
        None,
        Some(7),
        Some(12),
        Some(8),
    ];
    let n = PERM.iter().flatten().count();
    // The extent count first: xfs_db writes only records below it.
    let mut commands = vec![
        "path /var/lib/big".to_string(),
        format!("write core.nextents {n}"),
    ];
    let mut next = 0;
    for (i, phys) in PERM.iter().enumerate() {
        let Some(phys) = phys else { continue };
        let i = i as u64;
        let r = format!("u3.bmx[{next}]");
        commands.push(format!("write {r}.startoff {}", i * piece));
        commands.push(format!("write {r}.startblock {}", start + phys * piece));
        commands.push(format!("write {r}.blockcount {piece}"));
        commands.push(format!("write {r}.extentflag {}", u8::from(i == 9)));
        next += 1;
    }
    let mut cmd = std::process::Command::new("xfs_db");
    cmd.arg("-x");
    for c in &commands {
        cmd.args(["-c", c]);
    }
    let out = cmd.arg(&img.path).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(img.extent_count("/var/lib/big"), n);

    let original = img.host("/var/lib/big");
    let piece_bytes = usize::try_from(piece).unwrap() * 4096;
    let mut want = vec![0u8; BIG];
    for (i, phys) in PERM.iter().enumerate() {
        if let (Some(phys), false) = (phys, i == 9) {
            let from = usize::try_from(*phys).unwrap() * piece_bytes;
            want[i * piece_bytes..(i + 1) * piece_bytes]
                .copy_from_slice(&original[from..from + piece_bytes]);
        }
    }
    let fs = img.open();
    assert_eq!(fs.read_file(&p("/var/lib/big")).unwrap(), want);
    for (offset, len) in [
        (piece_bytes - 7, 20),
        (2 * piece_bytes - 1, piece_bytes + 2),
        (9 * piece_bytes + 5, 10),
        (0, BIG),
    ] {
        let mut buf = vec![0xaau8; len];
        let n = fs
            .read_at(&p("/var/lib/big"), offset as u64, &mut buf)
            .unwrap();
        assert_eq!(n, len);
        assert_eq!(buf, want[offset..offset + len], "read_at({offset}, {len})");
    }
}
