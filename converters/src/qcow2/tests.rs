//! Reader and writer tests against qemu-img/qemu-io (skipped, with a message, when the tools
//! are missing unless `CI` is set) and the shared corpus.

#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use crate::testutil::have_qemu;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::*;
use crate::compress::Compression;
use crate::sink::DiskSink;
use crate::source::{ExtentIter, ExtentKind};

const MIB: u64 = 1 << 20;

fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn qemu_img(args: &[&str]) -> String {
    String::from_utf8(run("qemu-img", args).stdout).unwrap()
}

fn qemu_io(img: &Path, fmt: &str, cmds: &[&str]) {
    let mut args = vec!["-f", fmt];
    for c in cmds {
        args.push("-c");
        args.push(c);
    }
    args.push(img.to_str().unwrap());
    run("qemu-io", &args);
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn open_plain(path: &Path) -> Result<Box<dyn DiskSource>> {
    open(path, &OpenOptions::default(), &mut ChainGuard::default())
}

fn open_following(path: &Path) -> Result<Box<dyn DiskSource>> {
    let opts = OpenOptions {
        follow_backing: true,
    };
    open(path, &opts, &mut ChainGuard::default())
}

/// Deterministic pseudo-random bytes.
fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Reads the whole source in odd-sized chunks (so reads straddle clusters and tables).
fn read_all(src: &dyn DiskSource) -> Vec<u8> {
    let size = usize::try_from(src.size()).unwrap();
    let mut out = vec![0u8; size];
    let chunk = 777 * 1024 + 512;
    let mut at = 0;
    while at < size {
        let n = chunk.min(size - at);
        src.read_exact_at(&mut out[at..at + n], at as u64).unwrap();
        at += n;
    }
    out
}

fn raw_of(img: &Path) -> Vec<u8> {
    let raw = img.with_extension("ref.raw");
    qemu_img(&["convert", "-O", "raw", s(img), s(&raw)]);
    std::fs::read(raw).unwrap()
}

/// Merged `(start, len)` ranges qemu-img map reports as data.
fn qemu_data_ranges(img: &Path) -> Vec<(u64, u64)> {
    let json = qemu_img(&["map", "--output=json", s(img)]);
    let field = |line: &str, name: &str| -> Option<String> {
        let at = line.find(&format!("\"{name}\": "))? + name.len() + 4;
        Some(line[at..].split([',', '}']).next()?.trim().to_string())
    };
    let ranges = json.lines().filter_map(|l| {
        let start: u64 = field(l, "start")?.parse().ok()?;
        let len: u64 = field(l, "length")?.parse().ok()?;
        (field(l, "data")? == "true").then_some((start, len))
    });
    merge(ranges)
}

fn merge(ranges: impl Iterator<Item = (u64, u64)>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (start, len) in ranges {
        match out.last_mut() {
            Some((s, l)) if *s + *l == start => *l += len,
            _ => out.push((start, len)),
        }
    }
    out
}

fn our_data_ranges(src: &dyn DiskSource) -> Vec<(u64, u64)> {
    let it = ExtentIter::new(src, 0, src.size()).map(|e| e.unwrap());
    merge(it.filter(|e| e.kind.is_data()).map(|e| (e.offset, e.len)))
}

/// Full check of a source against qemu: bytes and allocation map.
fn assert_matches_qemu(src: &dyn DiskSource, img: &Path) {
    let want = raw_of(img);
    let got = read_all(src);
    assert_eq!(got.len(), want.len(), "size");
    assert!(
        got == want,
        "bytes differ from qemu-img convert for {}",
        img.display()
    );
    assert_eq!(
        our_data_ranges(src),
        qemu_data_ranges(img),
        "allocation map"
    );
}

fn new_qcow2(dir: &Path, name: &str, size: u64, opts: &str) -> PathBuf {
    let p = dir.join(name);
    let size = size.to_string();
    let mut args = vec!["create", "-q", "-f", "qcow2"];
    if !opts.is_empty() {
        args.extend(["-o", opts]);
    }
    args.extend([s(&p), &size]);
    qemu_img(&args);
    p
}

/// Writes patterns at the first and last sector, odd offsets, across table boundaries,
/// and zero clusters (both over data and over nothing).
fn scribble(img: &Path, size: u64) {
    let last = size - 512;
    qemu_io(
        img,
        "qcow2",
        &[
            "write -P 0x11 0 512",
            &format!("write -P 0x22 {} 70000", 3 * MIB + 512),
            &format!("write -P 0x33 {} 5000", 2 * MIB - 1000),
            &format!("write -P 0x44 {last} 512"),
            &format!("write -P 0x55 {} {}", 5 * MIB, MIB),
            &format!("write -z {} 131072", 5 * MIB),
            &format!("write -z {} 65536", 8 * MIB),
        ],
    );
}

#[test]
fn reads_v3_and_v2_images_like_qemu() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let size = 10 * MIB + 3 * 512;
    for (name, opts) in [
        ("v3.qcow2", ""),
        ("v2.qcow2", "compat=0.10"),
        ("c4k.qcow2", "cluster_size=4096"),
        ("c512.qcow2", "cluster_size=512"),
        ("c2m.qcow2", "cluster_size=2M"),
        ("v2c4k.qcow2", "compat=0.10,cluster_size=4096"),
    ] {
        let img = new_qcow2(dir.path(), name, size, opts);
        scribble(&img, size);
        let src = open_plain(&img).unwrap();
        assert_matches_qemu(src.as_ref(), &img);
        let sub = src.layers()[0].subformat.clone().unwrap();
        assert_eq!(sub, if opts.contains("0.10") { "v2" } else { "v3" });
    }
}

