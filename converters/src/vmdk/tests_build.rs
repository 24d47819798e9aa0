//! Test builders for the ESXi delta formats no tool here can write: vmfsSparse (`COWD`) and
//! seSparse, laid out the way qemu's reader expects. Each built delta sits over a flat
//! `vmfs` parent through `parentFileNameHint`, and ferry's reading of the chain is compared
//! with `qemu-img convert -O raw` of the same descriptor.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::path::{Path, PathBuf};

use super::tests::{have_qemu, open, p, qemu_data_bytes, run, write_file};
use crate::source::ExtentKind;

/// What the delta holds for one grain.
#[derive(Clone, Copy)]
enum Spec {
    /// A data grain filled with this byte.
    Data(u8),
    /// seSparse only: a zeroed grain (type 2).
    Zero,
    /// seSparse only: an unmapped grain (type 1), which reads as zeros.
    Unmapped,
}

/// Grains to write, in the order they are stored in the file (so physical contiguity
/// follows this list).
type Grains = [(u64, Spec)];

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// A COWD file: header, grain directory at sector 4, 4096-entry tables, then grains.
fn build_cowd(capacity: u64, grain: u64, grains: &Grains) -> Vec<u8> {
    let span = 4096 * grain;
    let gd_entries = capacity.div_ceil(span);
    let gd_sectors = (gd_entries * 4).div_ceil(512);
    let tables_at = 4 + gd_sectors;
    let grains_at = tables_at + gd_entries * 32;
    let mut out = vec![0u8; (grains_at * 512) as usize];
    out[..4].copy_from_slice(b"COWD");
    put_u32(&mut out, 4, 1);
    put_u32(&mut out, 8, 3);
    put_u32(&mut out, 12, capacity as u32);
    put_u32(&mut out, 16, grain as u32);
    put_u32(&mut out, 20, 4);
    put_u32(&mut out, 24, gd_entries as u32);
    for (n, &(index, spec)) in grains.iter().enumerate() {
        let Spec::Data(byte) = spec else {
            panic!("COWD has no zero grains")
        };
        let table = index / 4096;
        let table_sector = tables_at + table * 32;
        put_u32(&mut out, (2048 + table * 4) as usize, table_sector as u32);
        let sector = grains_at + n as u64 * grain;
        put_u32(
            &mut out,
            (table_sector * 512 + (index % 4096) * 4) as usize,
            sector as u32,
        );
        out.resize(out.len() + (grain * 512) as usize, byte);
    }
    out
}

/// A seSparse file: const header, volatile header, directory, tables, grains (4 KiB).
fn build_sesparse(capacity: u64, grains: &Grains) -> Vec<u8> {
    let span = 4096 * 8;
    let gd_entries = capacity.div_ceil(span);
    let gd_sectors = (gd_entries * 8).div_ceil(512);
    let (gd_at, tables_at) = (2, 2 + gd_sectors);
    let grains_at = tables_at + gd_entries * 64;
    let mut out = vec![0u8; (grains_at * 512) as usize];
    for (at, v) in [
        (0, 0xcafe_babe),
        (8, 0x2_0000_0001),
        (16, capacity),
        (24, 8),
        (32, 64),
        (80, 1),
        (88, 1),
        (128, gd_at),
        (136, gd_sectors),
        (144, tables_at),
        (152, gd_entries * 64),
        (192, grains_at),
    ] {
        put_u64(&mut out, at, v);
    }
    put_u64(&mut out, 512, 0xcafe_cafe);
    let mut cluster = 0u64;
    for &(index, spec) in grains {
        let table = index / 4096;
        put_u64(
            &mut out,
            (gd_at * 512 + table * 8) as usize,
            0x1000_0000_0000_0000 | table,
        );
        let entry = match spec {
            Spec::Data(byte) => {
                out.resize(out.len() + 4096, byte);
                cluster += 1;
                let c = cluster - 1;
                (3 << 60) | ((c & 0xfff) << 48) | (c >> 12)
            }
            Spec::Zero => 2 << 60,
            Spec::Unmapped => 1 << 60,
        };
        let at = (tables_at + table * 64) * 512 + (index % 4096) * 8;
        put_u64(&mut out, at as usize, entry);
    }
    out
}

