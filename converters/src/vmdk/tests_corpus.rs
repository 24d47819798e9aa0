//! Real VMDKs from other projects (`../shared/corpus`, see its MANIFEST.tsv): valid ones
//! must hash to qemu's `raw_sha256`, malformed or incomplete ones must fail cleanly and fast.
//! Skipped when the corpus is absent.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::probe::{self, OpenOptions};
use crate::source::{DiskSource, ExtentIter};

fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    if dir.join("MANIFEST.tsv").exists() {
        Some(dir)
    } else {
        eprintln!("skipping: corpus not found at {}", dir.display());
        None
    }
}

/// sha256 of the whole disk; non-data extents are hashed as zeros without being read.
/// Hashing runs in `sha256sum` (the debug build of `sha2` takes minutes for the 16 GiB
/// images); without it, in `sha2`.
fn sha256_of(src: &dyn DiskSource) -> String {
    let child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        let mut hash = Sha256::new();
        feed(src, &mut |b| hash.update(b));
        return hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    };
    let mut stdin = child.stdin.take().unwrap();
    feed(src, &mut |b| stdin.write_all(b).unwrap());
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn feed(src: &dyn DiskSource, sink: &mut dyn FnMut(&[u8])) {
    let zeros = vec![0u8; 1 << 20];
    let mut buf = Vec::new();
    for e in ExtentIter::new(src, 0, src.size()) {
        let e = e.unwrap();
        let mut pos = e.offset;
        while pos < e.end() {
            let n = (e.end() - pos).min(1 << 20) as usize;
            if e.kind.is_data() {
                buf.resize(n, 0);
                src.read_exact_at(&mut buf, pos).unwrap();
                sink(&buf);
            } else {
                sink(&zeros[..n]);
            }
            pos += n as u64;
        }
    }
}

struct Row {
    path: String,
    qemu_format: String,
    virtual_size: u64,
    raw_sha256: String,
}

fn vmdk_rows(dir: &std::path::Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let row = Row {
                path: cols.first()?.to_string(),
                qemu_format: cols.get(10)?.to_string(),
                virtual_size: cols.get(11)?.parse().ok()?,
                raw_sha256: cols.get(14)?.to_string(),
            };
            (row.qemu_format.starts_with("vmdk/") && !row.raw_sha256.is_empty()).then_some(row)
        })
        .collect()
}

/// Hashing runs at ~130 MB/s on the test machine, so only disks up to this size are hashed
/// by default; bigger ones are checked with `qemu-img compare` (same oracle: `raw_sha256`
/// is the hash of qemu's conversion), and fully hashed by the ignored test below.
const HASH_LIMIT: u64 = 1 << 30;

fn check_valid_rows(hash_all: bool) {
    let Some(dir) = corpus() else { return };
    let rows = vmdk_rows(&dir);
    assert!(rows.len() >= 15, "expected the vmdk rows of the manifest");
    for row in rows {
        let path = dir.join(&row.path);
        let src = probe::open(&path, None, &OpenOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", row.path));
        assert_eq!(src.size(), row.virtual_size, "{}", row.path);
        let layer = &src.layers()[0];
        assert_eq!(
            Some(row.qemu_format.trim_start_matches("vmdk/")),
            layer.subformat.as_deref(),
            "{}",
            row.path
        );
        if hash_all || row.virtual_size <= HASH_LIMIT {
            assert_eq!(sha256_of(src.as_ref()), row.raw_sha256, "{}", row.path);
        } else if super::tests::have_qemu() {
            super::tests::assert_matches_qemu(&path);
        }
    }
}

#[test]
fn valid_corpus_images_read_like_qemu() {
    check_valid_rows(false);
}

#[test]
#[ignore = "hashes 26 GiB, about 4 minutes"]
fn valid_corpus_images_hash_like_qemu() {
    check_valid_rows(true);
}

#[test]
fn malformed_corpus_images_fail_cleanly() {
    let Some(dir) = corpus() else { return };
    let cases = [
        ("qemu-sample_images/afl9.vmdk", "grain directory too large"),
        (
            "cdi/invalid-qcow-large-memory.img",
            "grain directory too large",
        ),
        (
            "cdi/invalid-qcow-backing-file.img",
            "grain directory too large",
        ),
        ("go-vmdk-parser/vmdk-invalid.img", "truncated"),
        (
            "govmomi-ova/ttylinux-pc_i486-16.1-disk1.vmdk",
            "invalid footer",
        ),
        ("vmdk-forensic/ms3-win.vmdk", "disk-s001.vmdk"),
        (
            "vmdk-forensic/tw_sparse_data.vmdk",
            "tw_sparse_data-s001.vmdk",
        ),
        ("vmdk-rs/monolithicFlat.vmdk", "monolithicFlat-flat.vmdk"),
        (
            "vmdk-rs/twoGbMaxExtentFlat.vmdk",
            "twoGbMaxExtentFlat-f001.vmdk",
        ),
        (
            "vmdk-rs/vmfs_thick-000001.vmdk",
            "vmfs_thick-000001-delta.vmdk",
        ),
        (
            "vmdk-rs/twoGbMaxExtentSparse-s001.vmdk",
            "no embedded descriptor",
        ),
        (
            "vmdk-forensic/tw_sparse-s001.vmdk",
            "no embedded descriptor",
        ),
    ];
    for (name, want) in cases {
        let start = Instant::now();
        let err = match probe::open(&dir.join(name), None, &OpenOptions::default()) {
            Ok(_) => panic!("{name}: opened, expected an error"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(want), "{name}: want {want:?}, got {err}");
        assert!(!err.contains('\n'), "{name}: multi-line error");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{name}: slow failure"
        );
    }
}
