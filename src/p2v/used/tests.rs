//! The map checked against e2fsprogs: filesystems made by the real `mke2fs -d`, files
//! deleted with `debugfs -w` (no mounting), then the used-only view must hold every kept
//! file byte for byte, pass `e2fsck -fn`, count exactly the blocks dumpe2fs counts, and
//! read deleted files' (non-zero) blocks as zeros.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use converters::raw::RawSource;
use converters::source::ExtentIter;
use converters::{DiskSource, Extent, ExtentKind, LayerInfo};

use super::*;

const MIB: u64 = 1 << 20;

/// e2fsprogs present, else skip locally and fail under CI.
fn tools() -> bool {
    let ok = ["mke2fs", "debugfs", "dumpe2fs", "e2fsck", "mkswap"]
        .iter()
        .all(|t| Command::new(t).arg("-V").output().is_ok());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "e2fsprogs/mkswap missing under CI"
        );
        eprintln!(
            "skipping: e2fsprogs (mke2fs, debugfs, dumpe2fs, e2fsck) or mkswap not installed"
        );
    }
    ok
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Non-zero pseudo-random bytes (xorshift), so that a deleted file's blocks are
/// recognisably not zero on the source.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x as u8) | 1
        })
        .collect()
}

struct Fs {
    _dir: tempfile::TempDir,
    root: PathBuf,
    img: PathBuf,
    /// Files still in the filesystem: name → contents.
    kept: BTreeMap<String, Vec<u8>>,
    /// Blocks of the files deleted with debugfs.
    deleted_blocks: Vec<u64>,
    block_size: u64,
    blocks: u64,
    free: u64,
}

/// `mke2fs -t kind -d` with 24 files of random data (one in a subdirectory), then every
/// other file removed with `debugfs -w`; dumpe2fs' block counts afterwards.
fn make_fs(kind: &str, size_mib: u64, opts: &[&str]) -> Fs {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let content = root.join("content");
    std::fs::create_dir_all(content.join("sub")).expect("mkdir");
    let mut all = BTreeMap::new();
    for i in 0..24u64 {
        let name = if i == 5 {
            format!("sub/f{i}")
        } else {
            format!("f{i}")
        };
        let data = noise(i + 1, (20_000 + i * 37_001 % 250_000) as usize);
        std::fs::write(content.join(&name), &data).expect("write");
        all.insert(name, data);
    }
    let img = root.join("fs.img");
    File::create(&img)
        .and_then(|f| f.set_len(size_mib * MIB))
        .expect("img");
    run(Command::new("mke2fs")
        .args(["-q", "-F", "-t", kind, "-E", "lazy_itable_init=1"])
        .args(opts)
        .arg("-d")
        .arg(&content)
        .arg(&img));

    let mut kept = BTreeMap::new();
    let mut deleted_blocks = Vec::new();
    let mut cmds = String::new();
    for (i, (name, data)) in all.into_iter().enumerate() {
        if i % 2 == 0 {
            kept.insert(name, data);
            continue;
        }
        let out = run(Command::new("debugfs")
            .arg("-R")
            .arg(format!("blocks /{name}"))
            .arg(&img));
        let blocks: Vec<u64> = out
            .split_whitespace()
            .map(|b| b.parse().expect("block number"))
            .collect();
        assert!(!blocks.is_empty(), "{name} has no blocks");
        deleted_blocks.extend(blocks);
        cmds += &format!("rm /{name}\n");
    }
    let cmdfile = root.join("cmds");
    std::fs::write(&cmdfile, cmds).expect("cmds");
    run(Command::new("debugfs")
        .arg("-w")
        .arg("-f")
        .arg(&cmdfile)
        .arg(&img));
    // The source itself is consistent: any difference later is the map's doing.
    run(Command::new("e2fsck").arg("-fn").arg(&img));

    let header = run(Command::new("dumpe2fs").arg("-h").arg(&img));
    let field = |name: &str| -> u64 {
        header
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in dumpe2fs -h"))
    };
    Fs {
        block_size: field("Block size:"),
        blocks: field("Block count:"),
        free: field("Free blocks:"),
        _dir: dir,
        root,
        img,
        kept,
        deleted_blocks,
    }
}

