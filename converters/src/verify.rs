//! Proof that an output disk holds exactly the source's guest bytes.
//!
//! Both allocation maps are walked together. A range that both maps call zero or
//! unallocated is equal without reading it; every other range is read from both sides and
//! compared byte for byte, chunk by chunk, in parallel. The first difference is reported
//! with its offset. (Digests would cost two SHA-256 passes for a weaker answer: both
//! chunks are in memory anyway.)

use rayon::prelude::*;
use serde::Serialize;

use crate::error::Result;
use crate::source::DiskSource;

const VERIFY_CHUNK: u64 = 4 << 20;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct VerifyReport {
    pub virtual_size: u64,
    /// Ranges read from both sides and compared by digest.
    pub ranges_compared: u64,
    pub bytes_compared: u64,
    /// Bytes both maps declare zero or unallocated: equal without reading.
    pub bytes_zero_in_both_maps: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("output size {output_size:#x} differs from source size {source_size:#x}")]
    SizeMismatch { source_size: u64, output_size: u64 },
    #[error("output differs from source in the {len:#x} bytes at offset {offset:#x}")]
    Mismatch { offset: u64, len: u64 },
    #[error(transparent)]
    Read(#[from] crate::error::Error),
}

/// Compares `source` and `output` guest byte for guest byte, with `jobs` threads.
pub fn verify(
    source: &dyn DiskSource,
    output: &dyn DiskSource,
    jobs: usize,
) -> std::result::Result<VerifyReport, VerifyError> {
    // qcow2 (like qemu-img) rounds a virtual size up to whole sectors; the padding must
    // read as zero.
    let padded = source.size().next_multiple_of(512);
    if output.size() != source.size() && output.size() != padded {
        return Err(VerifyError::SizeMismatch {
            source_size: source.size(),
            output_size: output.size(),
        });
    }
    check_zero_tail(output, source.size())?;
    let mut report = VerifyReport {
        virtual_size: source.size(),
        ..VerifyReport::default()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| crate::error::Error::invalid_request("<verify>", e.to_string()))?;
    let ranges = RangesToCompare {
        source,
        output,
        pos: 0,
        zero_bytes: &mut report.bytes_zero_in_both_maps,
    };
    let compared: Vec<u64> = pool.install(|| {
        ranges
            .par_bridge()
            .map(|range| -> std::result::Result<u64, VerifyError> {
                let (offset, len) = range?;
                compare_range(source, output, offset, len)?;
                Ok(len)
            })
            .collect::<std::result::Result<Vec<u64>, VerifyError>>()
    })?;
    report.ranges_compared = compared.len() as u64;
    report.bytes_compared = compared.iter().sum();
    Ok(report)
}

fn compare_range(
    source: &dyn DiskSource,
    output: &dyn DiskSource,
    offset: u64,
    len: u64,
) -> std::result::Result<(), VerifyError> {
    let n = usize::try_from(len).unwrap_or(usize::MAX);
    let mut want = vec![0u8; n];
    let mut got = vec![0u8; n];
    source.read_exact_at(&mut want, offset)?;
    output.read_exact_at(&mut got, offset)?;
    if got != want {
        return Err(VerifyError::Mismatch { offset, len });
    }
    Ok(())
}

fn check_zero_tail(output: &dyn DiskSource, from: u64) -> std::result::Result<(), VerifyError> {
    let len = output.size() - from;
    if len == 0 {
        return Ok(());
    }
    let mut tail = vec![0u8; usize::try_from(len).unwrap_or(0)];
    output.read_exact_at(&mut tail, from)?;
    if tail.iter().any(|&b| b != 0) {
        return Err(VerifyError::Mismatch { offset: from, len });
    }
    Ok(())
}

/// Yields the ranges (≤ `VERIFY_CHUNK`) that need reading, counting the ones that don't.
struct RangesToCompare<'a> {
    source: &'a dyn DiskSource,
    output: &'a dyn DiskSource,
    pos: u64,
    zero_bytes: &'a mut u64,
}

impl Iterator for RangesToCompare<'_> {
    type Item = Result<(u64, u64)>;

    fn next(&mut self) -> Option<Self::Item> {
        let size = self.source.size();
        while self.pos < size {
            let pos = self.pos;
            let step = |r: Result<crate::source::Extent>| r.map(|e| (e.len, e.kind.is_data()));
            let (len_a, data_a) = match step(self.source.extent_at(pos, size - pos)) {
                Ok(v) => v,
                Err(e) => return Some(Err(e)),
            };
            let (len_b, data_b) = match step(self.output.extent_at(pos, len_a)) {
                Ok(v) => v,
                Err(e) => return Some(Err(e)),
            };
            let len = len_a.min(len_b).max(1);
            if !data_a && !data_b {
                *self.zero_bytes += len;
                self.pos += len;
                continue;
            }
            let len = len.min(VERIFY_CHUNK - pos % VERIFY_CHUNK);
            self.pos += len;
            return Some(Ok((pos, len)));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::MemSource;

    #[test]
    fn identical_disks_verify() {
        let a = MemSource::new(8 << 20, vec![(512, 100_000), (6 << 20, 4096)]);
        let b = MemSource::new(8 << 20, vec![(512, 100_000), (6 << 20, 4096)]);
        let r = verify(&a, &b, 2).unwrap();
        assert_eq!(r.bytes_compared + r.bytes_zero_in_both_maps, 8 << 20);
        assert!(r.bytes_compared >= 104_096);
    }

    #[test]
    fn a_single_flipped_byte_is_found() {
        let a = MemSource::new(8 << 20, vec![(0, 8 << 20)]);
        let mut b = MemSource::new(8 << 20, vec![(0, 8 << 20)]);
        b.bytes[5 << 20] ^= 1;
        match verify(&a, &b, 2) {
            Err(VerifyError::Mismatch { offset, .. }) => assert_eq!(offset, 4 << 20),
            other => panic!("expected a mismatch, got {other:?}"),
        }
    }

    #[test]
    fn data_against_hole_is_compared() {
        let a = MemSource::new(1 << 20, vec![(0, 4096)]);
        let b = MemSource::new(1 << 20, vec![]);
        assert!(matches!(
            verify(&a, &b, 1),
            Err(VerifyError::Mismatch { .. })
        ));
    }
}
