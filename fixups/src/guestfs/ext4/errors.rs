//! Errors of opening an ext2/3/4 filesystem, and the mapping of driver errors on one
//! guest path to [`GuestFsError`].

use std::io;

use crate::guestfs::{GuestFsError, GuestPath};

/// Why a byte range could not be opened as ext2/3/4.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Ext4OpenError {
    #[error("no ext2/3/4 superblock (magic {found:#06x} at offset 0x438)")]
    NotExt { found: u16 },
    #[error("ext2/3/4 superblock is corrupt: {what}")]
    Corrupt { what: String },
    #[error("ext2/3/4 feature this driver cannot handle: {what}")]
    Unsupported { what: String },
    #[error("cannot read the filesystem")]
    Io(#[source] io::Error),
}

impl From<fs_ext4::Error> for Ext4OpenError {
    fn from(e: fs_ext4::Error) -> Self {
        match e {
            fs_ext4::Error::Io(e) => Self::Io(e),
            fs_ext4::Error::BadMagic { found, .. } => Self::NotExt { found },
            fs_ext4::Error::Corrupt(what) => Self::Corrupt {
                what: what.to_string(),
            },
            e @ (fs_ext4::Error::UnsupportedIncompat(_)
            | fs_ext4::Error::UnsupportedRoCompat(_)
            | fs_ext4::Error::Unsupported(_)) => Self::Unsupported {
                what: e.to_string(),
            },
            e => Self::Corrupt {
                what: e.to_string(),
            },
        }
    }
}

/// Map a driver error met while working on `path`.
pub(super) fn guest_error(e: fs_ext4::Error, path: &GuestPath) -> GuestFsError {
    let path = path.to_string();
    match e {
        fs_ext4::Error::NotFound => GuestFsError::NotFound { path },
        fs_ext4::Error::NotADirectory => GuestFsError::NotADirectory { path },
        fs_ext4::Error::IsADirectory => GuestFsError::IsADirectory { path },
        fs_ext4::Error::AlreadyExists => GuestFsError::AlreadyExists { path },
        fs_ext4::Error::DirectoryNotEmpty => GuestFsError::DirectoryNotEmpty { path },
        fs_ext4::Error::ReadOnly | fs_ext4::Error::JournalNotReplayed => {
            GuestFsError::ReadOnly { path }
        }
        fs_ext4::Error::NoSpaceLeftOnDevice => GuestFsError::NoSpace { path },
        fs_ext4::Error::Io(source) => GuestFsError::Io { path, source },
        // The driver journals the data of a replace too, so one larger than the journal
        // allows is refused before anything is written: a limit, not damage.
        fs_ext4::Error::Corrupt(what) if what.contains("too large for journal") => {
            GuestFsError::Unsupported {
                path,
                what: "a rewrite this large does not fit the guest's journal".to_string(),
            }
        }
        fs_ext4::Error::Corrupt(what) => GuestFsError::Corrupt {
            path,
            what: what.to_string(),
        },
        e @ (fs_ext4::Error::Unsupported(_)
        | fs_ext4::Error::UnsupportedIncompat(_)
        | fs_ext4::Error::UnsupportedRoCompat(_)
        | fs_ext4::Error::NameTooLong
        | fs_ext4::Error::TooManyLinks
        | fs_ext4::Error::InvalidArgument(_)) => GuestFsError::Unsupported {
            path,
            what: e.to_string(),
        },
        e => GuestFsError::Corrupt {
            path,
            what: e.to_string(),
        },
    }
}
