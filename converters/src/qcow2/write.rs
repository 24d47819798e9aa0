//! The streaming qcow2 writer: a [`DiskSink`] that appends clusters as they arrive and
//! writes all metadata once, in `finish`.
//!
//! Output: qcow2 v3, 16-bit refcounts (refcount_order 4), no backing file, no snapshots.
//!
//! ```text
//! cluster 0        header (written last, by finish)
//! clusters 1..     guest data in arrival order: standard clusters (cluster aligned) and
//!                  compressed clusters (packed at 512-byte granularity, may straddle
//!                  host clusters, as qemu packs them)
//! then             L2 tables (only those with entries), L1 table, refcount blocks,
//!                  refcount table; the refcounts cover every cluster, themselves included
//! ```
//!
//! The file is created under a temporary name (`.NAME.XXXXXX.ferry-tmp`) in the
//! destination's folder and renamed into place by `finish` after an fsync; a sink dropped
//! without `finish` deletes it. Memory: at most 32 MiB of L2 tables (colder tables are
//! written to the file and read back if touched again; `finish` rewrites them in place)
//! plus 2 bytes of refcount per host cluster (32 MiB per TiB written with 64 KiB
//! clusters); nothing for the unwritten parts of a sparse disk.
//!
//! Not supported: backing files, extended L2 entries, preallocation, in-place updates of
//! an existing image.

use std::collections::HashMap;
use std::fs::Permissions;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::entry::{CompressedDescriptor, COMPRESSED, COPIED, OFFSET_MASK, SECTOR, ZERO};
use super::header::{
    l1_entries_for, l2_bits, Header, COMPRESSION_ZLIB, COMPRESSION_ZSTD, INCOMPAT_COMPRESSION,
    MAX_L1_BYTES, MAX_VIRTUAL_SIZE, V3_HEADER_LEN,
};
use crate::compress::Compression;
use crate::direct::DirectFile;
use crate::error::{Error, Result};
use crate::sink::{DiskSink, Placement, SinkSummary};
use std::sync::Arc;

#[path = "write_meta.rs"]
mod meta;

/// Appended bytes are buffered and written in chunks of at least this size.
const FLUSH_BYTES: usize = 4 << 20;
/// L2 tables kept in memory; colder ones are written to the file and read back if touched.
const L2_CACHE_BYTES: u64 = 32 << 20;

/// How [`Qcow2Sink`] lays out the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qcow2WriteOptions {
    /// Power of two from 512 to 2 MiB.
    pub cluster_size: u64,
    /// Compression the copy workers apply before `write_compressed_cluster`.
    pub compression: Option<Compression>,
    /// Level passed to the compressor (None: the library default).
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

pub struct Qcow2Sink {
    path: PathBuf,
    file: NamedTempFile,
    /// Where copy workers write data clusters: the temporary file, bypassing the page
    /// cache where it can.
    writer: Arc<DirectFile>,
    shared_path: Arc<Path>,
    virtual_size: u64,
    cluster_bits: u32,
    l2_bits: u32,
    l1_entries: u64,
    opts: Qcow2WriteOptions,
    /// L2 tables in memory by L1 index, created on first write into their range.
    l2: HashMap<u64, Table>,
    /// Host offsets of L2 tables that were evicted to the file at least once; they keep
    /// that cluster and are rewritten in place by `finish`.
    placed: HashMap<u64, u64>,
    /// Most L2 tables held in memory, and the clock that orders their last use.
    max_tables: usize,
    clock: u64,
    /// Refcount of every host cluster allocated so far.
    refcounts: Vec<u16>,
    /// Appended bytes not yet written; they start at `pending_start`, and the next free
    /// byte of the file is `pending_start + pending.len()`.
    pending: Vec<u8>,
    pending_start: u64,
    stored_bytes: u64,
    compressed_clusters: u64,
}

