//! Issue 6, P2V acceptance: a "physical" disk — the bootable VMware-style test guest whose
//! ext4 root was filled with non-zero files and then had half of them deleted — imaged by
//! `ferry p2v --used-only`: only the used blocks are copied (the report's bytes match what
//! e2fsprogs counts as used), the result passes `e2fsck -fn`, every remaining file is
//! identical, and the guest boots in QEMU on virtio to its marker.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::guest::{self, BootHw, DiskBus, GuestSpec, Nic};
use crate::util::*;

const BOOT_TIMEOUT: Duration = Duration::from_secs(420);
const PART_OFFSET_MIB: u64 = 1;
const FILES: usize = 24;
const FILE_MIB: usize = 4;

/// Runs a debugfs command file on an ext4 image (no mount).
fn debugfs(image: &Path, write: bool, commands: &str) -> String {
    let dir = tmpdir();
    let script = dir.path().join("cmds");
    std::fs::write(&script, commands).expect("write cmds");
    let mut cmd = Command::new("debugfs");
    if write {
        cmd.arg("-w");
    }
    let out = run_ok(cmd.arg("-f").arg(&script).arg(image));
    stdout(&out)
}

fn put_partition_back(part: &Path, disk: &Path) {
    run_ok(Command::new("dd").args([
        &format!("if={}", p(part)),
        &format!("of={}", p(disk)),
        "bs=1M",
        &format!("seek={PART_OFFSET_MIB}"),
        "conv=notrunc,sparse",
        "status=none",
    ]));
}

/// Used bytes of an ext4 image as e2fsprogs counts them.
fn ext4_used_bytes(part: &Path) -> u64 {
    let out = run_ok(Command::new("dumpe2fs").arg("-h").arg(part));
    let text = stdout(&out);
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in dumpe2fs -h"))
    };
    (field("Block count:") - field("Free blocks:")) * field("Block size:")
}

fn sha256_of_guest_file(part: &Path, path: &str) -> String {
    let dir = tmpdir();
    let out = dir.path().join("f");
    debugfs(part, false, &format!("dump {path} {}\n", p(&out)));
    sha256_file(&out)
}

#[test]
fn p2v_used_only_copies_used_blocks_and_the_guest_boots() {
    if !have_tool("debugfs") || !have_tool("dumpe2fs") {
        return;
    }
    let Some(g) = guest::build(&GuestSpec::vmware()) else {
        return;
    };
    let dir = tmpdir();
    // The "physical" disk: a copy of the guest, its root filled and then half emptied.
    let disk = dir.path().join("sda.img");
    run_ok(Command::new("cp").args(["--sparse=always", p(&g.disk), p(&disk)]));
    let part = dir.path().join("part.ext4");
    extract_partition(&disk, &part, PART_OFFSET_MIB);
    let random = dir.path().join("random.bin");
    let mut cmds = String::from("mkdir /fill\n");
    for i in 0..FILES {
        run_ok(Command::new("dd").args([
            "if=/dev/urandom",
            &format!("of={}", p(&random)),
            "bs=1M",
            &format!("count={FILE_MIB}"),
            "status=none",
        ]));
        let host = dir.path().join(format!("f{i}"));
        std::fs::copy(&random, &host).expect("copy");
        cmds.push_str(&format!("write {} /fill/f{i}\n", p(&host)));
    }
    debugfs(&part, true, &cmds);
    let kept: Vec<String> = (0..FILES)
        .step_by(2)
        .map(|i| format!("/fill/f{i}"))
        .collect();
    let kept_sums: Vec<String> = kept
        .iter()
        .map(|f| sha256_of_guest_file(&part, f))
        .collect();
    let deleted: String = (1..FILES)
        .step_by(2)
        .map(|i| format!("rm /fill/f{i}\n"))
        .collect();
    debugfs(&part, true, &deleted);
    let used_fs = ext4_used_bytes(&part);
    put_partition_back(&part, &disk);

    let out_dir = dir.path().join("out");
    let dry = run_ferry([
        "p2v",
        "--dry-run",
        "--json",
        "--used-only",
        "--disk",
        p(&disk),
        "--out",
        p(&out_dir),
        "--name",
        "phys01",
    ]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(!out_dir.exists(), "--dry-run wrote");
    let dry = json_of(&dry);
    let planned = dry["v2v"]["bytes_to_copy"].as_u64().expect("bytes_to_copy");
    let used = dry["used"][0]["used_bytes"].as_u64().expect("used_bytes");
    // The used-blocks map is the filesystem's used blocks plus the partition-table area
    // before it (MBR and the boot loader gap), nothing more.
    let table_area = PART_OFFSET_MIB << 20;
    assert!(
        used >= used_fs && used <= used_fs + table_area,
        "map {used}, ext4 uses {used_fs}"
    );
    // What is read is within that map (holes of the sparse source are skipped too), and
    // the deleted files' non-zero blocks, still allocated in the source file, are not.
    assert!(planned <= used, "planned {planned}, map {used}");
    let deleted_bytes = (FILES / 2 * FILE_MIB) as u64 * (1 << 20);
    let source_data = qemu_map_data_bytes(&disk, "raw");
    assert!(
        planned + deleted_bytes * 9 / 10 <= source_data,
        "planned {planned}, source data {source_data}, deleted {deleted_bytes}"
    );

    let run = run_ferry([
        "p2v",
        "--json",
        "--used-only",
        "--disk",
        p(&disk),
        "--out",
        p(&out_dir),
        "--name",
        "phys01",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let report = json_of(&run);
    assert_eq!(report["v2v"]["bytes_to_copy"].as_u64(), Some(planned));
    let qcow2 = out_dir.join("phys01-disk1.qcow2");
    assert_qemu_check_clean(&qcow2);

    // e2fsck and the kept files, on the converted disk's root filesystem.
    let raw = dir.path().join("converted.raw");
    qemu_img(&["convert", "-f", "qcow2", "-O", "raw", p(&qcow2), p(&raw)]);
    let converted_part = dir.path().join("converted.ext4");
    extract_partition(&raw, &converted_part, PART_OFFSET_MIB);
    let fsck = Command::new("e2fsck")
        .args(["-fn", p(&converted_part)])
        .output()
        .expect("e2fsck");
    assert!(
        fsck.status.success(),
        "e2fsck -fn: {}{}",
        stdout(&fsck),
        stderr(&fsck)
    );
    for (file, sum) in kept.iter().zip(&kept_sums) {
        assert_eq!(&sha256_of_guest_file(&converted_part, file), sum, "{file}");
    }
    drop((raw, converted_part));

    let hw = BootHw {
        disk_bus: DiskBus::Virtio,
        nic: Nic::Virtio,
        mac: g.spec.mac.clone(),
        pcie_slot: None,
    };
    let booted = guest::boot(&qcow2, "qcow2", &hw, BOOT_TIMEOUT);
    let line = booted
        .marker_line
        .as_deref()
        .unwrap_or_else(|| panic!("no marker {}", booted.tail()));
    assert!(booted.root_rw(), "root not read-write: {line}");
}

#[test]
fn p2v_refuses_a_missing_disk_cleanly() {
    let dir = tmpdir();
    let out = run_ferry([
        "p2v",
        "--disk",
        "/nonexistent/sdz",
        "--out",
        p(&dir.path().join("out")),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("/nonexistent/sdz"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