#[test]
fn zero_clusters_are_zero_and_empty_space_unallocated() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = new_qcow2(dir.path(), "z.qcow2", 4 * MIB, "");
    qemu_io(
        &img,
        "qcow2",
        &["write -P 0x55 0 1M", "write -z 0 128k", "write -z 2M 64k"],
    );
    let src = open_plain(&img).unwrap();
    let kinds: Vec<_> = ExtentIter::new(src.as_ref(), 0, src.size())
        .map(|e| e.unwrap())
        .map(|e| (e.offset, e.len, e.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (0, 128 << 10, ExtentKind::Zero),
            (128 << 10, (1 << 20) - (128 << 10), ExtentKind::Data),
            (MIB, MIB, ExtentKind::Unallocated),
            (2 * MIB, 64 << 10, ExtentKind::Zero),
            (2 * MIB + 65536, 2 * MIB - 65536, ExtentKind::Unallocated),
        ]
    );
    // A single call covers the whole data run, and max_len is honoured.
    let e = src.extent_at(128 << 10, 64 << 20).unwrap();
    assert_eq!(e.len, MIB - (128 << 10));
    assert_eq!(src.extent_at(128 << 10, 4096).unwrap().len, 4096);
}

fn raw_with_patterns(path: &Path, size: u64) -> Vec<u8> {
    let mut data = vec![0u8; usize::try_from(size).unwrap()];
    for (i, chunk) in data.chunks_mut(65536).enumerate() {
        match i % 4 {
            0 => chunk.fill(i as u8),
            1 => chunk.copy_from_slice(&noise(chunk.len(), i as u32)),
            2 => {}
            _ => chunk
                .iter_mut()
                .enumerate()
                .for_each(|(j, b)| *b = (j / 100) as u8),
        }
    }
    std::fs::write(path, &data).unwrap();
    data
}

#[test]
fn reads_compressed_images() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("src.raw");
    let size = 6 * MIB + 512;
    let data = raw_with_patterns(&raw, size);
    for (name, opts) in [
        ("zlib.qcow2", "cluster_size=65536"),
        ("zstd.qcow2", "compression_type=zstd"),
        ("zlib4k.qcow2", "cluster_size=4096"),
        ("zstd2m.qcow2", "compression_type=zstd,cluster_size=2M"),
        ("v2.qcow2", "compat=0.10"),
    ] {
        let img = dir.path().join(name);
        qemu_img(&["convert", "-c", "-O", "qcow2", "-o", opts, s(&raw), s(&img)]);
        let src = open_plain(&img).unwrap();
        assert!(read_all(src.as_ref()) == data, "{name}");
        assert_matches_qemu(src.as_ref(), &img);
    }
}

