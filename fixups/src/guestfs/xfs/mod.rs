//! XFS guest filesystems (the RHEL, CentOS, Rocky and Alma root), read in-process on a
//! byte range; never written.
//!
//! [`XfsFs`] reads an XFS v4 or v5 filesystem on a [`BlockDevice`] — a whole raw disk, a
//! partition at an offset, an LVM volume — with no kernel mount, no loop device and no
//! helper VM. Every write primitive fails with [`GuestFsError::Unsupported`] saying that
//! ferry edits ext2/3/4 only ([`READ_ONLY_WHY`]): nothing is ever written to the range.
//!
//! # DESIGN NOTE: why the `lamxfs` crate, and what is added here
//!
//! - **`lamxfs` 0.1 reads.** Searched crates.io and docs.rs for a maintained pure-Rust
//!   XFS reader that works on a positional byte source. `lamxfs` reads through one
//!   `read_at(offset, buf)` call ([`device::Source`] maps it onto a [`BlockDevice`] in a
//!   few lines), is `forbid(unsafe_code)`, fuzzed, actively released, and covers what
//!   `mkfs.xfs` from xfsprogs 4.x–6.x makes: v5 with CRC32C checked on the superblock,
//!   inodes, directory and block-map blocks, and v4 without; `ftype` or not; inode
//!   numbers to AG/block/offset; data forks in local, extents and multi-level B+tree
//!   (bmbt) format with holes and unwritten extents reading as zeros; shortform, block,
//!   leaf and node directories (data blocks scanned, hash indexes ignored); local and
//!   remote symlinks (the v5 `XSLM` header stripped); NREXT64, sparse inodes, reflink,
//!   bigtime. It also replays a dirty log in memory as Linux does at mount, so a guest
//!   copied while running or after a crash reads as Linux would show it — a hand-written
//!   reader would have to refuse such a guest or read stale metadata (replay holds at
//!   most 128 MiB of log and 128 MiB of changed blocks, and writes nothing). Its
//!   hostile-input caps (≤ 4 Mi extents, ≤ 64 Ki B+tree nodes, ≤ 64 Ki directory blocks,
//!   ≤ 1 Mi entries, every shift and offset checked) bound memory and time. It comes
//!   from the publisher of `lamlvm`, which this crate already uses for LVM. Hand-writing
//!   a reader was the fallback; with this crate it would only have added risk.
//! - **Checked here** (`tests/`, images from `mkfs.xfs -p` at test time, formats
//!   confirmed with `xfs_db`): v5, v4 without `ftype`, 1 KiB blocks, a partition at
//!   1 MiB; shortform, leaf, node and B+tree directories; a remote symlink; a file
//!   rewritten by `xfs_db -x` into out-of-order extents with holes and an unwritten
//!   extent; damaged superblocks and inodes, cut images and seeded byte flips give
//!   errors, never panics.
//! - **Not `xfs-core` 0.1**, the other XFS reader found: it parses from one `&[u8]` of
//!   the whole image (a guest disk would have to be in memory) and has no log replay.
//!   `xfs` 0.2 reads Linux's `/proc/fs/xfs/stat`, not a filesystem.
//! - **Added here.** (1) The owner: the reader reports mode, kind and size but not uid
//!   and gid, so [`geometry::Geometry::owner`] reads them from the on-disk inode core,
//!   cross-checked against the reader's mode and (v5) the inode's own number. (2) Name
//!   by name lookup: the reader resolves whole paths without following any symlink (and
//!   refuses `..`); here each path is walked one component at a time from the root inode
//!   over directory listings kept in a bounded cache, so a lookup in a 10 000-entry
//!   directory does not parse it again. (3) Tighter caps where ferry's are smaller than
//!   the reader's: a symlink target ≤ [`PATH_MAX`] bytes and a directory ≤
//!   [`MAX_DIR_BYTES`] are checked on the inode before the reader allocates, a file read
//!   stops at the caller's limit. (4) A page cache of 4 MiB at most in front of the
//!   device, since the reader rereads directories and inodes on every call.
//!
//! Symlinks are resolved by [`GuestFs`]'s provided methods, inside the guest; every
//! `raw_*` call here acts on one already-resolved path. Errors of damaged filesystems are
//! [`GuestFsError::Corrupt`] naming the structure; nothing here panics on any input.
//!
//! Not supported: writing (by design, a documented error); realtime devices, external
//! logs and dirty logs the reader cannot replay (v4 ones, unknown log items) are refused
//! at open; extended attributes are not read. Owners come from the inode as it is on the
//! device, so after a log replay an inode whose owner changed only in the log reports its
//! old owner, and one that exists only in the log reports root. A damaged directory's
//! extents may make the reader scan up to its own cap (64 Ki directory blocks) before
//! failing, whatever the directory's size says.

