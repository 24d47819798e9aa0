//! `DiskSink`: where converted guest bytes go (qcow2 or raw), written once, front to back
//! or in any order, and made visible under the final name only by `finish`.
//!
//! Sinks are shared by the copy workers behind a lock, but the bulk of the work happens
//! outside it: `place_data` only decides where guest bytes go (cheap bookkeeping) and
//! returns a [`Placement`] that the worker then fills with a positional write, so many
//! workers write at once as qemu's thread pool does. Compression is likewise done by the
//! workers, which is why compressed clusters arrive already compressed.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::compress::Compression;
use crate::error::{Error, Result};

/// Something positional writes can go to from any thread: the output file, or memory in
/// unit tests.
pub trait WriteAt: Send + Sync {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()>;
}

impl WriteAt for File {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        FileExt::write_all_at(self, buf, offset)
    }
}

/// Where a sink wants a run of guest bytes stored.
#[derive(Clone)]
pub struct Placement {
    pub target: Arc<dyn WriteAt>,
    /// Byte offset in `target` for the first guest byte of the run.
    pub host_offset: u64,
    /// The output, for error messages.
    pub path: Arc<Path>,
}

impl Placement {
    /// Writes the run's bytes where the sink placed them.
    pub fn write(&self, buf: &[u8]) -> Result<()> {
        self.target
            .write_all_at(buf, self.host_offset)
            .map_err(|e| {
                Error::io(
                    PathBuf::from(&*self.path),
                    format!("cannot write at {:#x}", self.host_offset),
                    e,
                )
            })
    }
}

/// Totals a sink reports when it is finished.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SinkSummary {
    /// Size of the output file in bytes (apparent size).
    pub file_size: u64,
    /// Guest bytes stored as data (after compression, what was written).
    pub stored_bytes: u64,
    /// Clusters stored compressed.
    pub compressed_clusters: u64,
}

pub trait DiskSink: Send {
    /// The guest-offset granularity writes should follow (the qcow2 cluster size; 4 KiB for
    /// raw). The engine sends data in whole units of it, except at the end of the disk.
    fn granularity(&self) -> u64;

    /// The compression workers should apply before `write_compressed_cluster`, if any.
    fn compression(&self) -> Option<Compression>;

    /// Reserves room for the `len` guest bytes at `offset` (granule-aligned, whole granules
    /// except at the end of the disk) and says where to write them. The caller must write
    /// them before `finish` and before any other call touches the same range.
    fn place_data(&mut self, offset: u64, len: u64) -> Result<Placement>;

    /// Stores `buf` at guest `offset`: `place_data` plus the write.
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        self.place_data(offset, buf.len() as u64)?.write(buf)
    }

    /// Stores one cluster (at `offset`, cluster-aligned) given in compressed form.
    fn write_compressed_cluster(&mut self, compressed: &[u8], offset: u64) -> Result<()>;

    /// Marks `[offset, offset+len)` as reading zero. Ranges never written read zero anyway;
    /// this exists for targets that may hold old data (block devices).
    fn write_zeroes(&mut self, offset: u64, len: u64) -> Result<()>;

    /// Writes metadata, syncs, and moves the file to its final name.
    fn finish(self: Box<Self>) -> Result<SinkSummary>;
}