#[test]
fn reads_extended_l2_subclusters() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let size = 3 * MIB + 512;
    let img = new_qcow2(
        dir.path(),
        "x.qcow2",
        size,
        "extended_l2=on,cluster_size=64k",
    );
    qemu_io(
        &img,
        "qcow2",
        &[
            "write -P 0x61 0 2048",
            "write -P 0x62 8192 4096",
            "write -P 0x63 70000 100000",
            "write -z 12288 4096",
            "write -z 1M 64k",
            &format!("write -P 0x64 {} 512", size - 512),
        ],
    );
    let src = open_plain(&img).unwrap();
    assert_matches_qemu(src.as_ref(), &img);
    // Subcluster granularity: 2 KiB subclusters at 64 KiB clusters.
    let e = src.extent_at(0, MIB).unwrap();
    assert_eq!((e.len, e.kind), (2048, ExtentKind::Data));
    let e = src.extent_at(2048, MIB).unwrap();
    assert_eq!((e.len, e.kind), (6144, ExtentKind::Unallocated));
    let raw = dir.path().join("x.raw");
    let data = raw_with_patterns(&raw, 2 * MIB);
    let c = dir.path().join("xc.qcow2");
    qemu_img(&[
        "convert",
        "-c",
        "-O",
        "qcow2",
        "-o",
        "extended_l2=on",
        s(&raw),
        s(&c),
    ]);
    assert!(read_all(open_plain(&c).unwrap().as_ref()) == data);
}

#[test]
fn backing_chains_need_opt_in_and_then_read_through() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = new_qcow2(dir.path(), "base.qcow2", 4 * MIB, "");
    qemu_io(&base, "qcow2", &["write -P 0x01 0 4M"]);
    let top = dir.path().join("top.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        "base.qcow2",
        "-F",
        "qcow2",
        s(&top),
        "6M",
    ]);
    qemu_io(
        &top,
        "qcow2",
        &[
            "write -P 0x02 1M 64k",
            "write -z 2M 64k",
            "write -P 0x03 5M 4k",
        ],
    );
    let err = open_plain(&top).err().unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("backing file 'base.qcow2'") && msg.contains("--follow-backing"),
        "{msg}"
    );
    let src = open_following(&top).unwrap();
    assert_matches_qemu(src.as_ref(), &top);
    let layers = src.layers();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[1].path, dir.path().join("base.qcow2"));

    // A raw base named by format, and an absolute name.
    let raw = dir.path().join("base.raw");
    raw_with_patterns(&raw, 2 * MIB);
    let top2 = dir.path().join("top2.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        s(&raw),
        "-F",
        "raw",
        s(&top2),
        "2M",
    ]);
    qemu_io(&top2, "qcow2", &["write -P 0x09 64k 64k"]);
    let src = open_following(&top2).unwrap();
    assert_eq!(read_all(src.as_ref()), raw_of(&top2));
}

#[test]
fn backing_loops_are_refused() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.qcow2");
    let b = dir.path().join("b.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", s(&a), "1M"]);
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        "a.qcow2",
        "-F",
        "qcow2",
        s(&b),
        "1M",
    ]);
    // Make a point back at b: rebase -u writes the name without opening it.
    qemu_img(&["rebase", "-u", "-b", "b.qcow2", "-F", "qcow2", s(&a)]);
    let err = crate::probe::open(
        &b,
        None,
        &OpenOptions {
            follow_backing: true,
        },
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("loops"), "{err}");
}

#[test]
fn odd_but_valid_images_read_like_qemu() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for prealloc in ["metadata", "falloc"] {
        let name = format!("{prealloc}.qcow2");
        let img = new_qcow2(
            dir.path(),
            &name,
            3 * MIB,
            &format!("preallocation={prealloc}"),
        );
        qemu_io(&img, "qcow2", &["write -P 0x3 64k 4k"]);
        assert_matches_qemu(open_plain(&img).unwrap().as_ref(), &img);
    }
    // The last data cluster cut short by the end of the file reads zeros past it.
    let img = new_qcow2(dir.path(), "cut.qcow2", MIB, "");
    qemu_io(&img, "qcow2", &["write -P 0x41 0 64k"]);
    let len = std::fs::metadata(&img).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .unwrap()
        .set_len(len - 61440)
        .unwrap();
    assert_matches_qemu(open_plain(&img).unwrap().as_ref(), &img);
    // Dirty and corrupt images are still read (read-only, nothing repaired).
    for (name, bits) in [("dirty.qcow2", 1u64), ("corrupt.qcow2", 3)] {
        let img = new_qcow2(dir.path(), name, MIB, "");
        qemu_io(&img, "qcow2", &["write -P 0x42 4k 8k"]);
        let want = raw_of(&img);
        patch(&img, 72, &bits.to_be_bytes());
        assert!(
            read_all(open_plain(&img).unwrap().as_ref()) == want,
            "{name}"
        );
    }
}

