//! Errors of opening an XFS filesystem, and the mapping of reader errors on one guest path
//! to [`GuestFsError`].

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use crate::guestfs::{GuestFsError, GuestPath};

/// Why a byte range could not be opened as XFS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XfsOpenError {
    #[error("no XFS superblock (magic {found:#010x} at offset 0)")]
    NotXfs { found: u32 },
    #[error("XFS superblock is corrupt: {what}")]
    Corrupt { what: String },
    #[error("XFS feature ferry cannot read: {what}")]
    Unsupported { what: String },
    #[error("cannot read the filesystem")]
    Io(#[source] io::Error),
}

/// The last I/O error the device adapter met: the reader's own error values carry only a
/// token, so the adapter keeps the real error here for the caller to report.
#[derive(Clone, Default)]
pub(super) struct IoSlot(Arc<Mutex<Option<io::Error>>>);

impl IoSlot {
    pub(super) fn put(&self, e: io::Error) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
    }

    /// The stored error, or one naming the reader's `token` when none was stored.
    pub(super) fn take(&self, token: &str, offset: u64) -> io::Error {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_else(|| io::Error::other(format!("{token} at byte {offset:#x}")))
    }
}

/// Describe a reader error for a message: its stable token and where it was met.
pub(super) fn describe(e: &lamxfs::Error) -> String {
    use lamxfs::{Error, Location};
    match e {
        Error::Inconsistent { token, where_ } => match where_ {
            Location::Inode { ino } => format!("{token} (inode {ino})"),
            Location::Bmbt { ino, block } => {
                format!("{token} (block map of inode {ino}, block {block})")
            }
            Location::Dir { ino, block } => {
                format!("{token} (directory inode {ino}, block {block})")
            }
            Location::Symlink { ino } => format!("{token} (symlink inode {ino})"),
        },
        Error::BadCrc { ag, ag_block, what } => {
            format!("{what}: checksum mismatch (AG {ag}, block {ag_block})")
        }
        Error::FileTooLarge { size, max } => format!("{size} bytes is past the reader's {max}"),
        e => e.token().to_string(),
    }
}

impl XfsOpenError {
    pub(super) fn from_reader(e: &lamxfs::Error, io: &IoSlot) -> Self {
        use lamxfs::{Error, SuperblockReason};
        match e {
            Error::Io { token, offset } => Self::Io(io.take(token, *offset)),
            Error::BadSuperblock(
                SuperblockReason::ExternalLog
                | SuperblockReason::RealtimeDevice
                | SuperblockReason::DirtyLog,
            )
            | Error::UnsupportedFeature(_) => Self::Unsupported { what: describe(e) },
            _ => Self::Corrupt { what: describe(e) },
        }
    }
}

/// Map a reader error met while working on `path`.
pub(super) fn guest_error(e: &lamxfs::Error, path: &GuestPath, io: &IoSlot) -> GuestFsError {
    use lamxfs::Error;
    let path = path.to_string();
    match e {
        Error::Io { token, offset } => GuestFsError::Io {
            path,
            source: io.take(token, *offset),
        },
        Error::NotFound {
            component: "not_a_directory",
        } => GuestFsError::NotADirectory { path },
        Error::NotFound { .. } => GuestFsError::NotFound { path },
        Error::NotARegularFile => GuestFsError::NotAFile { path },
        Error::NotASymlink => GuestFsError::NotASymlink { path },
        Error::FileTooLarge { size, max } => GuestFsError::TooLarge {
            path,
            size: *size,
            limit: *max,
        },
        Error::UnsupportedFeature(_) => GuestFsError::Unsupported {
            path,
            what: describe(e),
        },
        Error::BadSuperblock(_)
        | Error::BadCrc { .. }
        | Error::Inconsistent { .. }
        | Error::OutOfMemory { .. } => GuestFsError::Corrupt {
            path,
            what: describe(e),
        },
    }
}
