//! Legacy reader tests: the shared corpus, qemu-created Parallels images, Rust-built Bochs
//! and cloop images read back by qemu-img, and hostile input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::testutil::{have_qemu, run};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::testbuild::{cloop_image, parallels_v2_to_v1, BochsBuilder};
use super::{open_bochs, open_cloop, open_parallels};
use crate::source::{allocated_bytes, DiskSource, ExtentIter, ExtentKind};

type Opener = fn(&Path) -> crate::Result<Box<dyn DiskSource>>;

fn qemu_raw(path: &Path, fmt: &str) -> Vec<u8> {
    let out = path.with_extension("expected-raw");
    let (p, o) = (path.to_str().unwrap(), out.to_str().unwrap());
    run("qemu-img", &["convert", "-f", fmt, "-O", "raw", p, o]);
    std::fs::read(out).unwrap()
}

/// Sum of `length` over the `"data": true, "zero": false` entries of `qemu-img map`.
fn qemu_data_bytes(path: &Path, fmt: &str) -> u64 {
    let json = run(
        "qemu-img",
        &["map", "-f", fmt, "--output=json", path.to_str().unwrap()],
    );
    json.split('{')
        .filter(|e| e.contains("\"data\": true") && e.contains("\"zero\": false"))
        .map(|e| {
            let at = e.find("\"length\"").unwrap() + 8;
            let digits: String = e[at..]
                .chars()
                .skip_while(|c| !c.is_ascii_digit())
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse::<u64>().unwrap()
        })
        .sum()
}

/// Full read, extent map (non-data reads as zero) and odd-sized reads all match `expected`.
fn assert_matches(src: &dyn DiskSource, expected: &[u8]) {
    assert_eq!(src.size(), expected.len() as u64);
    let mut all = vec![0u8; expected.len()];
    src.read_exact_at(&mut all, 0).unwrap();
    assert!(all == expected, "full read differs");
    for e in ExtentIter::new(src, 0, src.size()) {
        let e = e.unwrap();
        if !e.kind.is_data() {
            assert!(
                expected[e.offset as usize..e.end() as usize]
                    .iter()
                    .all(|&b| b == 0),
                "{e:?} holds data"
            );
        }
    }
    let (mut pos, step) = (0usize, 4093usize * 7);
    while pos < expected.len() {
        let n = step.min(expected.len() - pos);
        let mut buf = vec![0u8; n];
        src.read_exact_at(&mut buf, pos as u64).unwrap();
        assert!(buf == expected[pos..pos + n], "read at {pos:#x} differs");
        pos += n;
    }
}

fn hash_source(src: &dyn DiskSource) -> String {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for e in ExtentIter::new(src, 0, src.size()) {
        let e = e.unwrap();
        let mut pos = e.offset;
        while pos < e.end() {
            let n = ((e.end() - pos).min(1 << 20)) as usize;
            if e.kind.is_data() {
                src.read_exact_at(&mut buf[..n], pos).unwrap();
            } else {
                buf[..n].fill(0);
            }
            h.update(&buf[..n]);
            pos += n as u64;
        }
    }
    format!("{:x}", h.finalize())
}

fn corpus(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus")
        .join(rel);
    p.exists().then_some(p).or_else(|| {
        eprintln!("skipping: corpus file {rel} absent");
        None
    })
}

/// (virtual_size, raw_sha256) from MANIFEST.tsv.
fn manifest(rel: &str) -> (u64, String) {
    let text = std::fs::read_to_string(corpus("MANIFEST.tsv").unwrap()).unwrap();
    let row = text
        .lines()
        .find(|l| l.starts_with(&format!("{rel}\t")))
        .unwrap();
    let cols: Vec<&str> = row.split('\t').collect();
    (cols[11].parse().unwrap(), cols[14].to_string())
}

