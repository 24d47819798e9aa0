//! `Read + Seek` over a `DiskSource`, because mbrman and gptman read through those traits.

use std::io::{self, Read, Seek, SeekFrom};

use converters::DiskSource;

pub struct SourceCursor<'a> {
    source: &'a dyn DiskSource,
    pos: u64,
}

impl<'a> SourceCursor<'a> {
    pub fn new(source: &'a dyn DiskSource) -> Self {
        SourceCursor { source, pos: 0 }
    }
}

impl Read for SourceCursor<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.source.size();
        if self.pos >= size {
            return Ok(0);
        }
        let n = usize::try_from((size - self.pos).min(buf.len() as u64)).unwrap_or(buf.len());
        self.source
            .read_exact_at(&mut buf[..n], self.pos)
            .map_err(io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SourceCursor<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let size = self.source.size();
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(t) => {
                self.pos = t;
                Ok(t)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the disk",
            )),
        }
    }
}