/// Copies `len` bytes of `src` from `offset` into a new file, skipping zero chunks.
fn extract(src: &dyn DiskSource, offset: u64, len: u64, out: &Path) {
    let f = File::create(out).expect("create");
    let mut pos = 0;
    let mut buf = vec![0u8; MIB as usize];
    while pos < len {
        let n = (len - pos).min(MIB) as usize;
        src.read_exact_at(&mut buf[..n], offset + pos)
            .expect("read");
        if buf[..n].iter().any(|&b| b != 0) {
            f.write_all_at(&buf[..n], pos).expect("write");
        }
        pos += n as u64;
    }
    f.set_len(len).expect("len");
}

fn read_at(src: &dyn DiskSource, offset: u64, len: u64) -> Vec<u8> {
    let mut buf = vec![0u8; len as usize];
    src.read_exact_at(&mut buf, offset).expect("read");
    buf
}

/// An MBR disk: a random "boot loader" in the gap before 1 MiB, the partitions (type,
/// image) each at a MiB boundary, then 1 MiB of random unpartitioned bytes. Returns the
/// partition starts.
fn mbr_disk(parts: &[(u8, &Path)], disk: &Path) -> Vec<u64> {
    let f = File::create(disk).expect("disk");
    f.write_all_at(&noise(99, (MIB - 512) as usize), 512)
        .expect("gap");
    let mut mbr = noise(98, 512);
    mbr[446..510].fill(0);
    let mut start = MIB;
    let mut starts = Vec::new();
    for (i, (ty, img)) in parts.iter().enumerate() {
        let data = std::fs::read(img).expect("part");
        let e = 446 + 16 * i;
        mbr[e + 4] = *ty;
        mbr[e + 8..e + 12].copy_from_slice(&((start / 512) as u32).to_le_bytes());
        mbr[e + 12..e + 16].copy_from_slice(&((data.len() as u64 / 512) as u32).to_le_bytes());
        f.write_all_at(&data, start).expect("write part");
        starts.push(start);
        start += (data.len() as u64).div_ceil(MIB) * MIB;
    }
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    f.write_all_at(&mbr, 0).expect("mbr");
    f.write_all_at(&noise(97, MIB as usize), start)
        .expect("tail");
    starts
}

fn range_bytes_in(map: &UsedMap, start: u64, end: u64) -> u64 {
    map.ranges
        .iter()
        .map(|&(a, b)| b.min(end).saturating_sub(a.max(start)))
        .sum()
}

/// The whole scenario on one kind of filesystem: partition 1 the filesystem, 2 a swap
/// area, 3 random bytes; the view must keep exactly what it should.
/// Returns how many groups of the source filesystem have `BLOCK_UNINIT` (None when skipped).
fn check(kind: &str, size_mib: u64, opts: &[&str]) -> Option<usize> {
    if !tools() {
        return None;
    }
    Some(check_fs(
        kind,
        size_mib,
        opts,
        &make_fs(kind, size_mib, opts),
    ))
}

