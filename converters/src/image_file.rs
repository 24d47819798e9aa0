//! A read-only, positionally read window onto a file: the only way format readers touch bytes.
//!
//! Every format reader reads through [`ImageFile`] so that reads never move a shared cursor
//! (many workers read one source at once), a short read becomes a one-line "truncated" error
//! that names the file and the offset, and the window can later be a member inside an OVA tar
//! without unpacking it (`base` > 0).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct ImageFile {
    path: PathBuf,
    file: Arc<File>,
    base: u64,
    len: u64,
}

impl ImageFile {
    /// Opens `path` read-only. Sources are never opened for writing.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, "cannot open", e))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io(path, "cannot stat", e))?;
        let len = if meta.file_type().is_file() {
            meta.len()
        } else {
            crate::raw::device_size(&file).map_err(|e| Error::io(path, "cannot size", e))?
        };
        Ok(ImageFile {
            path: path.to_path_buf(),
            file: Arc::new(file),
            base: 0,
            len,
        })
    }

    /// A window of `len` bytes starting at `base` inside an already open file.
    pub fn window(path: &Path, file: Arc<File>, base: u64, len: u64) -> Self {
        ImageFile {
            path: path.to_path_buf(),
            file,
            base,
            len,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The underlying file and the window's start, for SEEK_DATA/SEEK_HOLE queries.
    pub fn raw_parts(&self) -> (&File, u64) {
        (&self.file, self.base)
    }

    /// Reads exactly `buf.len()` bytes at `offset` within the window; reading past the end
    /// is a "truncated" error naming what was being read (`what`).
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64, what: &str) -> Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        match end {
            Some(end) if end <= self.len => {}
            _ => {
                return Err(Error::malformed(
                    &self.path,
                    format!(
                        "truncated: {what} needs {:#x} bytes at offset {offset:#x} but the file ends at {:#x}",
                        buf.len(),
                        self.len
                    ),
                ))
            }
        }
        let abs = self.base + offset;
        self.file.read_exact_at(buf, abs).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::malformed(
                    &self.path,
                    format!("truncated: {what} at offset {offset:#x} is cut short"),
                )
            } else {
                Error::io(
                    &self.path,
                    format!("cannot read {what} at offset {offset:#x}"),
                    e,
                )
            }
        })
    }

    /// Reads `len` bytes at `offset` into a new buffer; `len` must already be bounded by the
    /// caller's sanity caps (never a size taken unchecked from a header).
    pub fn read_vec(&self, offset: u64, len: usize, what: &str) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.read_exact_at(&mut buf, offset, what)?;
        Ok(buf)
    }

    /// Reads up to `buf.len()` bytes, stopping at the end of the window; returns the count.
    pub fn read_at_most(&self, buf: &mut [u8], offset: u64, what: &str) -> Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = usize::try_from((self.len - offset).min(buf.len() as u64)).unwrap_or(buf.len());
        self.read_exact_at(&mut buf[..n], offset, what)?;
        Ok(n)
    }
}
