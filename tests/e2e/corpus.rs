//! Issue 2, acceptance 2: the shared corpus of images written by VMware, Hyper-V, Virtual PC,
//! qemu and other projects' test suites. Every valid image ferry reads converts to raw whose
//! SHA-256 is the MANIFEST's `raw_sha256` (what `qemu-img convert -O raw` produced); every
//! malformed, incomplete or foreign-format image ends in a clean one-line error with exit
//! code 1, quickly, never a panic or a hang.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::util::*;

/// Above this virtual size an image is hashed through the library (zero extents hashed
/// without reading them) instead of writing a raw file.
const SMALL_IMAGE: u64 = 64 << 20;
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Row {
    path: PathBuf,
    rel: String,
    kind: String,
    malformed: String,
    qemu_format: String,
    virtual_size: Option<u64>,
    raw_sha256: String,
}

fn manifest(dir: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("manifest");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (c_path, c_kind, c_mal, c_fmt, c_vs, c_sha) = (
        col("path"),
        col("kind"),
        col("malformed"),
        col("qemu_format"),
        col("virtual_size"),
        col("raw_sha256"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let get = |i: usize| f.get(i).copied().unwrap_or("").to_string();
            Row {
                path: dir.join(get(c_path)),
                rel: get(c_path),
                kind: get(c_kind),
                malformed: get(c_mal),
                qemu_format: get(c_fmt),
                virtual_size: get(c_vs).parse().ok(),
                raw_sha256: get(c_sha),
            }
        })
        .collect()
}

/// Disk images ferry is expected to read (not containers, configs or fragments).
fn disk_rows(dir: &Path) -> Vec<Row> {
    manifest(dir)
        .into_iter()
        .filter(|r| {
            matches!(
                r.kind.as_str(),
                "disk-image" | "vmdk-descriptor" | "vmdk-extent"
            )
        })
        .filter(|r| r.path.exists())
        .collect()
}

/// A format ferry converts (qemu's name in the manifest).
fn ferry_reads(qemu_format: &str) -> bool {
    let base = qemu_format.split('/').next().unwrap_or("");
    matches!(
        base,
        "vmdk" | "vpc" | "qcow2" | "raw" | "bochs" | "parallels" | "cloop"
    )
}

fn is_valid(r: &Row) -> bool {
    r.malformed == "no" || (r.malformed == "n/a" && !r.raw_sha256.is_empty())
}

/// Runs ferry with a deadline; a hang is a failure.
fn run_with_timeout(args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = ferry()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferry");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut out = String::new();
            let mut err = String::new();
            child.stdout.take().map(|mut s| s.read_to_string(&mut out));
            child.stderr.take().map(|mut s| s.read_to_string(&mut err));
            return (status.code(), out, err);
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!("ferry {args:?} hung for more than {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_clean_error(rel: &str, code: Option<i32>, err: &str) {
    assert_eq!(code, Some(1), "{rel}: expected exit 1, stderr: {err}");
    assert!(!err.contains("panicked"), "{rel}: panic: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{rel}: error should be one line: {err}");
    assert!(lines[0].starts_with("ferry: error: "), "{rel}: {err}");
    assert!(
        lines[0].contains(rel.rsplit('/').next().unwrap_or(rel)),
        "{rel}: error names the file: {err}"
    );
}

/// SHA-256 of every guest byte, feeding zero extents from a static buffer instead of
/// reading them.
fn sha256_of_source(source: &dyn converters::DiskSource) -> String {
    let zeros = vec![0u8; 1 << 20];
    let mut buf = vec![0u8; 1 << 20];
    let mut h = Sha256::new();
    for extent in converters::source::ExtentIter::new(source, 0, source.size()) {
        let extent = extent.expect("extent map");
        let mut pos = extent.offset;
        while pos < extent.end() {
            let n = usize::try_from((extent.end() - pos).min(1 << 20)).expect("fits");
            if extent.kind.is_data() {
                source.read_exact_at(&mut buf[..n], pos).expect("read");
                h.update(&buf[..n]);
            } else {
                h.update(&zeros[..n]);
            }
            pos += n as u64;
        }
    }
    format!("{:x}", h.finalize())
}

fn format_args(r: &Row) -> Vec<&'static str> {
    if r.qemu_format == "raw" {
        vec!["-f", "raw"]
    } else {
        vec![]
    }
}

#[test]
fn small_valid_images_convert_to_the_manifest_hash() {
    let Some(dir) = corpus_dir() else { return };
    let out_dir = tmpdir();
    let mut checked = 0;
    for r in disk_rows(&dir) {
        if !is_valid(&r) || !ferry_reads(&r.qemu_format) || r.raw_sha256.is_empty() {
            continue;
        }
        if r.virtual_size.unwrap_or(u64::MAX) > SMALL_IMAGE {
            continue;
        }
        let out = out_dir.path().join(format!("{checked}.raw"));
        let mut args = vec!["convert", "-O", "raw"];
        args.extend(format_args(&r));
        args.extend([p(&r.path), p(&out)]);
        let (code, _, err) = run_with_timeout(&args);
        assert_eq!(code, Some(0), "{}: {err}", r.rel);
        assert_eq!(sha256_file(&out), r.raw_sha256, "{}: raw sha256", r.rel);
        std::fs::remove_file(&out).expect("cleanup");
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} corpus images checked");
}

