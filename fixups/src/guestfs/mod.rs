//! Guest filesystem access without mounting and without a helper VM.
//!
//! Fixups see a guest only through [`GuestFs`], opened on a byte range of a disk (see
//! [`crate::blockdev`]); this crate never parses a disk format. Backends implement a few
//! `raw_*` primitives that act on one directory entry and never follow a symlink; the
//! provided methods resolve paths first, inside the guest, with [`resolve::walk`]:
//!
//! - an absolute symlink target is taken relative to the guest root, never the host's;
//! - `..` at the guest root stays at the root, so `../../../../etc/shadow` names the
//!   guest's own `/etc/shadow`;
//! - at most [`MAX_SYMLINKS`] symlinks are followed per lookup (Linux's `ELOOP` limit).
//!
//! Backends: [`memfs::MemFs`] (in memory, for unit tests), [`ext4::Ext4Fs`] (ext2/3/4) and
//! [`xfs::XfsFs`] (XFS, read-only: its writes fail with [`xfs::READ_ONLY_WHY`]).
//! Not supported: hard-link creation, xattr editing, special files (they are listed and
//! stat'ed, never read or written), writing XFS, other filesystems (btrfs).

pub mod error;
pub mod ext4;
pub mod memfs;
pub mod mounts;
pub mod path;
pub mod resolve;
pub mod xfs;

pub use error::{GuestFsError, Result};
pub use path::GuestPath;

/// Most symlinks followed while resolving one path, as Linux (`MAXSYMLINKS`).
pub const MAX_SYMLINKS: u32 = 40;
/// Largest file [`GuestFs::read_file`] loads into memory: initramfs images reach a few
/// hundred MiB, configuration files are tiny; guest sizes are not trusted beyond this.
pub const MAX_READ_BYTES: u64 = 1 << 30;
/// Bytes [`GuestFs::copy_file`] moves at once.
pub const COPY_CHUNK: usize = 4 << 20;
/// Mode of a file created by [`GuestFs::write_file`] (`rw-r--r--`, owned by root).
pub const NEW_FILE_MODE: u32 = 0o644;

/// The type of a directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    /// Device node, FIFO or socket: listed and stat'ed, never read or written.
    Other,
}

/// What `stat` says about an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub kind: FileKind,
    /// Permission bits, `0o7777` at most (no file type bits).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Bytes; for a symlink the length of its target.
    pub size: u64,
}

/// One entry of a directory listing (`.` and `..` are left out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub kind: FileKind,
}

/// A guest filesystem. Paths are resolved inside the guest by the provided methods.
pub trait GuestFs {
    /// `lstat` of `path`, whose components are all followed already.
    fn raw_metadata(&self, path: &GuestPath) -> Result<Metadata>;
    /// The target of the symlink at `path`, as stored.
    fn raw_read_link(&self, path: &GuestPath) -> Result<Vec<u8>>;
    /// Contents of the regular file at `path`; [`GuestFsError::TooLarge`] past `limit`.
    fn raw_read(&self, path: &GuestPath, limit: u64) -> Result<Vec<u8>>;
    /// Entries of the directory at `path`, without `.` and `..`.
    fn raw_read_dir(&self, path: &GuestPath) -> Result<Vec<DirEntry>>;
    /// Replace the contents of the existing regular file at `path`, keeping its inode,
    /// mode, owner and extended attributes.
    fn raw_write(&self, path: &GuestPath, data: &[u8]) -> Result<()>;
    /// Create an empty regular file owned by root; fails if `path` exists.
    fn raw_create_file(&self, path: &GuestPath, mode: u32) -> Result<()>;
    /// Create a directory owned by root; fails if `path` exists.
    fn raw_create_dir(&self, path: &GuestPath, mode: u32) -> Result<()>;
    /// Rename an entry, replacing a file (not a directory) at `to` as `rename(2)` does.
    fn raw_rename(&self, from: &GuestPath, to: &GuestPath) -> Result<()>;
    /// Remove a file, a symlink or an empty directory.
    fn raw_remove(&self, path: &GuestPath) -> Result<()>;
    /// Up to `buf.len()` bytes of the regular file at `path` from `offset`; the count read,
    /// 0 at or past its end.
    fn raw_read_at(&self, path: &GuestPath, offset: u64, buf: &mut [u8]) -> Result<usize>;
    /// Write `data` at `offset` into the existing regular file at `path`, growing it when
    /// the write passes its end; mode, owner and xattrs are kept.
    fn raw_write_at(&self, path: &GuestPath, offset: u64, data: &[u8]) -> Result<()>;
    /// Create a symlink at `path` whose target is `target`, stored as given; fails if
    /// `path` exists.
    fn raw_symlink(&self, path: &GuestPath, target: &[u8]) -> Result<()>;
    /// Make every change durable on the underlying device.
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// The guest path `path` names once every symlink in it is followed.
    fn resolve(&self, path: &GuestPath) -> Result<GuestPath> {
        let walked = resolve::walk(self, path, true)?;
        match walked.metadata {
            Some(_) => Ok(walked.path),
            None => Err(GuestFsError::NotFound {
                path: path.to_string(),
            }),
        }
    }

    /// `stat`: the metadata of what `path` names, symlinks followed.
    fn metadata(&self, path: &GuestPath) -> Result<Metadata> {
        resolve::walk(self, path, true)?.existing(path)
    }

