//! `DiskSource`: a guest disk as ferry sees it, whatever the container format.
//!
//! Contract (after imago's `get_mapping`): reads are positional through `&self`, so any
//! number of workers share one source; `extent_at` answers from metadata alone (no
//! speculative data reads), never returns a zero-length extent before the end of the disk,
//! and its extents tile the disk exactly.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::Result;

/// What the bytes of an extent are, as far as the container's metadata can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExtentKind {
    /// Allocated in this image (may still contain zeros).
    Data,
    /// Explicitly zero in this image (qcow2 zero cluster, VMDK zeroed grain): never falls
    /// through to a parent.
    Zero,
    /// Not allocated in this layer: reads through to the parent when there is one, else zero.
    Unallocated,
}

impl ExtentKind {
    /// True for extents whose bytes must be read and copied.
    pub fn is_data(self) -> bool {
        self == ExtentKind::Data
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Extent {
    pub offset: u64,
    pub len: u64,
    pub kind: ExtentKind,
}

impl Extent {
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// Description of one image file in a source, for `ferry info` and reports.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LayerInfo {
    /// The file the user (or a parent reference) named.
    pub path: PathBuf,
    /// Container format: `raw`, `vmdk`, `vhd`, `qcow2`.
    pub format: String,
    /// Variant within the format: VMDK createType, VHD disk type, qcow2 version.
    pub subformat: Option<String>,
    /// Virtual size of this layer in bytes.
    pub virtual_size: u64,
    /// Every file this layer reads (descriptor plus extents).
    pub files: Vec<PathBuf>,
}

/// A guest disk: positional reads plus an allocation map.
pub trait DiskSource: Send + Sync {
    /// Virtual size in bytes.
    fn size(&self) -> u64;

    /// Fills `buf` with the guest bytes at `offset`. The caller keeps
    /// `offset + buf.len() <= size()`; unallocated and zero ranges read as zeros (or the
    /// parent's bytes in a chain).
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()>;

    /// The extent that starts at `offset` (< `size()`), at most `max_len` (> 0) long.
    /// Adjacent ranges of the same kind may be returned as one extent or several.
    fn extent_at(&self, offset: u64, max_len: u64) -> Result<Extent>;

    /// The layers from top (the file opened) to bottom (the base of a chain).
    fn layers(&self) -> Vec<LayerInfo>;
}

/// Clips `max_len` so that `offset + len` stays within `size`; used by every implementation.
pub fn clip_len(offset: u64, max_len: u64, size: u64) -> u64 {
    max_len.min(size.saturating_sub(offset))
}

/// `clip_len` for `extent_at` implementations: an offset at or past the end is the
/// caller's mistake and becomes an error naming the file instead of an empty extent.
pub fn extent_len(path: &std::path::Path, offset: u64, max_len: u64, size: u64) -> Result<u64> {
    match clip_len(offset, max_len, size) {
        0 => Err(crate::error::Error::invalid_request(
            path,
            format!("extent requested at {offset:#x}, past the end of the disk"),
        )),
        len => Ok(len),
    }
}

/// Walks the whole allocation map and returns the number of bytes in `Data` extents.
pub fn allocated_bytes(source: &dyn DiskSource) -> Result<u64> {
    let mut total = 0u64;
    for extent in ExtentIter::new(source, 0, source.size()) {
        let extent = extent?;
        if extent.kind.is_data() {
            total += extent.len;
        }
    }
    Ok(total)
}

/// Iterates the extents of `[start, end)`, merging neighbours of the same kind.
pub struct ExtentIter<'a> {
    source: &'a dyn DiskSource,
    pos: u64,
    end: u64,
    pending: Option<Extent>,
    failed: bool,
}

impl<'a> ExtentIter<'a> {
    pub fn new(source: &'a dyn DiskSource, start: u64, end: u64) -> Self {
        ExtentIter {
            source,
            pos: start,
            end: end.min(source.size()),
            pending: None,
            failed: false,
        }
    }
}

impl Iterator for ExtentIter<'_> {
    type Item = Result<Extent>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            if self.pos >= self.end {
                return self.pending.take().map(Ok);
            }
            let next = match self.source.extent_at(self.pos, self.end - self.pos) {
                Ok(e) => e,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            };
            // A zero-length extent would loop forever; treat it as a broken implementation.
            assert!(next.len > 0, "extent_at returned an empty extent");
            self.pos = next.end();
            match self.pending {
                Some(ref mut p) if p.kind == next.kind && p.end() == next.offset => {
                    p.len += next.len;
                }
                Some(p) => {
                    self.pending = Some(next);
                    return Some(Ok(p));
                }
                None => self.pending = Some(next),
            }
        }
    }
}
