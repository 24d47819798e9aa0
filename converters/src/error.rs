//! The error every converters API returns: a small matchable kind plus the file it concerns.
//!
//! Each message is one line that names the file and says what is wrong, so the CLI can print
//! it as is. Offsets are printed in hex.

use std::io;
use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused or failed an operation on the file.
    #[error("{}: {what}: {err}", path.display())]
    Io {
        path: PathBuf,
        what: String,
        err: io::Error,
    },
    /// The file is not a valid image of the format it claims to be.
    #[error("{}: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    /// A valid image that uses a feature ferry does not read.
    #[error("{}: unsupported {what}", path.display())]
    Unsupported { path: PathBuf, what: String },
    /// No format magic was found and the user did not name the format.
    #[error(
        "{}: no disk image format recognised (no magic found); if it is a raw disk, pass --source-format raw",
        path.display()
    )]
    UnknownFormat { path: PathBuf },
    /// A caller asked for something outside what the API allows (offset past the end, …).
    #[error("{}: {reason}", path.display())]
    InvalidRequest { path: PathBuf, reason: String },
}

impl Error {
    pub fn io(path: impl AsRef<Path>, what: impl Into<String>, err: io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            what: what.into(),
            err,
        }
    }

    pub fn malformed(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Error::Malformed {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }

    pub fn unsupported(path: impl AsRef<Path>, what: impl Into<String>) -> Self {
        Error::Unsupported {
            path: path.as_ref().to_path_buf(),
            what: what.into(),
        }
    }

    pub fn invalid_request(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Error::InvalidRequest {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }

    /// True when the input itself is at fault (malformed, unsupported, unknown), as opposed to
    /// the operating system failing; the CLI maps the two to different exit codes.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::Malformed { .. } | Error::Unsupported { .. } | Error::UnknownFormat { .. }
        )
    }
}
