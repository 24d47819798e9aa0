//! In-memory sources and sinks for unit tests of the engine (the formats test against
//! images made by qemu-img instead).

use std::sync::{Arc, Mutex};

use crate::compress::Compression;
use crate::error::Result;
use crate::sink::{DiskSink, Placement, SinkSummary, WriteAt};
use crate::source::{clip_len, DiskSource, Extent, ExtentKind, LayerInfo};

/// A disk held in memory with an explicit map: `data_ranges` are Data, the rest Unallocated.
pub struct MemSource {
    pub bytes: Vec<u8>,
    pub data_ranges: Vec<(u64, u64)>,
}

impl MemSource {
    /// Bytes pseudo-random in the data ranges and zero elsewhere.
    pub fn new(size: u64, data_ranges: Vec<(u64, u64)>) -> Self {
        let mut bytes = vec![0u8; usize::try_from(size).unwrap()];
        let mut x = 0x9e37_79b9_u32;
        for &(start, len) in &data_ranges {
            for b in &mut bytes[start as usize..(start + len) as usize] {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = (x >> 24) as u8 | 1;
            }
        }
        MemSource { bytes, data_ranges }
    }
}

impl DiskSource for MemSource {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let start = offset as usize;
        buf.copy_from_slice(&self.bytes[start..start + buf.len()]);
        Ok(())
    }

    fn extent_at(&self, offset: u64, max_len: u64) -> Result<Extent> {
        let len = clip_len(offset, max_len, self.size());
        for &(s, l) in &self.data_ranges {
            if offset >= s && offset < s + l {
                return Ok(Extent {
                    offset,
                    len: len.min(s + l - offset),
                    kind: ExtentKind::Data,
                });
            }
        }
        let next = self
            .data_ranges
            .iter()
            .map(|&(s, _)| s)
            .filter(|&s| s > offset)
            .min()
            .unwrap_or(u64::MAX);
        Ok(Extent {
            offset,
            len: len.min(next - offset),
            kind: ExtentKind::Unallocated,
        })
    }

    fn layers(&self) -> Vec<LayerInfo> {
        Vec::new()
    }
}

/// A sink that records what it is given into a shared buffer.
pub struct MemSink {
    pub out: Arc<MemTarget>,
    pub granularity: u64,
    pub compression: Option<Compression>,
    pub zero_calls: Arc<Mutex<Vec<(u64, u64)>>>,
}

impl MemSink {
    pub fn new(size: u64, granularity: u64, compression: Option<Compression>) -> Self {
        MemSink {
            out: Arc::new(MemTarget(Mutex::new(vec![0u8; size as usize]))),
            granularity,
            compression,
            zero_calls: Arc::default(),
        }
    }
}

impl DiskSink for MemSink {
    fn granularity(&self) -> u64 {
        self.granularity
    }
    fn compression(&self) -> Option<Compression> {
        self.compression
    }
    fn place_data(&mut self, _offset: u64, _len: u64) -> Result<Placement> {
        Ok(Placement {
            target: self.out.clone(),
            host_offset: _offset,
            path: Arc::from(std::path::Path::new("<memory>")),
        })
    }
    fn write_compressed_cluster(&mut self, compressed: &[u8], offset: u64) -> Result<()> {
        let mut cluster = vec![0u8; self.granularity as usize];
        self.compression
            .unwrap()
            .decompress_cluster(compressed, &mut cluster)
            .unwrap();
        let mut out = self.out.0.lock().unwrap();
        let end = (offset as usize + cluster.len()).min(out.len());
        let n = end - offset as usize;
        out[offset as usize..end].copy_from_slice(&cluster[..n]);
        Ok(())
    }
    fn write_zeroes(&mut self, offset: u64, len: u64) -> Result<()> {
        self.zero_calls.lock().unwrap().push((offset, len));
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<SinkSummary> {
        Ok(SinkSummary::default())
    }
}

/// Memory that placements write into.
pub struct MemTarget(pub Mutex<Vec<u8>>);

impl WriteAt for MemTarget {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        let mut out = self.0.lock().unwrap();
        out[offset as usize..offset as usize + buf.len()].copy_from_slice(buf);
        Ok(())
    }
}

/// True when qemu-img and qemu-io run; a test without them skips locally and fails when
/// `CI` is set, so CI cannot silently test less.
pub fn have_qemu() -> bool {
    use std::process::Command;
    let ok = Command::new("qemu-img").arg("--version").output().is_ok()
        && Command::new("qemu-io").arg("--version").output().is_ok();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "qemu-img/qemu-io missing under CI"
        );
        eprintln!("skipping: qemu-img or qemu-io not installed");
    }
    ok
}

/// Runs a tool that must succeed and returns its stdout.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