#[test]
fn huge_sparse_images_map_quickly() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let size = 16u64 << 40;
    let img = new_qcow2(dir.path(), "huge.qcow2", size, "");
    qemu_io(
        &img,
        "qcow2",
        &[
            &format!("write -P 0x5 {} 64k", size - 65536),
            "write -P 0x6 1G 4k",
        ],
    );
    let t = std::time::Instant::now();
    let src = open_plain(&img).unwrap();
    assert_eq!(
        crate::source::allocated_bytes(src.as_ref()).unwrap(),
        2 * 65536
    );
    assert_eq!(our_data_ranges(src.as_ref()), qemu_data_ranges(&img));
    assert!(t.elapsed().as_secs() < 5, "took {:?}", t.elapsed());
}

#[test]
fn parallel_reads_agree() {
    if !have_qemu() {
        return;
    }
    use rayon::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("p.raw");
    let data = raw_with_patterns(&raw, 8 * MIB);
    let img = dir.path().join("p.qcow2");
    qemu_img(&["convert", "-c", "-O", "qcow2", s(&raw), s(&img)]);
    let src = open_plain(&img).unwrap();
    let chunk = 300_000usize;
    (0..data.len().div_ceil(chunk))
        .into_par_iter()
        .for_each(|i| {
            let start = i * chunk;
            let n = chunk.min(data.len() - start);
            let mut buf = vec![0u8; n];
            src.read_exact_at(&mut buf, start as u64).unwrap();
            assert!(buf == data[start..start + n]);
        });
}

// ---- hostile input ----

fn patch(path: &Path, at: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, at).unwrap();
}

fn read_u64(path: &Path, at: u64) -> u64 {
    let d = std::fs::read(path).unwrap();
    u64::from_be_bytes(d[at as usize..at as usize + 8].try_into().unwrap())
}

fn full_read(path: &Path) -> Result<Vec<u8>> {
    let src = open_plain(path)?;
    let mut buf = vec![0u8; usize::try_from(src.size()).unwrap()];
    src.read_exact_at(&mut buf, 0)?;
    for e in ExtentIter::new(src.as_ref(), 0, src.size()) {
        e?;
    }
    Ok(buf)
}

#[test]
fn hostile_headers_are_clean_errors() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fresh = |name: &str| {
        let p = new_qcow2(dir.path(), name, 4 * MIB, "");
        qemu_io(&p, "qcow2", &["write -P 0x7 0 128k"]);
        p
    };
    let cases: Vec<(&str, u64, Vec<u8>, &str)> = vec![
        ("magic", 0, b"QFI\x00".to_vec(), "magic"),
        ("cbits", 20, 30u32.to_be_bytes().to_vec(), "cluster_bits"),
        (
            "size",
            24,
            (1u64 << 62).to_be_bytes().to_vec(),
            "virtual size",
        ),
        ("l1big", 36, u32::MAX.to_be_bytes().to_vec(), "l1 table"),
        (
            "l1small",
            24,
            (1u64 << 40).to_be_bytes().to_vec(),
            "too small",
        ),
        (
            "l1off",
            40,
            (1u64 << 50).to_be_bytes().to_vec(),
            "truncated",
        ),
        ("l1odd", 40, 0x30001u64.to_be_bytes().to_vec(), "aligned"),
        ("crypt", 32, 1u32.to_be_bytes().to_vec(), "encrypted"),
        (
            "incompat",
            72,
            (1u64 << 20).to_be_bytes().to_vec(),
            "bit 20",
        ),
        ("hdrlen", 100, 4u32.to_be_bytes().to_vec(), "header_length"),
        ("ctype", 104, [7u8].to_vec(), "compression type 7"),
        (
            "datafile",
            72,
            4u64.to_be_bytes().to_vec(),
            "external data file",
        ),
    ];
    for (name, at, bytes, want) in cases {
        let p = fresh(name);
        patch(&p, at, &bytes);
        let err = full_read(&p)
            .err()
            .unwrap_or_else(|| panic!("{name} accepted"));
        assert!(err.to_string().contains(want), "{name}: {err}");
        assert!(err.is_bad_input(), "{name}: {err}");
    }
}