    /// `lstat`: the metadata of the entry itself; a final symlink is not followed.
    fn symlink_metadata(&self, path: &GuestPath) -> Result<Metadata> {
        resolve::walk(self, path, false)?.existing(path)
    }

    /// Whether `path` names something once symlinks are followed (a dangling link does not).
    fn exists(&self, path: &GuestPath) -> Result<bool> {
        match resolve::walk(self, path, true) {
            Ok(walked) => Ok(walked.metadata.is_some()),
            Err(GuestFsError::NotFound { .. } | GuestFsError::NotADirectory { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The target of the symlink `path`, as stored in the guest.
    fn read_link(&self, path: &GuestPath) -> Result<Vec<u8>> {
        let walked = resolve::walk(self, path, false)?;
        walked.existing(path)?;
        self.raw_read_link(&walked.path)
    }

    /// Contents of the file `path` names, at most [`MAX_READ_BYTES`].
    fn read_file(&self, path: &GuestPath) -> Result<Vec<u8>> {
        let resolved = self.resolve(path)?;
        self.raw_read(&resolved, MAX_READ_BYTES)
    }

    /// Entries of the directory `path` names, sorted by name.
    fn read_dir(&self, path: &GuestPath) -> Result<Vec<DirEntry>> {
        let resolved = self.resolve(path)?;
        let mut entries = self.raw_read_dir(&resolved)?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Replace the contents of the file `path` names (through symlinks, as `open(2)` with
    /// `O_TRUNC` would), keeping mode, owner and xattrs; create it with [`NEW_FILE_MODE`]
    /// owned by root when it does not exist.
    fn write_file(&self, path: &GuestPath, data: &[u8]) -> Result<()> {
        let walked = resolve::walk(self, path, true)?;
        match walked.metadata {
            Some(meta) if meta.kind == FileKind::File => {}
            Some(meta) if meta.kind == FileKind::Dir => {
                return Err(GuestFsError::IsADirectory {
                    path: path.to_string(),
                })
            }
            Some(_) => {
                return Err(GuestFsError::NotAFile {
                    path: path.to_string(),
                })
            }
            None => self.raw_create_file(&walked.path, NEW_FILE_MODE)?,
        }
        self.raw_write(&walked.path, data)
    }

    /// Create the directory `path` (its parent must exist); fails if `path` exists.
    fn create_dir(&self, path: &GuestPath, mode: u32) -> Result<()> {
        let walked = resolve::walk(self, path, false)?;
        if walked.metadata.is_some() {
            return Err(GuestFsError::AlreadyExists {
                path: path.to_string(),
            });
        }
        self.raw_create_dir(&walked.path, mode)
    }

    /// Rename `from` to `to`, neither final component followed; a file at `to` is replaced.
    fn rename(&self, from: &GuestPath, to: &GuestPath) -> Result<()> {
        let source = resolve::walk(self, from, false)?;
        source.existing(from)?;
        let target = resolve::walk(self, to, false)?;
        self.raw_rename(&source.path, &target.path)
    }

    /// Up to `buf.len()` bytes of the file `path` names, from `offset`; 0 at its end.
    fn read_at(&self, path: &GuestPath, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let resolved = self.resolve(path)?;
        self.raw_read_at(&resolved, offset, buf)
    }

    /// Append `data` to the existing file `path` names.
    fn append_file(&self, path: &GuestPath, data: &[u8]) -> Result<()> {
        let resolved = self.resolve(path)?;
        let meta = self.raw_metadata(&resolved)?;
        if meta.kind != FileKind::File {
            return Err(GuestFsError::NotAFile {
                path: path.to_string(),
            });
        }
        self.raw_write_at(&resolved, meta.size, data)
    }

    /// Copy the file `from` names to the new file `to` (mode [`NEW_FILE_MODE`]), in
    /// pieces of [`COPY_CHUNK`] so that neither memory nor one journal transaction grows
    /// with the file.
    fn copy_file(&self, from: &GuestPath, to: &GuestPath) -> Result<()> {
        let source = self.resolve(from)?;
        let target = resolve::walk(self, to, false)?;
        if target.metadata.is_some() {
            return Err(GuestFsError::AlreadyExists {
                path: to.to_string(),
            });
        }
        self.raw_create_file(&target.path, NEW_FILE_MODE)?;
        let mut buf = vec![0u8; COPY_CHUNK];
        let mut offset = 0u64;
        loop {
            let n = self.raw_read_at(&source, offset, &mut buf)?;
            if n == 0 {
                return Ok(());
            }
            self.raw_write_at(&target.path, offset, &buf[..n])?;
            offset = offset.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        }
    }

    /// Create the symlink `path` → `target` (its parent must exist); fails if `path` exists.
    fn symlink(&self, path: &GuestPath, target: &[u8]) -> Result<()> {
        let walked = resolve::walk(self, path, false)?;
        if walked.metadata.is_some() {
            return Err(GuestFsError::AlreadyExists {
                path: path.to_string(),
            });
        }
        self.raw_symlink(&walked.path, target)
    }

    /// Remove the file, symlink (not its target) or empty directory `path`.
    fn remove(&self, path: &GuestPath) -> Result<()> {
        let walked = resolve::walk(self, path, false)?;
        walked.existing(path)?;
        self.raw_remove(&walked.path)
    }
}
