//! Shared helpers for the end-to-end tests: running ferry and the peer tools, building
//! reference disks, and skipping (locally) or failing (in CI) when a tool is missing.

#![allow(dead_code)]

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn ferry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
}

/// Runs ferry with `args`, returning its output whatever the exit code.
pub fn run_ferry<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    ferry().args(args).output().expect("ferry runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// True when `tool` is on PATH. Without it a test skips with a message locally but fails
/// when `CI` is set, so CI cannot silently test less.
pub fn have_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is required in CI but not installed"
        );
        eprintln!("skipping: {tool} is not installed");
    }
    found
}

/// Runs a tool that must succeed, with its stderr in the panic message.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        stderr(&out),
        stdout(&out)
    );
    out
}

pub fn qemu_img(args: &[&str]) -> Output {
    run_ok(Command::new("qemu-img").args(args))
}

pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 test path")
}

/// Sum of the lengths qemu-img map calls data and not known to read zero: what `ferry
/// info` reports as allocated. (qemu marks holes in flat extents and fixed VHDs
/// `"data": true, "zero": true`: stored in the file's range but reading zero.)
pub fn qemu_map_data_bytes(image: &Path, format: &str) -> u64 {
    let out = qemu_img(&["map", "--output=json", "-f", format, p(image)]);
    let map: serde_json::Value = serde_json::from_slice(&out.stdout).expect("map json");
    map.as_array()
        .expect("array")
        .iter()
        .filter(|e| e["data"].as_bool() == Some(true) && e["zero"].as_bool() == Some(false))
        .map(|e| e["length"].as_u64().expect("length"))
        .sum()
}

/// `qemu-img compare` says the two images hold the same guest bytes.
pub fn assert_qemu_identical(a: &Path, a_fmt: &str, b: &Path, b_fmt: &str) {
    let out = Command::new("qemu-img")
        .args(["compare", "-f", a_fmt, "-F", b_fmt, p(a), p(b)])
        .output()
        .expect("qemu-img compare runs");
    assert!(
        out.status.success(),
        "qemu-img compare {} {}: {}{}",
        a.display(),
        b.display(),
        stdout(&out),
        stderr(&out)
    );
}

pub fn assert_qemu_check_clean(image: &Path) {
    let out = Command::new("qemu-img")
        .args(["check", "-f", "qcow2", p(image)])
        .output()
        .expect("qemu-img check runs");
    assert!(
        out.status.success(),
        "qemu-img check {}: {}{}",
        image.display(),
        stdout(&out),
        stderr(&out)
    );
}

/// A sparse raw disk of `size` bytes with deterministic non-zero bytes at each
/// `(offset, len)`; the reference every converted image is compared with.
pub fn pattern_raw(path: &Path, size: u64, writes: &[(u64, usize)]) {
    let f = std::fs::File::create(path).expect("create raw");
    f.set_len(size).expect("size raw");
    for (i, &(offset, len)) in writes.iter().enumerate() {
        let data: Vec<u8> = (0..len)
            .map(|j| ((j as u64 * 31 + offset + i as u64 * 7) % 251) as u8 | 1)
            .collect();
        f.write_all_at(&data, offset).expect("write raw");
    }
}

pub fn tmpdir() -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tempfile::tempdir_in(base).expect("tempdir")
}

/// The shared corpus of real images, when present next to the checkout.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if dir.join("MANIFEST.tsv").exists() {
        Some(dir)
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "../shared/corpus is required in CI"
        );
        eprintln!("skipping: ../shared/corpus not found");
        None
    }
}

/// Where [`mbr_disk`] puts partition 1.
pub const PART_START: u64 = 1 << 20;

/// An MBR disk whose partition 1 (type 0x83, at 1 MiB) is the filesystem image `fs`,
/// copied in 1 MiB pieces with all-zero pieces left as holes.
pub fn mbr_disk(fs: &Path, disk: &Path) {
    mbr_disk_of(&[fs], disk);
}

/// An MBR disk whose partitions 1, 2, … (type 0x83, the first at 1 MiB, each at a MiB
/// boundary) are the filesystem images `parts`, copied sparsely.
pub fn mbr_disk_of(parts: &[&Path], disk: &Path) {
    let f = std::fs::File::create(disk).expect("disk");
    let mut mbr = [0u8; 512];
    let mut start = PART_START;
    for (i, part) in parts.iter().enumerate() {
        let len = std::fs::metadata(part).expect("fs size").len();
        let entry = 446 + 16 * i;
        mbr[entry + 4] = 0x83;
        let lba = u32::try_from(start / 512).expect("lba");
        let sectors = u32::try_from(len / 512).expect("sectors");
        mbr[entry + 8..entry + 12].copy_from_slice(&lba.to_le_bytes());
        mbr[entry + 12..entry + 16].copy_from_slice(&sectors.to_le_bytes());
        copy_sparse_into(part, &f, start);
        start += len.div_ceil(PART_START) * PART_START;
    }
    mbr[446] = 0x80;
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    f.write_all_at(&mbr, 0).expect("mbr");
    f.set_len(start).expect("size");
}

fn copy_sparse_into(src: &Path, dst: &std::fs::File, offset: u64) {
    let src = std::fs::File::open(src).expect("fs image");
    let len = src.metadata().expect("fs size").len();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    while pos < len {
        let n = usize::try_from((len - pos).min(1 << 20)).expect("chunk");
        src.read_exact_at(&mut buf[..n], pos).expect("read fs");
        if buf[..n].iter().any(|&b| b != 0) {
            dst.write_all_at(&buf[..n], offset + pos).expect("write fs");
        }
        pos += n as u64;
    }
}

/// A command's `--json` stdout, parsed.
pub fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// SHA-256 of a whole file, hex.
pub fn sha256_file(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut f = std::fs::File::open(path).expect("open");
    std::io::copy(&mut f, &mut hasher).expect("hash");
    format!("{:x}", hasher.finalize())
}

/// `qemu-img convert` of a raw disk into a monolithicSparse VMDK, as VMware writes them.
pub fn vmdk_of(raw: &Path, vmdk: &Path) {
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vmdk",
        "-o",
        "subformat=monolithicSparse",
        p(raw),
        p(vmdk),
    ]);
}

/// Copies the partition starting at `offset_mib` of a raw disk out into its own (sparse)
/// file, so e2fsprogs can work on it without a loop device.
pub fn extract_partition(disk: &Path, part: &Path, offset_mib: u64) {
    run_ok(Command::new("dd").args([
        &format!("if={}", p(disk)),
        &format!("of={}", p(part)),
        "bs=1M",
        &format!("skip={offset_mib}"),
        "conv=sparse",
        "status=none",
    ]));
}

/// The text of `path` inside the ext2/3/4 filesystem at byte `offset` of `disk`, read with
/// debugfs (e2fsprogs' `FILE?offset=N` form: no loop mount, no copy of the partition).
pub fn ext4_file_text(disk: &Path, offset: u64, path: &str) -> String {
    let image = format!("{}?offset={offset}", p(disk));
    let out = run_ok(Command::new("debugfs").args(["-R", &format!("cat {path}"), &image]));
    stdout(&out)
}