#[test]
fn hostile_tables_are_clean_errors() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str| {
        let p = new_qcow2(dir.path(), name, 4 * MIB, "");
        qemu_io(&p, "qcow2", &["write -P 0x7 0 128k"]);
        let l1 = read_u64(&p, 40);
        let l2 = read_u64(&p, l1) & entry::OFFSET_MASK;
        (p, l1, l2)
    };
    // L2 table past the end of the file.
    let (p, l1, _) = make("l2eof");
    patch(&p, l1, &((1u64 << 40) | entry::COPIED).to_be_bytes());
    assert!(full_read(&p)
        .err()
        .unwrap()
        .to_string()
        .contains("truncated"));
    // Unaligned L2 table.
    let (p, l1, l2) = make("l2odd");
    patch(&p, l1, &((l2 + 512) | entry::COPIED).to_be_bytes());
    assert!(full_read(&p).err().unwrap().to_string().contains("aligned"));
    // Data cluster past the end of the file.
    let (p, _, l2) = make("dataeof");
    patch(&p, l2, &((1u64 << 40) | entry::COPIED).to_be_bytes());
    assert!(full_read(&p)
        .err()
        .unwrap()
        .to_string()
        .contains("past the end"));
    // Unaligned data cluster.
    let (p, _, l2) = make("dataodd");
    patch(&p, l2, &(0x30200u64 | entry::COPIED).to_be_bytes());
    assert!(full_read(&p).err().unwrap().to_string().contains("aligned"));
    // Garbage compressed cluster.
    let (p, _, l2) = make("badcomp");
    let garbage = entry::CompressedDescriptor::encode(0x200, 600, 16).unwrap();
    patch(&p, l2, &garbage.to_be_bytes());
    assert!(full_read(&p)
        .err()
        .unwrap()
        .to_string()
        .contains("compressed cluster"));
    // A truncated file.
    let (p, _, _) = make("trunc");
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(100).unwrap();
    assert!(full_read(&p)
        .err()
        .unwrap()
        .to_string()
        .contains("truncated"));
}

// ---- corpus ----

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    if p.join("MANIFEST.tsv").exists() {
        Some(p)
    } else {
        eprintln!("skipping: corpus not found at {}", p.display());
        None
    }
}

fn manifest_sha(corpus: &Path, name: &str) -> String {
    let m = std::fs::read_to_string(corpus.join("MANIFEST.tsv")).unwrap();
    let row = m
        .lines()
        .find(|l| l.split('\t').next() == Some(name))
        .unwrap();
    row.split('\t').nth(14).unwrap().to_string()
}

/// sha256 of the whole disk; zero and unallocated extents are hashed without reading.
fn sha256_of(src: &dyn DiskSource) -> String {
    let mut h = Sha256::new();
    let zeros = vec![0u8; MIB as usize];
    let mut buf = vec![0u8; 4 * MIB as usize];
    for e in ExtentIter::new(src, 0, src.size()) {
        let e = e.unwrap();
        let mut at = e.offset;
        while at < e.end() {
            let n = (e.end() - at).min(if e.kind.is_data() { 4 * MIB } else { MIB }) as usize;
            if e.kind.is_data() {
                src.read_exact_at(&mut buf[..n], at).unwrap();
                h.update(&buf[..n]);
            } else {
                h.update(&zeros[..n]);
            }
            at += n as u64;
        }
    }
    format!("{:x}", h.finalize())
}

#[test]
fn corpus_images_hash_like_qemu() {
    let Some(c) = corpus() else { return };
    for name in [
        "dfvfs/ext2.qcow2",
        "dfvfs/windows_volume.qcow2",
        "cdi/invalid-qcow-large-json.img",
    ] {
        let src = crate::probe::open(&c.join(name), None, &OpenOptions::default()).unwrap();
        assert_eq!(sha256_of(src.as_ref()), manifest_sha(&c, name), "{name}");
    }
}

