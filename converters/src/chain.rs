//! Layering of a delta image over its parent (VMDK snapshot chains, VHD differencing disks,
//! qcow2 backing files): extents the top layer leaves `Unallocated` read through to the parent.
//!
//! Formats open their own parents (they know how to find them) and wrap the pair in
//! [`Layered`]; [`ChainGuard`] caps the depth and refuses loops.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::source::{clip_len, DiskSource, Extent, ExtentKind, LayerInfo};

/// Deepest chain ferry follows; VMware caps snapshot trees at 32 and real chains are short.
pub const MAX_CHAIN_DEPTH: usize = 32;

/// Tracks the files already open in a chain being resolved.
#[derive(Debug, Default, Clone)]
pub struct ChainGuard {
    seen: Vec<PathBuf>,
}

impl ChainGuard {
    /// Records `path` as the next layer; errors on a loop or a chain deeper than the cap.
    pub fn enter(&mut self, path: &Path) -> Result<()> {
        let canonical = path
            .canonicalize()
            .map_err(|e| Error::io(path, "cannot resolve path", e))?;
        if self.seen.contains(&canonical) {
            return Err(Error::malformed(
                path,
                "backing chain loops back to a file already in the chain",
            ));
        }
        if self.seen.len() >= MAX_CHAIN_DEPTH {
            return Err(Error::malformed(
                path,
                format!("backing chain is deeper than {MAX_CHAIN_DEPTH} layers"),
            ));
        }
        self.seen.push(canonical);
        Ok(())
    }

    pub fn depth(&self) -> usize {
        self.seen.len()
    }
}

/// A top layer whose unallocated ranges read from `parent`.
pub struct Layered {
    top: Box<dyn DiskSource>,
    parent: Box<dyn DiskSource>,
}

impl Layered {
    pub fn new(top: Box<dyn DiskSource>, parent: Box<dyn DiskSource>) -> Self {
        Layered { top, parent }
    }

    /// Parent extent for a range of the top's unallocated extent; past the parent's end the
    /// disk reads as zero (a child may be larger than its parent).
    fn parent_extent(&self, offset: u64, len: u64) -> Result<Extent> {
        let parent_size = self.parent.size();
        if offset >= parent_size {
            return Ok(Extent {
                offset,
                len,
                kind: ExtentKind::Unallocated,
            });
        }
        let e = self
            .parent
            .extent_at(offset, clip_len(offset, len, parent_size))?;
        Ok(e)
    }
}

impl DiskSource for Layered {
    fn size(&self) -> u64 {
        self.top.size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let want = (buf.len() - done) as u64;
            let e = self.top.extent_at(pos, want)?;
            let n = usize::try_from(e.len)
                .unwrap_or(usize::MAX)
                .min(buf.len() - done);
            let chunk = &mut buf[done..done + n];
            match e.kind {
                ExtentKind::Data => self.top.read_exact_at(chunk, pos)?,
                ExtentKind::Zero => chunk.fill(0),
                ExtentKind::Unallocated => {
                    let parent_size = self.parent.size();
                    let in_parent = usize::try_from(parent_size.saturating_sub(pos))
                        .unwrap_or(usize::MAX)
                        .min(n);
                    if in_parent > 0 {
                        self.parent.read_exact_at(&mut chunk[..in_parent], pos)?;
                    }
                    chunk[in_parent..].fill(0);
                }
            }
            done += n;
        }
        Ok(())
    }

    fn extent_at(&self, offset: u64, max_len: u64) -> Result<Extent> {
        let top = self.top.extent_at(offset, max_len)?;
        if top.kind != ExtentKind::Unallocated {
            return Ok(top);
        }
        self.parent_extent(offset, top.len)
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let mut layers = self.top.layers();
        layers.extend(self.parent.layers());
        layers
    }
}
