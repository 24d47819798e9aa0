//! Byte ranges of a disk: the only way this crate sees a guest's storage.
//!
//! A [`BlockDevice`] is a positional window: a raw disk file, one partition of it, or an
//! LVM logical volume segment. The `converters` crate (or a test) provides the bytes;
//! `fixups` never parses a disk image format. [`FileRange`] is the implementation over a
//! host file (raw image or block device) at an offset: every access is bounds-checked
//! against the window so a filesystem cannot read or write outside its partition.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// A positional, shareable byte range.
pub trait BlockDevice: Send + Sync {
    /// Length of the range in bytes.
    fn size(&self) -> u64;
    /// Fill `buf` from `off`; reading past the end is an error.
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()>;
    /// Write all of `buf` at `off`; writing past the end or to a read-only range is an error.
    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()>;
    /// Make written data durable.
    fn flush(&self) -> io::Result<()>;
    /// Whether `write_at` can succeed.
    fn is_writable(&self) -> bool;
}

/// `len` bytes of a host file from `offset`: a whole raw disk or one partition of it.
#[derive(Debug, Clone)]
pub struct FileRange {
    file: Arc<File>,
    offset: u64,
    len: u64,
    writable: bool,
}

impl FileRange {
    /// The whole of `path`, read-only.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let len = file_len(&file)?;
        Self::new(file, 0, len, false)
    }

    /// The whole of `path`, read-write.
    pub fn open_rw(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file_len(&file)?;
        Self::new(file, 0, len, true)
    }

    /// `len` bytes of `file` from `offset`; fails when the window passes the file's end.
    pub fn new(file: File, offset: u64, len: u64, writable: bool) -> io::Result<Self> {
        let end = offset
            .checked_add(len)
            .ok_or_else(|| invalid("range end overflows"))?;
        if end > file_len(&file)? {
            return Err(invalid("range passes the end of the file"));
        }
        Ok(Self {
            file: Arc::new(file),
            offset,
            len,
            writable,
        })
    }

    /// A window inside this one (a partition of a whole-disk range).
    pub fn slice(&self, offset: u64, len: u64) -> io::Result<Self> {
        let end = offset
            .checked_add(len)
            .ok_or_else(|| invalid("range end overflows"))?;
        if end > self.len {
            return Err(invalid("sub-range passes the end of the range"));
        }
        Ok(Self {
            file: Arc::clone(&self.file),
            offset: self.offset.saturating_add(offset),
            len,
            writable: self.writable,
        })
    }

    /// Host file offset of `off`, checking that `count` bytes from there stay in the window.
    fn host_offset(&self, off: u64, count: usize) -> io::Result<u64> {
        let count = u64::try_from(count).map_err(|_| invalid("length overflows"))?;
        let end = off
            .checked_add(count)
            .ok_or_else(|| invalid("offset overflows"))?;
        if end > self.len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "access at {off:#x}+{count:#x} passes the range end {:#x}",
                    self.len
                ),
            ));
        }
        Ok(self.offset.saturating_add(off))
    }
}

impl BlockDevice for FileRange {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        let at = self.host_offset(off, buf.len())?;
        self.file.read_exact_at(buf, at)
    }

    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "range opened read-only",
            ));
        }
        let at = self.host_offset(off, buf.len())?;
        self.file.write_all_at(buf, at)
    }

    fn flush(&self) -> io::Result<()> {
        if self.writable {
            self.file.sync_data()?;
        }
        Ok(())
    }

    fn is_writable(&self) -> bool {
        self.writable
    }
}

/// `len` bytes of another device from `offset`: a partition of a whole disk that is not a
/// host file (an overlay, a converted source). Accesses are checked against the window.
#[derive(Clone)]
pub struct Window {
    inner: Arc<dyn BlockDevice>,
    offset: u64,
    len: u64,
}

impl Window {
    /// Fails when the window passes the end of `inner`.
    pub fn new(inner: Arc<dyn BlockDevice>, offset: u64, len: u64) -> io::Result<Self> {
        let end = offset
            .checked_add(len)
            .ok_or_else(|| invalid("range end overflows"))?;
        if end > inner.size() {
            return Err(invalid("window passes the end of the device"));
        }
        Ok(Self { inner, offset, len })
    }

    fn at(&self, off: u64, count: usize) -> io::Result<u64> {
        let count = u64::try_from(count).map_err(|_| invalid("length overflows"))?;
        match off.checked_add(count) {
            Some(end) if end <= self.len => Ok(self.offset.saturating_add(off)),
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "access at {off:#x}+{count:#x} passes the window end {:#x}",
                    self.len
                ),
            )),
        }
    }
}

impl BlockDevice for Window {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        let at = self.at(off, buf.len())?;
        self.inner.read_at(buf, at)
    }

    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        let at = self.at(off, buf.len())?;
        self.inner.write_at(buf, at)
    }

    fn flush(&self) -> io::Result<()> {
        self.inner.flush()
    }

    fn is_writable(&self) -> bool {
        self.inner.is_writable()
    }
}

/// Size of a regular file or block device (`lseek(SEEK_END)` answers both, see DESIGN.md).
fn file_len(file: &File) -> io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let mut f = file;
    let len = f.seek(SeekFrom::End(0))?;
    f.seek(SeekFrom::Start(0))?;
    Ok(len)
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn window_is_enforced() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let whole = FileRange::open_rw(tmp.path()).unwrap();
        let part = whole.slice(2, 4).unwrap();
        let mut buf = [0u8; 4];
        part.read_at(&mut buf, 0).unwrap();
        assert_eq!(buf, [3, 4, 5, 6]);
        assert!(part.read_at(&mut buf, 1).is_err());
        assert!(part.read_at(&mut buf, u64::MAX).is_err());
        part.write_at(&[9], 3).unwrap();
        assert!(part.write_at(&[9], 4).is_err());
        whole.read_at(&mut buf, 4).unwrap();
        assert_eq!(buf, [5, 9, 7, 8]);
        assert!(whole.slice(4, 5).is_err());
        assert!(whole.slice(u64::MAX, 2).is_err());
        let ro = FileRange::open(tmp.path()).unwrap();
        assert!(ro.write_at(&[0], 0).is_err());
        assert!(FileRange::new(File::open(tmp.path()).unwrap(), 4, 5, false).is_err());
    }

    #[test]
    fn windows_nest_and_check_bounds() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let whole: Arc<dyn BlockDevice> = Arc::new(FileRange::open_rw(tmp.path()).unwrap());
        let part = Window::new(whole.clone(), 2, 4).unwrap();
        let mut buf = [0u8; 2];
        part.read_at(&mut buf, 2).unwrap();
        assert_eq!(buf, [5, 6]);
        assert!(part.read_at(&mut buf, 3).is_err());
        part.write_at(&[9], 0).unwrap();
        whole.read_at(&mut buf, 2).unwrap();
        assert_eq!(buf, [9, 4]);
        assert!(Window::new(whole, 7, 2).is_err());
    }
}