fn check_fs(kind: &str, size_mib: u64, opts: &[&str], fs: &Fs) -> usize {
    let uninit = run(Command::new("dumpe2fs").arg(&fs.img))
        .lines()
        .filter(|l| l.starts_with("Group ") && l.contains("BLOCK_UNINIT"))
        .count();
    let swap = fs.root.join("swap.img");
    File::create(&swap)
        .and_then(|f| f.set_len(8 * MIB))
        .expect("swap");
    std::fs::write(&swap, noise(7, (8 * MIB) as usize)).expect("swap noise");
    run(Command::new("mkswap").arg(&swap));
    let other = fs.root.join("other.img");
    std::fs::write(&other, noise(8, MIB as usize)).expect("other");
    let disk_path = fs.root.join("disk.img");
    let starts = mbr_disk(
        &[(0x83, &fs.img), (0x82, &swap), (0xda, &other)],
        &disk_path,
    );
    let disk: Arc<dyn DiskSource> = Arc::new(RawSource::open(&disk_path).expect("open"));

    let map = used_map(disk.as_ref()).expect("used map");
    let fs_len = size_mib * MIB;
    let used_fs = (fs.blocks - fs.free) * fs.block_size;
    let in_fs = range_bytes_in(&map, starts[0], starts[0] + fs_len);
    eprintln!(
        "{kind} {opts:?}: used_map {in_fs} bytes in the filesystem, dumpe2fs (blocks - free) x block size = {used_fs}; used_bytes {} of {}",
        map.used_bytes, map.disk_size
    );
    assert_eq!(in_fs, used_fs, "filesystem bytes vs dumpe2fs");
    assert_eq!(
        map.used_bytes,
        MIB + used_fs + 4096 + MIB,
        "gap + filesystem + swap header + partition 3: {:#?}",
        map.regions
    );
    let whys: Vec<&str> = map.regions.iter().map(|r| r.why.as_str()).collect();
    assert_eq!(whys.len(), 5, "{whys:#?}");
    assert_eq!(whys[0], "partition table and boot loader gap");
    assert!(
        whys[1].starts_with(&format!(
            "partition 1 {}: {} of {} blocks in use",
            kind,
            fs.blocks - fs.free,
            fs.blocks
        )),
        "{}",
        whys[1]
    );
    assert!(whys[2].starts_with("partition 2 swap: zero"), "{}", whys[2]);
    assert!(whys[3].contains("copied whole"), "{}", whys[3]);
    assert_eq!(whys[4], "unpartitioned: zero");

    let view = UsedOnly::new(disk.clone(), map);
    // The gap (boot loader) and partition 3 are kept, the tail is zeros.
    assert_eq!(read_at(&view, 0, MIB), read_at(disk.as_ref(), 0, MIB));
    assert_eq!(
        read_at(&view, starts[2], MIB),
        read_at(disk.as_ref(), starts[2], MIB)
    );
    assert!(read_at(&view, starts[2] + MIB, MIB).iter().all(|&b| b == 0));
    // Swap: the header page survives (UUID), the stale rest is gone.
    assert_eq!(
        read_at(&view, starts[1], 4096),
        read_at(disk.as_ref(), starts[1], 4096)
    );
    assert!(read_at(&view, starts[1] + 4096, 8 * MIB - 4096)
        .iter()
        .all(|&b| b == 0));

    // Deleted files: non-zero on the source, zero in the view, and outside the map.
    for &b in &fs.deleted_blocks {
        let at = starts[0] + b * fs.block_size;
        assert!(
            read_at(disk.as_ref(), at, fs.block_size)
                .iter()
                .any(|&x| x != 0),
            "deleted block {b} was zero on the source"
        );
        assert!(
            read_at(&view, at, fs.block_size).iter().all(|&x| x == 0),
            "deleted block {b} is in the used-only view"
        );
    }

    // The view's filesystem is consistent and holds every kept file.
    let part = fs.root.join("view-part.img");
    extract(&view, starts[0], fs_len, &part);
    run(Command::new("e2fsck").arg("-fn").arg(&part));
    let out = fs.root.join("out");
    std::fs::create_dir(&out).expect("out");
    run(Command::new("debugfs")
        .arg("-R")
        .arg(format!("rdump / {}", out.display()))
        .arg(&part));
    for (name, data) in &fs.kept {
        let got = std::fs::read(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(got == *data, "{name} differs in the view");
    }

    // What the copy engine would write verifies against the view.
    let copy_path = fs.root.join("copy.img");
    extract(&view, 0, view.size(), &copy_path);
    let copy = RawSource::open(&copy_path).expect("copy");
    let report = converters::verify::verify(&view, &copy, 2).expect("verify");
    assert_eq!(report.virtual_size, view.size());
    uninit
}

/// Where the point of a test is groups without an initialised bitmap, makes sure mke2fs
/// really left some.
fn assert_uninit(groups: Option<usize>) {
    if let Some(n) = groups {
        assert!(n > 0, "mke2fs left no BLOCK_UNINIT group");
    }
}

#[test]
fn ext4_default_many_groups() {
    assert_uninit(check("ext4", 64, &["-b", "4096", "-g", "1024"]));
}

#[test]
fn ext4_1k_blocks() {
    assert_uninit(check("ext4", 48, &["-b", "1024", "-g", "2048"]));
}

#[test]
fn ext4_without_flex_bg() {
    assert_uninit(check(
        "ext4",
        64,
        &["-b", "4096", "-g", "2048", "-O", "^flex_bg"],
    ));
}

#[test]
fn ext4_without_group_checksums() {
    // No BLOCK_UNINIT: mke2fs writes every bitmap.
    check(
        "ext4",
        64,
        &[
            "-b",
            "4096",
            "-g",
            "1024",
            "-O",
            "^metadata_csum,^uninit_bg",
        ],
    );
}

#[test]
fn ext4_uninit_bg_32bit_descriptors() {
    assert_uninit(check(
        "ext4",
        64,
        &[
            "-b",
            "4096",
            "-g",
            "1024",
            "-O",
            "^metadata_csum,uninit_bg,^64bit",
        ],
    ));
}

#[test]
fn ext4_meta_bg() {
    assert_uninit(check(
        "ext4",
        64,
        &["-b", "1024", "-g", "1024", "-O", "meta_bg,^resize_inode"],
    ));
}

#[test]
fn ext4_sparse_super2() {
    assert_uninit(check(
        "ext4",
        64,
        &[
            "-b",
            "4096",
            "-g",
            "1024",
            "-O",
            "sparse_super2",
            "-E",
            "num_backup_sb=1",
        ],
    ));
}

#[test]
fn ext4_no_sparse_super() {
    check(
        "ext4",
        32,
        &[
            "-b",
            "4096",
            "-g",
            "1024",
            "-O",
            "^sparse_super,^resize_inode",
        ],
    );
}

#[test]
fn ext4_64k_blocks() {
    check("ext4", 64, &["-b", "65536"]);
}

#[test]
fn ext3_and_ext2() {
    check("ext3", 32, &["-b", "1024"]);
    check("ext2", 32, &["-b", "4096", "-g", "1024"]);
}

/// Marks `groups` `BLOCK_UNINIT` and zeroes their on-disk bitmaps, as older mke2fs and
/// resize2fs leave groups that hold a superblock backup or descriptor copy (mke2fs 1.47
/// initialises those); `e2fsck -fn` passing proves the kernel's rule for such a bitmap
/// gives the same blocks, so the map must still count exactly dumpe2fs' used blocks.
fn make_uninit(fs: &Fs, groups: &[u64]) {
    let dump = run(Command::new("dumpe2fs").arg(&fs.img));
    let mut cmds = String::new();
    for g in groups {
        let section = dump
            .split("\nGroup ")
            .find(|s| s.starts_with(&format!("{g}:")))
            .unwrap_or_else(|| panic!("no group {g}"));
        assert!(!section.contains("BLOCK_UNINIT"), "group {g}: {section}");
        let bitmap: u64 = section
            .split("Block bitmap at ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("group {g}: {section}"));
        cmds += &format!("zap_block {bitmap}\nset_bg {g} flags 7\nset_bg {g} checksum calc\n");
    }
    let cmdfile = fs.root.join("uninit-cmds");
    std::fs::write(&cmdfile, cmds).expect("cmds");
    run(Command::new("debugfs")
        .arg("-w")
        .arg("-f")
        .arg(&cmdfile)
        .arg(&fs.img));
    run(Command::new("e2fsck").arg("-fn").arg(&fs.img));
}

#[test]
fn uninit_groups_with_superblock_backups() {
    if !tools() {
        return;
    }
    // 4 KiB blocks, flex_bg: groups 5, 7 and 9 hold superblock + descriptor + reserved GDT
    // backups and nothing else.
    let opts = ["-b", "4096", "-g", "1024"];
    let fs = make_fs("ext4", 64, &opts);
    make_uninit(&fs, &[5, 7, 9]);
    check_fs("ext4", 64, &opts, &fs);
    // meta_bg with 16 descriptors a block: 31 holds only a descriptor copy (the last of
    // meta group 1), 25 only a superblock (with flex_bg, 17 and 49 hold others' tables).
    let opts = ["-b", "1024", "-g", "1024", "-O", "meta_bg,^resize_inode"];
    let fs = make_fs("ext4", 64, &opts);
    make_uninit(&fs, &[25, 31]);
    check_fs("ext4", 64, &opts, &fs);
    // meta_bg without flex_bg: 17 and 47 hold a descriptor copy (second and last of their
    // meta groups), 49
    // a superblock and a descriptor copy, each with its own bitmaps and inode table.
    let opts = [
        "-b",
        "1024",
        "-g",
        "1024",
        "-O",
        "meta_bg,^resize_inode,^flex_bg",
    ];
    let fs = make_fs("ext4", 64, &opts);
    make_uninit(&fs, &[17, 25, 47, 49]);
    check_fs("ext4", 64, &opts, &fs);
    // No flex_bg: the group's own bitmaps and inode table are inside it too.
    let opts = ["-b", "4096", "-g", "1024", "-O", "^flex_bg"];
    let fs = make_fs("ext4", 64, &opts);
    make_uninit(&fs, &[5, 7]);
    check_fs("ext4", 64, &opts, &fs);
}

#[test]
fn whole_disk_ext4_uses_its_bitmaps() {
    if !tools() {
        return;
    }
    let fs = make_fs("ext4", 32, &["-b", "4096", "-g", "2048"]);
    let disk = RawSource::open(&fs.img).expect("open");
    let map = used_map(&disk).expect("map");
    assert_eq!(map.used_bytes, (fs.blocks - fs.free) * fs.block_size);
    assert_eq!(map.regions.len(), 1);
    assert!(map.regions[0].why.starts_with("whole disk ext4: "));
}

#[test]
fn bad_superblocks_copy_the_partition_whole() {
    if !tools() {
        return;
    }
    let fs = make_fs("ext4", 16, &["-b", "4096"]);
    let sb = |off: u64, bytes: &[u8], why: &str| {
        let img = fs.root.join("bad.img");
        std::fs::copy(&fs.img, &img).expect("copy");
        File::options()
            .write(true)
            .open(&img)
            .and_then(|f| f.write_all_at(bytes, 1024 + off))
            .expect("corrupt");
        let disk_path = fs.root.join("bad-disk.img");
        let starts = mbr_disk(&[(0x83, &img)], &disk_path);
        let map = used_map(&RawSource::open(&disk_path).expect("open")).expect("map");
        assert_eq!(
            range_bytes_in(&map, starts[0], starts[0] + 16 * MIB),
            16 * MIB
        );
        let r = &map.regions[1];
        assert!(
            r.why.contains("copied whole") && r.why.contains(why),
            "{}",
            r.why
        );
    };
    sb(0x20, &0u32.to_le_bytes(), "blocks per group");
    sb(0x04, &u32::MAX.to_le_bytes(), "do not fit");
    // needs_recovery: the bitmaps on disk may be behind the journal.
    let incompat = {
        let raw = std::fs::read(&fs.img).expect("read");
        u32::from_le_bytes(raw[1024 + 0x60..1024 + 0x64].try_into().expect("4")) | 0x4
    };
    sb(0x60, &incompat.to_le_bytes(), "journal needs recovery");
    sb(0x3A, &0u16.to_le_bytes(), "not cleanly unmounted");
}

#[test]
fn gpt_disk_keeps_both_tables() {
    if !tools() {
        return;
    }
    let fs = make_fs("ext4", 16, &["-b", "4096"]);
    let disk_path = fs.root.join("gpt.img");
    let size = 20 * MIB;
    let mut f = File::options()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&disk_path)
        .expect("disk");
    f.set_len(size).expect("len");
    f.write_all_at(&noise(3, (MIB - 64 * 1024) as usize), 64 * 1024)
        .expect("gap noise");
    let mut gpt = gptman::GPT::new_from(&mut f, 512, [7; 16]).expect("gpt");
    gpt[1] = gptman::GPTPartitionEntry {
        partition_type_guid: [0x0F; 16],
        unique_partition_guid: [1; 16],
        starting_lba: 2048,
        ending_lba: 2048 + 16 * 2048 - 1,
        attribute_bits: 0,
        partition_name: "root".into(),
    };
    gpt.write_into(&mut f).expect("write gpt");
    gptman::GPT::write_protective_mbr_into(&mut f, 512).expect("pmbr");
    f.write_all_at(&std::fs::read(&fs.img).expect("fs"), MIB)
        .expect("fs");
    drop(f);
    let disk = RawSource::open(&disk_path).expect("open");
    let map = used_map(&disk).expect("map");
    let used_fs = (fs.blocks - fs.free) * fs.block_size;
    assert_eq!(
        map.used_bytes,
        MIB + used_fs + 33 * 512,
        "{:#?}",
        map.regions
    );
    assert_eq!(map.ranges.last(), Some(&(size - 33 * 512, size)));
    assert!(map.regions.iter().any(|r| r.why == "backup GPT"));
}

#[test]
fn extended_partitions_keep_their_boot_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ext.img");
    let f = File::create(&path).expect("disk");
    f.write_all_at(&noise(1, (8 * MIB) as usize), 0)
        .expect("noise");
    let entry = |sector: &mut [u8], i: usize, ty: u8, lba: u64, sectors: u64| {
        let e = 446 + 16 * i;
        sector[e..e + 16].fill(0);
        sector[e + 4] = ty;
        sector[e + 8..e + 12].copy_from_slice(&(lba as u32).to_le_bytes());
        sector[e + 12..e + 16].copy_from_slice(&(sectors as u32).to_le_bytes());
    };
    // MBR: partition 1 extended over 1..7 MiB.
    let mut mbr = noise(2, 512);
    for i in 0..4 {
        entry(&mut mbr, i, 0, 0, 0);
    }
    entry(&mut mbr, 0, 0x05, 2048, 6 * 2048);
    mbr[510..].copy_from_slice(&[0x55, 0xAA]);
    f.write_all_at(&mbr, 0).expect("mbr");
    // EBR at 1 MiB: logical partition 5 at 2..4 MiB (relative to the EBR), no next EBR.
    let mut ebr = noise(3, 512);
    for i in 0..4 {
        entry(&mut ebr, i, 0, 0, 0);
    }
    entry(&mut ebr, 0, 0xda, 2048, 2 * 2048);
    ebr[510..].copy_from_slice(&[0x55, 0xAA]);
    f.write_all_at(&ebr, MIB).expect("ebr");
    drop(f);

    let map = used_map(&RawSource::open(&path).expect("open")).expect("map");
    assert_eq!(map.ranges, vec![(0, 4 * MIB)], "{:#?}", map.regions);
    let whys: Vec<(u64, &str)> = map
        .regions
        .iter()
        .map(|r| (r.start / MIB, r.why.as_str()))
        .collect();
    assert_eq!(
        whys,
        vec![
            (0, "partition table and boot loader gap"),
            (1, "partition 1 (extended): boot record"),
            (2, "partition 5: no filesystem recognised: copied whole"),
            (4, "partition 1 (extended): unallocated: zero"),
            (7, "unpartitioned: zero"),
        ]
    );
}