#[test]
fn corpus_malformed_images_are_refused() {
    let Some(c) = corpus() else { return };
    let frag = c.join("libyal-fragments/libqcow-file_header.1");
    let err = crate::probe::open(
        &frag,
        Some(crate::probe::Format::Qcow2),
        &OpenOptions::default(),
    )
    .err()
    .unwrap();
    assert!(err.is_bad_input(), "{err}");
    let v1 = c.join("cdi/invalid-qcow-large-size.img");
    assert!(crate::probe::open(&v1, None, &OpenOptions::default()).is_err());
}

// ---- writer ----

fn sink(path: &Path, size: u64, cluster: u64, comp: Option<Compression>) -> Box<dyn DiskSink> {
    let opts = Qcow2WriteOptions {
        cluster_size: cluster,
        compression: comp,
        compression_level: None,
    };
    Box::new(Qcow2Sink::create(path, size, opts).unwrap())
}

/// Checks a finished image: qemu-img check clean, identical to the raw reference, and
/// read back identically by our own reader.
fn assert_image(img: &Path, reference: &[u8]) {
    let raw = img.with_extension("want.raw");
    std::fs::write(&raw, reference).unwrap();
    let check = Command::new("qemu-img")
        .args(["check", s(img)])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "qemu-img check: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    qemu_img(&["compare", "-q", "-f", "qcow2", "-F", "raw", s(img), s(&raw)]);
    let src = open_plain(img).unwrap();
    assert!(read_all(src.as_ref()) == reference, "read back differs");
}

#[test]
fn writes_images_qemu_accepts() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for cluster in [65536u64, 512, 4096, 2 * MIB] {
        let size = 10 * MIB + 3 * 512;
        let img = dir.path().join(format!("w{cluster}.qcow2"));
        let mut want = vec![0u8; size as usize];
        let mut sk = sink(&img, size, cluster, None);
        assert_eq!(sk.granularity(), cluster);
        let last = (size - 1) / cluster * cluster;
        // Out of order: last cluster, then the middle, then the first.
        let mut put = |sk: &mut Box<dyn DiskSink>, off: u64, data: Vec<u8>| {
            want[off as usize..off as usize + data.len()].copy_from_slice(&data);
            sk.write_all_at(&data, off).unwrap();
        };
        put(&mut sk, last, noise((size - last) as usize, 1));
        let mid = (4 * MIB).next_multiple_of(cluster);
        put(&mut sk, mid, noise(3 * cluster as usize, 2));
        put(&mut sk, 0, noise(cluster as usize, 3));
        put(&mut sk, cluster, vec![0u8; cluster as usize]);
        // A rewrite replaces the first copy (which becomes free, not leaked).
        put(&mut sk, 0, noise(cluster as usize, 4));
        let summary = sk.finish().unwrap();
        assert_eq!(summary.file_size, std::fs::metadata(&img).unwrap().len());
        assert_image(&img, &want);
    }
}

#[test]
fn writes_empty_and_tiny_images() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for size in [0u64, 512, 1000, 64 * MIB] {
        let img = dir.path().join(format!("e{size}.qcow2"));
        sink(&img, size, 65536, None).finish().unwrap();
        let want = vec![0u8; size.next_multiple_of(512) as usize];
        assert_image(&img, &want);
    }
    let img = dir.path().join("sparse.qcow2");
    let size = 1u64 << 40;
    let mut sk = sink(&img, size, 65536, None);
    sk.write_all_at(&[7u8; 65536], size - 65536).unwrap();
    sk.finish().unwrap();
    let out = Command::new("qemu-img")
        .args(["check", s(&img)])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(std::fs::metadata(&img).unwrap().len() < 4 * MIB);
    let src = open_plain(&img).unwrap();
    let mut b = [0u8; 4];
    src.read_exact_at(&mut b, size - 4).unwrap();
    assert_eq!(b, [7; 4]);
}

/// Stores `data` the way the copy engine does: compressed where it saves space.
fn write_compressed(sk: &mut Box<dyn DiskSink>, data: &[u8], cluster: usize) {
    let comp = sk.compression().unwrap();
    let mut out = Vec::new();
    for (i, c) in data.chunks(cluster).enumerate() {
        let off = (i * cluster) as u64;
        if c.iter().all(|b| *b == 0) {
            continue;
        }
        let mut full = c.to_vec();
        full.resize(cluster, 0);
        if comp.compress_cluster(&full, None, &mut out).unwrap() {
            sk.write_compressed_cluster(&out, off).unwrap();
        } else {
            sk.write_all_at(c, off).unwrap();
        }
    }
}