mod device;
mod errors;
mod geometry;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::blockdev::BlockDevice;
use crate::guestfs::path::PATH_MAX;
use crate::guestfs::{DirEntry, FileKind, GuestFs, GuestFsError, GuestPath, Metadata, Result};

use device::Source;
use errors::IoSlot;
use geometry::{Geometry, SB_MAGIC};

pub use errors::XfsOpenError;

/// What every write primitive says: ferry reads XFS but does not write it.
pub const READ_ONLY_WHY: &str = "xfs is read-only in ferry: it reads xfs guests but edits \
     ext2/3/4 only (`ferry convert` still converts the disk; make the guest changes from \
     inside the guest)";

/// Largest directory (`di_size`) listed: far past any real one, small enough for memory.
pub const MAX_DIR_BYTES: u64 = 64 << 20;
/// Directories whose listings are kept for lookups.
const DIR_CACHE_DIRS: usize = 32;
/// Entries kept over all cached listings.
const DIR_CACHE_ENTRIES: usize = 1 << 18;

/// An XFS filesystem on a byte range, read-only.
pub struct XfsFs {
    state: Mutex<State>,
    dev: Arc<dyn BlockDevice>,
    geometry: Geometry,
    io: IoSlot,
    root: u64,
}

struct State {
    xfs: lamxfs::Xfs<Source>,
    dirs: DirCache,
}

impl std::fmt::Debug for XfsFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XfsFs")
            .field("version", &if self.geometry.v5 { 5 } else { 4 })
            .field("block_size", &(1u32 << self.geometry.blocklog))
            .field("root", &self.root)
            .finish()
    }
}

impl XfsFs {
    /// Open the filesystem on `range`, which must hold all of it. A dirty log is replayed
    /// in memory only.
    pub fn open(range: Arc<dyn BlockDevice>) -> Result<Self, XfsOpenError> {
        let mut head = vec![0u8; usize::try_from(range.size().min(512)).unwrap_or(0)];
        range.read_at(&mut head, 0).map_err(XfsOpenError::Io)?;
        let found = geometry::magic(&head);
        if found != SB_MAGIC {
            return Err(XfsOpenError::NotXfs { found });
        }
        let geometry = Geometry::parse(&head).map_err(|what| XfsOpenError::Corrupt { what })?;
        if geometry.bytes > range.size() {
            return Err(XfsOpenError::Corrupt {
                what: format!(
                    "the filesystem is {} bytes but its range only {}: truncated image or \
                     wrong partition size",
                    geometry.bytes,
                    range.size()
                ),
            });
        }
        let io = IoSlot::default();
        let source = Source::new(Arc::clone(&range), io.clone());
        let mut xfs = lamxfs::Xfs::open(source, range.size())
            .map_err(|e| XfsOpenError::from_reader(&e, &io))?;
        let root = xfs
            .resolve(lamxfs::Path::new(b"/"))
            .map_err(|e| XfsOpenError::from_reader(&e, &io))?
            .ino;
        Ok(Self {
            state: Mutex::new(State {
                xfs,
                dirs: DirCache::default(),
            }),
            dev: range,
            geometry,
            io,
            root,
        })
    }

    /// The volume label, as `xfs_admin -l` prints it.
    pub fn label(&self) -> String {
        self.geometry.label()
    }

