//! Tests of the fixup engine on an in-memory guest.

use super::*;
use crate::guestfs::memfs::MemFs;

fn p(s: &str) -> GuestPath {
    GuestPath::new(s).unwrap()
}

#[test]
fn write_keeps_one_backup_and_refuses_a_stale_plan() {
    let fs = MemFs::new();
    fs.add_file("/etc/fstab", "/dev/sda1 / ext4 defaults 0 1\n")
        .unwrap();
    let change = Change::WriteFile {
        path: p("/etc/fstab"),
        before: Some(b"/dev/sda1 / ext4 defaults 0 1\n".to_vec()),
        after: b"UUID=x / ext4 defaults 0 1\n".to_vec(),
    };
    apply::apply_changes(&fs, std::slice::from_ref(&change)).unwrap();
    assert_eq!(
        fs.read_file(&p("/etc/fstab")).unwrap(),
        b"UUID=x / ext4 defaults 0 1\n"
    );
    assert_eq!(
        fs.read_file(&p("/etc/fstab.ferry-orig")).unwrap(),
        b"/dev/sda1 / ext4 defaults 0 1\n"
    );
    // Same plan again: the file is no longer what the plan saw.
    let err = apply::apply_changes(&fs, &[change]).unwrap_err();
    assert!(matches!(err, FixupError::Conflict { .. }), "{err}");
}

#[test]
fn a_second_edit_keeps_the_first_backup() {
    let fs = MemFs::new();
    fs.add_file("/etc/a", "one\n").unwrap();
    for (before, after) in [("one\n", "two\n"), ("two\n", "three\n")] {
        let change = Change::WriteFile {
            path: p("/etc/a"),
            before: Some(before.as_bytes().to_vec()),
            after: after.as_bytes().to_vec(),
        };
        apply::apply_changes(&fs, &[change]).unwrap();
    }
    assert_eq!(fs.read_file(&p("/etc/a.ferry-orig")).unwrap(), b"one\n");
}

#[test]
fn create_makes_parents_and_append_backs_up_the_whole_file() {
    let fs = MemFs::new();
    fs.add_file("/boot/initrd.img-6.1", vec![7u8; 1000])
        .unwrap();
    let changes = vec![
        Change::WriteFile {
            path: p("/etc/systemd/network/10-x.link"),
            before: None,
            after: b"[Match]\n".to_vec(),
        },
        Change::AppendFile {
            path: p("/boot/initrd.img-6.1"),
            before_len: 1000,
            data: vec![1, 2, 3, 4],
            summary: "cpio".into(),
        },
        Change::CreateSymlink {
            path: p("/etc/systemd/system/x.service"),
            target: "/dev/null".into(),
        },
    ];
    apply::apply_changes(&fs, &changes).unwrap();
    assert_eq!(
        fs.read_file(&p("/boot/initrd.img-6.1")).unwrap().len(),
        1004
    );
    assert_eq!(
        fs.read_file(&p("/boot/initrd.img-6.1.ferry-orig")).unwrap(),
        vec![7u8; 1000]
    );
    assert_eq!(
        fs.read_link(&p("/etc/systemd/system/x.service")).unwrap(),
        b"/dev/null"
    );
    assert!(fs.exists(&p("/etc/systemd/network/10-x.link")).unwrap());
}

#[test]
fn removed_symlinks_are_logged() {
    let fs = MemFs::new();
    fs.add_symlink(
        "/etc/systemd/system/getty.target.wants/serial-getty@hvc0.service",
        "/lib/systemd/system/serial-getty@.service",
    )
    .unwrap();
    let change = Change::RemoveSymlink {
        path: p("/etc/systemd/system/getty.target.wants/serial-getty@hvc0.service"),
        target: "/lib/systemd/system/serial-getty@.service".into(),
    };
    apply::apply_changes(&fs, &[change]).unwrap();
    let log = fs.read_file(&p(apply::SYMLINK_LOG)).unwrap();
    assert!(String::from_utf8(log)
        .unwrap()
        .contains("serial-getty@hvc0.service -> /lib/systemd/system/serial-getty@.service"));
}

#[test]
fn diffs_are_unified() {
    let change = Change::WriteFile {
        path: p("/etc/fstab"),
        before: Some(b"/dev/sda1 / ext4 defaults 0 1\n".to_vec()),
        after: b"UUID=x / ext4 defaults 0 1\n".to_vec(),
    };
    let r = diff::report(&change);
    assert_eq!(r.action, "edit");
    assert!(r.diff.contains("--- a/etc/fstab"), "{}", r.diff);
    assert!(r.diff.contains("-/dev/sda1 / ext4"), "{}", r.diff);
    assert!(r.diff.contains("+UUID=x / ext4"), "{}", r.diff);
}
