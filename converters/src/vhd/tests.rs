//! VHD reader tests: qemu-built images compared byte for byte with `qemu-img convert`,
//! Rust-built differencing chains, the shared corpus, header fragments and hostile input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::testutil::{have_qemu, run};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::footer::{DiskType, Footer};
use super::header::DynHeader;
use super::parent::resolve;
use super::testbuild::{utf16le, VhdBuilder};
use crate::chain::ChainGuard;
use crate::probe::OpenOptions;
use crate::source::{allocated_bytes, DiskSource, ExtentIter, ExtentKind};

fn open_vhd(path: &Path) -> crate::Result<Box<dyn DiskSource>> {
    let mut guard = ChainGuard::default();
    crate::probe::open_layer(
        path,
        Some(crate::Format::Vhd),
        &OpenOptions::default(),
        &mut guard,
    )
}

fn qemu_write(path: &Path, pattern: u8, offset: u64, len: u64) {
    let cmd = format!("write -P {pattern:#x} {offset} {len}");
    run(
        "qemu-io",
        &["-f", "vpc", "-c", &cmd, path.to_str().unwrap()],
    );
}

fn qemu_raw(path: &Path, dir: &Path) -> Vec<u8> {
    let out = dir.join("expected.raw");
    run(
        "qemu-img",
        &[
            "convert",
            "-f",
            "vpc",
            "-O",
            "raw",
            path.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
    );
    std::fs::read(out).unwrap()
}

/// Sum of `length` over `"data": true, "zero": false` entries of `qemu-img map --output=json`.
fn qemu_data_bytes(path: &Path) -> u64 {
    let json = run(
        "qemu-img",
        &["map", "-f", "vpc", "--output=json", path.to_str().unwrap()],
    );
    json_data_ranges(&json).iter().map(|r| r.1).sum()
}

/// (start, length) of the entries of a qemu-img map JSON listing that hold data (`"data":
/// true` and not `"zero": true`, which qemu reports for the holes of a fixed disk).
fn json_data_ranges(json: &str) -> Vec<(u64, u64)> {
    let field = |entry: &str, key: &str| -> u64 {
        let at = entry.find(key).unwrap() + key.len();
        let digits: String = entry[at..]
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap()
    };
    json.split('{')
        .filter(|e| e.contains("\"data\": true") && e.contains("\"zero\": false"))
        .map(|e| (field(e, "\"start\""), field(e, "\"length\"")))
        .collect()
}

fn read_all(src: &dyn DiskSource) -> Vec<u8> {
    let mut buf = vec![0u8; usize::try_from(src.size()).unwrap()];
    src.read_exact_at(&mut buf, 0).unwrap();
    buf
}

/// Reads every byte through extents (data read, the rest taken as zeros) and through
/// odd-sized positional reads, and checks both against `expected`.
fn assert_matches(src: &dyn DiskSource, expected: &[u8]) {
    assert_eq!(src.size(), expected.len() as u64);
    assert!(read_all(src) == expected, "full read differs");
    for e in ExtentIter::new(src, 0, src.size()) {
        let e = e.unwrap();
        let range = usize::try_from(e.offset).unwrap()..usize::try_from(e.end()).unwrap();
        if !e.kind.is_data() {
            assert!(
                expected[range].iter().all(|&b| b == 0),
                "non-data extent {e:?} holds data"
            );
        }
    }
    let mut pos = 0usize;
    let step = 4093usize * 7;
    while pos < expected.len() {
        let n = step.min(expected.len() - pos);
        let mut buf = vec![0u8; n];
        src.read_exact_at(&mut buf, pos as u64).unwrap();
        assert!(buf == expected[pos..pos + n], "read at {pos:#x} differs");
        pos += n;
    }
}

/// Writes that touch the first and last sector, odd offsets and block boundaries.
fn pattern_writes(path: &Path, size: u64) {
    qemu_write(path, 0x5a, 0, 512);
    qemu_write(path, 0x11, 12345, 1000);
    qemu_write(path, 0x22, (2 << 20) - 700, 1400);
    qemu_write(path, 0x33, (6 << 20) + 3, 3 << 20);
    qemu_write(path, 0xa5, size - 512, 512);
}

fn check_qemu_image(subformat: &str, size_arg: &str, extra: &[&str]) {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{subformat}.vhd"));
    let opt = format!("subformat={subformat}");
    let mut args = vec!["create", "-q", "-f", "vpc", "-o", &opt];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[path.to_str().unwrap(), size_arg]);
    run("qemu-img", &args);
    let expected_len = qemu_raw(&path, dir.path()).len() as u64;
    pattern_writes(&path, expected_len);
    let expected = qemu_raw(&path, dir.path());
    let src = open_vhd(&path).unwrap();
    assert_matches(src.as_ref(), &expected);
    assert_eq!(
        allocated_bytes(src.as_ref()).unwrap(),
        qemu_data_bytes(&path)
    );
    let layers = src.layers();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0].format, "vhd");
    assert_eq!(layers[0].subformat.as_deref(), Some(subformat));
    assert_eq!(layers[0].files, vec![path.clone()]);
}

