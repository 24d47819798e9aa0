//! Raw disks: plain files (sparse or not), raw dumps, and block devices.
//!
//! The allocation map comes from the filesystem's own hole tracking (`SEEK_DATA` /
//! `SEEK_HOLE`); block devices report everything as data. A block device's size is read
//! with `lseek(SEEK_END)`, which Linux answers with the device size like the
//! `BLKGETSIZE64` ioctl does, without the `unsafe` an ioctl wrapper needs.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::path::Path;

use rustix::fs::SeekFrom as RxSeekFrom;

use crate::error::Result;
use crate::image_file::ImageFile;
use crate::source::{DiskSource, Extent, ExtentKind, LayerInfo};

/// Size of a block device (or any seekable file) in bytes.
pub fn device_size(file: &File) -> io::Result<u64> {
    let mut f = file;
    let size = f.seek(SeekFrom::End(0))?;
    f.seek(SeekFrom::Start(0))?;
    Ok(size)
}

pub struct RawSource {
    file: ImageFile,
    /// Regular files can have holes; devices and pipes-like files are all data.
    holes_possible: bool,
}

impl RawSource {
    pub fn open(path: &Path) -> Result<Self> {
        let file = ImageFile::open(path)?;
        Ok(Self::from_image_file(file))
    }

    /// Wraps an already opened window (a split raw piece, a VMDK flat extent, an OVA member).
    pub fn from_image_file(file: ImageFile) -> Self {
        let (f, base) = file.raw_parts();
        let holes_possible = base == 0 && f.metadata().map(|m| m.is_file()).unwrap_or(false);
        RawSource {
            file,
            holes_possible,
        }
    }

    pub fn image_file(&self) -> &ImageFile {
        &self.file
    }

    /// Data/hole boundary search; falls back to "all data" where the filesystem cannot say.
    fn probe_hole_map(&self, offset: u64, len: u64) -> Result<Extent> {
        let (f, _) = self.file.raw_parts();
        let data_start = match rustix::fs::seek(f, RxSeekFrom::Data(offset)) {
            Ok(pos) => pos,
            // ENXIO: no data at or after offset: the rest is a hole.
            Err(rustix::io::Errno::NXIO) => u64::MAX,
            Err(_) => {
                return Ok(Extent {
                    offset,
                    len,
                    kind: ExtentKind::Data,
                })
            }
        };
        if data_start > offset {
            return Ok(Extent {
                offset,
                len: len.min(data_start - offset),
                kind: ExtentKind::Unallocated,
            });
        }
        let hole_start = match rustix::fs::seek(f, RxSeekFrom::Hole(offset)) {
            Ok(pos) => pos,
            Err(_) => offset + len,
        };
        Ok(Extent {
            offset,
            len: len.min(hole_start.saturating_sub(offset)).max(1),
            kind: ExtentKind::Data,
        })
    }
}

impl DiskSource for RawSource {
    fn size(&self) -> u64 {
        self.file.len()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.file.read_exact_at(buf, offset, "disk data")
    }

    fn extent_at(&self, offset: u64, max_len: u64) -> Result<Extent> {
        let len = crate::source::extent_len(self.file.path(), offset, max_len, self.size())?;
        if !self.holes_possible {
            return Ok(Extent {
                offset,
                len,
                kind: ExtentKind::Data,
            });
        }
        self.probe_hole_map(offset, len)
    }

    fn layers(&self) -> Vec<LayerInfo> {
        vec![LayerInfo {
            path: self.file.path().to_path_buf(),
            format: "raw".into(),
            subformat: None,
            virtual_size: self.size(),
            files: vec![self.file.path().to_path_buf()],
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    #[test]
    fn holes_are_reported_unallocated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse.raw");
        let f = File::create(&path).unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all_at(&[1u8; 4096], 32 << 20).unwrap();
        drop(f);
        let src = RawSource::open(&path).unwrap();
        let e = src.extent_at(0, 64 << 20).unwrap();
        assert_eq!(e.kind, ExtentKind::Unallocated);
        let d = src.extent_at(32 << 20, 64 << 20).unwrap();
        assert_eq!(d.kind, ExtentKind::Data);
        assert!(d.len >= 4096);
        assert_eq!(crate::source::allocated_bytes(&src).unwrap() % 4096, 0);
    }

    #[test]
    fn reads_are_positional_and_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.raw");
        let mut f = File::create(&path).unwrap();
        f.write_all(&(0..=255u8).collect::<Vec<_>>()).unwrap();
        drop(f);
        let src = RawSource::open(&path).unwrap();
        let mut b = [0u8; 4];
        src.read_exact_at(&mut b, 252).unwrap();
        assert_eq!(b, [252, 253, 254, 255]);
        assert!(src.read_exact_at(&mut b, 254).is_err());
    }
}
