//! Issue 2, acceptance 1: every source subformat, made by qemu-img from a reference raw
//! disk with data at the first and last sector, at odd offsets and across grain
//! boundaries, in a virtual size that is not a multiple of the grain or cluster:
//! ferry converts it to qcow2 and raw, `qemu-img compare` finds them identical to the
//! reference, `qemu-img check` finds no errors, and `ferry info` reports the allocated
//! bytes `qemu-img map` reports.

use std::path::Path;

use crate::util::*;

/// 10 MiB + 3 sectors: not a multiple of any grain, cluster or block size.
const SIZE: u64 = (10 << 20) + 3 * 512;

fn reference_writes() -> Vec<(u64, usize)> {
    vec![
        (0, 512),
        (1_048_577, 1000),
        ((3 << 20) + 2 * 65536 - 100, 300),
        (5 << 20, 2 << 20),
        (SIZE - 512, 512),
    ]
}

struct Case {
    name: &'static str,
    qemu_format: &'static str,
    options: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "vmdk-monolithicSparse",
        qemu_format: "vmdk",
        options: &["-o", "subformat=monolithicSparse"],
    },
    Case {
        name: "vmdk-monolithicFlat",
        qemu_format: "vmdk",
        options: &["-o", "subformat=monolithicFlat"],
    },
    Case {
        name: "vmdk-twoGbMaxExtentSparse",
        qemu_format: "vmdk",
        options: &["-o", "subformat=twoGbMaxExtentSparse"],
    },
    Case {
        name: "vmdk-twoGbMaxExtentFlat",
        qemu_format: "vmdk",
        options: &["-o", "subformat=twoGbMaxExtentFlat"],
    },
    Case {
        name: "vmdk-streamOptimized",
        qemu_format: "vmdk",
        options: &["-o", "subformat=streamOptimized"],
    },
    Case {
        name: "vhd-dynamic",
        qemu_format: "vpc",
        options: &["-o", "subformat=dynamic,force_size=on"],
    },
    Case {
        name: "vhd-fixed",
        qemu_format: "vpc",
        options: &["-o", "subformat=fixed,force_size=on"],
    },
    Case {
        name: "qcow2-v2",
        qemu_format: "qcow2",
        options: &["-o", "compat=0.10"],
    },
    Case {
        name: "qcow2-v3-4k-clusters",
        qemu_format: "qcow2",
        options: &["-o", "compat=1.1,cluster_size=4096"],
    },
    Case {
        name: "qcow2-compressed-zlib",
        qemu_format: "qcow2",
        options: &["-c"],
    },
    Case {
        name: "qcow2-compressed-zstd",
        qemu_format: "qcow2",
        options: &["-c", "-o", "compression_type=zstd"],
    },
    Case {
        name: "raw",
        qemu_format: "raw",
        options: &[],
    },
];

fn image_name(case: &Case) -> String {
    match case.qemu_format {
        "vpc" => format!("{}.vhd", case.name),
        "raw" => format!("{}.img", case.name),
        f => format!("{}.{f}", case.name),
    }
}

fn ferry_info(image: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["info", "--json"];
    args.extend_from_slice(extra);
    args.push(p(image));
    let out = run_ferry(&args);
    assert!(
        out.status.success(),
        "ferry info {}: {}",
        image.display(),
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).expect("info json")
}

fn check_case(dir: &Path, reference: &Path, case: &Case) {
    let image = dir.join(image_name(case));
    let mut args = vec!["convert", "-f", "raw", "-O", case.qemu_format];
    args.extend_from_slice(case.options);
    args.extend_from_slice(&[p(reference), p(&image)]);
    qemu_img(&args);
    let source_format: &[&str] = if case.qemu_format == "raw" {
        &["-f", "raw"]
    } else {
        &[]
    };

    let info = ferry_info(&image, source_format);
    assert_eq!(
        info["virtual_size"].as_u64(),
        Some(SIZE),
        "{}: virtual size",
        case.name
    );
    assert_eq!(
        info["allocated_bytes"].as_u64(),
        Some(qemu_map_data_bytes(&image, case.qemu_format)),
        "{}: allocated bytes vs qemu-img map",
        case.name
    );

    let qcow2 = dir.join(format!("{}.out.qcow2", case.name));
    let mut convert = vec!["convert", "--verify"];
    convert.extend_from_slice(source_format);
    convert.extend_from_slice(&[p(&image), p(&qcow2)]);
    let out = run_ferry(&convert);
    assert!(
        out.status.success(),
        "{}: ferry convert: {}",
        case.name,
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("verified: identical"),
        "{}",
        stdout(&out)
    );
    assert_qemu_identical(reference, "raw", &qcow2, "qcow2");
    assert_qemu_check_clean(&qcow2);

    let raw = dir.join(format!("{}.out.raw", case.name));
    let mut convert = vec!["convert", "-O", "raw"];
    convert.extend_from_slice(source_format);
    convert.extend_from_slice(&[p(&image), p(&raw)]);
    let out = run_ferry(&convert);
    assert!(
        out.status.success(),
        "{}: ferry convert -O raw: {}",
        case.name,
        stderr(&out)
    );
    assert!(
        std::fs::read(&raw).expect("raw out") == std::fs::read(reference).expect("reference"),
        "{}: raw output differs from the reference",
        case.name
    );
}

#[test]
fn every_subformat_converts_identically() {
    if !have_tool("qemu-img") {
        return;
    }
    let dir = tmpdir();
    let reference = dir.path().join("reference.raw");
    pattern_raw(&reference, SIZE, &reference_writes());
    for case in CASES {
        check_case(dir.path(), &reference, case);
    }
}