#[test]
fn corpus_images_match_manifest() {
    let cases: [(&str, Opener, &str, &str); 4] = [
        (
            "qemu-sample_images/empty.bochs",
            open_bochs,
            "bochs",
            "growing",
        ),
        (
            "qemu-sample_images/parallels-v1",
            open_parallels,
            "parallels",
            "v1",
        ),
        (
            "qemu-sample_images/parallels-v2",
            open_parallels,
            "parallels",
            "v2",
        ),
        (
            "qemu-sample_images/simple-pattern.cloop",
            open_cloop,
            "cloop",
            "v2.0",
        ),
    ];
    for (rel, open, format, sub) in cases {
        let Some(path) = corpus(rel) else { continue };
        let (size, sha) = manifest(rel);
        let src = open(&path).unwrap();
        assert_eq!(src.size(), size, "{rel}");
        assert_eq!(hash_source(src.as_ref()), sha, "{rel}");
        let layer = &src.layers()[0];
        assert_eq!(
            (layer.format.as_str(), layer.subformat.as_deref()),
            (format, Some(sub))
        );
        if have_qemu() {
            assert_matches(src.as_ref(), &qemu_raw(&path, format));
        }
    }
}

fn parallels_image(dir: &Path, size: u64, cluster: u64, writes: &[(u8, u64, u64)]) -> PathBuf {
    let path = dir.join(format!("p-{size}-{cluster}.parallels"));
    let p = path.to_str().unwrap();
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "parallels",
            "-o",
            &format!("cluster_size={cluster}"),
            p,
            &size.to_string(),
        ],
    );
    for &(pat, off, len) in writes {
        run(
            "qemu-io",
            &[
                "-f",
                "parallels",
                "-c",
                &format!("write -P {pat:#x} {off} {len}"),
                p,
            ],
        );
    }
    path
}

#[test]
fn parallels_qemu_images_match_qemu() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (size, cluster) in [
        (5 * 1024 * 1024 + 3 * 512, 65536u64),
        (3 << 20, 4096),
        ((4 << 20) + 1536, 1 << 20),
    ] {
        let writes = [
            (0x5a, 0, 512),
            (0x11, size - 512, 512),
            (0x22, 1000, 3000),
            (0x33, cluster * 2 + 7, cluster + 100),
            (0x44, size / 2 + 1, 1),
        ];
        let path = parallels_image(dir.path(), size, cluster, &writes);
        let src = open_parallels(&path).unwrap();
        assert_eq!(src.layers()[0].subformat.as_deref(), Some("v2"));
        assert_matches(src.as_ref(), &qemu_raw(&path, "parallels"));
        assert_eq!(
            allocated_bytes(src.as_ref()).unwrap(),
            qemu_data_bytes(&path, "parallels")
        );
        // The same image as v1 (sector offsets in the BAT) reads the same for both.
        let mut bytes = std::fs::read(&path).unwrap();
        parallels_v2_to_v1(&mut bytes);
        let v1 = dir.path().join("v1.parallels");
        std::fs::write(&v1, &bytes).unwrap();
        let src1 = open_parallels(&v1).unwrap();
        assert_eq!(src1.layers()[0].subformat.as_deref(), Some("v1"));
        assert_matches(src1.as_ref(), &qemu_raw(&v1, "parallels"));
    }
}

#[test]
fn parallels_extents_merge_clusters() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = parallels_image(dir.path(), 8 << 20, 65536, &[(0x5a, 65536, 4 * 65536)]);
    let src = open_parallels(&path).unwrap();
    let e = src.extent_at(0, u64::MAX).unwrap();
    assert_eq!((e.len, e.kind), (65536, ExtentKind::Unallocated));
    let e = src.extent_at(65536 + 100, u64::MAX).unwrap();
    assert_eq!((e.len, e.kind), (4 * 65536 - 100, ExtentKind::Data));
    let e = src.extent_at(5 * 65536, 1000).unwrap();
    assert_eq!((e.len, e.kind), (1000, ExtentKind::Unallocated));
    let e = src.extent_at(5 * 65536, u64::MAX).unwrap();
    assert_eq!(e.end(), 8 << 20);
}

fn bochs_fixture(v1: bool) -> BochsBuilder {
    let size = 3 * 1024 * 1024 + 5 * 512;
    let mut b = BochsBuilder::new(size, 32768, 8);
    b.v1 = v1;
    b.write(0, &[0x5a; 512]);
    b.write(size - 512, &[0x11; 512]);
    b.write(32768 * 3 - 1024, &vec![0x22; 4096]);
    b.write(65536 + 512 * 9, &[0x33; 1536]);
    b
}