impl Qcow2Sink {
    /// Starts a new image of `virtual_size` bytes (rounded up to whole 512-byte sectors,
    /// as qemu-img does) that will appear at `path` when finished.
    pub fn create(path: &Path, virtual_size: u64, opts: Qcow2WriteOptions) -> Result<Qcow2Sink> {
        let cs = opts.cluster_size;
        if !cs.is_power_of_two() || !(512..=2 << 20).contains(&cs) {
            return Err(Error::invalid_request(
                path,
                format!("cluster size {cs:#x} is not a power of two from 512 to 2 MiB"),
            ));
        }
        let cluster_bits = cs.trailing_zeros();
        let virtual_size = virtual_size
            .checked_next_multiple_of(SECTOR)
            .filter(|s| *s <= MAX_VIRTUAL_SIZE)
            .ok_or_else(|| {
                Error::invalid_request(path, format!("virtual size {virtual_size:#x} is too large"))
            })?;
        let l1_entries = l1_entries_for(virtual_size, cluster_bits, false);
        if l1_entries * 8 > MAX_L1_BYTES {
            return Err(Error::invalid_request(
                path,
                format!("virtual size {virtual_size:#x} needs more than 32 MiB of l1 table with {cs:#x}-byte clusters"),
            ));
        }
        let file = create_temp(path)?;
        let writer = file
            .as_file()
            .try_clone()
            .map_err(|e| Error::io(path, "cannot duplicate output handle", e))?;
        let writer = Arc::new(DirectFile::open(file.path(), Arc::new(writer)));
        Ok(Qcow2Sink {
            path: path.to_path_buf(),
            file,
            writer,
            shared_path: Arc::from(path),
            virtual_size,
            cluster_bits,
            l2_bits: l2_bits(cluster_bits, false),
            l1_entries,
            opts,
            l2: HashMap::new(),
            placed: HashMap::new(),
            max_tables: usize::try_from((L2_CACHE_BYTES >> cluster_bits).max(4)).unwrap_or(4),
            clock: 0,
            refcounts: vec![1], // cluster 0: the header
            pending: Vec::new(),
            pending_start: cs,
            stored_bytes: 0,
            compressed_clusters: 0,
        })
    }

    /// Caps the L2 tables held in memory (tests exercise eviction with tiny caps).
    #[cfg(test)]
    pub(super) fn with_l2_cache_tables(mut self, tables: usize) -> Self {
        self.max_tables = tables.max(1);
        self
    }

    /// The compression level the workers should use.
    pub fn compression_level(&self) -> Option<i32> {
        self.opts.compression_level
    }

    fn cluster_size(&self) -> u64 {
        1u64 << self.cluster_bits
    }

    fn invalid(&self, reason: String) -> Error {
        Error::invalid_request(&self.path, reason)
    }

    fn io_error(&self, what: &str, e: std::io::Error) -> Error {
        Error::io(self.file.path(), what, e)
    }

    fn next_free(&self) -> u64 {
        self.pending_start + self.pending.len() as u64
    }

    /// Zero-fills up to the next multiple of `align` in the file.
    fn pad_to(&mut self, align: u64) {
        let next = self.next_free();
        let pad = next.next_multiple_of(align) - next;
        let pad = usize::try_from(pad).unwrap_or(0);
        self.pending.resize(self.pending.len() + pad, 0);
    }

    /// Appends `data` at the end of the file; returns its host offset.
    fn append(&mut self, data: &[u8]) -> Result<u64> {
        let host = self.next_free();
        if self.pending.is_empty() && data.len() >= FLUSH_BYTES {
            self.file
                .as_file()
                .write_all_at(data, host)
                .map_err(|e| self.io_error("cannot write", e))?;
            self.pending_start += data.len() as u64;
            return Ok(host);
        }
        self.pending.extend_from_slice(data);
        if self.pending.len() >= FLUSH_BYTES {
            self.flush_pending()?;
        }
        Ok(host)
    }

    fn flush_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file
            .as_file()
            .write_all_at(&self.pending, self.pending_start)
            .map_err(|e| self.io_error("cannot write", e))?;
        self.pending_start += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    fn add_ref(&mut self, cluster: u64) -> Result<()> {
        let i = usize::try_from(cluster).map_err(|_| self.invalid("image too large".into()))?;
        if i >= self.refcounts.len() {
            self.refcounts.resize(i + 1, 0);
        }
        match self
            .refcounts
            .get_mut(i)
            .and_then(|r| r.checked_add(1).map(|n| *r = n))
        {
            Some(()) => Ok(()),
            None => Err(self.invalid(format!("refcount of host cluster {cluster:#x} overflows"))),
        }
    }

    fn drop_ref(&mut self, cluster: u64) {
        if let Some(r) = usize::try_from(cluster)
            .ok()
            .and_then(|i| self.refcounts.get_mut(i))
        {
            *r = r.saturating_sub(1);
        }
    }

    /// Host clusters a compressed L2 entry references.
    fn compressed_clusters_of(&self, entry: u64) -> std::ops::RangeInclusive<u64> {
        let (start, end) = CompressedDescriptor::decode(entry, self.cluster_bits).sector_range();
        (start >> self.cluster_bits)..=((end - 1) >> self.cluster_bits)
    }

