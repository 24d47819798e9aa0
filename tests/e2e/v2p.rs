//! Issue 6, V2P acceptance: a converted guest written by `ferry v2p` onto a raw file boots
//! in QEMU as "physical" hardware — an AHCI/SATA disk and an e1000 NIC, no virtio — to its
//! boot marker, with root read-write and its NIC (pinned to the given MAC) configured; the
//! last partition and its ext4 filesystem grown to the target. Refusals: a target with a
//! partition table without --force, and the mounted device holding `/`.

use std::process::Command;
use std::time::Duration;

use crate::guest::{self, BootHw, DiskBus, GuestSpec, Nic};
use crate::util::*;

const BOOT_TIMEOUT: Duration = Duration::from_secs(420);
const PHYSICAL_MAC: &str = "3c:ec:ef:12:34:56";

#[test]
fn v2p_guest_boots_on_ahci_and_e1000() {
    let spec = GuestSpec::vmware();
    let Some(g) = guest::build(&spec) else {
        return;
    };
    let dir = tmpdir();
    // The VM: the VMware guest moved to KVM by ferry v2v.
    let vmdk = dir.path().join("web01.vmdk");
    vmdk_of(&g.disk, &vmdk);
    let out = dir.path().join("kvm");
    let run = run_ferry(["v2v", p(&vmdk), "--out", p(&out), "--name", "web01"]);
    assert!(run.status.success(), "v2v: {}", stderr(&run));
    let vm_disk = out.join("web01-disk1.qcow2");

    // The "physical" disk: larger than the VM's, so --grow has room.
    let target = dir.path().join("bare-metal.raw");
    run_ok(Command::new("truncate").args(["-s", "3G", p(&target)]));
    let dry = run_ferry(["v2p", "--dry-run", p(&vm_disk), "--to", p(&target)]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert_eq!(
        std::fs::metadata(&target).expect("target").len(),
        3 << 30,
        "--dry-run changed the target"
    );
    let run = run_ferry([
        "v2p",
        "--json",
        "--grow",
        "--mac",
        PHYSICAL_MAC,
        p(&vm_disk),
        "--to",
        p(&target),
    ]);
    assert!(run.status.success(), "v2p: {}", stderr(&run));
    let report = json_of(&run);
    assert!(report["verify"].is_object(), "{report:#}");
    assert_eq!(report["grow"]["filesystem_grown"], true, "{report:#}");
    let applied: Vec<&str> = report["fixups"]["reports"]
        .as_array()
        .expect("reports")
        .iter()
        .filter(|r| r["outcome"] == "applied")
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert!(applied.contains(&"network"), "{report:#}");
    // The VM's MAC in the guest's own configuration became the machine's: ifupdown's
    // `hwaddress` would otherwise clone the VM's MAC onto the machine's NIC.
    let interfaces = ext4_file_text(&target, 1 << 20, "/etc/network/interfaces");
    assert!(
        interfaces.contains(&format!("hwaddress ether {PHYSICAL_MAC}"))
            && !interfaces.contains(&spec.mac),
        "{interfaces}"
    );

    let hw = BootHw {
        disk_bus: DiskBus::Ahci,
        nic: Nic::E1000,
        mac: PHYSICAL_MAC.to_string(),
        pcie_slot: None,
    };
    let booted = guest::boot(&target, "raw", &hw, BOOT_TIMEOUT);
    let line = booted
        .marker_line
        .as_deref()
        .unwrap_or_else(|| panic!("no marker {}", booted.tail()));
    assert!(booted.root_rw(), "root not read-write: {line}");
    assert_eq!(booted.ipv4_on("ens192"), Some("10.0.2.15/24"), "{line}");

    // A second write onto the disk that now has a partition table needs --force.
    let again = run_ferry(["v2p", p(&vm_disk), "--to", p(&target)]);
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("partition table") && stderr(&again).contains("--force"),
        "{}",
        stderr(&again)
    );
}

/// The block device `/` is mounted from, if any.
fn root_block_device() -> Option<String> {
    let out = Command::new("findmnt")
        .args(["-rn", "-o", "SOURCE", "/"])
        .output()
        .ok()?;
    let source = String::from_utf8_lossy(&out.stdout).trim().to_string();
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(&source).ok()?;
    meta.file_type().is_block_device().then_some(source)
}

#[test]
fn v2p_refuses_the_mounted_system_disk() {
    if !have_tool("qemu-img") {
        return;
    }
    let Some(device) = root_block_device() else {
        eprintln!("skipping: / is not on a block device here");
        return;
    };
    let dir = tmpdir();
    let disk = dir.path().join("vm.qcow2");
    qemu_img(&["create", "-f", "qcow2", p(&disk), "16M"]);
    // --dry-run as well: even a broken check could not write.
    let out = run_ferry([
        "v2p",
        "--dry-run",
        "--no-fixups",
        "--force",
        p(&disk),
        "--to",
        &device,
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("mounted"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
