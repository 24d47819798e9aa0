//! Issue 3's acceptance: converted VMware and Xen guests boot under KVM after `ferry fixup`
//! — through their own GRUB, on a virtio-blk disk and a virtio-net NIC with the source
//! MAC — and print the boot marker with root read-write and the NIC configured. The same
//! images without `ferry fixup` do not boot that way (see `guest_images.rs`). The
//! filesystem passes `e2fsck -fn` after the fixups, a second run changes nothing and
//! `--dry-run` writes nothing.

use std::path::Path;
use std::time::Duration;

use crate::guest::{self, BootHw, DiskBus, GuestSpec, Nic};
use crate::util::*;

/// A boot to the marker takes 40–90 s under TCG alone; other tests share the two cores.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);
/// Where the test guests' root partition starts (MBR partition 1).
const PART_START_MIB: u64 = 1;

fn virtio(mac: &str) -> BootHw {
    BootHw {
        disk_bus: DiskBus::Virtio,
        nic: Nic::Virtio,
        mac: mac.to_owned(),
        pcie_slot: None,
    }
}

/// Ids of the fixups a `--json` report says were applied.
fn applied(report: &serde_json::Value) -> Vec<String> {
    report["fixups"]
        .as_array()
        .expect("fixups")
        .iter()
        .filter(|f| f["outcome"] == "applied")
        .map(|f| f["id"].as_str().expect("id").to_string())
        .collect()
}

/// `e2fsck -fn` of the root partition of `image` (any format qemu-img reads).
fn assert_fsck_clean(image: &Path, format: &str, dir: &Path) {
    let raw = dir.join("fsck.raw");
    qemu_img(&["convert", "-f", format, "-O", "raw", p(image), p(&raw)]);
    let part = dir.join("fsck.part");
    extract_partition(&raw, &part, PART_START_MIB);
    let out = std::process::Command::new("e2fsck")
        .args(["-fn", p(&part)])
        .output()
        .expect("run e2fsck");
    assert!(
        out.status.success(),
        "e2fsck -fn: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let _ = std::fs::remove_file(raw);
    let _ = std::fs::remove_file(part);
}

/// Fixes `disk` with ferry, checking the dry run, the report and the second run.
fn fixup_and_check(disk: &Path, format: &str, expect_applied: &[&str]) {
    let before = sha256_file(disk);
    let dry = run_ferry(["fixup", "--dry-run", "-f", format, p(disk)]);
    assert!(dry.status.success(), "dry run: {}", stderr(&dry));
    assert!(stdout(&dry).contains("+++ b/etc/fstab"), "{}", stdout(&dry));
    assert_eq!(sha256_file(disk), before, "--dry-run wrote to the disk");

    let out = run_ferry(["fixup", "--json", "-f", format, p(disk)]);
    assert!(out.status.success(), "fixup: {}", stderr(&out));
    let report = json_of(&out);
    let done = applied(&report);
    for id in expect_applied {
        assert!(done.iter().any(|d| d == id), "{id} not applied: {report:#}");
    }

    let again = run_ferry(["fixup", "--json", "-f", format, p(disk)]);
    assert!(again.status.success(), "second fixup: {}", stderr(&again));
    let report = json_of(&again);
    assert!(
        applied(&report).is_empty(),
        "second run changed: {report:#}"
    );
    assert_eq!(report["commit"], "none", "{report:#}");
}

#[test]
fn vmware_guest_from_vmdk_boots_on_virtio_after_fixup() {
    let Some(g) = guest::build(&GuestSpec::vmware()) else {
        return;
    };
    let dir = tmpdir();
    let vmdk = dir.path().join("vmware.vmdk");
    vmdk_of(&g.disk, &vmdk);
    let qcow2 = dir.path().join("vmware.qcow2");
    let out = run_ferry(["convert", p(&vmdk), p(&qcow2)]);
    assert!(out.status.success(), "convert: {}", stderr(&out));
    fixup_and_check(
        &qcow2,
        "qcow2",
        &["devices", "network", "tools", "initramfs"],
    );
    assert_qemu_check_clean(&qcow2);
    assert_fsck_clean(&qcow2, "qcow2", dir.path());

    let out = guest::boot(&qcow2, "qcow2", &virtio(&g.spec.mac), BOOT_TIMEOUT);
    let line = out
        .marker_line
        .as_deref()
        .unwrap_or_else(|| panic!("no marker {}", out.tail()));
    assert!(out.root_rw(), "root not read-write: {line}");
    assert!(line.contains(&format!("kernel={}", g.kernel)), "{line}");
    assert_eq!(out.ipv4_on("ens192"), Some("10.0.2.15/24"), "{line}");
    eprintln!(
        "fixed vmware guest on virtio: marker after {:?}",
        out.elapsed
    );
}

#[test]
fn xen_guest_from_raw_boots_on_virtio_after_fixup() {
    let Some(g) = guest::build(&GuestSpec::xen()) else {
        return;
    };
    let dir = tmpdir();
    let raw = dir.path().join("xen.raw");
    let out = run_ferry(["convert", "-f", "raw", "-O", "raw", p(&g.disk), p(&raw)]);
    assert!(out.status.success(), "convert: {}", stderr(&out));
    fixup_and_check(&raw, "raw", &["devices", "consoles", "network"]);
    assert_fsck_clean(&raw, "raw", dir.path());

    let out = guest::boot(&raw, "raw", &virtio(&g.spec.mac), BOOT_TIMEOUT);
    let line = out
        .marker_line
        .as_deref()
        .unwrap_or_else(|| panic!("no marker {}", out.tail()));
    assert!(out.root_rw(), "root not read-write: {line}");
    assert_eq!(out.ipv4_on("eth0"), Some("10.0.2.15/24"), "{line}");
    eprintln!("fixed xen guest on virtio: marker after {:?}", out.elapsed);
}

#[test]
fn fixup_refuses_what_it_cannot_write() {
    if !have_tool("qemu-img") {
        return;
    }
    let dir = tmpdir();
    // A disk with no filesystem: no root to fix.
    let blank = dir.path().join("blank.qcow2");
    qemu_img(&["create", "-f", "qcow2", p(&blank), "64M"]);
    let out = run_ferry(["fixup", p(&blank)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("no Linux root filesystem found"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // A VMDK is read, not written.
    let vmdk = dir.path().join("blank.vmdk");
    qemu_img(&["create", "-f", "vmdk", p(&vmdk), "64M"]);
    let out = run_ferry(["fixup", p(&vmdk)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("writes raw and qcow2 disks, this is vmdk"),
        "{}",
        stderr(&out)
    );
}