#[test]
fn qemu_dynamic_matches_qemu() {
    check_qemu_image("dynamic", "21000000", &[]);
}

#[test]
fn qemu_fixed_matches_qemu() {
    check_qemu_image("fixed", "21000000", &[]);
}

#[test]
fn qemu_force_size_dynamic_uses_current_size() {
    check_qemu_image("dynamic", "20972032", &["-o", "force_size=on"]);
}

#[test]
fn qemu_force_size_fixed_uses_current_size() {
    check_qemu_image("fixed", "20972032", &["-o", "force_size=on"]);
}

#[test]
fn dynamic_extents_merge_blocks_and_clip() {
    let mut b = VhdBuilder::new(10 << 20, 1 << 20, 3);
    for block in 2..6u64 {
        b.write(block << 20, &vec![u8::try_from(block).unwrap(); 512]);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.vhd");
    b.write_to(&path);
    let src = open_vhd(&path).unwrap();
    let e = src.extent_at(0, u64::MAX).unwrap();
    assert_eq!((e.len, e.kind), (2 << 20, ExtentKind::Unallocated));
    let e = src.extent_at((2 << 20) + 7, u64::MAX).unwrap();
    assert_eq!((e.len, e.kind), ((4 << 20) - 7, ExtentKind::Data));
    let e = src.extent_at(3 << 20, 1000).unwrap();
    assert_eq!((e.len, e.kind), (1000, ExtentKind::Data));
    let e = src.extent_at(6 << 20, u64::MAX).unwrap();
    assert_eq!((e.len, e.kind), (4 << 20, ExtentKind::Unallocated));
    assert!(src.extent_at(10 << 20, 1).is_err());
    assert!(src.read_exact_at(&mut [0u8; 2], (10 << 20) - 1).is_err());
    // Dynamic disks ignore the bitmap: the whole block is data, unwritten sectors included.
    let mut buf = vec![0u8; 1024];
    src.read_exact_at(&mut buf, 2 << 20).unwrap();
    assert!(buf[..512].iter().all(|&x| x == 2));
    assert!(buf[512..].iter().all(|&x| x == 0xEE));
}

// ---------------------------------------------------------------- differencing chains

fn parent_footer_id(path: &Path) -> [u8; 16] {
    let bytes = std::fs::read(path).unwrap();
    let f: [u8; 512] = bytes[bytes.len() - 512..].try_into().unwrap();
    Footer::parse(&f).unwrap().unique_id
}

/// A qemu-made dynamic parent with patterns, plus its raw contents.
fn make_parent(dir: &Path, size: u64) -> (PathBuf, Vec<u8>) {
    let path = dir.join("parent.vhd");
    let s = size.to_string();
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "vpc",
            "-o",
            "force_size=on",
            path.to_str().unwrap(),
            &s,
        ],
    );
    qemu_write(&path, 0x61, 0, 1 << 20);
    qemu_write(&path, 0x62, (3 << 20) + 512, 4096);
    qemu_write(&path, 0x63, size - 1024, 1024);
    let raw = qemu_raw(&path, dir);
    (path, raw)
}

