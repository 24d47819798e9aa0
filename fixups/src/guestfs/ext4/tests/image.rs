//! Test images built at test time with e2fsprogs (`mke2fs -d`, no mount, no loop device),
//! and the e2fsprogs oracles (`debugfs`, `e2fsck -fn`) that check what ferry wrote.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crate::blockdev::FileRange;
use crate::guestfs::ext4::{Access, Ext4Fs};

/// Whether e2fsprogs is here; a test without it skips locally and fails under CI.
pub fn tools_present() -> bool {
    crate::testutil::tools_present("e2fsprogs", &["mke2fs", "debugfs", "e2fsck"])
}

/// A filesystem image in a temporary folder; `spec` is what e2fsprogs tools are given
/// (`img` or `img?offset=N`).
pub struct Image {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
}

impl Image {
    pub fn spec(&self) -> String {
        if self.offset == 0 {
            self.path.display().to_string()
        } else {
            format!("{}?offset={}", self.path.display(), self.offset)
        }
    }

    pub fn open(&self, access: Access) -> Ext4Fs {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(access == Access::ReadWrite)
            .open(&self.path)
            .unwrap();
        let range =
            FileRange::new(file, self.offset, self.len, access == Access::ReadWrite).unwrap();
        Ext4Fs::open(Arc::new(range), access).unwrap()
    }

    /// `debugfs -R CMD`, stdout.
    pub fn debugfs(&self, cmd: &str) -> String {
        String::from_utf8_lossy(&self.debugfs_bytes(cmd)).into_owned()
    }

    /// `debugfs -R 'cat PATH'`: the file as e2fsprogs reads it.
    pub fn cat(&self, path: &str) -> Vec<u8> {
        self.debugfs_bytes(&format!("cat {path}"))
    }

    fn debugfs_bytes(&self, cmd: &str) -> Vec<u8> {
        let out = Command::new("debugfs")
            .args(["-R", cmd, &self.spec()])
            .output()
            .unwrap();
        assert!(out.status.success(), "debugfs {cmd}: {out:?}");
        out.stdout
    }

    pub fn debugfs_w(&self, cmd: &str) {
        let out = Command::new("debugfs")
            .args(["-w", "-R", cmd, &self.spec()])
            .output()
            .unwrap();
        assert!(out.status.success(), "debugfs -w {cmd}: {out:?}");
    }

    /// `e2fsck -fn` must find nothing to fix.
    pub fn assert_fsck_clean(&self) {
        let out = Command::new("e2fsck")
            .args(["-fn", &self.spec()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "e2fsck -fn: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A small Linux-like tree: configuration files, an absolute and a hostile symlink, a file
/// spanning many blocks, and a file with a non-root owner and mode.
pub fn populate_guest(root: &Path) {
    let mk = |p: &str, data: &[u8]| {
        let path = root.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    };
    mk("etc/fstab", b"/dev/sda1 / ext4 errors=remount-ro 0 1\n");
    mk("etc/shadow", b"root:*:19000:0:99999:7:::\n");
    mk("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n");
    mk(
        "run/systemd/resolve/stub-resolv.conf",
        b"nameserver 127.0.0.53\n",
    );
    mk("boot/big", &pattern(40_000, 7));
    fs::create_dir_all(root.join("var/www")).unwrap();
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    mk("usr/bin/sh", b"#!ELF");
    symlink(
        "/run/systemd/resolve/stub-resolv.conf",
        root.join("etc/resolv.conf"),
    )
    .unwrap();
    symlink("../../../../etc/shadow", root.join("var/www/evil")).unwrap();
    symlink("usr/bin", root.join("bin")).unwrap();
    let shadow = root.join("etc/shadow");
    fs::set_permissions(&shadow, fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(&shadow, Some(0), Some(42)).unwrap();
}

/// Deterministic non-repeating-looking bytes, so misplaced blocks show.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let i = u32::try_from(i).unwrap();
            (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0] ^ seed
        })
        .collect()
}

/// Build a `kind` (ext2/ext3/ext4) filesystem of `size_mib` MiB from `populate`'s tree.
pub fn build(kind: &str, size_mib: u64, extra: &[&str], populate: impl FnOnce(&Path)) -> Image {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    populate(&root);
    let path = dir.path().join("fs.img");
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", kind, "-L", "guest"])
        .args(extra)
        .arg("-d")
        .arg(&root)
        .arg(&path)
        .arg(format!("{size_mib}M"))
        .output()
        .unwrap();
    assert!(out.status.success(), "mke2fs: {out:?}");
    let len = fs::metadata(&path).unwrap().len();
    Image {
        _dir: dir,
        path,
        offset: 0,
        len,
    }
}

/// Place `fs` as the only MBR partition at 1 MiB of a raw disk (partition type 0x83).
pub fn into_mbr_disk(fs_image: Image) -> Image {
    const START: u64 = 1 << 20;
    let data = fs::read(&fs_image.path).unwrap();
    let len = u64::try_from(data.len()).unwrap();
    let mut disk = vec![0u8; usize::try_from(START + len + START).unwrap()];
    disk[1 << 20..(1 << 20) + data.len()].copy_from_slice(&data);
    let entry = &mut disk[446..462];
    entry[4] = 0x83;
    entry[8..12].copy_from_slice(&u32::try_from(START / 512).unwrap().to_le_bytes());
    entry[12..16].copy_from_slice(&u32::try_from(len / 512).unwrap().to_le_bytes());
    disk[510] = 0x55;
    disk[511] = 0xaa;
    let path = fs_image.path.with_file_name("disk.raw");
    fs::write(&path, disk).unwrap();
    Image {
        _dir: fs_image._dir,
        path,
        offset: START,
        len,
    }
}
