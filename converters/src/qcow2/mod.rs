//! Placeholder until the qcow2 reader lands.

use std::path::Path;

use crate::chain::ChainGuard;
use crate::error::{Error, Result};
use crate::probe::OpenOptions;
use crate::source::DiskSource;

pub fn open(
    path: &Path,
    _opts: &OpenOptions,
    _guard: &mut ChainGuard,
) -> Result<Box<dyn DiskSource>> {
    Err(Error::unsupported(
        path,
        "format qcow2 (reader not built yet)",
    ))
}

/// Placeholder until the qcow2 writer lands.
pub struct Qcow2Sink;

#[derive(Debug, Clone)]
pub struct Qcow2WriteOptions {
    pub cluster_size: u64,
    pub compression: Option<crate::compress::Compression>,
    pub compression_level: Option<i32>,
}

impl Default for Qcow2WriteOptions {
    fn default() -> Self {
        Qcow2WriteOptions {
            cluster_size: 65536,
            compression: None,
            compression_level: None,
        }
    }
}

impl Qcow2Sink {
    pub fn create(path: &Path, _virtual_size: u64, _opts: Qcow2WriteOptions) -> Result<Self> {
        Err(Error::unsupported(
            path,
            "qcow2 output (writer not built yet)",
        ))
    }
}

impl crate::sink::DiskSink for Qcow2Sink {
    fn granularity(&self) -> u64 {
        65536
    }
    fn compression(&self) -> Option<crate::compress::Compression> {
        None
    }
    fn write_all_at(&mut self, _buf: &[u8], _offset: u64) -> Result<()> {
        Ok(())
    }
    fn write_compressed_cluster(&mut self, _c: &[u8], _offset: u64) -> Result<()> {
        Ok(())
    }
    fn write_zeroes(&mut self, _offset: u64, _len: u64) -> Result<()> {
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<crate::sink::SinkSummary> {
        Ok(crate::sink::SinkSummary::default())
    }
}
