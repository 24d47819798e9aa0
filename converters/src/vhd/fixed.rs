//! Fixed VHDs: the guest disk is the file's first `size` bytes, followed by the footer.
//!
//! The allocation map comes from the host filesystem (`SEEK_DATA`/`SEEK_HOLE`) through
//! [`RawSource`]. As in qemu, a virtual size larger than the file reads as zeros past the
//! end of the file.

use std::sync::Arc;

use super::dynamic::check_range;
use crate::error::{Error, Result};
use crate::image_file::ImageFile;
use crate::raw::RawSource;
use crate::source::{DiskSource, Extent, ExtentKind, LayerInfo};

pub struct FixedSource {
    raw: RawSource,
    size: u64,
}

impl FixedSource {
    pub fn new(file: &ImageFile, size: u64) -> Result<Self> {
        let (f, base) = file.raw_parts();
        let dup = f
            .try_clone()
            .map_err(|e| Error::io(file.path(), "cannot duplicate file handle", e))?;
        let data_len = size.min(file.len());
        let window = ImageFile::window(file.path(), Arc::new(dup), base, data_len);
        Ok(FixedSource {
            raw: RawSource::from_image_file(window),
            size,
        })
    }

    fn data_len(&self) -> u64 {
        self.raw.size()
    }
}

impl DiskSource for FixedSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let path = self.raw.image_file().path();
        check_range(path, offset, buf.len() as u64, self.size)?;
        let in_file = usize::try_from(self.data_len().saturating_sub(offset))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let (data, past) = buf.split_at_mut(in_file);
        if !data.is_empty() {
            self.raw.read_exact_at(data, offset)?;
        }
        past.fill(0);
        Ok(())
    }

    fn extent_at(&self, offset: u64, max_len: u64) -> Result<Extent> {
        let len =
            crate::source::extent_len(self.raw.image_file().path(), offset, max_len, self.size)?;
        if offset >= self.data_len() {
            return Ok(Extent {
                offset,
                len,
                kind: ExtentKind::Unallocated,
            });
        }
        self.raw.extent_at(offset, len)
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let path = self.raw.image_file().path().to_path_buf();
        vec![LayerInfo {
            path: path.clone(),
            format: "vhd".into(),
            subformat: Some("fixed".into()),
            virtual_size: self.size,
            files: vec![path],
        }]
    }
}