/// A child over `parent` with a few sectors of its own; returns it and the merged bytes.
fn make_child(dir: &Path, parent: &Path, parent_raw: &[u8], name: &str) -> (VhdBuilder, Vec<u8>) {
    let size = parent_raw.len() as u64;
    let mut b = VhdBuilder::new(size, 2 << 20, 4);
    b.creator = *b"tap\0";
    b.unique_id = [0x22; 16];
    b.parent_id = parent_footer_id(parent);
    b.parent_name = name.into();
    let mut merged = parent_raw.to_vec();
    let writes: [(u64, usize, u8); 4] = [
        (512, 1024, 0x71),
        ((3 << 20) - 512, 2048, 0x72),
        (5 << 20, 512, 0x73),
        (size - 512, 512, 0x74),
    ];
    for (off, len, pat) in writes {
        b.write(off, &vec![pat; len]);
        let o = usize::try_from(off).unwrap();
        merged[o..o + len].fill(pat);
    }
    let _ = dir;
    (b, merged)
}

fn chain_fixture(
    locators: Vec<([u8; 4], Vec<u8>)>,
    header_name: &str,
) -> Option<(tempfile::TempDir, PathBuf, Vec<u8>)> {
    if !have_qemu() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let (parent, raw) = make_parent(dir.path(), 8 << 20);
    let (mut b, merged) = make_child(dir.path(), &parent, &raw, header_name);
    b.locators = locators;
    let child = dir.path().join("child.vhd");
    b.write_to(&child);
    Some((dir, child, merged))
}

#[test]
fn differencing_reads_through_to_parent_w2ru() {
    let locs = vec![
        (*b"W2ku", utf16le("C:\\VMs\\elsewhere\\parent.vhd")),
        (*b"W2ru", utf16le(".\\parent.vhd")),
    ];
    let Some((_d, child, merged)) = chain_fixture(locs, "C:\\VMs\\parent.vhd") else {
        return;
    };
    let src = open_vhd(&child).unwrap();
    assert_matches(src.as_ref(), &merged);
    let layers = src.layers();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0].subformat.as_deref(), Some("differencing"));
    assert_eq!(layers[1].subformat.as_deref(), Some("dynamic"));
    // Bitmap runs: sector 0 from the parent, sectors 1-2 from the child.
    let e = src.extent_at(512, u64::MAX).unwrap();
    assert_eq!((e.offset, e.len, e.kind), (512, 1024, ExtentKind::Data));
}