    /// Drops the references an L2 entry being replaced held.
    fn release(&mut self, entry: u64) {
        if entry & COMPRESSED != 0 {
            for c in self.compressed_clusters_of(entry) {
                self.drop_ref(c);
            }
        } else if entry & OFFSET_MASK != 0 {
            self.drop_ref((entry & OFFSET_MASK) >> self.cluster_bits);
        }
    }

    /// The L2 table for L1 index `l1_index`, loaded (or created) and marked used.
    fn table_mut(&mut self, l1_index: u64) -> Result<&mut Table> {
        if !self.l2.contains_key(&l1_index) {
            self.make_room()?;
            let entries = 1usize << self.l2_bits;
            let mut table = vec![0u64; entries].into_boxed_slice();
            if let Some(&host) = self.placed.get(&l1_index) {
                let mut raw = vec![0u8; entries * 8];
                self.read_back(&mut raw, host)?;
                for (e, b) in table.iter_mut().zip(raw.chunks_exact(8)) {
                    *e = u64::from_be_bytes(b.try_into().unwrap_or_default());
                }
            }
            self.l2.insert(
                l1_index,
                Table {
                    entries: table,
                    last_use: 0,
                },
            );
        }
        self.clock += 1;
        let clock = self.clock;
        let table = self
            .l2
            .get_mut(&l1_index)
            .ok_or_else(|| Error::invalid_request(&self.path, "l2 table vanished"))?;
        table.last_use = clock;
        Ok(table)
    }

    /// Writes the least recently used L2 table to the file when the cache is full.
    fn make_room(&mut self) -> Result<()> {
        if self.l2.len() < self.max_tables {
            return Ok(());
        }
        let victim = self
            .l2
            .iter()
            .min_by_key(|(_, t)| t.last_use)
            .map(|(i, _)| *i);
        let Some(table) = victim.and_then(|v| self.l2.remove(&v)) else {
            return Ok(());
        };
        let victim = victim.unwrap_or_default();
        let bytes = be_bytes64(&table.entries);
        if let Some(&host) = self.placed.get(&victim) {
            return self.write_back(&bytes, host);
        }
        self.pad_to(self.cluster_size());
        let host = self.append(&bytes)?;
        self.add_ref(host >> self.cluster_bits)?;
        self.placed.insert(victim, host);
        Ok(())
    }

    fn entry(&mut self, guest_cluster: u64) -> Result<u64> {
        let l1_index = guest_cluster >> self.l2_bits;
        if !self.l2.contains_key(&l1_index) && !self.placed.contains_key(&l1_index) {
            return Ok(0);
        }
        let index = usize::try_from(guest_cluster & ((1u64 << self.l2_bits) - 1)).unwrap_or(0);
        let table = self.table_mut(l1_index)?;
        Ok(table.entries.get(index).copied().unwrap_or(0))
    }

    /// Points guest cluster `guest_cluster` at `entry`, releasing what it pointed at.
    fn set_entry(&mut self, guest_cluster: u64, entry: u64) -> Result<()> {
        let index = usize::try_from(guest_cluster & ((1u64 << self.l2_bits) - 1)).unwrap_or(0);
        let table = self.table_mut(guest_cluster >> self.l2_bits)?;
        let old = table
            .entries
            .get_mut(index)
            .map(|e| std::mem::replace(e, entry))
            .unwrap_or(0);
        self.release(old);
        Ok(())
    }

    /// Checks a data write: cluster aligned, inside the disk, whole clusters except the
    /// disk's last one.
    fn check_write(&self, offset: u64, len: u64) -> Result<()> {
        let cs = self.cluster_size();
        let end = offset.checked_add(len).filter(|e| *e <= self.virtual_size);
        let Some(end) = end else {
            return Err(self.invalid(format!(
                "write of {len:#x} bytes at {offset:#x} is past the end of the disk ({:#x})",
                self.virtual_size
            )));
        };
        let last_cluster = (self.virtual_size - 1) / cs;
        if !offset.is_multiple_of(cs) || (!len.is_multiple_of(cs) && (end - 1) / cs != last_cluster)
        {
            return Err(self.invalid(format!(
                "write of {len:#x} bytes at {offset:#x} is not in whole {cs:#x}-byte clusters"
            )));
        }
        Ok(())
    }

