//! Hostile and damaged KDMV files: every case must be a clean one-line error, returned
//! quickly, never a panic or a huge allocation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::tests::{have_qemu, open, p, qemu_io, run, write_file, MIB};

/// A named damage to apply to an image's bytes.
type Patch = Box<dyn FnOnce(&mut Vec<u8>)>;

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().unwrap())
}

/// A 4 MiB monolithicSparse (`sparse`) and streamOptimized (`stream`) image with data.
fn images(dir: &Path) -> (PathBuf, PathBuf) {
    let sparse = dir.join("sparse.vmdk");
    run(
        "qemu-img",
        &["create", "-q", "-f", "vmdk", p(&sparse), "4M"],
    );
    qemu_io(&sparse, "write -P 0x5a 0 1M");
    qemu_io(&sparse, "write -P 0xa5 3M 64k");
    let stream = dir.join("stream.vmdk");
    run(
        "qemu-img",
        &[
            "convert",
            "-O",
            "vmdk",
            "-o",
            "subformat=streamOptimized",
            p(&sparse),
            p(&stream),
        ],
    );
    (sparse, stream)
}

/// Opens and reads the whole disk; returns the error text, if any.
fn try_read_all(path: &Path) -> Option<String> {
    let start = Instant::now();
    let result = open(path).and_then(|src| {
        let mut buf = vec![0u8; src.size() as usize];
        src.read_exact_at(&mut buf, 0)
    });
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "slow on {}",
        path.display()
    );
    result.err().map(|e| {
        let text = e.to_string();
        assert!(!text.contains('\n'), "multi-line error: {text}");
        text
    })
}

fn patched(dir: &Path, src: &Path, patch: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = std::fs::read(src).unwrap();
    patch(&mut bytes);
    let out = dir.join("patched.vmdk");
    write_file(&out, &bytes);
    out
}

#[test]
fn damaged_headers_fail_cleanly() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (sparse, _) = images(dir.path());
    let gd = (u64_at(&std::fs::read(&sparse).unwrap(), 56) * 512) as usize;
    let cases: Vec<(&str, Patch)> = vec![
        ("magic", Box::new(|b| b[..4].copy_from_slice(b"KDMW"))),
        ("version 4", Box::new(|b| put_u32(b, 4, 4))),
        (
            "grain directory too large",
            Box::new(|b| put_u64(b, 12, 1 << 62)),
        ),
        ("grain size", Box::new(|b| put_u64(b, 20, 0))),
        ("grain size", Box::new(|b| put_u64(b, 20, 1 << 40))),
        ("grain table size", Box::new(|b| put_u32(b, 44, 0))),
        ("grain table size", Box::new(|b| put_u32(b, 44, 4096))),
        (
            "grain directory at offset",
            Box::new(|b| put_u64(b, 56, 1 << 40)),
        ),
        ("overflows", Box::new(|b| put_u64(b, 56, 1 << 60))),
        (
            "past the end of the file",
            Box::new(move |b| put_u32(b, gd, 0x7fff_fff0)),
        ),
        (
            "grains start at sector",
            Box::new(|b| put_u64(b, 64, 1 << 30)),
        ),
        ("truncated", Box::new(|b| b.truncate(300))),
        ("no embedded descriptor", Box::new(|b| put_u64(b, 28, 0))),
        ("embedded descriptor", Box::new(|b| put_u64(b, 28, 1 << 30))),
    ];
    for (want, patch) in cases {
        let img = patched(dir.path(), &sparse, patch);
        let err = try_read_all(&img).unwrap_or_default();
        assert!(err.contains(want), "want {want:?}, got {err:?}");
    }
}

#[test]
fn truncated_files_never_panic() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (sparse, stream) = images(dir.path());
    for img in [sparse, stream] {
        let whole = std::fs::read(&img).unwrap();
        for cut in [
            0,
            3,
            511,
            512,
            4096,
            65536,
            whole.len() / 2,
            whole.len() - 700,
            whole.len() - 1,
        ] {
            let out = dir.path().join("cut.vmdk");
            write_file(&out, &whole[..cut]);
            // No cut may panic; cuts into a monolithicSparse file remove grain data or tables
            // and must fail (a streamOptimized file with its directory in the header does
            // not need its footer, so the last cuts can read fine).
            let failed = try_read_all(&out).is_some();
            let name = img.display();
            assert!(
                failed || img.ends_with("stream.vmdk"),
                "{name} cut at {cut:#x} read fine"
            );
        }
    }
}

#[test]
fn damaged_stream_fails_cleanly() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, stream) = images(dir.path());
    let bytes = std::fs::read(&stream).unwrap();
    let first_grain = (u64_at(&bytes, 64) * 512) as usize; // grains start at the overhead
    let cases: Vec<(&str, Patch)> = vec![
        (
            "does not inflate",
            Box::new(move |b| b[first_grain + 12..first_grain + 40].fill(0x33)),
        ),
        (
            "claims",
            Box::new(move |b| put_u32(b, first_grain + 8, 0x7fff_ffff)),
        ),
        ("claims", Box::new(move |b| put_u32(b, first_grain + 8, 0))),
        ("invalid footer", Box::new(|b| put_u64(b, 56, u64::MAX))),
    ];
    for (want, patch) in cases {
        let img = patched(dir.path(), &stream, patch);
        let err = try_read_all(&img).unwrap_or_default();
        assert!(err.contains(want), "want {want:?}, got {err:?}");
    }
}