#[test]
fn differencing_top_layer_reports_bitmap_runs() {
    let mut b = VhdBuilder::new(4 << 20, 2 << 20, 4);
    b.write(512, &[7u8; 1024]);
    b.write(4096, &[8u8; 512]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("top.vhd");
    b.write_to(&path);
    let file = crate::image_file::ImageFile::open(&path).unwrap();
    let footer = super::footer::locate(&file).unwrap();
    let header = super::read_header(&file, &footer).unwrap();
    let top = super::dynamic::DynamicSource::new(file, &header, 4 << 20, true).unwrap();
    let kinds: Vec<(u64, u64, ExtentKind)> = ExtentIter::new(&top, 0, 8192)
        .map(|e| e.map(|e| (e.offset, e.len, e.kind)).unwrap())
        .collect();
    use ExtentKind::{Data as D, Unallocated as U};
    assert_eq!(
        kinds,
        vec![
            (0, 512, U),
            (512, 1024, D),
            (1536, 2560, U),
            (4096, 512, D),
            (4608, 3584, U)
        ]
    );
    let e = top.extent_at(4608, u64::MAX).unwrap();
    assert_eq!((e.len, e.kind), ((4 << 20) - 4608, U));
    // Sectors left to the parent read as zero in this layer, even mid-sector.
    let mut buf = vec![1u8; 700];
    top.read_exact_at(&mut buf, 100).unwrap();
    assert!(buf[..412].iter().all(|&x| x == 0));
    assert!(buf[412..].iter().all(|&x| x == 7));
}

#[test]
fn differencing_long_bitmap_runs_cross_bytes_and_blocks() {
    let mut b = VhdBuilder::new(3 << 20, 1 << 20, 4);
    b.write(3 * 512, &vec![5u8; 64 * 512]);
    b.write((1 << 20) - 512, &[6u8; 1024]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("top.vhd");
    b.write_to(&path);
    let file = crate::image_file::ImageFile::open(&path).unwrap();
    let footer = super::footer::locate(&file).unwrap();
    let header = super::read_header(&file, &footer).unwrap();
    let top = super::dynamic::DynamicSource::new(file, &header, 3 << 20, true).unwrap();
    let e = top.extent_at(1536, u64::MAX).unwrap();
    assert_eq!((e.len, e.kind), (64 * 512, ExtentKind::Data));
    let e = top.extent_at(67 * 512, u64::MAX).unwrap();
    assert_eq!(
        (e.offset + e.len, e.kind),
        ((1 << 20) - 512, ExtentKind::Unallocated)
    );
    // A data run that crosses into the next allocated block merges.
    let e = top.extent_at((1 << 20) - 512, u64::MAX).unwrap();
    assert_eq!((e.len, e.kind), (1024, ExtentKind::Data));
    // Block 2 is unallocated: one run to the end of the disk.
    let e = top.extent_at((1 << 20) + 512, u64::MAX).unwrap();
    assert_eq!((e.len, e.kind), ((2 << 20) - 512, ExtentKind::Unallocated));
}

#[test]
fn differencing_macx_relative_url_and_header_name_fallback() {
    let locs = vec![(*b"MacX", b"file://./parent.vhd".to_vec())];
    if let Some((_d, child, merged)) = chain_fixture(locs, "") {
        assert_matches(open_vhd(&child).unwrap().as_ref(), &merged);
    }
    // No locators at all: the header's unicode name (an absolute Windows path) is used.
    if let Some((_d, child, merged)) = chain_fixture(vec![], "D:\\xen\\sr\\parent.vhd") {
        assert_matches(open_vhd(&child).unwrap().as_ref(), &merged);
    }
}

#[test]
fn differencing_parent_with_dotdot_is_refused() {
    let locs = vec![(*b"W2ru", utf16le("..\\parent.vhd"))];
    let Some((_d, child, _)) = chain_fixture(locs, "") else {
        return;
    };
    let err = open_vhd(&child).err().unwrap().to_string();
    assert!(err.contains("'..'"), "{err}");
}

#[test]
fn differencing_parent_uuid_mismatch_is_an_error() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (parent, raw) = make_parent(dir.path(), 8 << 20);
    let (mut b, _) = make_child(dir.path(), &parent, &raw, "parent.vhd");
    b.parent_id = [0x99; 16];
    let child = dir.path().join("child.vhd");
    b.write_to(&child);
    let err = open_vhd(&child).err().unwrap().to_string();
    assert!(err.contains("unique id"), "{err}");
}

#[test]
fn differencing_self_reference_is_a_loop_error() {
    let mut b = VhdBuilder::new(4 << 20, 2 << 20, 4);
    b.unique_id = [0x33; 16];
    b.parent_id = [0x33; 16];
    b.parent_name = "loop.vhd".into();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loop.vhd");
    b.write_to(&path);
    let err = open_vhd(&path).err().unwrap().to_string();
    assert!(err.contains("loops"), "{err}");
}

#[test]
fn differencing_missing_parent_names_it() {
    let mut b = VhdBuilder::new(4 << 20, 2 << 20, 4);
    b.parent_name = "C:\\disks\\base.vhd".into();
    b.locators = vec![(*b"W2ru", utf16le(".\\base.vhd"))];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("child.vhd");
    b.write_to(&path);
    let err = open_vhd(&path).err().unwrap();
    assert!(err.is_bad_input());
    let msg = err.to_string();
    assert!(
        msg.contains("C:\\disks\\base.vhd") && msg.contains("not found"),
        "{msg}"
    );
}

#[test]
fn parent_paths_resolve_inside_the_folder_only() {
    let dir = Path::new("/srv/disks");
    assert_eq!(resolve(dir, ".\\p.vhd").unwrap(), dir.join("p.vhd"));
    assert_eq!(resolve(dir, "sub\\p.vhd").unwrap(), dir.join("sub/p.vhd"));
    assert_eq!(resolve(dir, "C:\\a\\b\\p.vhd").unwrap(), dir.join("p.vhd"));
    assert_eq!(
        resolve(dir, "\\\\server\\share\\p.vhd").unwrap(),
        dir.join("p.vhd")
    );
    assert_eq!(resolve(dir, "./p.vhd").unwrap(), dir.join("p.vhd"));
    assert!(resolve(dir, "..\\p.vhd").is_err());
    assert!(resolve(dir, "a/../../p.vhd").is_err());
    assert!(resolve(dir, "/etc/p.vhd").is_err());
    assert!(resolve(dir, "C:\\").is_err());
    assert!(resolve(dir, "").is_err());
}

// ---------------------------------------------------------------- corpus

fn corpus(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: corpus file {rel} absent");
        None
    }
}