/// Writes a flat `vmfs` parent of `sectors` sectors filled with a position pattern.
fn write_parent(dir: &Path, sectors: u64) {
    let data: Vec<u8> = (0..sectors * 512)
        .map(|i| (i / 512 % 199 + 1) as u8)
        .collect();
    write_file(&dir.join("base-flat.vmdk"), &data);
    let desc = format!(
        "# Disk DescriptorFile\nversion=1\nCID=11111111\nparentCID=ffffffff\ncreateType=\"vmfs\"\n\n\
         RW {sectors} VMFS \"base-flat.vmdk\"\n"
    );
    write_file(&dir.join("base.vmdk"), desc.as_bytes());
}

fn write_child(dir: &Path, create_type: &str, kind: &str, file: &str, sectors: u64) -> PathBuf {
    let desc = format!(
        "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=22222222\nparentCID=11111111\n\
         createType=\"{create_type}\"\nparentFileNameHint=\"base.vmdk\"\n# Extent description\n\
         RW {sectors} {kind} \"{file}\"\n"
    );
    let path = dir.join("child.vmdk");
    write_file(&path, desc.as_bytes());
    path
}

/// Reads the whole chain and compares it with qemu's conversion and data map.
fn assert_chain_matches_qemu(child: &Path) {
    let src = open(child).unwrap();
    let mut got = vec![0u8; src.size() as usize];
    src.read_exact_at(&mut got, 0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let theirs = dir.path().join("theirs.raw");
    run(
        "qemu-img",
        &["convert", "-f", "vmdk", "-O", "raw", p(child), p(&theirs)],
    );
    let expect = std::fs::read(&theirs).unwrap();
    assert_eq!(got.len(), expect.len());
    if let Some(i) = (0..got.len()).find(|&i| got[i] != expect[i]) {
        panic!(
            "first difference at {i:#x}: ours {:#x}, qemu {:#x}",
            got[i], expect[i]
        );
    }
    let ours = crate::source::allocated_bytes(src.as_ref()).unwrap();
    assert_eq!(ours, qemu_data_bytes(child));
    let layers = src.layers();
    assert_eq!(layers.len(), 2);
}

#[test]
fn vmfs_sparse_delta_matches_qemu() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 16-sector grains; the capacity spans two grain tables and ends mid-grain.
    let sectors = 4096 * 16 + 1000 + 5;
    write_parent(dir.path(), sectors);
    let grains = [
        (0, Spec::Data(0xa1)),
        (1, Spec::Data(0xa2)),
        (2, Spec::Data(0xa3)),
        (7, Spec::Data(0xa4)),
        (5, Spec::Data(0xa5)),
        (4095, Spec::Data(0xa6)),
        (4096, Spec::Data(0xa7)),
        (4096 + 62, Spec::Data(0xa8)),
    ];
    let delta = build_cowd(sectors, 16, &grains);
    write_file(&dir.path().join("child-delta.vmdk"), &delta);
    let child = write_child(
        dir.path(),
        "vmfsSparse",
        "VMFSSPARSE",
        "child-delta.vmdk",
        sectors,
    );
    assert_chain_matches_qemu(&child);
    let src = open(&child).unwrap();
    let info = src.layers();
    assert_eq!(info[0].subformat.as_deref(), Some("vmfsSparse"));
    assert_eq!(info[1].subformat.as_deref(), Some("vmfs"));
    assert_eq!(info[0].files.len(), 2);
}

#[test]
fn se_sparse_delta_matches_qemu() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sectors = 32768 * 2 + 800 + 3;
    write_parent(dir.path(), sectors);
    let grains = [
        (0, Spec::Data(0xb1)),
        (1, Spec::Data(0xb2)),
        (3, Spec::Zero),
        (4, Spec::Unmapped),
        (10, Spec::Data(0xb3)),
        (9, Spec::Data(0xb4)),
        (4095, Spec::Data(0xb5)),
        (4096 * 2 + 100, Spec::Data(0xb6)),
        (4096 * 2 + 101, Spec::Zero),
    ];
    let delta = build_sesparse(sectors, &grains);
    write_file(&dir.path().join("child-sesparse.vmdk"), &delta);
    let child = write_child(
        dir.path(),
        "seSparse",
        "SESPARSE",
        "child-sesparse.vmdk",
        sectors,
    );
    assert_chain_matches_qemu(&child);
    let src = open(&child).unwrap();
    let e = src.extent_at(3 * 4096, u64::MAX).unwrap();
    assert_eq!((e.kind, e.len), (ExtentKind::Zero, 2 * 4096));
    assert_eq!(src.layers()[0].subformat.as_deref(), Some("seSparse"));
}

