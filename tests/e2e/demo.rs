//! Issue 2, acceptance 4: the README's first command works and says what it did.

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
    if have_tool("qemu-img") {
        assert_qemu_identical(
            &work.join("web01.vmdk"),
            "vmdk",
            &work.join("web01.qcow2"),
            "qcow2",
        );
        assert!(text.contains("qemu-img check: no errors"), "{text}");
    }
}