#[test]
fn bochs_built_images_match_qemu() {
    let dir = tempfile::tempdir().unwrap();
    for v1 in [false, true] {
        let b = bochs_fixture(v1);
        let path = dir.path().join(format!("b{v1}.bochs"));
        std::fs::write(&path, b.bytes()).unwrap();
        let src = open_bochs(&path).unwrap();
        assert_matches(src.as_ref(), &b.data);
        assert_eq!(
            allocated_bytes(src.as_ref()).unwrap(),
            512 + 512 + 4096 + 1536
        );
        let e = src.extent_at(65536 + 512 * 9 + 7, u64::MAX).unwrap();
        assert_eq!((e.len, e.kind), (1536 - 7, ExtentKind::Data));
        if have_qemu() {
            assert!(
                qemu_raw(&path, "bochs") == b.data,
                "qemu reads the built image differently"
            );
        }
    }
}

#[test]
fn cloop_built_images_match_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = vec![0u8; 5 * 65536];
    for (i, b) in data.iter_mut().enumerate() {
        *b = if (i / 4096) % 3 == 0 {
            0
        } else {
            (i * 7 % 251) as u8
        };
    }
    for block in [512u32, 65536, 3 * 4096] {
        let path = dir.path().join(format!("c{block}.cloop"));
        std::fs::write(&path, cloop_image(&data, block)).unwrap();
        let src = open_cloop(&path).unwrap();
        let mut expected = data.clone();
        expected.resize(src.size() as usize, 0);
        assert_matches(src.as_ref(), &expected);
        assert_eq!(allocated_bytes(src.as_ref()).unwrap(), src.size());
        if have_qemu() {
            assert!(
                qemu_raw(&path, "cloop") == expected,
                "qemu reads the built cloop differently"
            );
        }
    }
}

#[test]
fn cloop_concurrent_partial_reads() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..64 * 4096u32).map(|i| (i % 253) as u8).collect();
    let path = dir.path().join("c.cloop");
    std::fs::write(&path, cloop_image(&data, 4096)).unwrap();
    let src = open_cloop(&path).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (src, data) = (&src, &data);
            s.spawn(move || {
                for i in 0..200u64 {
                    let off = (i * 997 + t * 131) % (data.len() as u64 - 300);
                    let mut buf = [0u8; 300];
                    src.read_exact_at(&mut buf, off).unwrap();
                    assert!(buf[..] == data[off as usize..off as usize + 300]);
                }
            });
        }
    });
}

/// Opening the mutated image fails quickly with a one-line error containing `needle`.
fn expect_error(open: Opener, image: &[u8], mutate: impl Fn(&mut Vec<u8>), needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = image.to_vec();
    mutate(&mut bytes);
    let path = dir.path().join("bad.img");
    std::fs::write(&path, &bytes).unwrap();
    let start = Instant::now();
    let err = match open(&path) {
        Err(e) => e.to_string(),
        Ok(src) => {
            let mut buf = vec![0u8; src.size().min(1 << 22) as usize];
            src.read_exact_at(&mut buf, 0)
                .expect_err("hostile image read without error")
                .to_string()
        }
    };
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "slow error: {err}"
    );
    assert!(
        !err.contains('\n') && err.contains(needle),
        "{needle:?} not in {err:?}"
    );
}

fn put32(b: &mut [u8], at: usize, v: u32, big: bool) {
    b[at..at + 4].copy_from_slice(&if big {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    });
}

#[test]
fn bochs_hostile_inputs_are_clean_errors() {
    let good = bochs_fixture(false).bytes();
    let o: Opener = open_bochs;
    expect_error(o, &good, |b| b.truncate(100), "truncated");
    expect_error(o, &good, |b| b[0] = b'X', "bad magic");
    expect_error(
        o,
        &good,
        |b| b[48..56].copy_from_slice(b"Undoable"),
        "unsupported",
    );
    expect_error(o, &good, |b| put32(b, 64, 3, false), "version");
    expect_error(o, &good, |b| put32(b, 72, u32::MAX, false), "catalog");
    expect_error(o, &good, |b| put32(b, 72, 1, false), "too small");
    expect_error(o, &good, |b| put32(b, 80, 0, false), "extent size");
    expect_error(o, &good, |b| put32(b, 80, 3000, false), "extent size");
    expect_error(
        o,
        &good,
        |b| put32(b, 512, 0x7FFF_0000, false),
        "past the end",
    );
    // Extent 0 is laid out last: cut into its first data sector.
    expect_error(o, &good, |b| b.truncate(b.len() - 32768 + 100), "truncated");
    expect_error(o, &good, |b| put32(b, 68, u32::MAX, false), "truncated");
}