/// (virtual_size, raw_sha256) from MANIFEST.tsv.
fn manifest(rel: &str) -> (u64, String) {
    let m = corpus("MANIFEST.tsv").unwrap();
    let text = std::fs::read_to_string(m).unwrap();
    let row = text
        .lines()
        .find(|l| l.starts_with(&format!("{rel}\t")))
        .unwrap();
    let cols: Vec<&str> = row.split('\t').collect();
    (cols[11].parse().unwrap(), cols[14].to_string())
}

/// SHA-256 of the whole disk; non-data extents are hashed as zeros without reading.
fn hash_source(src: &dyn DiskSource) -> String {
    let mut h = Sha256::new();
    let zeros = vec![0u8; 1 << 20];
    let mut buf = vec![0u8; 1 << 20];
    for e in ExtentIter::new(src, 0, src.size()) {
        let e = e.unwrap();
        let mut pos = e.offset;
        while pos < e.end() {
            let n = usize::try_from((e.end() - pos).min(1 << 20)).unwrap();
            if e.kind.is_data() {
                src.read_exact_at(&mut buf[..n], pos).unwrap();
                h.update(&buf[..n]);
            } else {
                h.update(&zeros[..n]);
            }
            pos += n as u64;
        }
    }
    format!("{:x}", h.finalize())
}

#[test]
fn corpus_ext2_matches_manifest() {
    let Some(p) = corpus("dfvfs/ext2.vhd") else {
        return;
    };
    let (size, sha) = manifest("dfvfs/ext2.vhd");
    let src = open_vhd(&p).unwrap();
    assert_eq!(src.size(), size);
    assert_eq!(hash_source(src.as_ref()), sha);
}

#[test]
fn corpus_bad_checksums_are_errors() {
    for rel in ["dfvfs/image.vhd", "dfvfs/image-differential.vhd"] {
        let Some(p) = corpus(rel) else { continue };
        let err = open_vhd(&p).err().unwrap().to_string();
        assert!(err.contains("checksum") && !err.contains('\n'), "{err}");
    }
}

