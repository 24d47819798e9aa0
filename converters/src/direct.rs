//! Data writes that bypass the page cache (`O_DIRECT`) where the kernel allows it, as
//! `qemu-img convert -t none` does.
//!
//! Why: a buffered copy spends most of its CPU copying every guest byte into the page
//! cache (`copy_folio_from_iter`, two thirds of a P2V run's profile), then the sync
//! before the rename writes it all out while nothing else happens. Direct writes go from
//! the worker's buffer to the device, overlap with reading, leave the final sync nothing
//! to write, and do not evict the host's page cache during a bulk move.
//!
//! Direct I/O needs the buffer, the offset and the length aligned to the device's
//! logical block size; [`DIRECT_ALIGN`] covers every common device. Unaligned writes
//! (the partial last cluster of a disk, 512-byte clusters) and filesystems that refuse
//! `O_DIRECT` (tmpfs) take the buffered handle instead, so the output is the same
//! either way.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustix::fs::{Mode, OFlags};

use crate::sink::WriteAt;

/// Alignment of buffer, offset and length that direct writes need (4 KiB sectors).
pub const DIRECT_ALIGN: usize = 4096;

/// One output file written through an `O_DIRECT` handle where possible and through its
/// ordinary handle otherwise.
pub struct DirectFile {
    direct: Option<File>,
    buffered: Arc<File>,
    /// Cleared when the filesystem rejects an aligned direct write, so later writes do
    /// not try again.
    direct_works: AtomicBool,
}

impl DirectFile {
    /// Opens `path` (the file `buffered` already has open) a second time with `O_DIRECT`;
    /// when that is refused every write goes through `buffered`.
    pub fn open(path: &Path, buffered: Arc<File>) -> DirectFile {
        let direct = rustix::fs::open(
            path,
            OFlags::WRONLY | OFlags::DIRECT | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()
        .map(File::from);
        DirectFile {
            direct_works: AtomicBool::new(direct.is_some()),
            direct,
            buffered,
        }
    }

    /// True while writes may bypass the page cache (for tests and reports).
    pub fn is_direct(&self) -> bool {
        self.direct_works.load(Ordering::Relaxed)
    }
}

/// True when a direct write of `buf` at `offset` meets the alignment rules.
fn aligned(buf: &[u8], offset: u64) -> bool {
    buf.as_ptr().align_offset(DIRECT_ALIGN) == 0
        && buf.len().is_multiple_of(DIRECT_ALIGN)
        && offset.is_multiple_of(DIRECT_ALIGN as u64)
}

impl WriteAt for DirectFile {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if let Some(direct) = self.direct.as_ref().filter(|_| self.is_direct()) {
            if aligned(buf, offset) {
                match FileExt::write_all_at(direct, buf, offset) {
                    Ok(()) => return Ok(()),
                    // The filesystem took the open but not the write: stay buffered. The
                    // same bytes are written again below, so a partial write is harmless.
                    Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                        self.direct_works.store(false, Ordering::Relaxed);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        FileExt::write_all_at(&*self.buffered, buf, offset)
    }
}

/// A zeroed buffer of `len` bytes whose start is aligned for direct writes. Safe Rust has
/// no aligned `Vec<u8>`, so this over-allocates and hands out the aligned window.
pub struct AlignedBuf {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    pub fn new(len: usize) -> AlignedBuf {
        let storage = vec![0u8; len + DIRECT_ALIGN];
        let start = storage
            .as_ptr()
            .align_offset(DIRECT_ALIGN)
            .min(DIRECT_ALIGN);
        AlignedBuf {
            storage,
            start,
            len,
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn read_all(path: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut out))
            .expect("read back");
        out
    }

    #[test]
    fn aligned_buffers_are_aligned_whatever_the_length() {
        for len in [0, 1, 4096, 65536, 4 << 20] {
            let mut buf = AlignedBuf::new(len);
            let slice = buf.as_mut_slice();
            assert_eq!(slice.len(), len);
            assert_eq!(slice.as_ptr().align_offset(DIRECT_ALIGN), 0);
            assert!(slice.iter().all(|b| *b == 0));
        }
    }

    #[test]
    fn aligned_and_unaligned_writes_land_where_asked() {
        // target/ rather than /tmp: /tmp may be tmpfs, which refuses O_DIRECT and would
        // only exercise the buffered path.
        let dir = tempfile::tempdir_in(concat!(env!("CARGO_MANIFEST_DIR"), "/../target"))
            .expect("temp dir");
        let path = dir.path().join("out");
        let file = Arc::new(File::create(&path).expect("create"));
        let out = DirectFile::open(&path, file);
        let mut block = AlignedBuf::new(2 * DIRECT_ALIGN);
        block.as_mut_slice().fill(0xab);
        out.write_all_at(block.as_mut_slice(), 8192)
            .expect("aligned write");
        out.write_all_at(b"tail", 3 * 8192 + 5)
            .expect("unaligned write");
        let unaligned_buf = &block.as_mut_slice()[1..4097];
        out.write_all_at(unaligned_buf, 0)
            .expect("unaligned buffer");
        let data = read_all(&path);
        assert_eq!(data.len(), 3 * 8192 + 9);
        assert!(data[..4096].iter().all(|b| *b == 0xab));
        assert!(data[4096..8192].iter().all(|b| *b == 0));
        assert!(data[8192..16384].iter().all(|b| *b == 0xab));
        assert_eq!(&data[3 * 8192 + 5..], b"tail");
    }

    #[test]
    fn refused_direct_open_falls_back_to_buffered() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out");
        let file = Arc::new(File::create(&path).expect("create"));
        let missing = dir.path().join("no-such-dir").join("x");
        let out = DirectFile::open(&missing, file);
        assert!(!out.is_direct());
        let mut block = AlignedBuf::new(DIRECT_ALIGN);
        block.as_mut_slice().fill(7);
        out.write_all_at(block.as_mut_slice(), 0)
            .expect("buffered write");
        assert_eq!(read_all(&path), vec![7u8; DIRECT_ALIGN]);
    }
}