#[test]
fn compressed_output_is_read_by_qemu() {
    if !have_tool("qemu-img") {
        return;
    }
    let dir = tmpdir();
    let reference = dir.path().join("reference.raw");
    pattern_raw(&reference, SIZE, &reference_writes());
    let source = dir.path().join("src.vmdk");
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vmdk",
        p(&reference),
        p(&source),
    ]);
    for (method, header_type) in [("zlib", "zlib"), ("zstd", "zstd")] {
        let out_path = dir.path().join(format!("out-{method}.qcow2"));
        let out = run_ferry([
            "convert",
            "--compress",
            method,
            "--verify",
            p(&source),
            p(&out_path),
        ]);
        assert!(out.status.success(), "{method}: {}", stderr(&out));
        assert_qemu_identical(&reference, "raw", &out_path, "qcow2");
        assert_qemu_check_clean(&out_path);
        let info = qemu_img(&["info", "--output=json", p(&out_path)]);
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("json");
        assert_eq!(
            info["format-specific"]["data"]["compression-type"].as_str(),
            Some(header_type)
        );
    }
}

#[test]
fn qcow2_zero_clusters_read_as_zero() {
    if !have_tool("qemu-io") {
        return;
    }
    let dir = tmpdir();
    let reference = dir.path().join("reference.raw");
    pattern_raw(&reference, SIZE, &reference_writes());
    let image = dir.path().join("zeroes.qcow2");
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "qcow2",
        p(&reference),
        p(&image),
    ]);
    run_ok(std::process::Command::new("qemu-io").args([
        "-f",
        "qcow2",
        "-c",
        "write -z 5M 128k",
        "-c",
        "write -z 0 64k",
        p(&image),
    ]));
    let expected = dir.path().join("expected.raw");
    qemu_img(&[
        "convert",
        "-f",
        "qcow2",
        "-O",
        "raw",
        p(&image),
        p(&expected),
    ]);
    let info = ferry_info(&image, &[]);
    assert_eq!(
        info["allocated_bytes"].as_u64(),
        Some(qemu_map_data_bytes(&image, "qcow2"))
    );
    let out_path = dir.path().join("out.qcow2");
    let out = run_ferry(["convert", "--verify", p(&image), p(&out_path)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_qemu_identical(&expected, "raw", &out_path, "qcow2");
}

#[test]
fn snapshot_chains_read_through_their_parents() {
    if !have_tool("qemu-io") {
        return;
    }
    let dir = tmpdir();
    let reference = dir.path().join("reference.raw");
    pattern_raw(&reference, SIZE, &reference_writes());
    for fmt in ["vmdk", "qcow2"] {
        let base = dir.path().join(format!("base.{fmt}"));
        let mid = dir.path().join(format!("mid.{fmt}"));
        let top = dir.path().join(format!("top.{fmt}"));
        qemu_img(&["convert", "-f", "raw", "-O", fmt, p(&reference), p(&base)]);
        qemu_img(&[
            "create",
            "-f",
            fmt,
            "-b",
            &format!("base.{fmt}"),
            "-F",
            fmt,
            p(&mid),
        ]);
        run_ok(std::process::Command::new("qemu-io").args([
            "-f",
            fmt,
            "-c",
            "write -P 0x77 4096 8192",
            p(&mid),
        ]));
        qemu_img(&[
            "create",
            "-f",
            fmt,
            "-b",
            &format!("mid.{fmt}"),
            "-F",
            fmt,
            p(&top),
        ]);
        run_ok(std::process::Command::new("qemu-io").args([
            "-f",
            fmt,
            "-c",
            "write -P 0x78 6M 4096",
            p(&top),
        ]));
        let expected = dir.path().join(format!("expected-{fmt}.raw"));
        qemu_img(&["convert", "-f", fmt, "-O", "raw", p(&top), p(&expected)]);
        let out_path = dir.path().join(format!("chain-{fmt}.qcow2"));
        let out = run_ferry([
            "convert",
            "--follow-backing",
            "--verify",
            p(&top),
            p(&out_path),
        ]);
        assert!(out.status.success(), "{fmt}: {}", stderr(&out));
        assert_qemu_identical(&expected, "raw", &out_path, "qcow2");
        let info = ferry_info(&top, &["--follow-backing"]);
        assert_eq!(
            info["chain"].as_array().map(Vec::len),
            Some(3),
            "{fmt}: chain of three"
        );
    }
    // qcow2 backing files are image data: not followed unless asked.
    let out = run_ferry(["info", p(&dir.path().join("top.qcow2"))]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--follow-backing"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn esxi_vmfs_descriptor_with_flat_extent_converts_identically() {
    if !have_tool("qemu-img") {
        return;
    }
    let dir = tmpdir();
    let flat = dir.path().join("esxi-flat.vmdk");
    pattern_raw(&flat, SIZE, &reference_writes());
    let descriptor = dir.path().join("esxi.vmdk");
    std::fs::write(
        &descriptor,
        format!(
            "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=fffffffe\nparentCID=ffffffff\n\
             createType=\"vmfs\"\n\n# Extent description\nRW {} VMFS \"esxi-flat.vmdk\"\n\n\
             # The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\nddb.virtualHWVersion = \"14\"\n",
            SIZE / 512
        ),
    )
    .expect("descriptor");
    let info = ferry_info(&descriptor, &[]);
    assert_eq!(info["subformat"], "vmfs");
    let out = dir.path().join("esxi.qcow2");
    let run = run_ferry(["convert", "--verify", p(&descriptor), p(&out)]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_qemu_identical(&descriptor, "vmdk", &out, "qcow2");
    assert_qemu_identical(&flat, "raw", &out, "qcow2");
    assert_qemu_check_clean(&out);
}
