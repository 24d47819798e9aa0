//! The command line as a user meets it: help, dry runs, JSON, exit codes, and hostile
//! inputs built at test time (truncated files, extents climbing out of their folder,
//! absurd sizes, chain loops), each a one-line error with exit 1 that leaves the source
//! untouched and no output behind.

use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::util::*;

fn assert_bad_input(args: &[&str], must_mention: &str) {
    let out = run_ferry(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("ferry: error: "), "{err}");
    assert!(
        err.contains(must_mention),
        "{args:?}: expected '{must_mention}' in: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

fn digest(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read source")
}

/// Converts `src` expecting a clean refusal that mentions `needle`, and checks the source
/// is unchanged and nothing was left under the output name.
fn refuse(dir: &Path, src: &Path, needle: &str) {
    let before = digest(src);
    let out = dir.join("refused.qcow2");
    assert_bad_input(&["convert", p(src), p(&out)], needle);
    assert!(!out.exists(), "no output left behind");
    assert_eq!(digest(src), before, "source unchanged");
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("ferry-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn help_names_every_subcommand_and_exit_codes() {
    let out = run_ferry(["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for word in ["convert", "info", "demo", "EXIT STATUS"] {
        assert!(text.contains(word), "--help lacks {word}");
    }
    let out = run_ferry(["convert", "--help"]);
    assert!(stdout(&out).contains("--source-format") && stdout(&out).contains("EXAMPLES"));
}

#[test]
fn unknown_format_asks_for_raw_and_usage_errors_exit_2() {
    let dir = tmpdir();
    let junk = dir.path().join("disk.img");
    std::fs::write(&junk, vec![0u8; 8192]).expect("write");
    assert_bad_input(&["info", p(&junk)], "--source-format raw");
    assert_bad_input(
        &["convert", p(&dir.path().join("missing.vmdk")), "x.qcow2"],
        "missing.vmdk",
    );
    let out = run_ferry(["convert", "--cluster-size", "3000", p(&junk), "x.qcow2"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run_ferry(["convert", "-f", "raw", p(&junk), p(&junk)]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "refuses to overwrite its source"
    );
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let dir = tmpdir();
    let src = dir.path().join("disk.raw");
    pattern_raw(&src, 8 << 20, &[(0, 4096), (4 << 20, 65536)]);
    let out_path = dir.path().join("out.qcow2");
    let out = run_ferry([
        "convert",
        "--dry-run",
        "--json",
        "-f",
        "raw",
        p(&src),
        p(&out_path),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["source"]["virtual_size"], 8 << 20);
    assert!(v["source"]["allocated_bytes"]
        .as_u64()
        .is_some_and(|a| a >= 69632));
    assert!(!out_path.exists());
}

#[test]
fn raw_conversion_to_raw_is_exact_and_json_reports_it() {
    let dir = tmpdir();
    let src = dir.path().join("disk.raw");
    pattern_raw(
        &src,
        (3 << 20) + 512,
        &[(0, 512), (1_000_001, 77), ((3 << 20), 512)],
    );
    let dst = dir.path().join("copy.raw");
    let out = run_ferry([
        "convert",
        "--json",
        "--verify",
        "-f",
        "raw",
        "-O",
        "raw",
        p(&src),
        p(&dst),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v["verify"]["bytes_compared"].as_u64().is_some());
    assert_eq!(
        std::fs::read(&dst).expect("dst"),
        std::fs::read(&src).expect("src")
    );
}

#[test]
fn truncated_and_wrong_magic_images_are_refused() {
    if !have_tool("qemu-img") {
        return;
    }
    let dir = tmpdir();
    let reference = dir.path().join("ref.raw");
    pattern_raw(&reference, 4 << 20, &[(0, 4 << 20)]);
    for (fmt, opts) in [
        ("vmdk", "subformat=monolithicSparse"),
        ("vmdk", "subformat=streamOptimized"),
        ("qcow2", "compat=1.1"),
        ("vpc", "subformat=dynamic"),
    ] {
        let img = dir
            .path()
            .join(format!("trunc-{}.img", opts.replace(['=', ','], "-")));
        qemu_img(&[
            "convert",
            "-f",
            "raw",
            "-O",
            fmt,
            "-o",
            opts,
            p(&reference),
            p(&img),
        ]);
        let len = std::fs::metadata(&img).expect("meta").len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&img)
            .expect("open")
            .set_len(len / 2)
            .expect("truncate");
        refuse(dir.path(), &img, "trunc-");
    }
    let bad = dir.path().join("badmagic.vmdk");
    std::fs::write(&bad, b"KDMX not really a vmdk").expect("write");
    refuse(dir.path(), &bad, "--source-format raw");
}

fn descriptor(extent_line: &str, extra: &str) -> String {
    format!(
        "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n{extra}\n# Extent description\n{extent_line}\n\n# The Disk Data Base\nddb.adapterType = \"lsilogic\"\n"
    )
}

#[test]
fn extent_names_cannot_climb_out_of_the_descriptor_folder() {
    let dir = tmpdir();
    let sub = dir.path().join("vm");
    std::fs::create_dir(&sub).expect("mkdir");
    for (name, line) in [
        ("climb.vmdk", "RW 2048 FLAT \"../../etc/shadow\" 0"),
        ("absolute.vmdk", "RW 2048 FLAT \"/etc/shadow\" 0"),
    ] {
        let d = sub.join(name);
        std::fs::write(&d, descriptor(line, "")).expect("write");
        refuse(&sub, &d, name);
    }
}

#[test]
fn absurd_sizes_fail_fast_with_bounded_memory() {
    if !have_tool("qemu-img") {
        return;
    }
    let dir = tmpdir();
    // qcow2 whose L1 table claims terabytes.
    let q = dir.path().join("huge-l1.qcow2");
    qemu_img(&["create", "-f", "qcow2", p(&q), "64M"]);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&q)
        .expect("open");
    f.write_all_at(&(1u64 << 55).to_be_bytes(), 24)
        .expect("size");
    f.write_all_at(&0x4000_0000u32.to_be_bytes(), 36)
        .expect("l1 size");
    drop(f);
    refuse(dir.path(), &q, "huge-l1.qcow2");
    // Sparse VMDK whose capacity is absurd.
    let v = dir.path().join("huge.vmdk");
    qemu_img(&["create", "-f", "vmdk", p(&v), "64M"]);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&v)
        .expect("open");
    f.write_all_at(&(1u64 << 62).to_le_bytes(), 12)
        .expect("capacity");
    drop(f);
    refuse(dir.path(), &v, "huge.vmdk");
}

#[test]
fn chain_loops_are_refused() {
    let dir = tmpdir();
    let a = dir.path().join("a.vmdk");
    let b = dir.path().join("b.vmdk");
    let flat = dir.path().join("a-flat.vmdk");
    std::fs::write(&flat, vec![0u8; 2048 * 512]).expect("flat");
    let child = |parent: &str, extent: &str| {
        format!(
            "# Disk DescriptorFile\nversion=1\nCID=22222222\nparentCID=11111111\ncreateType=\"monolithicFlat\"\nparentFileNameHint=\"{parent}\"\n# Extent description\nRW 2048 FLAT \"{extent}\" 0\n"
        )
    };
    std::fs::write(&a, child("b.vmdk", "a-flat.vmdk")).expect("a");
    std::fs::write(&b, child("a.vmdk", "a-flat.vmdk")).expect("b");
    refuse(dir.path(), &a, "a.vmdk");
}

#[test]
fn interrupt_removes_partial_output_and_exits_130() {
    let dir = tmpdir();
    let src = dir.path().join("big.raw");
    // 256 MiB of data compressed with zlib takes seconds: long enough to interrupt.
    pattern_raw(&src, 256 << 20, &[(0, 256 << 20)]);
    let dst = dir.path().join("out.qcow2");
    let child = ferry()
        .args([
            "convert",
            "-f",
            "raw",
            "--compress",
            "zlib",
            "-j",
            "1",
            p(&src),
            p(&dst),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(400));
    run_ok(std::process::Command::new("kill").args(["-INT", &child.id().to_string()]));
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted"));
    assert!(!dst.exists());
    let leftovers = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().contains("ferry-tmp"))
        })
        .count();
    assert_eq!(leftovers, 0, "temporary output removed");
}
