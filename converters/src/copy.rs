//! The copy engine: a planner walks the source's allocation map, workers read, zero-detect
//! and (optionally) compress chunks in parallel, and one writer feeds the sink.
//!
//! ```text
//!  planner ──work──► worker × jobs ──results──► writer (this thread) ──► DiskSink
//!     ▲                 │   ▲                       │
//!     │                 │   └──── buffer pool ◄─────┘   (bounded: memory is pool × chunk)
//!  extent map       read → zero-detect → compress
//! ```
//!
//! Memory is bounded by the buffer pool, whatever the disk size: workers block until the
//! writer hands a buffer back. Ranges the source map calls zero or unallocated are never
//! read; they reach the sink as `write_zeroes` (a no-op for fresh files).

use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender};
use serde::Serialize;

use crate::compress::Compression;
use crate::error::{Error, Result};
use crate::sink::{DiskSink, SinkSummary};
use crate::source::{DiskSource, ExtentIter};

/// Bytes a worker reads at once; a multiple of every cluster size up to 2 MiB.
pub const DEFAULT_CHUNK_SIZE: u64 = 4 << 20;
/// Upper bound on buffers in flight, so `--jobs 64` cannot exceed the memory budget.
const MAX_BUFFERS: usize = 24;

#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Worker threads reading, zero-detecting and compressing.
    pub jobs: usize,
    pub chunk_size: u64,
    pub compression_level: Option<i32>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            chunk_size: DEFAULT_CHUNK_SIZE,
            compression_level: None,
        }
    }
}

/// What the copy did, for reports and `--json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CopyStats {
    pub virtual_size: u64,
    /// Bytes the source's map called data, read from the source.
    pub bytes_read: u64,
    /// Bytes the map called zero or unallocated: never read.
    pub bytes_skipped_by_map: u64,
    /// Bytes read that turned out to be zero and were not stored.
    pub bytes_zero_detected: u64,
    /// Guest bytes handed to the sink as data (before compression).
    pub bytes_stored: u64,
    pub seconds: f64,
    pub sink: SinkSummary,
}

/// A run of guest bytes for a worker: within one chunk, aligned to the sink's granularity.
#[derive(Debug, Clone, Copy)]
struct Work {
    offset: u64,
    len: u64,
}

enum Piece {
    /// `buf[start..start+len]` goes to guest offset `offset`.
    Data {
        offset: u64,
        start: usize,
        len: usize,
    },
    Compressed {
        offset: u64,
        bytes: Vec<u8>,
    },
}

enum Outcome {
    Chunk {
        buf: Vec<u8>,
        pieces: Vec<Piece>,
        read: u64,
        zero: u64,
    },
    Skipped {
        offset: u64,
        len: u64,
    },
}

/// Copies every guest byte of `source` into `sink`, calling `progress` with the number of
/// guest bytes dealt with as it goes.
pub fn copy_disk(
    source: &dyn DiskSource,
    mut sink: Box<dyn DiskSink>,
    opts: &CopyOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<CopyStats> {
    let started = Instant::now();
    let granularity = sink.granularity().max(512);
    let chunk_size = opts.chunk_size.max(granularity) / granularity * granularity;
    let jobs = opts.jobs.max(1);
    let n_buffers = (jobs * 2 + 2).min(MAX_BUFFERS);
    let chunk_bytes = usize::try_from(chunk_size).unwrap_or(usize::MAX);
    let compression = sink.compression();

    let mut stats = CopyStats {
        virtual_size: source.size(),
        ..CopyStats::default()
    };
    std::thread::scope(|scope| -> Result<()> {
        let (work_tx, work_rx) = bounded::<Work>(n_buffers * 2);
        let (result_tx, result_rx) = bounded::<Result<Outcome>>(n_buffers);
        let (pool_tx, pool_rx) = bounded::<Vec<u8>>(n_buffers);
        for _ in 0..n_buffers {
            let _ = pool_tx.send(vec![0u8; chunk_bytes]);
        }
        let planner_results = result_tx.clone();
        scope.spawn(move || plan(source, granularity, chunk_size, &work_tx, &planner_results));
        for _ in 0..jobs {
            let worker = Worker {
                source,
                granularity,
                compression,
                level: opts.compression_level,
                work: work_rx.clone(),
                results: result_tx.clone(),
                pool: pool_rx.clone(),
            };
            scope.spawn(move || worker.run());
        }
        drop((result_tx, work_rx, pool_rx));
        let outcome = write_all(sink.as_mut(), &result_rx, &pool_tx, &mut stats, progress);
        // If the writer stopped early, closing its ends unblocks every producer.
        drop((result_rx, pool_tx));
        outcome
    })?;
    stats.sink = sink.finish()?;
    stats.seconds = started.elapsed().as_secs_f64();
    Ok(stats)
}

/// Walks the allocation map and emits aligned data chunks; reports skipped ranges.
fn plan(
    source: &dyn DiskSource,
    granularity: u64,
    chunk_size: u64,
    work: &Sender<Work>,
    results: &Sender<Result<Outcome>>,
) {
    let size = source.size();
    // Start of the range not yet handed out: data extents rounded out to the granularity
    // may overlap their neighbours.
    let mut covered = 0u64;
    for extent in ExtentIter::new(source, 0, size) {
        let extent = match extent {
            Ok(e) => e,
            Err(e) => {
                let _ = results.send(Err(e));
                return;
            }
        };
        if !extent.kind.is_data() {
            let start = extent.offset.max(covered);
            if extent.end() > start {
                // Only whole granules are skipped: partial ones are covered by data rounding.
                let skip_start = start.next_multiple_of(granularity).min(extent.end());
                let skip_end = if extent.end() == size {
                    size
                } else {
                    extent.end() / granularity * granularity
                };
                if skip_end > skip_start
                    && results
                        .send(Ok(Outcome::Skipped {
                            offset: skip_start,
                            len: skip_end - skip_start,
                        }))
                        .is_err()
                {
                    return;
                }
                covered = covered.max(skip_end);
            }
            continue;
        }
        let start = (extent.offset / granularity * granularity).max(covered);
        let end = extent.end().next_multiple_of(granularity).min(size);
        let mut pos = start;
        while pos < end {
            let chunk_end = ((pos / chunk_size + 1) * chunk_size).min(end);
            if work
                .send(Work {
                    offset: pos,
                    len: chunk_end - pos,
                })
                .is_err()
            {
                return;
            }
            pos = chunk_end;
        }
        covered = covered.max(end);
    }
}

struct Worker<'a> {
    source: &'a dyn DiskSource,
    granularity: u64,
    compression: Option<Compression>,
    level: Option<i32>,
    work: Receiver<Work>,
    results: Sender<Result<Outcome>>,
    pool: Receiver<Vec<u8>>,
}