    /// Stores whole or final-partial clusters starting at guest `offset` (already checked).
    fn store(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        let cs = self.cluster_size();
        let full = buf.len() >> self.cluster_bits << self.cluster_bits;
        self.pad_to(cs);
        let host = self.append(&buf[..full])?;
        let first = offset >> self.cluster_bits;
        for k in 0..(full as u64 >> self.cluster_bits) {
            self.add_ref((host >> self.cluster_bits) + k)?;
            self.set_entry(first + k, (host + (k << self.cluster_bits)) | COPIED)?;
        }
        if full < buf.len() {
            let host = self.append(&buf[full..])?;
            self.pad_to(cs);
            self.add_ref(host >> self.cluster_bits)?;
            self.set_entry((offset + full as u64) >> self.cluster_bits, host | COPIED)?;
        }
        self.stored_bytes += buf.len() as u64;
        Ok(())
    }

    /// Reserves contiguous host clusters for `len` guest bytes at `offset` (already
    /// checked) and maps them; the caller writes the data there itself, so many workers
    /// write at once. Pending appends are flushed first so the reservation lies wholly in
    /// the file's range, where `read_back`/`write_back` expect written data.
    fn reserve(&mut self, offset: u64, len: u64) -> Result<u64> {
        self.flush_pending()?;
        let cs = self.cluster_size();
        let host = self.pending_start.next_multiple_of(cs);
        let clusters = len.div_ceil(cs);
        self.pending_start = host + clusters * cs;
        let first = offset >> self.cluster_bits;
        for k in 0..clusters {
            self.add_ref((host >> self.cluster_bits) + k)?;
            self.set_entry(first + k, (host + (k << self.cluster_bits)) | COPIED)?;
        }
        self.stored_bytes += len;
        Ok(host)
    }

    /// Reads back `out.len()` bytes this sink wrote at `host` (file or pending buffer).
    fn read_back(&self, out: &mut [u8], host: u64) -> Result<()> {
        let in_file = usize::try_from(self.pending_start.saturating_sub(host))
            .unwrap_or(usize::MAX)
            .min(out.len());
        let (file_part, pending_part) = out.split_at_mut(in_file);
        self.file
            .as_file()
            .read_exact_at(file_part, host)
            .map_err(|e| self.io_error("cannot read back", e))?;
        if pending_part.is_empty() {
            return Ok(());
        }
        let at = usize::try_from((host + in_file as u64) - self.pending_start).unwrap_or(0);
        let src = self
            .pending
            .get(at..at + pending_part.len())
            .ok_or_else(|| self.invalid(format!("read back at {host:#x} past the written data")))?;
        pending_part.copy_from_slice(src);
        Ok(())
    }

    /// Overwrites bytes this sink already wrote at `host`.
    fn write_back(&mut self, data: &[u8], host: u64) -> Result<()> {
        let in_file = usize::try_from(self.pending_start.saturating_sub(host))
            .unwrap_or(usize::MAX)
            .min(data.len());
        let (file_part, pending_part) = data.split_at(in_file);
        self.file
            .as_file()
            .write_all_at(file_part, host)
            .map_err(|e| self.io_error("cannot write", e))?;
        if pending_part.is_empty() {
            return Ok(());
        }
        let at = usize::try_from((host + in_file as u64) - self.pending_start).unwrap_or(0);
        let end = at + pending_part.len();
        let dst = self.pending.get_mut(at..end).ok_or_else(|| {
            Error::invalid_request(&self.path, "write back past the written data")
        })?;
        dst.copy_from_slice(pending_part);
        Ok(())
    }

    /// Zeroes `[lo, hi)` inside the allocated guest cluster `gc` (partial zeroing).
    fn zero_part(&mut self, gc: u64, entry: u64, lo: u64, hi: u64) -> Result<()> {
        let cluster_start = gc << self.cluster_bits;
        if entry & COMPRESSED == 0 {
            let host = (entry & OFFSET_MASK) + (lo - cluster_start);
            let zeros = vec![0u8; usize::try_from(hi - lo).unwrap_or(0)];
            return self.write_back(&zeros, host);
        }
        // A compressed cluster is rewritten whole, uncompressed, with the range zeroed.
        let desc = CompressedDescriptor::decode(entry, self.cluster_bits);
        let mut packed = vec![0u8; usize::try_from(desc.len()).unwrap_or(0)];
        self.read_back(&mut packed, desc.offset)?;
        let mut plain = vec![0u8; usize::try_from(self.cluster_size()).unwrap_or(0)];
        let comp = self.opts.compression.unwrap_or(Compression::Zlib);
        comp.decompress_cluster(&packed, &mut plain)
            .map_err(|e| self.invalid(format!("cannot re-read compressed cluster: {e}")))?;
        let (a, b) = (lo - cluster_start, hi - cluster_start);
        plain[usize::try_from(a).unwrap_or(0)..usize::try_from(b).unwrap_or(0)].fill(0);
        let keep = (self.virtual_size - cluster_start).min(self.cluster_size());
        plain.truncate(usize::try_from(keep).unwrap_or(0));
        self.store(&plain, cluster_start)
    }
}