#[test]
fn corpus_fat_differential_missing_parent() {
    let Some(p) = corpus("dfvfs/fat-differential.vhd") else {
        return;
    };
    let err = open_vhd(&p).err().unwrap().to_string();
    assert!(
        err.contains("fat-parent.vhd") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn corpus_afl5_is_refused_quickly() {
    let Some(p) = corpus("qemu-sample_images/afl5.img") else {
        return;
    };
    let t = Instant::now();
    let err = open_vhd(&p).err().unwrap().to_string();
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(!err.contains('\n'), "{err}");
}

/// The two ~136 GB, nearly empty images: the size must match the MANIFEST and the data
/// extents and bytes must match qemu's map and conversion (the full SHA-256 is in an
/// ignored test, as hashing 136 GB of zeros takes minutes).
#[test]
fn corpus_big_dynamic_images_match_qemu() {
    for rel in [
        "qemu-sample_images/hyperv2012r2-dynamic.vhd",
        "qemu-sample_images/virtualpc-dynamic.vhd",
    ] {
        let Some(p) = corpus(rel) else { continue };
        let (size, _) = manifest(rel);
        let src = open_vhd(&p).unwrap();
        assert_eq!(src.size(), size, "{rel}");
        if !have_qemu() {
            continue;
        }
        let ours: Vec<(u64, u64)> = ExtentIter::new(src.as_ref(), 0, size)
            .map(|e| e.unwrap())
            .filter(|e| e.kind.is_data())
            .map(|e| (e.offset, e.len))
            .collect();
        let json = run(
            "qemu-img",
            &["map", "-f", "vpc", "--output=json", p.to_str().unwrap()],
        );
        assert_eq!(merge(json_data_ranges(&json)), ours, "{rel}");
        compare_data_with_qemu_io(src.as_ref(), &p, &ours);
    }
}

fn merge(ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, l) in ranges {
        match out.last_mut() {
            Some(last) if last.0 + last.1 == s => last.1 += l,
            _ => out.push((s, l)),
        }
    }
    out
}

/// Compares data ranges with qemu's reads (`qemu-img dd` is not selective, so the bytes are
/// checked against a pattern read of each range through qemu-io's `read -v`-free `-P`).
fn compare_data_with_qemu_io(src: &dyn DiskSource, path: &Path, ranges: &[(u64, u64)]) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("whole.raw");
    // Sparse conversion: qemu writes only the data ranges.
    run(
        "qemu-img",
        &[
            "convert",
            "-f",
            "vpc",
            "-O",
            "raw",
            "-S",
            "4k",
            path.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
    );
    let raw = std::fs::File::open(&out).unwrap();
    use std::os::unix::fs::FileExt;
    for &(s, l) in ranges {
        let n = usize::try_from(l).unwrap();
        let (mut a, mut b) = (vec![0u8; n], vec![0u8; n]);
        src.read_exact_at(&mut a, s).unwrap();
        raw.read_exact_at(&mut b, s).unwrap();
        assert!(a == b, "data at {s:#x} differs from qemu");
    }
}

#[test]
#[ignore = "hashes ~136 GB per image; run with --ignored in release mode"]
fn corpus_big_dynamic_images_full_sha256() {
    for rel in [
        "qemu-sample_images/hyperv2012r2-dynamic.vhd",
        "qemu-sample_images/virtualpc-dynamic.vhd",
    ] {
        let Some(p) = corpus(rel) else { continue };
        let (_, sha) = manifest(rel);
        assert_eq!(hash_source(open_vhd(&p).unwrap().as_ref()), sha, "{rel}");
    }
}

#[test]
fn corpus_disk2vhd_bz2_matches_manifest() {
    let rel = "qemu-sample_images/d2v-zerofilled.vhd.bz2";
    let Some(p) = corpus(rel) else { return };
    let Ok(out) = Command::new("bzip2").arg("-dc").arg(&p).output() else {
        eprintln!("skipping: bzip2 not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let vhd = dir.path().join("d2v.vhd");
    std::fs::write(&vhd, out.stdout).unwrap();
    let (size, sha) = manifest(rel);
    let src = open_vhd(&vhd).unwrap();
    assert_eq!(src.size(), size);
    assert_eq!(hash_source(src.as_ref()), sha);
}

// ---------------------------------------------------------------- fragments

fn fragment(rel: &str) -> Option<Vec<u8>> {
    let p = corpus(rel)?;
    let mut v = Vec::new();
    std::fs::File::open(p).unwrap().read_to_end(&mut v).unwrap();
    Some(v)
}

#[test]
fn libvhdi_footer_fragment() {
    let Some(raw) = fragment("libyal-fragments/libvhdi-file_footer.1") else {
        return;
    };
    let f = Footer::parse(&raw[..512].try_into().unwrap()).unwrap();
    assert_eq!(f.disk_type(), Ok(DiskType::Differencing));
    assert_eq!(&f.creator_app, b"vpc ");
    assert_eq!(f.current_size, 0x2000_0000);
    // 'vpc ' sizes by geometry: 1040 x 16 x 63 sectors.
    assert_eq!(f.virtual_size(), Ok(1040 * 16 * 63 * 512));
    let mut bad: [u8; 512] = raw[..512].try_into().unwrap();
    bad[100] ^= 1;
    assert!(Footer::parse(&bad).unwrap_err().contains("checksum"));
}

#[test]
fn libvhdi_dynamic_header_fragment() {
    let Some(raw) = fragment("libyal-fragments/libvhdi-dynamic_disk_header.1") else {
        return;
    };
    let h = DynHeader::parse(&raw[..1024].try_into().unwrap()).unwrap();
    assert_eq!(h.table_offset, 0x600);
    assert_eq!(h.max_table_entries, 0x100);
    assert_eq!(h.block_size, 0x20_0000);
    assert_eq!(h.bitmap_size(), 512);
    assert_eq!(h.parent_name, "dynamic.vhd");
    let codes: Vec<&[u8; 4]> = h.locators.iter().map(|l| &l.platform).collect();
    assert_eq!(codes, vec![b"W2ku", b"W2ru", b"Wi2k", b"Wi2r"]);
    assert_eq!(
        (h.locators[1].data_length, h.locators[1].data_offset),
        (0x1a, 0x1000)
    );
}

#[test]
fn virtual_size_follows_qemu_creator_table() {
    let mut f = Footer {
        data_offset: 512,
        creator_app: *b"vpc ",
        current_size: 10 << 20,
        cylinders: 100,
        heads: 4,
        sectors_per_track: 17,
        disk_type_raw: 3,
        unique_id: [0; 16],
    };
    assert_eq!(f.virtual_size(), Ok(100 * 4 * 17 * 512));
    f.creator_app = *b"qemu";
    assert_eq!(f.virtual_size(), Ok(100 * 4 * 17 * 512));
    for app in [b"win ", b"qem2", b"d2v ", b"CTXS", b"tap\0"] {
        f.creator_app = *app;
        assert_eq!(f.virtual_size(), Ok(10 << 20));
    }
    f.creator_app = *b"vpc ";
    (f.cylinders, f.heads, f.sectors_per_track) = (65535, 16, 255);
    assert_eq!(f.virtual_size(), Ok(10 << 20));
    f.current_size = (0xff00_0000u64 + 1) * 512;
    assert!(f.virtual_size().unwrap_err().contains("2040 GiB"));
    f.current_size = (10 << 20) + 100;
    assert_eq!(f.virtual_size(), Ok(10 << 20));
}

// ---------------------------------------------------------------- hostile input

fn expect_error(b: &VhdBuilder, mutate: impl Fn(&mut Vec<u8>), needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.vhd");
    let mut bytes = b.bytes();
    mutate(&mut bytes);
    std::fs::write(&path, bytes).unwrap();
    let t = Instant::now();
    let err = open_vhd(&path).err().expect("hostile image opened");
    assert!(t.elapsed() < Duration::from_secs(1));
    let msg = err.to_string();
    assert!(
        msg.contains(needle) && !msg.contains('\n'),
        "{needle}: {msg}"
    );
}

fn small_dynamic() -> VhdBuilder {
    let mut b = VhdBuilder::new(8 << 20, 2 << 20, 3);
    b.write(0, &[1u8; 512]);
    b.write(5 << 20, &[2u8; 512]);
    b
}

#[test]
fn hostile_headers_are_clean_errors() {
    let b = small_dynamic();
    let mut h = b.clone();
    h.corrupt_header_checksum = true;
    expect_error(&h, |_| {}, "header checksum");
    let mut h = b.clone();
    h.corrupt_footer_checksum = true;
    expect_error(&h, |_| {}, "footer checksum");
    let mut h = b.clone();
    h.max_table_entries = Some(1_073_741_825);
    expect_error(&h, |_| {}, "max table entries too large");
    let mut h = b.clone();
    h.max_table_entries = Some(2);
    expect_error(&h, |_| {}, "too small");
    for bs in [0u32, 3000, 256] {
        let mut h = b.clone();
        h.block_size = bs;
        h.blocks.clear();
        expect_error(&h, |_| {}, "block size");
    }
    expect_error(&b, |v| v[512..520].copy_from_slice(b"garbage!"), "cxsparse");
    expect_error(
        &b,
        |v| v.truncate(v.len() - (2 << 20)),
        "past the end of the file",
    );
    expect_error(
        &b,
        |v| v[1536..1540].copy_from_slice(&0x7fff_fff0u32.to_be_bytes()),
        "past the end",
    );
}

#[test]
fn hostile_offsets_and_sizes_are_clean_errors() {
    let b = small_dynamic();
    let fix = |v: &mut Vec<u8>, at: usize, val: &[u8]| {
        for base in [0, v.len() - 512] {
            v[base + at..base + at + val.len()].copy_from_slice(val);
            let sum = super::footer::checksum(&v[base..base + 512], 64);
            v[base + 64..base + 68].copy_from_slice(&sum.to_be_bytes());
        }
    };
    // Dynamic header offset far past the end (and at u64::MAX).
    expect_error(
        &b,
        |v| fix(v, 16, &0x10_0000_0000u64.to_be_bytes()),
        "truncated",
    );
    expect_error(&b, |v| fix(v, 16, &u64::MAX.to_be_bytes()), "truncated");
    // Absurd virtual size.
    expect_error(&b, |v| fix(v, 48, &(1u64 << 62).to_be_bytes()), "2040 GiB");
    // Unknown disk type.
    expect_error(&b, |v| fix(v, 60, &7u32.to_be_bytes()), "disk type 7");
    // BAT offset past the end.
    let mut h = b.clone();
    h.blocks.clear();
    expect_error(
        &h,
        |v| {
            v[528..536].copy_from_slice(&(1u64 << 40).to_be_bytes());
            let sum = super::footer::checksum(&v[512..1536], 36);
            v[548..552].copy_from_slice(&sum.to_be_bytes());
        },
        "truncated",
    );
}

#[test]
fn hostile_files_without_footer_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("empty.vhd", vec![]),
        ("tiny.vhd", vec![0u8; 100]),
        ("zeros.vhd", vec![0u8; 8192]),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let err = open_vhd(&p).err().unwrap();
        assert!(err.is_bad_input(), "{err}");
    }
    // A footer-at-end-only file whose type is dynamic: qemu says "invalid VPC image".
    let b = small_dynamic();
    let mut bytes = b.bytes();
    bytes[..512].fill(0);
    let p = dir.path().join("nohead.vhd");
    std::fs::write(&p, bytes).unwrap();
    assert!(open_vhd(&p)
        .err()
        .unwrap()
        .to_string()
        .contains("not a fixed disk"));
}

#[test]
fn truncated_fixed_disk_reads_zero_past_the_file() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.vhd");
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "vpc",
            "-o",
            "subformat=fixed,force_size=on",
            path.to_str().unwrap(),
            "4M",
        ],
    );
    qemu_write(&path, 0x44, 0, 4 << 20);
    let bytes = std::fs::read(&path).unwrap();
    let footer = bytes[bytes.len() - 512..].to_vec();
    let mut cut = bytes[..1 << 20].to_vec();
    cut.extend_from_slice(&footer);
    std::fs::write(&path, &cut).unwrap();
    let src = open_vhd(&path).unwrap();
    assert_eq!(src.size(), 4 << 20);
    let expected = qemu_raw(&path, dir.path());
    assert_eq!(&expected[..1 << 20], &cut[..1 << 20]);
    assert_matches(src.as_ref(), &expected);
}

