//! One VMDK layer as a [`DiskSource`]: the extents of a descriptor laid end to end.
//! Runs of one kind are merged across grains and across extents; reads are split at extent
//! boundaries and handed to each extent's reader.

use std::path::PathBuf;

use super::flat::FlatExtent;
use super::sparse::SparseExtent;
use crate::error::{Error, Result};
use crate::source::{clip_len, DiskSource, Extent, ExtentKind, LayerInfo};

/// How one extent stores its bytes.
pub(super) enum Body {
    Flat(FlatExtent),
    Sparse(SparseExtent),
    /// `ZERO` extents and `NOACCESS` extents: zeros, owned by this layer.
    Zero,
}

impl Body {
    fn extent_at(&self, offset: u64, max_len: u64) -> Result<(u64, ExtentKind)> {
        match self {
            Body::Flat(f) => f.extent_at(offset, max_len),
            Body::Sparse(s) => s.extent_at(offset, max_len),
            Body::Zero => Ok((max_len, ExtentKind::Zero)),
        }
    }

    fn read(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        match self {
            Body::Flat(f) => f.read(buf, offset),
            Body::Sparse(s) => s.read(buf, offset),
            Body::Zero => {
                buf.fill(0);
                Ok(())
            }
        }
    }
}

/// An extent placed in the virtual disk.
pub(super) struct Placed {
    /// Virtual byte offset of the extent's first byte.
    pub start: u64,
    pub len: u64,
    pub body: Body,
}

pub(super) struct VmdkDisk {
    pub path: PathBuf,
    pub create_type: String,
    pub size: u64,
    /// Descriptor first, then every extent file (each once).
    pub files: Vec<PathBuf>,
    /// Non-empty extents in disk order, tiling `[0, size)`.
    pub extents: Vec<Placed>,
}

impl VmdkDisk {
    fn index_of(&self, offset: u64) -> Result<usize> {
        let i = self.extents.partition_point(|e| e.start + e.len <= offset);
        if i < self.extents.len() {
            Ok(i)
        } else {
            Err(self.past_end(offset))
        }
    }

    fn past_end(&self, offset: u64) -> Error {
        Error::invalid_request(
            &self.path,
            format!(
                "request at {offset:#x} is past the end of the disk ({:#x})",
                self.size
            ),
        )
    }
}

impl DiskSource for VmdkDisk {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| self.past_end(offset))?;
        if buf.is_empty() {
            return Ok(());
        }
        let mut index = self.index_of(offset)?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let e = self.extents.get(index).ok_or_else(|| self.past_end(pos))?;
            let stop = end.min(e.start + e.len);
            let n = usize::try_from(stop - pos).map_err(|_| self.past_end(pos))?;
            let chunk = buf
                .get_mut(done..done + n)
                .ok_or_else(|| self.past_end(pos))?;
            e.body.read(chunk, pos - e.start)?;
            done += n;
            index += 1;
        }
        Ok(())
    }

    fn extent_at(&self, offset: u64, max_len: u64) -> Result<Extent> {
        let len = clip_len(offset, max_len, self.size);
        if len == 0 {
            return Err(self.past_end(offset));
        }
        let end = offset + len;
        let mut run: Option<Extent> = None;
        let mut pos = offset;
        let mut index = self.index_of(offset)?;
        while let Some(e) = self.extents.get(index).filter(|_| pos < end) {
            let want = end.min(e.start + e.len) - pos;
            let (got, kind) = e.body.extent_at(pos - e.start, want)?;
            let got = got.min(want);
            match run.as_mut() {
                None => {
                    run = Some(Extent {
                        offset,
                        len: got,
                        kind,
                    })
                }
                Some(r) if r.kind == kind => r.len += got,
                Some(_) => break,
            }
            if got == 0 || got < want {
                break;
            }
            pos += got;
            index += 1;
        }
        run.filter(|r| r.len > 0).ok_or_else(|| {
            Error::invalid_request(&self.path, format!("empty extent at {offset:#x}"))
        })
    }

    fn layers(&self) -> Vec<LayerInfo> {
        vec![LayerInfo {
            path: self.path.clone(),
            format: "vmdk".into(),
            subformat: Some(self.create_type.clone()),
            virtual_size: self.size,
            files: self.files.clone(),
        }]
    }
}