    /// The filesystem UUID, as `blkid` prints it.
    pub fn uuid(&self) -> String {
        let hex: String = self
            .geometry
            .uuid
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn error(&self, e: &lamxfs::Error, path: &GuestPath) -> GuestFsError {
        errors::guest_error(e, path, &self.io)
    }

    /// Inode number of `path`, walking directory entries name by name from the root
    /// inode; no symlink is followed.
    fn lookup(&self, st: &mut State, path: &GuestPath) -> Result<u64> {
        let mut ino = self.root;
        let mut dir = GuestPath::root();
        for name in path.components() {
            if name == b".." {
                return Err(GuestFsError::InvalidPath {
                    path: path.to_string(),
                    reason: "`..` in a path that should be resolved already",
                });
            }
            let listing = self.listing(st, &dir, ino, path)?;
            ino = listing
                .find(name)
                .ok_or_else(|| GuestFsError::NotFound {
                    path: path.to_string(),
                })?
                .inode_number;
            dir.push_raw(name.to_vec());
        }
        Ok(ino)
    }

    /// The entries of directory `ino` at `dir` (a path the reader can resolve by names
    /// alone); `asked` is the path named in errors.
    fn listing(
        &self,
        st: &mut State,
        dir: &GuestPath,
        ino: u64,
        asked: &GuestPath,
    ) -> Result<Arc<Listing>> {
        if let Some(listing) = st.dirs.get(ino) {
            return Ok(listing);
        }
        let meta = st
            .xfs
            .metadata(&lamxfs::Inode { ino })
            .map_err(|e| self.error(&e, asked))?;
        if kind_of(meta.mode()) != FileKind::Dir {
            return Err(GuestFsError::NotADirectory {
                path: asked.to_string(),
            });
        }
        if meta.size() > MAX_DIR_BYTES {
            return Err(GuestFsError::Corrupt {
                path: dir.to_string(),
                what: format!(
                    "directory of {} bytes (ferry lists up to {MAX_DIR_BYTES})",
                    meta.size()
                ),
            });
        }
        let entries = st
            .xfs
            .read_dir(lamxfs::Path::new(&dir.to_bytes()))
            .map_err(|e| self.error(&e, dir))?;
        let listing = Arc::new(Listing::new(entries));
        st.dirs.insert(ino, Arc::clone(&listing));
        Ok(listing)
    }

    /// Inode number and the reader's metadata of `path`.
    fn stat(&self, st: &mut State, path: &GuestPath) -> Result<(u64, lamxfs::Metadata)> {
        let ino = self.lookup(st, path)?;
        let meta = st
            .xfs
            .metadata(&lamxfs::Inode { ino })
            .map_err(|e| self.error(&e, path))?;
        Ok((ino, meta))
    }

    /// Inode number and size of the regular file at `path`.
    fn regular_file(&self, st: &mut State, path: &GuestPath) -> Result<(u64, u64)> {
        let (ino, meta) = self.stat(st, path)?;
        match kind_of(meta.mode()) {
            FileKind::File => Ok((ino, meta.size())),
            FileKind::Dir => Err(GuestFsError::IsADirectory {
                path: path.to_string(),
            }),
            _ => Err(GuestFsError::NotAFile {
                path: path.to_string(),
            }),
        }
    }
}

fn kind_of(mode: u32) -> FileKind {
    match mode & 0o170_000 {
        0o100_000 => FileKind::File,
        0o040_000 => FileKind::Dir,
        0o120_000 => FileKind::Symlink,
        _ => FileKind::Other,
    }
}

fn entry_kind(kind: lamxfs::EntryKind) -> FileKind {
    match kind {
        lamxfs::EntryKind::Regular => FileKind::File,
        lamxfs::EntryKind::Directory => FileKind::Dir,
        lamxfs::EntryKind::Symlink => FileKind::Symlink,
        lamxfs::EntryKind::Other => FileKind::Other,
    }
}

fn read_only(path: &GuestPath) -> GuestFsError {
    GuestFsError::Unsupported {
        path: path.to_string(),
        what: READ_ONLY_WHY.to_string(),
    }
}

/// One directory's entries, sorted by name; a name stored twice (a damaged directory)
/// resolves to its first entry on disk, as the reader's own lookup does.
struct Listing {
    entries: Vec<lamxfs::DirEntry>,
}

impl Listing {
    fn new(mut entries: Vec<lamxfs::DirEntry>) -> Self {
        entries.retain(|e| e.name != b"." && e.name != b"..");
        entries.sort_by(|a, b| a.name.cmp(&b.name)); // stable: disk order among equals
        Self { entries }
    }

    fn find(&self, name: &[u8]) -> Option<&lamxfs::DirEntry> {
        let at = self.entries.partition_point(|e| e.name.as_slice() < name);
        self.entries.get(at).filter(|e| e.name == name)
    }
}

/// Recently used directory listings, bounded in count and in total entries.
#[derive(Default)]
struct DirCache {
    dirs: VecDeque<(u64, Arc<Listing>)>,
    entries: usize,
}

impl DirCache {
    fn get(&mut self, ino: u64) -> Option<Arc<Listing>> {
        let at = self.dirs.iter().position(|(i, _)| *i == ino)?;
        let hit = self.dirs.remove(at)?;
        let listing = Arc::clone(&hit.1);
        self.dirs.push_back(hit);
        Some(listing)
    }

