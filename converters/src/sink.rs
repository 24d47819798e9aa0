//! `DiskSink`: where converted guest bytes go (qcow2 or raw), written once, front to back
//! or in any order, and made visible under the final name only by `finish`.
//!
//! The copy engine calls a sink from a single writer thread; expensive per-cluster work
//! (compression) is done beforehand by the workers, which is why compressed clusters arrive
//! already compressed.

use crate::compress::Compression;
use crate::error::Result;

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

    /// Stores `buf` at guest `offset`.
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> Result<()>;

    /// Stores one cluster (at `offset`, cluster-aligned) given in compressed form.
    fn write_compressed_cluster(&mut self, compressed: &[u8], offset: u64) -> Result<()>;

    /// Marks `[offset, offset+len)` as reading zero. Ranges never written read zero anyway;
    /// this exists for targets that may hold old data (block devices).
    fn write_zeroes(&mut self, offset: u64, len: u64) -> Result<()>;

    /// Writes metadata, syncs, and moves the file to its final name.
    fn finish(self: Box<Self>) -> Result<SinkSummary>;
}