#[test]
fn zero_sized_and_tiny_disks() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("empty.vmdk");
    run("qemu-img", &["create", "-q", "-f", "vmdk", p(&img), "0"]);
    let src = open(&img).unwrap();
    assert_eq!(src.size(), 0);
    src.read_exact_at(&mut [], 0).unwrap();
    assert!(src.extent_at(0, 1).is_err());
    let tiny = dir.path().join("tiny.vmdk");
    run("qemu-img", &["create", "-q", "-f", "vmdk", p(&tiny), "512"]);
    qemu_io(&tiny, "write -P 9 0 512");
    let src = open(&tiny).unwrap();
    let mut b = [0u8; 512];
    src.read_exact_at(&mut b, 0).unwrap();
    assert!(b.iter().all(|&x| x == 9));
}

#[test]
fn hostile_descriptors_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let flat = dir.path().join("f.bin");
    write_file(&flat, &[7u8; 4096]);
    let cases = [
        (
            "no createType",
            "CID=1\nparentCID=ffffffff\nRW 8 FLAT \"f.bin\" 0\n".to_string(),
        ),
        (
            "no extent lines",
            "CID=1\nparentCID=ffffffff\ncreateType=\"vmfs\"\n".to_string(),
        ),
        (
            "flat extent needs",
            "CID=1\ncreateType=\"vmfs\"\nRW 9 FLAT \"f.bin\" 0\n".to_string(),
        ),
        (
            "flat extent needs",
            "CID=1\ncreateType=\"vmfs\"\nRW 8 FLAT \"f.bin\" 1\n".to_string(),
        ),
        (
            "virtual size too large",
            format!("CID=1\ncreateType=\"x\"\nRW {} ZERO\n", u64::MAX / 512),
        ),
        (
            "virtual size too large",
            format!("createType=\"x\"\nRW {0} ZERO\nRW {0} ZERO\n", 1u64 << 51),
        ),
        (
            "unsupported extent type",
            "createType=\"x\"\nRW 8 VSANSPARSE \"f.bin\"\n".to_string(),
        ),
        (
            "not a sparse extent",
            "createType=\"x\"\nRW 8 SPARSE \"f.bin\"\n".to_string(),
        ),
        (
            "no parentFileNameHint",
            "CID=1\nparentCID=2\ncreateType=\"x\"\nRW 8 ZERO\n".to_string(),
        ),
        (
            "invalid extent line",
            "createType=\"x\"\nRW -8 ZERO\n".to_string(),
        ),
        ("too large for a text descriptor", "#".repeat(2 << 20)),
    ];
    for (want, text) in cases {
        let path = dir.path().join("d.vmdk");
        write_file(&path, text.as_bytes());
        let err = match open(&path) {
            Ok(_) => format!("opened: {}", text.get(..60).unwrap_or(&text)),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(want), "want {want:?}, got {err:?}");
    }
    // A huge virtual size made of ZERO extents is fine: nothing is allocated for it.
    let path = dir.path().join("z.vmdk");
    write_file(
        &path,
        format!("createType=\"x\"\nRW {} ZERO\n", 1u64 << 40).as_bytes(),
    );
    let src = open(&path).unwrap();
    assert_eq!(src.extent_at(0, u64::MAX).unwrap().len, 512 << 40);
    let _ = MIB;
}

/// Throughput check: `cargo test --release -p converters vmdk_read_speed -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark"]
fn vmdk_read_speed() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("src.raw");
    let mut x = 1u64;
    let data: Vec<u8> = (0..512 * MIB)
        .map(|i| {
            if i % 4096 == 0 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
            }
            if (i / 65536) % 3 == 0 {
                (x >> 56) as u8 ^ (i as u8)
            } else {
                (i / 512) as u8
            }
        })
        .collect();
    write_file(&raw, &data);
    for sub in ["monolithicSparse", "streamOptimized"] {
        let img = dir.path().join(format!("{sub}.vmdk"));
        let opt = format!("subformat={sub}");
        run(
            "qemu-img",
            &[
                "convert",
                "-f",
                "raw",
                "-O",
                "vmdk",
                "-o",
                &opt,
                p(&raw),
                p(&img),
            ],
        );
        let start = Instant::now();
        let src = open(&img).unwrap();
        let mut buf = vec![0u8; 4 * MIB as usize];
        let mut pos = 0;
        while pos < src.size() {
            let e = src.extent_at(pos, 4 * MIB).unwrap();
            src.read_exact_at(&mut buf[..e.len as usize], pos).unwrap();
            pos += e.len;
        }
        let ours = start.elapsed();
        let start = Instant::now();
        let out = dir.path().join("q.raw");
        run(
            "qemu-img",
            &["convert", "-f", "vmdk", "-O", "raw", p(&img), p(&out)],
        );
        eprintln!(
            "{sub}: ferry read {ours:?}, qemu-img convert {:?}",
            start.elapsed()
        );
    }
}