#[test]
fn writes_compressed_images() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("c.raw");
    let data = raw_with_patterns(&raw, 6 * MIB + 1536);
    for (comp, cluster) in [
        (Compression::Zlib, 65536usize),
        (Compression::Zstd, 65536),
        (Compression::Zlib, 4096),
        (Compression::Zstd, 2 << 20),
    ] {
        let img = dir.path().join(format!("{comp:?}{cluster}.qcow2"));
        let mut sk = sink(&img, data.len() as u64, cluster as u64, Some(comp));
        write_compressed(&mut sk, &data, cluster);
        let summary = sk.finish().unwrap();
        assert!(summary.compressed_clusters > 0);
        let mut want = data.clone();
        want.resize(data.len().next_multiple_of(512), 0);
        assert_image(&img, &want);
        let info = qemu_img(&["info", "--output=json", s(&img)]);
        let ctype = if comp == Compression::Zstd {
            "zstd"
        } else {
            "zlib"
        };
        assert!(
            info.contains(&format!("\"compression-type\": \"{ctype}\"")),
            "{info}"
        );
    }
}

#[test]
fn write_zeroes_over_written_clusters() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster = 65536usize;
    let size = 2 * MIB;
    let data: Vec<u8> = (0..size as usize).map(|i| (i / 1000) as u8 | 1).collect();
    let img = dir.path().join("z.qcow2");
    let mut sk = sink(&img, size, cluster as u64, Some(Compression::Zlib));
    sk.write_all_at(&data[..MIB as usize], 0).unwrap();
    write_compressed(&mut sk, &data, cluster);
    // Whole clusters, then partial clusters of standard and compressed data.
    let mut want = data.clone();
    for (off, len) in [
        (0u64, 65536u64),
        (200_000, 1000),
        (MIB + 70_000, 5000),
        (MIB, 65536),
    ] {
        sk.write_zeroes(off, len).unwrap();
        want[off as usize..(off + len) as usize].fill(0);
    }
    sk.write_zeroes(size - 512, 512).unwrap();
    want[size as usize - 512..].fill(0);
    sk.finish().unwrap();
    assert_image(&img, &want);
}

#[test]
fn dropped_sink_leaves_no_file_and_bad_writes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("gone.qcow2");
    let mut sk = sink(&img, 4 * MIB, 65536, None);
    sk.write_all_at(&[1u8; 65536], 0).unwrap();
    assert!(
        sk.write_all_at(&[1u8; 512], 65536).is_err(),
        "partial cluster mid-disk"
    );
    assert!(sk.write_all_at(&[1u8; 65536], 100).is_err(), "unaligned");
    assert!(
        sk.write_all_at(&[1u8; 65536], 4 * MIB).is_err(),
        "past the end"
    );
    assert!(
        sk.write_compressed_cluster(&[1u8; 100], 0).is_err(),
        "no compression set"
    );
    drop(sk);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let opts = Qcow2WriteOptions {
        cluster_size: 3000,
        ..Default::default()
    };
    assert!(Qcow2Sink::create(&img, MIB, opts).is_err());
    let opts = Qcow2WriteOptions {
        cluster_size: 512,
        ..Default::default()
    };
    assert!(Qcow2Sink::create(&img, 1 << 50, opts).is_err());
}

#[test]
fn large_streaming_write_round_trips() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let size = 40 * MIB + 4096;
    let img = dir.path().join("big.qcow2");
    let data = noise(size as usize, 9);
    let mut sk = sink(&img, size, 65536, None);
    // Engine-like: chunks of 1 MiB and 8 MiB, in reverse order.
    let chunks: Vec<(u64, u64)> = (0..size)
        .step_by(MIB as usize)
        .map(|o| (o, MIB.min(size - o)))
        .collect();
    for (o, n) in chunks.iter().rev() {
        sk.write_all_at(&data[*o as usize..(*o + *n) as usize], *o)
            .unwrap();
    }
    sk.finish().unwrap();
    assert_image(&img, &data);
}

