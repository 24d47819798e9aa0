//! The copy engine: the calling thread walks the source's allocation map and hands out
//! chunks; `jobs` workers each read a chunk, zero-detect it per sink granule, compress it
//! (optionally), ask the sink where the data goes, and write it there themselves.
//!
//! ```text
//!  planner (allocation map) ──chunks──► worker × jobs: read → zero-detect → compress
//!                                                   │ place (sink lock, bookkeeping only)
//!                                                   └─► pwrite at the placement (parallel)
//! ```
//!
//! Memory is bounded by one chunk buffer per worker (jobs are capped), whatever the disk
//! size. Ranges the source map calls zero or unallocated are never read; they reach the
//! sink as `write_zeroes` (a no-op for fresh files).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender};
use serde::Serialize;

use crate::compress::Compression;
use crate::direct::AlignedBuf;
use crate::error::{Error, Result};
use crate::sink::{DiskSink, SinkSummary};
use crate::source::{DiskSource, ExtentIter};

/// Bytes a worker reads at once; a multiple of every cluster size up to 2 MiB.
pub const DEFAULT_CHUNK_SIZE: u64 = 4 << 20;
/// Most workers one copy runs, so `--jobs 1000` cannot exceed the memory budget
/// (32 × 4 MiB buffers).
pub const MAX_JOBS: usize = 32;

#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Worker threads reading, zero-detecting, compressing and writing.
    pub jobs: usize,
    pub chunk_size: u64,
    pub compression_level: Option<i32>,
    /// Set from another thread (a Ctrl-C handler) to stop the copy; the sink is then
    /// dropped unfinished, which removes its temporary file.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            chunk_size: DEFAULT_CHUNK_SIZE,
            compression_level: None,
            cancel: None,
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

#[derive(Default)]
struct Counters {
    read: AtomicU64,
    skipped: AtomicU64,
    zero: AtomicU64,
    stored: AtomicU64,
}

/// A run of guest bytes for a worker: within one chunk, aligned to the sink's granularity.
#[derive(Debug, Clone, Copy)]
struct Work {
    offset: u64,
    len: u64,
}

/// State every thread of one copy shares.
struct Shared<'a> {
    source: &'a dyn DiskSource,
    sink: Mutex<Box<dyn DiskSink>>,
    granularity: u64,
    chunk_size: u64,
    compression: Option<Compression>,
    level: Option<i32>,
    counters: Counters,
    failed: AtomicBool,
    first_error: Mutex<Option<Error>>,
    progress: &'a (dyn Fn(u64) + Sync),
    cancel: Option<Arc<AtomicBool>>,
}

impl Shared<'_> {
    fn fail(&self, err: Error) {
        self.failed.store(true, Ordering::SeqCst);
        if let Ok(mut slot) = self.first_error.lock() {
            slot.get_or_insert(err);
        }
    }

    /// True once the copy must stop: a worker failed or the user interrupted.
    fn stopping(&self) -> bool {
        if self.failed.load(Ordering::SeqCst) {
            return true;
        }
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
        {
            self.fail(Error::invalid_request("<copy>", "interrupted"));
            return true;
        }
        false
    }

    fn sink(&self) -> Result<std::sync::MutexGuard<'_, Box<dyn DiskSink>>> {
        self.sink
            .lock()
            .map_err(|_| Error::invalid_request("<output>", "a copy worker panicked"))
    }
}

