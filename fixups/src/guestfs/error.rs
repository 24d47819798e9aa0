//! Errors of guest filesystem access: a small matchable kind plus the guest path.

use std::io;

/// What went wrong while reading or writing a guest filesystem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuestFsError {
    #[error("{path}: invalid guest path: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("{path}: no such file or directory")]
    NotFound { path: String },
    #[error("{path}: not a directory")]
    NotADirectory { path: String },
    #[error("{path}: is a directory")]
    IsADirectory { path: String },
    #[error("{path}: not a regular file")]
    NotAFile { path: String },
    #[error("{path}: not a symlink")]
    NotASymlink { path: String },
    #[error("{path}: already exists")]
    AlreadyExists { path: String },
    #[error("{path}: directory not empty")]
    DirectoryNotEmpty { path: String },
    #[error("{path}: too many levels of symbolic links")]
    SymlinkLoop { path: String },
    #[error("{path}: {size} bytes is more than the {limit} bytes ferry reads into memory")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("{path}: filesystem is read-only")]
    ReadOnly { path: String },
    #[error("{path}: no space left in the guest filesystem")]
    NoSpace { path: String },
    #[error("{path}: unsupported: {what}")]
    Unsupported { path: String, what: String },
    #[error("{path}: corrupt filesystem: {what}")]
    Corrupt { path: String, what: String },
    #[error("{path}: i/o error")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl GuestFsError {
    /// Whether this says the path does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// Result of guest filesystem operations.
pub type Result<T, E = GuestFsError> = std::result::Result<T, E>;