#[test]
fn evicted_l2_tables_are_reloaded_and_written_in_place() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("evict.qcow2");
    let (size, cluster) = (20 * MIB + 512, 4096usize);
    let opts = Qcow2WriteOptions {
        cluster_size: cluster as u64,
        compression: Some(Compression::Zstd),
        compression_level: None,
    };
    // 4 KiB clusters: one L2 table maps 2 MiB; only two tables fit in memory.
    let mut sk: Box<dyn DiskSink> = Box::new(
        Qcow2Sink::create(&img, size, opts)
            .unwrap()
            .with_l2_cache_tables(2),
    );
    let data = noise(size as usize, 5);
    let mut want = vec![0u8; size as usize];
    // Jump between tables so each is evicted and reloaded several times.
    for round in 0..3u64 {
        for t in (0..10u64).rev() {
            let off = t * 2 * MIB + round * 3 * cluster as u64;
            let n = cluster * 2;
            sk.write_all_at(&data[off as usize..off as usize + n], off)
                .unwrap();
            want[off as usize..off as usize + n]
                .copy_from_slice(&data[off as usize..off as usize + n]);
        }
    }
    let text: Vec<u8> = (0..cluster).map(|i| (i % 7) as u8).collect();
    for t in 0..10u64 {
        let off = t * 2 * MIB + MIB;
        let mut out = Vec::new();
        assert!(Compression::Zstd
            .compress_cluster(&text, None, &mut out)
            .unwrap());
        sk.write_compressed_cluster(&out, off).unwrap();
        want[off as usize..off as usize + cluster].copy_from_slice(&text);
    }
    sk.write_zeroes(0, 4096).unwrap();
    want[..4096].fill(0);
    sk.write_zeroes(2 * MIB + 3 * 4096 + 100, 50).unwrap();
    want[(2 * MIB + 3 * 4096 + 100) as usize..(2 * MIB + 3 * 4096 + 150) as usize].fill(0);
    let last = size - 512;
    sk.write_all_at(&data[last as usize..], last).unwrap();
    want[last as usize..].copy_from_slice(&data[last as usize..]);
    sk.finish().unwrap();
    assert_image(&img, &want);
}

/// Manual throughput check: `QCOW2_BENCH_IMG=img cargo test --release -p converters
/// qcow2::tests::bench_local -- --ignored --nocapture` reads the image in parallel, then
/// copies it through the sink (next to the image, `.bench-out.qcow2`).
#[test]
#[ignore]
fn bench_local() {
    use rayon::prelude::*;
    let Some(img) = std::env::var_os("QCOW2_BENCH_IMG") else {
        return;
    };
    let img = PathBuf::from(img);
    let t = std::time::Instant::now();
    let src = open_plain(&img).unwrap();
    let chunk = 4 * MIB;
    let n = src.size().div_ceil(chunk);
    let total: u64 = (0..n)
        .into_par_iter()
        .map(|i| {
            let off = i * chunk;
            let len = chunk.min(src.size() - off);
            let mut sum = 0u64;
            let mut pos = off;
            let mut buf = vec![0u8; len as usize];
            while pos < off + len {
                let e = src.extent_at(pos, off + len - pos).unwrap();
                if e.kind.is_data() {
                    let b = &mut buf[..e.len as usize];
                    src.read_exact_at(b, pos).unwrap();
                    sum += b.iter().step_by(4096).map(|x| *x as u64).sum::<u64>();
                }
                pos = e.end();
            }
            sum
        })
        .sum();
    eprintln!("read {} in {:?} ({total})", src.size(), t.elapsed());
    let out = img.with_extension("bench-out.qcow2");
    let t = std::time::Instant::now();
    let mut sk = sink(&out, src.size(), 65536, None);
    let mut buf = vec![0u8; chunk as usize];
    let mut pos = 0;
    while pos < src.size() {
        let e = src.extent_at(pos, chunk).unwrap();
        if e.kind.is_data() {
            let b = &mut buf[..e.len as usize];
            src.read_exact_at(b, pos).unwrap();
            sk.write_all_at(b, pos).unwrap();
        }
        pos = e.end();
    }
    sk.finish().unwrap();
    eprintln!("copied in {:?}", t.elapsed());
}
