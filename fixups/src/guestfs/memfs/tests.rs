//! Resolution and write semantics of the provided `GuestFs` methods, on `MemFs`.

use super::*;
use crate::guestfs::{MAX_SYMLINKS, NEW_FILE_MODE};

fn p(s: &str) -> GuestPath {
    GuestPath::new(s).unwrap()
}

fn guest() -> MemFs {
    let fs = MemFs::new();
    fs.add_file("/etc/fstab", "/dev/sda1 / ext4 defaults 0 1\n")
        .unwrap();
    fs.add_file("/etc/shadow", "root:guest:\n").unwrap();
    fs.add_file(
        "/run/systemd/resolve/stub-resolv.conf",
        "nameserver 127.0.0.53\n",
    )
    .unwrap();
    fs.add_symlink("/etc/resolv.conf", "/run/systemd/resolve/stub-resolv.conf")
        .unwrap();
    fs.add_symlink("/var/www/evil", "../../../../etc/shadow")
        .unwrap();
    fs.add_symlink("/bin", "usr/bin").unwrap();
    fs.add_file("/usr/bin/sh", "#!").unwrap();
    fs
}

#[test]
fn reads_files_and_lists_dirs() {
    let fs = guest();
    assert_eq!(
        fs.read_file(&p("/etc/fstab")).unwrap(),
        b"/dev/sda1 / ext4 defaults 0 1\n"
    );
    let names: Vec<_> = fs
        .read_dir(&p("/etc"))
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        names,
        vec![
            b"fstab".to_vec(),
            b"resolv.conf".to_vec(),
            b"shadow".to_vec()
        ]
    );
    assert!(fs.read_file(&p("/etc")).is_err());
    assert!(fs.read_file(&p("/nope")).unwrap_err().is_not_found());
}

#[test]
fn absolute_symlink_is_relative_to_guest_root() {
    let fs = guest();
    assert_eq!(
        fs.read_file(&p("/etc/resolv.conf")).unwrap(),
        b"nameserver 127.0.0.53\n"
    );
    assert_eq!(
        fs.resolve(&p("/etc/resolv.conf")).unwrap(),
        p("/run/systemd/resolve/stub-resolv.conf")
    );
    assert_eq!(
        fs.symlink_metadata(&p("/etc/resolv.conf")).unwrap().kind,
        FileKind::Symlink
    );
    assert_eq!(
        fs.metadata(&p("/etc/resolv.conf")).unwrap().kind,
        FileKind::File
    );
}

#[test]
fn dotdot_never_leaves_the_guest_root() {
    let fs = guest();
    assert_eq!(fs.resolve(&p("/var/www/evil")).unwrap(), p("/etc/shadow"));
    assert_eq!(fs.read_file(&p("/var/www/evil")).unwrap(), b"root:guest:\n");
    assert_eq!(
        fs.resolve(&p("/../../../etc/fstab")).unwrap(),
        p("/etc/fstab")
    );
}

#[test]
fn relative_symlink_in_the_middle() {
    let fs = guest();
    assert_eq!(fs.resolve(&p("/bin/sh")).unwrap(), p("/usr/bin/sh"));
    // /bin/.. is /usr (physical), which has no etc/.
    assert!(fs
        .resolve(&p("/bin/../etc/fstab"))
        .unwrap_err()
        .is_not_found());
}

#[test]
fn dotdot_after_a_symlink_is_physical() {
    let fs = guest();
    fs.add_file("/usr/marker", "x").unwrap();
    // /bin -> usr/bin, so /bin/.. is /usr, as the kernel resolves it.
    assert_eq!(fs.read_file(&p("/bin/../marker")).unwrap(), b"x");
}

#[test]
fn symlink_loops_are_capped() {
    let fs = MemFs::new();
    fs.add_symlink("/a", "/b").unwrap();
    fs.add_symlink("/b", "/a").unwrap();
    fs.add_symlink("/self", "self/x").unwrap();
    assert!(matches!(
        fs.read_file(&p("/a")),
        Err(GuestFsError::SymlinkLoop { .. })
    ));
    assert!(matches!(
        fs.read_file(&p("/self")),
        Err(GuestFsError::SymlinkLoop { .. })
    ));
    // A chain of exactly MAX_SYMLINKS links still resolves.
    for i in 0..MAX_SYMLINKS {
        fs.add_symlink(&format!("/l{i}"), format!("/l{}", i + 1))
            .unwrap();
    }
    fs.add_file(&format!("/l{MAX_SYMLINKS}"), "end").unwrap();
    assert_eq!(fs.read_file(&p("/l0")).unwrap(), b"end");
}