impl Worker<'_> {
    fn run(self) {
        for item in self.work.iter() {
            let Ok(buf) = self.pool.recv() else { return };
            let outcome = self.process(item, buf);
            let failed = outcome.is_err();
            if self.results.send(outcome).is_err() || failed {
                return;
            }
        }
    }

    fn process(&self, item: Work, mut buf: Vec<u8>) -> Result<Outcome> {
        let len = usize::try_from(item.len).unwrap_or(usize::MAX);
        self.source.read_exact_at(&mut buf[..len], item.offset)?;
        let gran = usize::try_from(self.granularity).unwrap_or(4096);
        let mut pieces = Vec::new();
        let mut zero = 0u64;
        let mut run: Option<(usize, usize)> = None;
        for start in (0..len).step_by(gran) {
            let block = &buf[start..len.min(start + gran)];
            if is_zero(block) {
                zero += block.len() as u64;
                if let Some((s, l)) = run.take() {
                    pieces.push(self.data_piece(item.offset, s, l));
                }
                continue;
            }
            if let Some(compression) = self.compression {
                let offset = item.offset + start as u64;
                pieces.push(self.compress_block(compression, block, offset, start)?);
                continue;
            }
            run = match run {
                Some((s, l)) => Some((s, l + block.len())),
                None => Some((start, block.len())),
            };
        }
        if let Some((s, l)) = run {
            pieces.push(self.data_piece(item.offset, s, l));
        }
        Ok(Outcome::Chunk {
            buf,
            pieces,
            read: item.len,
            zero,
        })
    }

    fn data_piece(&self, chunk_offset: u64, start: usize, len: usize) -> Piece {
        Piece::Data {
            offset: chunk_offset + start as u64,
            start,
            len,
        }
    }

    fn compress_block(
        &self,
        compression: Compression,
        block: &[u8],
        offset: u64,
        start: usize,
    ) -> Result<Piece> {
        // The last cluster of a disk may be partial; qcow2 compresses whole clusters.
        let gran = usize::try_from(self.granularity).unwrap_or(block.len());
        let padded;
        let input = if block.len() < gran {
            let mut p = block.to_vec();
            p.resize(gran, 0);
            padded = p;
            &padded[..]
        } else {
            block
        };
        let mut out = Vec::new();
        let smaller = compression
            .compress_cluster(input, self.level, &mut out)
            .map_err(|e| Error::invalid_request("<compressor>", e.to_string()))?;
        Ok(if smaller {
            Piece::Compressed { offset, bytes: out }
        } else {
            Piece::Data {
                offset,
                start,
                len: block.len(),
            }
        })
    }
}

fn write_all(
    sink: &mut dyn DiskSink,
    results: &Receiver<Result<Outcome>>,
    pool: &Sender<Vec<u8>>,
    stats: &mut CopyStats,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<()> {
    for outcome in results.iter() {
        match outcome? {
            Outcome::Skipped { offset, len } => {
                sink.write_zeroes(offset, len)?;
                stats.bytes_skipped_by_map += len;
                progress(len);
            }
            Outcome::Chunk {
                buf,
                pieces,
                read,
                zero,
            } => {
                for piece in &pieces {
                    match piece {
                        Piece::Data { offset, start, len } => {
                            sink.write_all_at(&buf[*start..start + len], *offset)?;
                            stats.bytes_stored += *len as u64;
                        }
                        Piece::Compressed { offset, bytes } => {
                            sink.write_compressed_cluster(bytes, *offset)?;
                            stats.bytes_stored += sink.granularity();
                        }
                    }
                }
                stats.bytes_read += read;
                stats.bytes_zero_detected += zero;
                progress(read);
                let _ = pool.send(buf);
            }
        }
    }
    Ok(())
}

/// True when every byte is zero; compares against a static zero page, which memcmp
/// vectorises.
pub fn is_zero(block: &[u8]) -> bool {
    static ZEROS: [u8; 4096] = [0u8; 4096];
    block.chunks(ZEROS.len()).all(|c| c == &ZEROS[..c.len()])
}

/// Copies several disks of one VM at once, sharing `opts.jobs` workers between them.
pub fn copy_disks(
    pairs: Vec<(&dyn DiskSource, Box<dyn DiskSink>)>,
    opts: &CopyOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Vec<Result<CopyStats>> {
    let n = pairs.len().max(1);
    let per_disk = CopyOptions {
        jobs: (opts.jobs / n).max(1),
        ..opts.clone()
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = pairs
            .into_iter()
            .map(|(source, sink)| {
                let per_disk = &per_disk;
                scope.spawn(move || copy_disk(source, sink, per_disk, progress))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::invalid_request("<copy>", "a copy thread panicked"))
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests;