    fn insert(&mut self, ino: u64, listing: Arc<Listing>) {
        let size = listing.entries.len();
        if size > DIR_CACHE_ENTRIES {
            return;
        }
        while self.dirs.len() >= DIR_CACHE_DIRS || self.entries + size > DIR_CACHE_ENTRIES {
            match self.dirs.pop_front() {
                Some((_, old)) => self.entries -= old.entries.len(),
                None => break,
            }
        }
        self.entries += size;
        self.dirs.push_back((ino, listing));
    }
}

impl GuestFs for XfsFs {
    fn raw_metadata(&self, path: &GuestPath) -> Result<Metadata> {
        let mut st = self.state();
        let (ino, meta) = self.stat(&mut st, path)?;
        drop(st);
        let (uid, gid) = self.geometry.owner(self.dev.as_ref(), ino, meta.mode());
        Ok(Metadata {
            kind: kind_of(meta.mode()),
            mode: meta.mode() & 0o7777,
            uid,
            gid,
            size: meta.size(),
        })
    }

    fn raw_read_link(&self, path: &GuestPath) -> Result<Vec<u8>> {
        let mut st = self.state();
        let (_, meta) = self.stat(&mut st, path)?;
        if kind_of(meta.mode()) != FileKind::Symlink {
            return Err(GuestFsError::NotASymlink {
                path: path.to_string(),
            });
        }
        let corrupt = |what: String| GuestFsError::Corrupt {
            path: path.to_string(),
            what,
        };
        let size = meta.size();
        if size == 0 || size > PATH_MAX as u64 {
            return Err(corrupt(format!(
                "symlink target of {size} bytes (1 to {PATH_MAX} allowed)"
            )));
        }
        let target = st
            .xfs
            .read_link(lamxfs::Path::new(&path.to_bytes()))
            .map_err(|e| self.error(&e, path))?;
        if target.len() as u64 != size {
            return Err(corrupt(format!(
                "symlink target has {} of its {size} bytes",
                target.len()
            )));
        }
        Ok(target)
    }

    fn raw_read(&self, path: &GuestPath, limit: u64) -> Result<Vec<u8>> {
        let mut st = self.state();
        let (ino, size) = self.regular_file(&mut st, path)?;
        let too_large = || GuestFsError::TooLarge {
            path: path.to_string(),
            size,
            limit,
        };
        if size > limit {
            return Err(too_large());
        }
        let mut data = vec![0u8; usize::try_from(size).map_err(|_| too_large())?];
        let mut done = 0usize;
        while done < data.len() {
            let n = st
                .xfs
                .read_file_at(&lamxfs::Inode { ino }, done as u64, &mut data[done..])
                .map_err(|e| self.error(&e, path))?;
            if n == 0 {
                break;
            }
            done = done.saturating_add(n);
        }
        data.truncate(done);
        Ok(data)
    }

    fn raw_read_dir(&self, path: &GuestPath) -> Result<Vec<DirEntry>> {
        let mut st = self.state();
        let ino = self.lookup(&mut st, path)?;
        let listing = self.listing(&mut st, path, ino, path)?;
        Ok(listing
            .entries
            .iter()
            .map(|e| DirEntry {
                name: e.name.clone(),
                kind: entry_kind(e.kind),
            })
            .collect())
    }

    fn raw_read_at(&self, path: &GuestPath, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let mut st = self.state();
        let (ino, size) = self.regular_file(&mut st, path)?;
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        st.xfs
            .read_file_at(&lamxfs::Inode { ino }, offset, buf)
            .map_err(|e| self.error(&e, path))
    }

    fn raw_write(&self, path: &GuestPath, _data: &[u8]) -> Result<()> {
        Err(read_only(path))
    }

    fn raw_create_file(&self, path: &GuestPath, _mode: u32) -> Result<()> {
        Err(read_only(path))
    }

    fn raw_create_dir(&self, path: &GuestPath, _mode: u32) -> Result<()> {
        Err(read_only(path))
    }

    fn raw_rename(&self, from: &GuestPath, _to: &GuestPath) -> Result<()> {
        Err(read_only(from))
    }

    fn raw_remove(&self, path: &GuestPath) -> Result<()> {
        Err(read_only(path))
    }

    fn raw_write_at(&self, path: &GuestPath, _offset: u64, _data: &[u8]) -> Result<()> {
        Err(read_only(path))
    }

    fn raw_symlink(&self, path: &GuestPath, _target: &[u8]) -> Result<()> {
        Err(read_only(path))
    }
}

#[cfg(test)]
mod tests;