#[test]
fn hostile_symlink_targets() {
    let fs = MemFs::new();
    fs.add_symlink("/empty", "").unwrap();
    fs.add_symlink("/long", vec![b'a'; 5000]).unwrap();
    fs.add_symlink("/nul", b"a\0b").unwrap();
    fs.add_symlink("/root", "/").unwrap();
    fs.add_symlink("/up", "..").unwrap();
    assert!(fs.read_file(&p("/empty")).unwrap_err().is_not_found());
    assert!(matches!(
        fs.read_file(&p("/long")),
        Err(GuestFsError::Corrupt { .. })
    ));
    assert!(matches!(
        fs.read_file(&p("/nul")),
        Err(GuestFsError::Corrupt { .. })
    ));
    assert_eq!(fs.resolve(&p("/root")).unwrap(), GuestPath::root());
    assert_eq!(fs.resolve(&p("/up/up/up")).unwrap(), GuestPath::root());
    assert!(!fs.exists(&p("/empty")).unwrap());
}

#[test]
fn file_in_the_middle_is_not_a_directory() {
    let fs = guest();
    assert!(matches!(
        fs.read_file(&p("/etc/fstab/x")),
        Err(GuestFsError::NotADirectory { .. })
    ));
    assert!(!fs.exists(&p("/etc/fstab/x")).unwrap());
}

#[test]
fn write_keeps_mode_and_owner_and_follows_links() {
    let fs = guest();
    fs.set_owner("/etc/shadow", 0o640, 0, 42).unwrap();
    fs.write_file(&p("/var/www/evil"), b"new\n").unwrap();
    assert_eq!(fs.read_file(&p("/etc/shadow")).unwrap(), b"new\n");
    let meta = fs.metadata(&p("/etc/shadow")).unwrap();
    assert_eq!(
        (meta.mode, meta.uid, meta.gid, meta.size),
        (0o640, 0, 42, 4)
    );
    // The link itself is untouched.
    assert_eq!(
        fs.read_link(&p("/var/www/evil")).unwrap(),
        b"../../../../etc/shadow"
    );
}

#[test]
fn write_creates_missing_files_and_dangling_targets() {
    let fs = guest();
    fs.write_file(&p("/etc/new.conf"), b"a").unwrap();
    let meta = fs.metadata(&p("/etc/new.conf")).unwrap();
    assert_eq!((meta.mode, meta.uid), (NEW_FILE_MODE, 0));
    fs.add_symlink("/etc/dangling", "/run/target").unwrap();
    fs.write_file(&p("/etc/dangling"), b"t").unwrap();
    assert_eq!(fs.read_file(&p("/run/target")).unwrap(), b"t");
    assert!(fs
        .write_file(&p("/missing/dir/file"), b"x")
        .unwrap_err()
        .is_not_found());
    assert!(matches!(
        fs.write_file(&p("/etc"), b"x"),
        Err(GuestFsError::IsADirectory { .. })
    ));
}

#[test]
fn write_is_idempotent() {
    let fs = guest();
    fs.write_file(&p("/etc/fstab"), b"same").unwrap();
    fs.write_file(&p("/etc/fstab"), b"same").unwrap();
    assert_eq!(fs.read_file(&p("/etc/fstab")).unwrap(), b"same");
}

#[test]
fn create_dir_rename_remove() {
    let fs = guest();
    fs.create_dir(&p("/etc/ferry"), 0o700).unwrap();
    assert_eq!(fs.metadata(&p("/etc/ferry")).unwrap().mode, 0o700);
    assert!(matches!(
        fs.create_dir(&p("/etc/ferry"), 0o700),
        Err(GuestFsError::AlreadyExists { .. })
    ));
    fs.rename(&p("/etc/fstab"), &p("/etc/fstab.ferry-orig"))
        .unwrap();
    assert!(!fs.exists(&p("/etc/fstab")).unwrap());
    assert!(fs.exists(&p("/etc/fstab.ferry-orig")).unwrap());
    // Renaming a symlink moves the link, not its target.
    fs.rename(&p("/etc/resolv.conf"), &p("/etc/resolv.conf.ferry-orig"))
        .unwrap();
    assert_eq!(
        fs.read_link(&p("/etc/resolv.conf.ferry-orig")).unwrap(),
        b"/run/systemd/resolve/stub-resolv.conf"
    );
    // Removing a symlink leaves its target.
    fs.remove(&p("/var/www/evil")).unwrap();
    assert!(fs.exists(&p("/etc/shadow")).unwrap());
    assert!(matches!(
        fs.remove(&p("/etc")),
        Err(GuestFsError::DirectoryNotEmpty { .. })
    ));
    fs.remove(&p("/etc/ferry")).unwrap();
    assert!(!fs.exists(&p("/etc/ferry")).unwrap());
}

#[test]
fn read_is_capped() {
    let fs = guest();
    let err = fs.raw_read(&p("/etc/fstab"), 4).unwrap_err();
    assert!(matches!(
        err,
        GuestFsError::TooLarge {
            size: 30,
            limit: 4,
            ..
        }
    ));
}
