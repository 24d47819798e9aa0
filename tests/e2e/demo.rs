//! Issue 2, acceptance 4: the README's first command works and says what it did — and,
//! since issue 3, fixes the converted guest for KVM, and since issue 4 moves the whole VM
//! from its `.vmx` with `ferry v2v` (no libvirt daemon answers in the tests: it says so).

use crate::util::*;

#[test]
fn demo_builds_converts_and_verifies_a_sample_vmware_disk() {
    if !have_tool("mkfs.ext4") {
        return;
    }
    let dir = tmpdir();
    let work = dir.path().join("demo");
    let out = run_ferry(["demo", "--dir", p(&work)]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("monolithicSparse"), "{text}");
    assert!(text.contains("ext4"), "{text}");
    assert!(text.contains("identical"), "{text}");
    assert!(
        text.contains("ferry demo guest, root on partition 1 (ext4), fstab names root /dev/sda1"),
        "{text}"
    );
    assert!(work.join("web01.vmdk").exists() && work.join("web01.qcow2").exists());
    for fixed in [
        "devices    /boot/grub/grub.cfg, /etc/fstab",
        "network    /etc/systemd/network/10-ferry-ens192.link",
        "tools      /etc/systemd/system/open-vm-tools.service",
    ] {
        assert!(text.contains(fixed), "{fixed}: {text}");
    }
    let qcow2 = work.join("web01.qcow2");
    if have_tool("qemu-img") {
        // QEMU compared the conversion before the fixups changed the guest.
        assert!(text.contains("Images are identical"), "{text}");
        assert!(text.contains("qemu-img check: no errors"), "{text}");
        assert_qemu_check_clean(&qcow2);
    }
    let inspect = run_ferry(["inspect", "--json", p(&qcow2)]);
    assert!(inspect.status.success(), "{}", stderr(&inspect));
    let report: serde_json::Value = serde_json::from_str(&stdout(&inspect)).expect("json");
    let fstab = &report[0]["filesystems"][0]["os"]["fstab"][0]["spec"];
    assert!(
        fstab.as_str().is_some_and(|s| s.starts_with("UUID=")),
        "fstab root after the fixups: {fstab}"
    );
    assert!(text.contains("8. moved the whole VM from"), "{text}");
    let name = "ferry-demo-web01-demo";
    let kvm = work.join("kvm");
    for f in [
        format!("{name}-disk1.qcow2"),
        format!("{name}.xml"),
        format!("{name}.report.json"),
    ] {
        assert!(kvm.join(&f).is_file(), "{f} missing: {text}");
    }
    let xml = std::fs::read_to_string(kvm.join(format!("{name}.xml"))).expect("xml");
    assert!(xml.contains("00:50:56:8a:3c:01"), "{xml}");
    assert!(
        text.contains("libvirt  not defined") || text.contains("libvirt  defined"),
        "{text}"
    );
    if have_tool("qemu-img") {
        assert_qemu_check_clean(&kvm.join(format!("{name}-disk1.qcow2")));
    }
    let again = run_ferry(["fixup", "--json", p(&qcow2)]);
    assert!(again.status.success(), "{}", stderr(&again));
    let again: serde_json::Value = serde_json::from_str(&stdout(&again)).expect("json");
    assert_eq!(
        again["commit"], "none",
        "second fixup changed the demo: {again:#}"
    );
}