#[test]
#[ignore = "prints corpus error messages"]
fn print_corpus_errors() {
    for rel in [
        "dfvfs/image.vhd",
        "dfvfs/image-differential.vhd",
        "dfvfs/fat-differential.vhd",
        "qemu-sample_images/afl5.img",
    ] {
        if let Some(p) = corpus(rel) {
            eprintln!("{}", open_vhd(&p).err().unwrap());
        }
    }
}

#[test]
fn differencing_chain_of_three_layers() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (base, raw) = make_parent(dir.path(), 8 << 20);
    let (mut mid, mut merged) = make_child(dir.path(), &base, &raw, "parent.vhd");
    mid.unique_id = [0x44; 16];
    let mid_path = dir.path().join("mid.vhd");
    mid.write_to(&mid_path);
    let mut top = VhdBuilder::new(merged.len() as u64, 2 << 20, 4);
    top.parent_id = [0x44; 16];
    top.locators = vec![(*b"MacX", b"file://./mid.vhd".to_vec())];
    top.write(1024, &[0x81; 512]);
    top.write(7 << 20, &[0x82; 1024]);
    merged[1024..1536].fill(0x81);
    merged[7 << 20..(7 << 20) + 1024].fill(0x82);
    let top_path = dir.path().join("top.vhd");
    top.write_to(&top_path);
    let src = open_vhd(&top_path).unwrap();
    assert_eq!(src.layers().len(), 3);
    assert_matches(src.as_ref(), &merged);
}
