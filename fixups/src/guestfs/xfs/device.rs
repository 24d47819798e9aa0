//! The byte source the XFS reader reads through: a [`BlockDevice`] range behind a small
//! page cache, so that walking a path again (the reader resolves from the root on every
//! call) costs memory copies, not device reads.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use super::errors::IoSlot;
use crate::blockdev::BlockDevice;

/// Bytes in one cached page.
const PAGE: usize = 4096;
/// Pages kept: 4 MiB at most.
const CACHE_PAGES: usize = 1024;
/// Reads up to this size (inodes, directory and B+tree blocks, up to one 64 KiB directory
/// block) go through the cache; larger ones (file data) go to the device directly.
const CACHED_READ_MAX: usize = 64 << 10;

/// A read-only [`lamxfs::BlockRead`] over a device range.
pub(super) struct Source {
    dev: Arc<dyn BlockDevice>,
    io: IoSlot,
    pages: HashMap<u64, (Vec<u8>, u64)>,
    clock: u64,
}

impl Source {
    pub(super) fn new(dev: Arc<dyn BlockDevice>, io: IoSlot) -> Self {
        Self {
            dev,
            io,
            pages: HashMap::new(),
            clock: 0,
        }
    }

    fn read(&mut self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        let len = u64::try_from(buf.len()).map_err(io::Error::other)?;
        let in_range = off
            .checked_add(len)
            .is_some_and(|end| end <= self.dev.size());
        if buf.len() > CACHED_READ_MAX || !in_range {
            // Out of range: the device says so with its own error.
            return self.dev.read_at(buf, off);
        }
        let page_len = PAGE as u64;
        let mut done = 0usize;
        while done < buf.len() {
            let at = off.saturating_add(u64::try_from(done).map_err(io::Error::other)?);
            let index = at / page_len;
            let within = usize::try_from(at % page_len).map_err(io::Error::other)?;
            let page = self.page(index)?;
            let avail = page.get(within..).unwrap_or(&[]);
            if avail.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "read passes the end of the range",
                ));
            }
            let n = avail.len().min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&avail[..n]);
            done += n;
        }
        Ok(())
    }

    /// Page `index`, read from the device on a miss; the least recently used page makes
    /// room when the cache is full.
    fn page(&mut self, index: u64) -> io::Result<&[u8]> {
        self.clock = self.clock.wrapping_add(1);
        let now = self.clock;
        if !self.pages.contains_key(&index) {
            let start = index.saturating_mul(PAGE as u64);
            let len = self.dev.size().saturating_sub(start).min(PAGE as u64);
            let mut data = vec![0u8; usize::try_from(len).map_err(io::Error::other)?];
            self.dev.read_at(&mut data, start)?;
            if self.pages.len() >= CACHE_PAGES {
                let oldest = self
                    .pages
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(k, _)| *k);
                if let Some(oldest) = oldest {
                    self.pages.remove(&oldest);
                }
            }
            self.pages.insert(index, (data, now));
        }
        let entry = self
            .pages
            .get_mut(&index)
            .ok_or_else(|| io::Error::other("page cache lost a page"))?;
        entry.1 = now;
        Ok(&entry.0)
    }
}

impl lamxfs::BlockRead for Source {
    /// The real error is kept in the [`IoSlot`]; the reader only learns that it failed.
    type Error = ();

    fn read_at(&mut self, offset_bytes: u64, buf: &mut [u8]) -> Result<(), ()> {
        self.read(offset_bytes, buf).map_err(|e| self.io.put(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blockdev::FileRange;
    use lamxfs::BlockRead;

    fn device(len: usize) -> (tempfile::NamedTempFile, Vec<u8>, Arc<dyn BlockDevice>) {
        let data: Vec<u8> = (0..len).map(|i| (i % 251).to_le_bytes()[0]).collect();
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut tmp, &data).unwrap();
        let dev: Arc<dyn BlockDevice> = Arc::new(FileRange::open(tmp.path()).unwrap());
        (tmp, data, dev)
    }

    #[test]
    fn cached_reads_match_the_device_and_stay_in_range() {
        let (_tmp, data, dev) = device(3 * PAGE + 100);
        let io = IoSlot::default();
        let mut src = Source::new(dev, io.clone());
        for (off, len) in [(0, 10), (PAGE - 3, 9), (1, 2 * PAGE + 50), (3 * PAGE, 100)] {
            let mut buf = vec![0u8; len];
            src.read_at(u64::try_from(off).unwrap(), &mut buf).unwrap();
            assert_eq!(buf, data[off..off + len]);
        }
        let mut big = vec![0u8; CACHED_READ_MAX + 1];
        assert!(src.read_at(0, &mut big).is_err());
        assert_eq!(io.take("t", 0).kind(), io::ErrorKind::UnexpectedEof);
        let mut buf = [0u8; 8];
        let len = u64::try_from(data.len()).unwrap();
        assert!(src.read_at(len - 4, &mut buf).is_err());
        assert!(src.read_at(u64::MAX - 2, &mut buf).is_err());
    }

    #[test]
    fn the_cache_is_bounded() {
        let pages = CACHE_PAGES + 10;
        let (_tmp, data, dev) = device(pages * PAGE);
        let mut src = Source::new(dev, IoSlot::default());
        let mut buf = [0u8; 16];
        for round in 0..2 {
            for i in 0..pages {
                let off = i * PAGE + round;
                src.read_at(u64::try_from(off).unwrap(), &mut buf).unwrap();
                assert_eq!(buf, data[off..off + 16]);
            }
        }
        assert_eq!(src.pages.len(), CACHE_PAGES);
    }
}
