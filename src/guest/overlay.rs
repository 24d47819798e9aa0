//! A copy-on-write overlay over a read-only disk: what `ferry fixup` edits.
//!
//! Fixups never write to the source directly. They write through an [`Overlay`], which
//! keeps every changed 64 KiB chunk in a sparse temporary file and serves the rest from
//! the source. Only once every fixup has succeeded is the overlay committed ([`commit`]):
//! written back in place into a raw disk, or merged with the source into a new qcow2 that
//! replaces the old one. A failed run, a `--dry-run` or Ctrl-C just drops the overlay, and
//! the disk is as it was.
//!
//! Memory is the set of dirty chunk numbers (a few thousand for a fixup run); the chunk
//! data lives in the temporary file.
//!
//! # DESIGN NOTE: rewrite qcow2, don't patch it
//!
//! Patching a qcow2 in place means allocating clusters and editing L2 and refcount tables
//! of an image another tool wrote (refcount widths, snapshots, compressed clusters shared
//! by snapshots). Rewriting with the copy engine reuses the tested writer, drops nothing,
//! and costs one pass over the allocated data (measured by `bench/fixup.py`); the new image
//! replaces the old one by rename only after it is complete, keeping its permissions.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use converters::{DiskSource, Extent, ExtentKind, LayerInfo};
use fixups::blockdev::BlockDevice;

/// Granularity of copy-on-write: ext4 writes 4 KiB blocks, journal and bitmaps scattered;
/// 64 KiB keeps the chunk set small and matches qcow2's default cluster.
pub const CHUNK: u64 = 64 * 1024;

pub struct Overlay {
    base: Arc<dyn DiskSource>,
    store: File,
    /// Numbers of chunks whose current bytes are in `store` (at `number * CHUNK`).
    dirty: RwLock<BTreeSet<u64>>,
    /// Serialises writers: a partial-chunk write reads the base chunk, then stores it.
    write_lock: Mutex<()>,
}

impl Overlay {
    /// An overlay over `base` whose changed chunks go to an unnamed temporary file in
    /// `scratch_dir` (removed by the OS when dropped).
    pub fn new(base: Arc<dyn DiskSource>, scratch_dir: &Path) -> io::Result<Self> {
        Ok(Overlay {
            base,
            store: tempfile::tempfile_in(scratch_dir)?,
            dirty: RwLock::new(BTreeSet::new()),
            write_lock: Mutex::new(()),
        })
    }

    /// Chunk numbers changed so far, in order.
    pub fn dirty_chunks(&self) -> Vec<u64> {
        self.dirty_set().iter().copied().collect()
    }

    /// Bytes changed so far (whole chunks).
    pub fn dirty_bytes(&self) -> u64 {
        self.dirty_chunks()
            .into_iter()
            .map(|c| self.chunk_len(c))
            .sum()
    }

    fn dirty_set(&self) -> std::sync::RwLockReadGuard<'_, BTreeSet<u64>> {
        // The set is only ever inserted into after the chunk is stored, so a panic while
        // holding the lock cannot leave it naming a chunk that is not there.
        self.dirty.read().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_writes(&self) -> MutexGuard<'_, ()> {
        self.write_lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn chunk_len(&self, chunk: u64) -> u64 {
        CHUNK.min(self.base.size().saturating_sub(chunk * CHUNK))
    }

    fn check(&self, off: u64, len: usize) -> io::Result<()> {
        let end = off.checked_add(len as u64);
        if end.is_none_or(|e| e > self.base.size()) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("access at {off:#x}+{len:#x} passes the end of the disk"),
            ));
        }
        Ok(())
    }

    /// Splits `[off, off + len)` at chunk boundaries: (chunk, offset in buffer, offset in
    /// chunk, length).
    fn pieces(off: u64, len: usize) -> impl Iterator<Item = (u64, usize, u64, usize)> {
        let mut done = 0usize;
        std::iter::from_fn(move || {
            if done >= len {
                return None;
            }
            let at = off + done as u64;
            let chunk = at / CHUNK;
            let within = at % CHUNK;
            let n = usize::try_from(CHUNK - within)
                .unwrap_or(usize::MAX)
                .min(len - done);
            let piece = (chunk, done, within, n);
            done += n;
            Some(piece)
        })
    }

    fn read_into(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        self.check(off, buf.len())?;
        let dirty = self.dirty_set();
        for (chunk, at, within, n) in Self::pieces(off, buf.len()) {
            let piece = &mut buf[at..at + n];
            if dirty.contains(&chunk) {
                self.store.read_exact_at(piece, chunk * CHUNK + within)?;
            } else {
                self.base
                    .read_exact_at(piece, chunk * CHUNK + within)
                    .map_err(io::Error::other)?;
            }
        }
        Ok(())
    }
}