#[test]
fn hostile_deltas_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let sectors = 4096 * 8;
    write_parent(dir.path(), sectors);
    let child = write_child(dir.path(), "vmfsSparse", "VMFSSPARSE", "d.vmdk", sectors);
    let good = build_cowd(sectors, 8, &[(3, Spec::Data(1))]);
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut huge = good.clone();
    put_u32(&mut huge, 24, 0); // grain directory with no entries
    cases.push(("grain directory has", huge));
    let mut gt_past_end = good.clone();
    put_u32(&mut gt_past_end, 2048, 0x00ff_ffff);
    cases.push(("past the end", gt_past_end));
    let mut grain0 = good.clone();
    put_u32(&mut grain0, 16, 0);
    cases.push(("grain size", grain0));
    let mut small = good.clone();
    put_u32(&mut small, 12, 100);
    cases.push(("descriptor maps", small));
    cases.push(("truncated", good[..300].to_vec()));
    let mut magic = good.clone();
    magic[..4].copy_from_slice(b"XXXX");
    cases.push(("magic", magic));
    for (want, bytes) in cases {
        write_file(&dir.path().join("d.vmdk"), &bytes);
        let err = open(&child)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(want), "want {want:?}, got {err:?}");
    }
    // A data grain pointing past the end of the file fails on read, not with a panic.
    let mut bad_grain = good;
    let gt = 4 + 1; // tables start right after the one-sector directory
    put_u32(&mut bad_grain, gt * 512 + 3 * 4, 0x7fff_0000);
    write_file(&dir.path().join("d.vmdk"), &bad_grain);
    let src = open(&child).unwrap();
    let mut buf = vec![0u8; 4096];
    let err = src
        .read_exact_at(&mut buf, 3 * 4096)
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn hostile_sesparse_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let sectors = 32768;
    write_parent(dir.path(), sectors);
    let child = write_child(dir.path(), "seSparse", "SESPARSE", "s.vmdk", sectors);
    let good = build_sesparse(sectors, &[(0, Spec::Data(1)), (1, Spec::Zero)]);
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut gd = good.clone();
    put_u64(&mut gd, 1024, 0x2000_0000_0000_0000);
    cases.push(("grain directory entry", gd));
    let mut version = good.clone();
    put_u64(&mut version, 8, 7);
    cases.push(("version", version));
    let mut dirty = good.clone();
    put_u64(&mut dirty, 512 + 24, 1);
    cases.push(("journal", dirty));
    for (want, bytes) in cases {
        write_file(&dir.path().join("s.vmdk"), &bytes);
        let err = open(&child)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(want), "want {want:?}, got {err:?}");
    }
    let mut gte = good;
    let tables_at = 3 * 512; // const, volatile, one directory sector
    put_u64(&mut gte, tables_at + 8, 0x0000_0000_0000_0005);
    write_file(&dir.path().join("s.vmdk"), &gte);
    let src = open(&child).unwrap();
    let err = src.extent_at(4096, 4096).unwrap_err().to_string();
    assert!(err.contains("grain table entry"), "{err}");
}

#[test]
fn flat_delta_holes_do_not_show_the_parent() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sectors = 8192;
    write_parent(dir.path(), sectors);
    let flat = std::fs::File::create(dir.path().join("child-flat.vmdk")).unwrap();
    flat.set_len(sectors * 512).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&flat, &[0xee; 8192], 1 << 20).unwrap();
    drop(flat);
    let child = write_child(
        dir.path(),
        "monolithicFlat",
        "FLAT",
        "child-flat.vmdk\" \"0",
        sectors,
    );
    // write_child quotes the name; patch the line into `FLAT "child-flat.vmdk" 0`.
    let text = std::fs::read_to_string(&child)
        .unwrap()
        .replace("\" \"0\"", "\" 0");
    write_file(&child, text.as_bytes());
    assert_chain_matches_qemu(&child);
    let src = open(&child).unwrap();
    let e = src.extent_at(0, u64::MAX).unwrap();
    assert_eq!((e.kind, e.len), (ExtentKind::Zero, 1 << 20));
}