/// Copies every guest byte of `source` into `sink`, calling `progress` with the number of
/// guest bytes dealt with as it goes.
pub fn copy_disk(
    source: &dyn DiskSource,
    sink: Box<dyn DiskSink>,
    opts: &CopyOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<CopyStats> {
    let started = Instant::now();
    let granularity = sink.granularity().max(512);
    let shared = Shared {
        source,
        granularity,
        chunk_size: opts.chunk_size.max(granularity) / granularity * granularity,
        compression: sink.compression(),
        level: opts.compression_level,
        sink: Mutex::new(sink),
        counters: Counters::default(),
        failed: AtomicBool::new(false),
        first_error: Mutex::new(None),
        progress,
        cancel: opts.cancel.clone(),
    };
    let jobs = opts.jobs.clamp(1, MAX_JOBS);
    std::thread::scope(|scope| {
        let (work_tx, work_rx) = bounded::<Work>(jobs * 2);
        for _ in 0..jobs {
            let work = work_rx.clone();
            let shared = &shared;
            scope.spawn(move || run_worker(shared, &work));
        }
        drop(work_rx);
        if let Err(e) = plan(&shared, &work_tx) {
            shared.fail(e);
        }
    });
    if let Some(err) = shared.first_error.into_inner().ok().flatten() {
        return Err(err);
    }
    let sink = shared
        .sink
        .into_inner()
        .map_err(|_| Error::invalid_request("<output>", "a copy worker panicked"))?;
    let c = &shared.counters;
    Ok(CopyStats {
        virtual_size: source.size(),
        bytes_read: c.read.load(Ordering::SeqCst),
        bytes_skipped_by_map: c.skipped.load(Ordering::SeqCst),
        bytes_zero_detected: c.zero.load(Ordering::SeqCst),
        bytes_stored: c.stored.load(Ordering::SeqCst),
        sink: sink.finish()?,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Walks the allocation map and hands out aligned data chunks; zeroes skipped ranges.
fn plan(shared: &Shared<'_>, work: &Sender<Work>) -> Result<()> {
    let source = shared.source;
    let (granularity, chunk_size) = (shared.granularity, shared.chunk_size);
    let size = source.size();
    // Start of the range not yet handed out: data extents rounded out to the granularity
    // may overlap their neighbours.
    let mut covered = 0u64;
    for extent in ExtentIter::new(source, 0, size) {
        if shared.stopping() {
            return Ok(());
        }
        let extent = extent?;
        if !extent.kind.is_data() {
            // Only whole granules are skipped: partial ones are covered by data rounding.
            let skip_start = extent.offset.max(covered).next_multiple_of(granularity);
            let skip_end = if extent.end() == size {
                size
            } else {
                extent.end() / granularity * granularity
            };
            if skip_end > skip_start {
                shared
                    .sink()?
                    .write_zeroes(skip_start, skip_end - skip_start)?;
                shared
                    .counters
                    .skipped
                    .fetch_add(skip_end - skip_start, Ordering::Relaxed);
                (shared.progress)(skip_end - skip_start);
            }
            covered = covered.max(skip_end);
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
                // Every worker stopped: one of them failed and said why.
                return Ok(());
            }
            pos = chunk_end;
        }
        covered = covered.max(end);
    }
    Ok(())
}

fn run_worker(shared: &Shared<'_>, work: &Receiver<Work>) {
    // Aligned so that sinks can write runs of it with O_DIRECT.
    let mut buf = AlignedBuf::new(usize::try_from(shared.chunk_size).unwrap_or(0));
    for item in work.iter() {
        if shared.stopping() {
            return;
        }
        if let Err(e) = copy_chunk(shared, item, buf.as_mut_slice()) {
            shared.fail(e);
            return;
        }
    }
}

/// Reads one chunk, then stores its non-zero granules: runs of them as data, or each one
/// compressed.
fn copy_chunk(shared: &Shared<'_>, item: Work, buf: &mut [u8]) -> Result<()> {
    let len = usize::try_from(item.len).unwrap_or(usize::MAX);
    let buf = &mut buf[..len];
    shared.source.read_exact_at(buf, item.offset)?;
    let gran = usize::try_from(shared.granularity).unwrap_or(4096);
    let mut run: Option<(usize, usize)> = None;
    let mut zero = 0u64;
    for start in (0..len).step_by(gran) {
        let block = &buf[start..len.min(start + gran)];
        if is_zero(block) {
            zero += block.len() as u64;
            if let Some((s, l)) = run.take() {
                store_run(shared, &buf[s..s + l], item.offset + s as u64)?;
            }
            continue;
        }
        if let Some(compression) = shared.compression {
            store_compressed(shared, compression, block, item.offset + start as u64)?;
            continue;
        }
        run = match run {
            Some((s, l)) => Some((s, l + block.len())),
            None => Some((start, block.len())),
        };
    }
    if let Some((s, l)) = run {
        store_run(shared, &buf[s..s + l], item.offset + s as u64)?;
    }
    let c = &shared.counters;
    c.read.fetch_add(item.len, Ordering::Relaxed);
    c.zero.fetch_add(zero, Ordering::Relaxed);
    (shared.progress)(item.len);
    Ok(())
}

/// Places a run under the sink lock, then writes it without holding the lock.
fn store_run(shared: &Shared<'_>, data: &[u8], offset: u64) -> Result<()> {
    let placement = shared.sink()?.place_data(offset, data.len() as u64)?;
    placement.write(data)?;
    shared
        .counters
        .stored
        .fetch_add(data.len() as u64, Ordering::Relaxed);
    Ok(())
}

fn store_compressed(
    shared: &Shared<'_>,
    compression: Compression,
    block: &[u8],
    offset: u64,
) -> Result<()> {
    // The last cluster of a disk may be partial; qcow2 compresses whole clusters.
    let gran = usize::try_from(shared.granularity).unwrap_or(block.len());
    let mut padded;
    let input = if block.len() < gran {
        padded = block.to_vec();
        padded.resize(gran, 0);
        &padded[..]
    } else {
        block
    };
    let mut out = Vec::new();
    let smaller = compression
        .compress_cluster(input, shared.level, &mut out)
        .map_err(|e| Error::invalid_request("<compressor>", e.to_string()))?;
    if !smaller {
        return store_run(shared, block, offset);
    }
    shared.sink()?.write_compressed_cluster(&out, offset)?;
    shared
        .counters
        .stored
        .fetch_add(block.len() as u64, Ordering::Relaxed);
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