#[test]
fn parallels_hostile_inputs_are_clean_errors() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = parallels_image(dir.path(), 1 << 20, 4096, &[(0x5a, 0, 8192)]);
    let good = std::fs::read(path).unwrap();
    let o: Opener = open_parallels;
    expect_error(o, &good, |b| b.truncate(40), "truncated");
    expect_error(o, &good, |b| b[3] = b'X', "bad magic");
    expect_error(o, &good, |b| put32(b, 16, 3, false), "version");
    expect_error(o, &good, |b| put32(b, 28, 0, false), "sectors per cluster");
    expect_error(o, &good, |b| put32(b, 32, u32::MAX, false), "cap");
    expect_error(o, &good, |b| put32(b, 32, 1 << 20, false), "truncated");
    expect_error(
        o,
        &good,
        |b| b[36..44].copy_from_slice(&u64::MAX.to_le_bytes()),
        "too large",
    );
    expect_error(
        o,
        &good,
        |b| put32(b, 64, 0x00FF_FFFF, false),
        "past the end",
    );
    expect_error(
        o,
        &good,
        |b| b[56..64].copy_from_slice(&1u64.to_le_bytes()),
        "magic",
    );
    expect_error(
        o,
        &good,
        |b| b[56..64].copy_from_slice(&u64::MAX.to_le_bytes()),
        "format extension",
    );
    expect_error(o, &good, |b| b.truncate(4096 + 100), "past the end");
}

#[test]
fn parallels_format_extension_features() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = parallels_image(dir.path(), 1 << 20, 4096, &[(0x5a, 0, 4096)]);
    let mut good = std::fs::read(path).unwrap();
    // An extension cluster at the end: magic, checksum, one dirty-bitmap feature, end mark.
    let ext_sector = (good.len() / 512) as u64;
    let mut ext = vec![0u8; 4096];
    ext[..8].copy_from_slice(&0xAB23_4CEF_23DC_EA87u64.to_le_bytes());
    ext[24..32].copy_from_slice(&0x2038_5FAE_252C_B34Au64.to_le_bytes());
    ext[40..44].copy_from_slice(&36u32.to_le_bytes());
    good.extend_from_slice(&ext);
    good[56..64].copy_from_slice(&ext_sector.to_le_bytes());
    let dir2 = tempfile::tempdir().unwrap();
    let ok = dir2.path().join("ext.parallels");
    std::fs::write(&ok, &good).unwrap();
    assert_eq!(open_parallels(&ok).unwrap().size(), 1 << 20);
    let at = good.len() - 4096;
    let o: Opener = open_parallels;
    expect_error(o, &good, |b| b[at + 32] = 1, "flags");
    expect_error(
        o,
        &good,
        |b| b[at + 24] ^= 1,
        "unsupported parallels format extension feature",
    );
    expect_error(o, &good, |b| put32(b, at + 40, 1 << 20, false), "overruns");
}

#[test]
fn cloop_hostile_inputs_are_clean_errors() {
    let data = vec![7u8; 3 * 4096];
    let good = cloop_image(&data, 4096);
    let o: Opener = open_cloop;
    expect_error(o, &good, |b| b.truncate(130), "truncated");
    expect_error(o, &good, |b| b[12] = b'3', "preamble");
    expect_error(o, &good, |b| put32(b, 128, 0, true), "block size");
    expect_error(o, &good, |b| put32(b, 128, 1000, true), "block size");
    expect_error(o, &good, |b| put32(b, 128, 128 << 20, true), "block size");
    expect_error(o, &good, |b| put32(b, 132, u32::MAX, true), "cap");
    expect_error(o, &good, |b| put32(b, 132, 1 << 20, true), "truncated");
    expect_error(
        o,
        &good,
        |b| b[136 + 8..136 + 16].copy_from_slice(&1u64.to_be_bytes()),
        "below the previous",
    );
    expect_error(
        o,
        &good,
        |b| b[136 + 24..136 + 32].copy_from_slice(&(1u64 << 40).to_be_bytes()),
        "too far",
    );
    expect_error(o, &good, |b| b.truncate(b.len() - 3), "past the end");
    expect_error(o, &good, |b| b[170] ^= 0xFF, "inflate");
    expect_error(o, &good, |b| put32(b, 128, 8192, true), "inflate");
}
