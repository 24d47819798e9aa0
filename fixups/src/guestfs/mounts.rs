//! Several guest filesystems seen as one tree, as the guest mounts them: a root plus
//! filesystems mounted below it (a separate `/boot`, Debian's default with LVM and RHEL's
//! always). Inspection and fixups then find kernels, initramfs images and `grub.cfg` where
//! the guest itself would.
//!
//! Each `raw_*` call goes to the filesystem with the longest mount point that is a prefix
//! of the path, with the path made relative to it; symlink resolution stays in the
//! trait's provided methods, so links cross mount points exactly as in the guest (an
//! absolute link on `/boot` restarts at the guest's `/`). A rename across filesystems is
//! refused like `EXDEV`.

use super::{DirEntry, GuestFs, GuestFsError, GuestPath, Metadata, Result};

/// A root filesystem with others mounted on it.
pub struct MountedFs<'a> {
    root: &'a dyn GuestFs,
    /// Mount point and filesystem, longest mount point first.
    mounts: Vec<(GuestPath, &'a dyn GuestFs)>,
}

impl<'a> MountedFs<'a> {
    pub fn new(root: &'a dyn GuestFs) -> Self {
        MountedFs {
            root,
            mounts: Vec::new(),
        }
    }

    /// Mounts `fs` on `at` (an existing directory of the tree, by the guest's fstab).
    pub fn mount(&mut self, at: GuestPath, fs: &'a dyn GuestFs) {
        self.mounts.push((at, fs));
        self.mounts
            .sort_by_key(|(at, _)| std::cmp::Reverse(at.components().len()));
    }

    /// The filesystem `path` is on and the path inside it.
    fn route(&self, path: &GuestPath) -> Result<(&'a dyn GuestFs, GuestPath)> {
        for (at, fs) in &self.mounts {
            let depth = at.components().len();
            if path.components().len() >= depth
                && path.components().zip(at.components()).all(|(a, b)| a == b)
            {
                let mut inner = GuestPath::root();
                for name in path.components().skip(depth) {
                    inner = inner.join(name)?;
                }
                return Ok((*fs, inner));
            }
        }
        Ok((self.root, path.clone()))
    }
}

impl GuestFs for MountedFs<'_> {
    fn raw_metadata(&self, path: &GuestPath) -> Result<Metadata> {
        let (fs, inner) = self.route(path)?;
        fs.raw_metadata(&inner)
    }

    fn raw_read_link(&self, path: &GuestPath) -> Result<Vec<u8>> {
        let (fs, inner) = self.route(path)?;
        fs.raw_read_link(&inner)
    }

    fn raw_read(&self, path: &GuestPath, limit: u64) -> Result<Vec<u8>> {
        let (fs, inner) = self.route(path)?;
        fs.raw_read(&inner, limit)
    }

    fn raw_read_dir(&self, path: &GuestPath) -> Result<Vec<DirEntry>> {
        let (fs, inner) = self.route(path)?;
        fs.raw_read_dir(&inner)
    }

    fn raw_write(&self, path: &GuestPath, data: &[u8]) -> Result<()> {
        let (fs, inner) = self.route(path)?;
        fs.raw_write(&inner, data)
    }

    fn raw_create_file(&self, path: &GuestPath, mode: u32) -> Result<()> {
        let (fs, inner) = self.route(path)?;
        fs.raw_create_file(&inner, mode)
    }

    fn raw_create_dir(&self, path: &GuestPath, mode: u32) -> Result<()> {
        let (fs, inner) = self.route(path)?;
        fs.raw_create_dir(&inner, mode)
    }

    fn raw_rename(&self, from: &GuestPath, to: &GuestPath) -> Result<()> {
        let (from_fs, from_inner) = self.route(from)?;
        let (to_fs, to_inner) = self.route(to)?;
        if !std::ptr::addr_eq(from_fs, to_fs) {
            return Err(GuestFsError::Unsupported {
                path: from.to_string(),
                what: format!("renaming across filesystems to {to}"),
            });
        }
        from_fs.raw_rename(&from_inner, &to_inner)
    }

    fn raw_remove(&self, path: &GuestPath) -> Result<()> {
        let (fs, inner) = self.route(path)?;
        fs.raw_remove(&inner)
    }

    fn raw_read_at(&self, path: &GuestPath, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let (fs, inner) = self.route(path)?;
        fs.raw_read_at(&inner, offset, buf)
    }

    fn raw_write_at(&self, path: &GuestPath, offset: u64, data: &[u8]) -> Result<()> {
        let (fs, inner) = self.route(path)?;
        fs.raw_write_at(&inner, offset, data)
    }

    fn raw_symlink(&self, path: &GuestPath, target: &[u8]) -> Result<()> {
        let (fs, inner) = self.route(path)?;
        fs.raw_symlink(&inner, target)
    }

    fn flush(&self) -> Result<()> {
        for (_, fs) in &self.mounts {
            fs.flush()?;
        }
        self.root.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guestfs::memfs::MemFs;

    fn p(s: &str) -> GuestPath {
        GuestPath::new(s).unwrap()
    }

    #[test]
    fn paths_go_to_the_filesystem_they_are_mounted_on() {
        let root = MemFs::new();
        root.add_file("/etc/fstab", "UUID=b /boot ext2 defaults 0 2\n")
            .unwrap();
        root.add_dir("/boot").unwrap();
        root.add_symlink("/vmlinuz", "boot/vmlinuz-6.1").unwrap();
        let boot = MemFs::new();
        boot.add_file("/vmlinuz-6.1", "kernel").unwrap();
        boot.add_dir("/grub").unwrap();
        // An absolute link on /boot restarts at the guest's root, not /boot's.
        boot.add_symlink("/grub/fstab-link", "/etc/fstab").unwrap();
        let mut fs = MountedFs::new(&root);
        fs.mount(p("/boot"), &boot);

        assert_eq!(fs.read_file(&p("/vmlinuz")).unwrap(), b"kernel");
        assert_eq!(
            fs.read_file(&p("/boot/grub/fstab-link")).unwrap(),
            b"UUID=b /boot ext2 defaults 0 2\n"
        );
        let names: Vec<Vec<u8>> = fs
            .read_dir(&p("/boot"))
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, [b"grub".to_vec(), b"vmlinuz-6.1".to_vec()]);
        fs.write_file(&p("/boot/grub/grub.cfg"), b"menuentry")
            .unwrap();
        assert_eq!(boot.read_file(&p("/grub/grub.cfg")).unwrap(), b"menuentry");
        assert!(!root.exists(&p("/boot/grub")).unwrap());
        // "/bootx" is not under "/boot".
        fs.write_file(&p("/bootx"), b"x").unwrap();
        assert!(root.exists(&p("/bootx")).unwrap());
        let err = fs
            .rename(&p("/boot/grub/grub.cfg"), &p("/etc/grub.cfg"))
            .unwrap_err();
        assert!(matches!(err, GuestFsError::Unsupported { .. }), "{err}");
    }
}