/// One L2 table in memory.
struct Table {
    entries: Box<[u64]>,
    last_use: u64,
}

fn be_bytes64(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// Creates the temporary file next to `path`, with the mode a plain create would give.
fn create_temp(path: &Path) -> Result<NamedTempFile> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid_request(path, "destination has no file name"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(".ferry-tmp")
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| Error::io(path, "cannot create temporary file", e))
}

impl DiskSink for Qcow2Sink {
    fn granularity(&self) -> u64 {
        self.cluster_size()
    }

    fn compression(&self) -> Option<Compression> {
        self.opts.compression
    }

    fn place_data(&mut self, offset: u64, len: u64) -> Result<Placement> {
        let host_offset = if len == 0 {
            self.next_free()
        } else {
            self.check_write(offset, len)?;
            self.reserve(offset, len)?
        };
        Ok(Placement {
            target: self.writer.clone(),
            host_offset,
            path: self.shared_path.clone(),
        })
    }

    fn write_compressed_cluster(&mut self, compressed: &[u8], offset: u64) -> Result<()> {
        if self.opts.compression.is_none() {
            return Err(
                self.invalid("compressed cluster given to a sink without compression".into())
            );
        }
        if !offset.is_multiple_of(self.cluster_size()) || offset >= self.virtual_size {
            return Err(self.invalid(format!("compressed cluster at {offset:#x} is misplaced")));
        }
        self.pad_to(SECTOR);
        let host = self.next_free();
        let entry = CompressedDescriptor::encode(host, compressed.len() as u64, self.cluster_bits)
            .ok_or_else(|| {
                self.invalid(format!(
                    "compressed cluster of {:#x} bytes does not fit",
                    compressed.len()
                ))
            })?;
        self.append(compressed)?;
        self.pad_to(SECTOR);
        for c in self.compressed_clusters_of(entry) {
            self.add_ref(c)?;
        }
        self.set_entry(offset >> self.cluster_bits, entry)?;
        self.stored_bytes += compressed.len() as u64;
        self.compressed_clusters += 1;
        Ok(())
    }

    fn write_zeroes(&mut self, offset: u64, len: u64) -> Result<()> {
        let end = offset
            .checked_add(len)
            .filter(|e| *e <= self.virtual_size)
            .ok_or_else(|| {
                self.invalid(format!(
                    "zeroing {len:#x} bytes at {offset:#x} is past the end"
                ))
            })?;
        if len == 0 {
            return Ok(());
        }
        let cs = self.cluster_size();
        for gc in (offset / cs)..=((end - 1) / cs) {
            let entry = self.entry(gc)?;
            if entry == 0 || entry == ZERO {
                continue; // never written: reads as zero already
            }
            let start = gc * cs;
            let stop = (start + cs).min(self.virtual_size);
            let (lo, hi) = (offset.max(start), end.min(stop));
            if (lo, hi) == (start, stop) {
                self.set_entry(gc, ZERO)?;
            } else {
                self.zero_part(gc, entry, lo, hi)?;
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<SinkSummary> {
        let layout = self.write_metadata()?;
        let header = self.header(&layout);
        let file = self.file.as_file();
        file.write_all_at(&header.to_bytes(), 0)
            .and_then(|()| file.sync_all())
            .map_err(|e| self.io_error("cannot write header", e))?;
        let file_size = (layout.table_start + layout.table) << self.cluster_bits;
        let Qcow2Sink {
            path,
            file,
            stored_bytes,
            compressed_clusters,
            ..
        } = *self;
        file.persist(&path).map_err(|e| {
            Error::io(
                &path,
                "cannot rename the finished image into place",
                e.error,
            )
        })?;
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::io(dir, "cannot sync folder", e))?;
        }
        Ok(SinkSummary {
            file_size,
            stored_bytes,
            compressed_clusters,
        })
    }
}