/// All data, every byte its offset's low bits.
struct MemDisk(Vec<u8>);

impl DiskSource for MemDisk {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> converters::Result<()> {
        buf.copy_from_slice(&self.0[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
    fn extent_at(&self, offset: u64, max_len: u64) -> converters::Result<Extent> {
        Ok(Extent {
            offset,
            len: max_len.min(self.size() - offset),
            kind: ExtentKind::Data,
        })
    }
    fn layers(&self) -> Vec<LayerInfo> {
        vec![LayerInfo {
            path: "mem".into(),
            format: "raw".into(),
            subformat: None,
            virtual_size: self.size(),
            files: vec![],
        }]
    }
}

#[test]
fn view_reads_zeros_and_reports_zero_extents_outside_the_ranges() {
    let inner: Arc<dyn DiskSource> =
        Arc::new(MemDisk((0..10_000u32).map(|i| i as u8 | 1).collect()));
    let map = UsedMap {
        disk_size: 10_000,
        ranges: vec![(100, 200), (1000, 1500), (9_990, 20_000)],
        regions: vec![],
        used_bytes: 610,
    };
    let view = UsedOnly::new(inner.clone(), map);
    assert_eq!(view.map().ranges.last(), Some(&(9_990, 10_000)));
    let extents: Vec<Extent> = ExtentIter::new(&view, 0, view.size())
        .collect::<Result<_, _>>()
        .expect("extents");
    let kinds: Vec<(u64, u64, ExtentKind)> =
        extents.iter().map(|e| (e.offset, e.len, e.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            (0, 100, ExtentKind::Zero),
            (100, 100, ExtentKind::Data),
            (200, 800, ExtentKind::Zero),
            (1000, 500, ExtentKind::Data),
            (1500, 8490, ExtentKind::Zero),
            (9990, 10, ExtentKind::Data),
        ]
    );
    // max_len is honoured inside and outside ranges.
    assert_eq!(view.extent_at(150, 10).expect("e").len, 10);
    assert_eq!(view.extent_at(300, 10).expect("e").len, 10);
    assert!(view.extent_at(10_000, 1).is_err());
    let all = read_at(&view, 0, 10_000);
    let src = read_at(inner.as_ref(), 0, 10_000);
    for (i, (&v, &s)) in all.iter().zip(&src).enumerate() {
        let inside = (100..200).contains(&i) || (1000..1500).contains(&i) || i >= 9990;
        assert_eq!(v, if inside { s } else { 0 }, "byte {i}");
    }
    // An unaligned read across a boundary.
    assert_eq!(
        read_at(&view, 195, 10),
        [&src[195..200], &[0u8; 5][..]].concat()
    );
    assert!(view.layers()[0]
        .subformat
        .as_deref()
        .is_some_and(|s| s.contains("used blocks only: 610 of 10000 bytes")));
}

#[test]
fn range_list_coarsens_past_its_cap() {
    let mut l = ranges::RangeList::new(8, 4096);
    for i in 0..100u64 {
        l.push(i * 8192, i * 8192 + 4096);
    }
    assert_eq!(l.filled_gap(), 4096);
    assert_eq!(l.into_vec(), vec![(0, 99 * 8192 + 4096)]);
    let mut v = vec![(10, 20), (0, 5), (5, 7), (15, 30), (40, 40)];
    ranges::normalize(&mut v);
    assert_eq!(v, vec![(0, 7), (10, 30)]);
}
