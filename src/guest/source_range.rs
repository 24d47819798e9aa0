//! A read-only byte range of a converted or source disk, in any format ferry reads, as the
//! `BlockDevice` that `fixups` opens filesystems on.

use std::io;
use std::sync::Arc;

use converters::DiskSource;
use fixups::blockdev::BlockDevice;

pub struct SourceRange {
    source: Arc<dyn DiskSource>,
    offset: u64,
    len: u64,
}

impl SourceRange {
    /// `len` bytes from `offset`, clipped to the disk; an offset past the end is an error.
    pub fn new(source: Arc<dyn DiskSource>, offset: u64, len: u64) -> io::Result<Self> {
        let size = source.size();
        if offset >= size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("range at {offset:#x} starts past the end of the disk"),
            ));
        }
        Ok(SourceRange {
            len: len.min(size - offset),
            source,
            offset,
        })
    }

    pub fn whole(source: Arc<dyn DiskSource>) -> Self {
        SourceRange {
            len: source.size(),
            source,
            offset: 0,
        }
    }
}

impl BlockDevice for SourceRange {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        let end = off.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.len) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("read at {off:#x} past the end of the range"),
            ));
        }
        self.source
            .read_exact_at(buf, self.offset + off)
            .map_err(io::Error::other)
    }

    fn write_at(&self, _buf: &[u8], off: u64) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("write at {off:#x}: sources are read-only"),
        ))
    }

    fn flush(&self) -> io::Result<()> {
        Ok(())
    }

    fn is_writable(&self) -> bool {
        false
    }
}
