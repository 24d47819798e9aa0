//! Flat extents (`FLAT`, `VMFS`, `VMFSRDM`, `VMFSRAW`): the guest bytes stored as is in a
//! file, starting `offset` sectors into it. The allocation map comes from the host
//! filesystem's holes (`SEEK_DATA` / `SEEK_HOLE`), like [`crate::raw::RawSource`] but for a
//! window that may start anywhere in the file.

use rustix::fs::SeekFrom;

use crate::error::{Error, Result};
use crate::image_file::ImageFile;
use crate::source::ExtentKind;

pub(super) struct FlatExtent {
    file: ImageFile,
    /// Byte offset of the extent's first sector in the (window of the) file.
    base: u64,
    len: u64,
    /// What a filesystem hole means: `Unallocated` in a base disk, `Zero` in a delta
    /// (a flat extent owns all its sectors, so holes must never read through to a parent).
    hole_kind: ExtentKind,
    /// Regular files may have holes; devices are all data.
    holes_possible: bool,
}

impl FlatExtent {
    /// Wraps `file`; the file must hold the whole `[base, base + len)` window.
    pub(super) fn new(file: ImageFile, base: u64, len: u64, hole_kind: ExtentKind) -> Result<Self> {
        if base.checked_add(len).is_none_or(|end| end > file.len()) {
            return Err(Error::malformed(
                file.path(),
                format!(
                    "truncated: flat extent needs {len:#x} bytes at offset {base:#x} but the file ends at {:#x}",
                    file.len()
                ),
            ));
        }
        let (f, _) = file.raw_parts();
        let holes_possible = f.metadata().map(|m| m.is_file()).unwrap_or(false);
        Ok(FlatExtent {
            file,
            base,
            len,
            hole_kind,
            holes_possible,
        })
    }

    pub(super) fn read(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.file
            .read_exact_at(buf, self.base + offset, "flat extent data")
    }

    /// Data/hole boundaries from the filesystem; all data where it cannot tell.
    pub(super) fn extent_at(&self, offset: u64, max_len: u64) -> Result<(u64, ExtentKind)> {
        let len = max_len.min(self.len - offset);
        if !self.holes_possible {
            return Ok((len, ExtentKind::Data));
        }
        let (f, window_base) = self.file.raw_parts();
        let abs = window_base + self.base + offset;
        let data = match rustix::fs::seek(f, SeekFrom::Data(abs)) {
            Ok(pos) => pos,
            Err(rustix::io::Errno::NXIO) => u64::MAX,
            Err(_) => return Ok((len, ExtentKind::Data)),
        };
        if data > abs {
            return Ok((len.min(data - abs), self.hole_kind));
        }
        let hole = rustix::fs::seek(f, SeekFrom::Hole(abs)).unwrap_or(abs + len);
        Ok((len.min(hole.saturating_sub(abs)).max(1), ExtentKind::Data))
    }
}