impl BlockDevice for Overlay {
    fn size(&self) -> u64 {
        self.base.size()
    }

    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        self.read_into(buf, off)
    }

    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        self.check(off, buf.len())?;
        let _writer = self.lock_writes();
        for (chunk, at, within, n) in Self::pieces(off, buf.len()) {
            let piece = &buf[at..at + n];
            let stored = self.dirty_set().contains(&chunk);
            if !stored {
                let mut whole = vec![0u8; usize::try_from(self.chunk_len(chunk)).unwrap_or(0)];
                self.base
                    .read_exact_at(&mut whole, chunk * CHUNK)
                    .map_err(io::Error::other)?;
                let start = usize::try_from(within).unwrap_or(0);
                whole[start..start + n].copy_from_slice(piece);
                self.store.write_all_at(&whole, chunk * CHUNK)?;
                self.dirty
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(chunk);
            } else {
                self.store.write_all_at(piece, chunk * CHUNK + within)?;
            }
        }
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        // Nothing is durable until the overlay is committed.
        Ok(())
    }

    fn is_writable(&self) -> bool {
        true
    }
}

impl DiskSource for Overlay {
    fn size(&self) -> u64 {
        self.base.size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> converters::Result<()> {
        self.read_into(buf, offset)
            .map_err(|e| converters::Error::io(Path::new("<overlay>"), "read", e))
    }

    fn extent_at(&self, offset: u64, max_len: u64) -> converters::Result<Extent> {
        let dirty = self.dirty_set();
        let chunk = offset / CHUNK;
        if dirty.contains(&chunk) {
            // Run of consecutive dirty chunks starting here.
            let mut end_chunk = chunk + 1;
            while dirty.contains(&end_chunk) {
                end_chunk += 1;
            }
            let end = (end_chunk * CHUNK).min(self.base.size());
            return Ok(Extent {
                offset,
                len: (end - offset).min(max_len),
                kind: ExtentKind::Data,
            });
        }
        let next_dirty = dirty.range(chunk..).next().map_or(u64::MAX, |c| c * CHUNK);
        drop(dirty);
        let clipped = max_len.min(next_dirty - offset);
        self.base.extent_at(offset, clipped)
    }

    fn layers(&self) -> Vec<LayerInfo> {
        self.base.layers()
    }
}

/// Writes the overlay's changed chunks into `disk` (a raw image or block device, opened
/// for writing) at their offsets, then syncs it. Returns bytes written.
pub fn commit_in_place(overlay: &Overlay, disk: &Path) -> io::Result<u64> {
    let file = std::fs::OpenOptions::new().write(true).open(disk)?;
    let mut buf = vec![0u8; usize::try_from(CHUNK).unwrap_or(0)];
    let mut written = 0u64;
    for chunk in overlay.dirty_chunks() {
        let n = usize::try_from(overlay.chunk_len(chunk)).unwrap_or(0);
        overlay.store.read_exact_at(&mut buf[..n], chunk * CHUNK)?;
        file.write_all_at(&buf[..n], chunk * CHUNK)?;
        written += n as u64;
    }
    file.sync_all()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An overlay over a raw file holding `data`; the file is kept alive by the returned
    /// handle.
    fn overlay(data: Vec<u8>) -> (Overlay, tempfile::NamedTempFile) {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), data).unwrap();
        let opts = converters::OpenOptions::default();
        let base = converters::open(tmp.path(), Some(converters::Format::Raw), &opts).unwrap();
        (
            Overlay::new(Arc::from(base), &std::env::temp_dir()).unwrap(),
            tmp,
        )
    }

    #[test]
    fn writes_are_copy_on_write_and_mapped_as_data() {
        let size = 5 * CHUNK as usize + 100;
        let base: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let (ov, _base) = overlay(base.clone());
        // A write straddling chunks 1 and 2, and one in the short last chunk.
        ov.write_at(&[0xee; 10], 2 * CHUNK - 5).unwrap();
        ov.write_at(&[0xdd; 3], 5 * CHUNK + 90).unwrap();
        let mut expect = base.clone();
        let s = 2 * CHUNK as usize - 5;
        expect[s..s + 10].fill(0xee);
        let s = 5 * CHUNK as usize + 90;
        expect[s..s + 3].fill(0xdd);
        let mut got = vec![0u8; size];
        ov.read_at(&mut got, 0).unwrap();
        assert_eq!(got, expect);
        assert_eq!(ov.dirty_chunks(), [1, 2, 5]);
        assert_eq!(ov.dirty_bytes(), 2 * CHUNK + 100);
        let e = ov.extent_at(CHUNK + 7, u64::MAX).unwrap();
        assert_eq!(
            (e.offset, e.len, e.kind),
            (CHUNK + 7, 2 * CHUNK - 7, ExtentKind::Data)
        );
        let e = ov.extent_at(0, u64::MAX).unwrap();
        assert!(e.end() <= CHUNK, "{e:?}");
        assert!(ov.write_at(&[1], size as u64).is_err());
    }

    #[test]
    fn commit_writes_only_dirty_chunks() {
        let size = 3 * CHUNK as usize;
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), vec![7u8; size]).unwrap();
        let (ov, _base) = overlay(vec![7u8; size]);
        ov.write_at(&[1, 2, 3], CHUNK + 1).unwrap();
        assert_eq!(commit_in_place(&ov, tmp.path()).unwrap(), CHUNK);
        let after = std::fs::read(tmp.path()).unwrap();
        assert_eq!(&after[CHUNK as usize..CHUNK as usize + 4], &[7, 1, 2, 3]);
        assert!(after[..CHUNK as usize].iter().all(|&b| b == 7));
    }
}