#[test]
fn large_valid_images_hash_like_qemu_without_reading_zeros() {
    let Some(dir) = corpus_dir() else { return };
    let out_dir = tmpdir();
    let rows: Vec<Row> = disk_rows(&dir)
        .into_iter()
        .filter(|r| is_valid(r) && ferry_reads(&r.qemu_format) && !r.raw_sha256.is_empty())
        .filter(|r| r.virtual_size.unwrap_or(0) > SMALL_IMAGE)
        .collect();
    assert!(rows.len() >= 4, "only {} large corpus images", rows.len());
    // Hashing 136 GB of zeros is CPU-bound: one thread per image.
    std::thread::scope(|scope| {
        for (i, r) in rows.iter().enumerate() {
            let out = out_dir.path().join(format!("{i}.qcow2"));
            scope.spawn(move || {
                // The CLI path: convert to a (sparse) qcow2 and verify it, quickly.
                let mut args = vec!["convert", "--verify"];
                args.extend(format_args(r));
                args.extend([p(&r.path), p(&out)]);
                let (code, _, err) = run_with_timeout(&args);
                assert_eq!(code, Some(0), "{}: {err}", r.rel);
                // The bytes: the manifest hash over every guest byte.
                let source = converters::open(&r.path, None, &converters::OpenOptions::default())
                    .unwrap_or_else(|e| panic!("{}: {e}", r.rel));
                assert_eq!(
                    sha256_of_source(source.as_ref()),
                    r.raw_sha256,
                    "{}: sha256",
                    r.rel
                );
            });
        }
    });
}

#[test]
fn malformed_incomplete_and_foreign_images_fail_cleanly() {
    let Some(dir) = corpus_dir() else { return };
    let out_dir = tmpdir();
    let mut checked = 0;
    for r in disk_rows(&dir) {
        let valid_and_read = is_valid(&r) && ferry_reads(&r.qemu_format);
        if valid_and_read {
            continue;
        }
        let out = out_dir.path().join("out.qcow2");
        let mut args = vec!["convert", "--verify"];
        args.extend(format_args(&r));
        args.extend([p(&r.path), p(&out)]);
        let (code, _, err) = run_with_timeout(&args);
        if code == Some(0) && !r.raw_sha256.is_empty() && ferry_reads(&r.qemu_format) {
            // Malformed by some readers' standards but readable: then it must be right.
            let source = converters::open(&r.path, None, &converters::OpenOptions::default())
                .expect("opened once already");
            assert_eq!(sha256_of_source(source.as_ref()), r.raw_sha256, "{}", r.rel);
        } else if code == Some(0) {
            // Readable by ferry where qemu was not (e.g. a sparse extent without its
            // descriptor): acceptable, but it must not have touched the source.
        } else {
            assert_clean_error(&r.rel, code, &err);
        }
        assert!(
            !out.exists() || code == Some(0),
            "{}: partial output left behind",
            r.rel
        );
        let _ = std::fs::remove_file(&out);
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} bad corpus images checked");
}

#[test]
fn info_reads_partition_tables_of_corpus_disks() {
    let Some(dir) = corpus_dir() else { return };
    let out = run_ferry([
        "info",
        "--json",
        "-f",
        "raw",
        p(&dir.join("gpt-crate/gpt-disk.img")),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["layout"]["table"], "gpt");
    let out = run_ferry(["info", "--json", p(&dir.join("dfvfs/ext2.vmdk"))]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let fs_somewhere = v["layout"]["whole_disk_filesystem"] == "ext2"
        || v["layout"]["partitions"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["filesystem"] == "ext2"));
    assert!(fs_somewhere, "ext2 found in {v}");
}

/// Issue 4: every VM description in the corpus (.vmx, OVF, OVA, xl.cfg, xm) goes through
/// `ferry v2v --dry-run --no-fixups` and either plans a move (its disks exist and open) or
/// ends in a clean one-line error with exit code 1 or 3 — never a panic, never a write.
#[test]
fn corpus_descriptions_plan_or_fail_cleanly() {
    let Some(dir) = corpus_dir() else {
        return;
    };
    const DESCRIPTIONS: &[&str] = &["vmx", "ovf", "ova", "xl-cfg", "xm-cfg", "xen-other-cfg"];
    let rows: Vec<Row> = manifest(&dir)
        .into_iter()
        .filter(|r| DESCRIPTIONS.contains(&r.kind.as_str()))
        .collect();
    assert!(rows.len() > 100, "only {} descriptions", rows.len());
    let out = tmpdir();
    let target = out.path().join("never-written");
    let (mut planned, mut refused) = (0, 0);
    for row in &rows {
        let started = Instant::now();
        let o = run_ferry([
            "v2v",
            "--dry-run",
            "--no-fixups",
            "--json",
            p(&row.path),
            "--out",
            p(&target),
        ]);
        assert!(
            started.elapsed() < TIMEOUT,
            "{}: took {:?}",
            row.rel,
            started.elapsed()
        );
        match o.status.code() {
            Some(0) => {
                planned += 1;
                let report: serde_json::Value =
                    serde_json::from_str(&stdout(&o)).expect("json report");
                assert!(
                    report["domain_xml"]
                        .as_str()
                        .is_some_and(|x| x.contains("<domain")),
                    "{}: {report:#}",
                    row.rel
                );
            }
            Some(1) => {
                refused += 1;
                let err = stderr(&o);
                assert_eq!(err.trim().lines().count(), 1, "{}: {err}", row.rel);
                assert!(err.starts_with("ferry: error:"), "{}: {err}", row.rel);
            }
            other => panic!("{}: exit {other:?}: {}", row.rel, stderr(&o)),
        }
    }
    assert!(!target.exists(), "--dry-run wrote {}", target.display());
    eprintln!(
        "v2v --dry-run on {} corpus descriptions: {planned} planned, {refused} refused cleanly",
        rows.len()
    );
}
