//! V2P writer: puts a VM disk (any format ferry reads) onto a block device or a raw file,
//! after refusing targets that are in use or hold something that looks worth keeping, and
//! optionally grows the last partition (and its ext2/3/4 filesystem) to fill a larger
//! target.
//!
//! - [`target`]: what the target is and whether writing to it is allowed (creates nothing).
//! - [`write`]: the copy itself, in place, zeroing what the source has as zero.
//! - [`grow`]: last-partition and filesystem growth after the copy.

pub mod grow;
pub mod target;
pub mod write;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub use grow::GrowReport;
pub use target::{check_target, TargetInfo, TargetKind};
pub use write::{write_disk, WriteReport};

/// What went wrong, phrased for the user: each message names the target (or source).
#[derive(Debug, thiserror::Error)]
pub enum V2pError {
    /// The target is not safe to write to (in use, too small, holds a partition table).
    #[error("refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Io(String),
    #[error("source: {0}")]
    Source(String),
    #[error("interrupted: {0}")]
    Interrupted(String),
}

/// How `write_disk` behaves.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Overwrite a target that already holds a partition table.
    pub force: bool,
    /// Check the target and count what would be written, write nothing.
    pub dry_run: bool,
    /// Grow the last partition and its filesystem to the end of a larger target.
    pub grow: bool,
    /// Parallel writers (0 or 1: one).
    pub jobs: usize,
    /// Set by the Ctrl-C handler; checked between chunks.
    pub cancel: Option<Arc<AtomicBool>>,
}
