//! Bochs growing redolog images, as qemu's `block/bochs.c` reads them.
//!
//! ```text
//!   0   magic[32] "Bochs Virtual HD Image"   32 type[16] "Redolog"   48 subtype[16] "Growing"
//!   64  version u32 (0x00020000, or 0x00010000 for v1)   68 header size u32
//!   72  catalog entries u32   76 bitmap bytes u32   80 extent bytes u32
//!   v2: 84 reserved u32, 88 disk size u64        v1: 84 disk size u64   (all little-endian)
//!   header size:   catalog[u32; entries], 0xFFFFFFFF = extent not allocated
//!   then extent i: [bitmap, rounded up to sectors][extent data] at catalog[i] * stride
//! ```
//!
//! A sector is data when its extent is allocated and its bitmap bit (least significant bit
//! first) is set; anything else reads as zero and is reported `Unallocated`.

use super::{check_range, extent_len, layer, read_table, to_usize, u32_le, u64_le, SECTOR};
use crate::error::{Error, Result};
use crate::image_file::ImageFile;
use crate::source::{DiskSource, Extent, ExtentKind, LayerInfo};

const HEADER_SIZE: usize = 512;
const VERSION_V1: u32 = 0x0001_0000;
const VERSION_V2: u32 = 0x0002_0000;
const UNALLOCATED: u64 = 0xFFFF_FFFF;
/// qemu's caps: 1 Mi catalog entries, extents of 512 B to 8 MiB.
const MAX_CATALOG: u32 = 0x10_0000;
const MAX_EXTENT: u32 = 0x80_0000;

pub struct BochsSource {
    file: ImageFile,
    size: u64,
    catalog: Vec<u64>,
    extent_size: u64,
    data_offset: u64,
    /// Bytes from one extent's bitmap to the next (bitmap and data, rounded to sectors).
    stride: u64,
    /// Bytes from an extent's bitmap to its first data sector.
    bitmap_span: u64,
}

/// True when the NUL-terminated field at `at` holds exactly `want`.
fn field_is(buf: &[u8], at: usize, want: &[u8]) -> bool {
    buf.get(at..at + want.len()) == Some(want) && buf.get(at + want.len()) == Some(&0)
}

/// Whole sectors holding `bytes`, as qemu computes them (u32 arithmetic, 0 wraps).
fn blocks(bytes: u32) -> u64 {
    u64::from(bytes.wrapping_sub(1) / 512 + 1)
}

impl BochsSource {
    pub fn open(file: ImageFile) -> Result<Self> {
        let mut h = [0u8; HEADER_SIZE];
        file.read_exact_at(&mut h, 0, "bochs header")?;
        let bad = |why: String| Error::malformed(file.path(), why);
        if !field_is(&h, 0, b"Bochs Virtual HD Image") || !field_is(&h, 32, b"Redolog") {
            return Err(bad("not a bochs redolog image (bad magic)".into()));
        }
        if !field_is(&h, 48, b"Growing") {
            return Err(Error::unsupported(
                file.path(),
                "bochs redolog subtype (only growing images are read)",
            ));
        }
        let version = u32_le(&h, 64);
        let disk = match version {
            VERSION_V2 => u64_le(&h, 88),
            VERSION_V1 => u64_le(&h, 84),
            v => {
                return Err(Error::unsupported(
                    file.path(),
                    format!("bochs header version {v:#x}"),
                ))
            }
        };
        let size = disk / SECTOR * SECTOR;
        let (entries, bitmap, extent) = (u32_le(&h, 72), u32_le(&h, 76), u32_le(&h, 80));
        if entries > MAX_CATALOG {
            return Err(bad(format!(
                "catalog of {entries} entries is larger than {MAX_CATALOG}"
            )));
        }
        if !(512..=MAX_EXTENT).contains(&extent) || !extent.is_power_of_two() {
            return Err(bad(format!(
                "extent size {extent:#x} is not a power of two from 0x200 to {MAX_EXTENT:#x}"
            )));
        }
        if u64::from(entries) < size.div_ceil(u64::from(extent)) {
            return Err(bad(format!(
                "catalog of {entries} entries is too small for a disk of {size:#x} bytes"
            )));
        }
        let header = u64::from(u32_le(&h, 68));
        let catalog = read_table(&file, header, u64::from(entries), 4, false, "bochs catalog")?;
        let bitmap_span = blocks(bitmap) * SECTOR;
        let source = BochsSource {
            data_offset: header + u64::from(entries) * 4,
            stride: bitmap_span + blocks(extent) * SECTOR,
            bitmap_span,
            extent_size: u64::from(extent),
            catalog,
            size,
            file,
        };
        source.check_catalog()?;
        Ok(source)
    }

    /// Every allocated extent's bitmap must lie inside the file.
    fn check_catalog(&self) -> Result<()> {
        let need = self.bitmap_len() as u64;
        for (i, &e) in self.catalog.iter().enumerate() {
            if e == UNALLOCATED {
                continue;
            }
            let end = self.bitmap_offset(e).and_then(|o| o.checked_add(need));
            if end.is_none_or(|end| end > self.file.len()) {
                return Err(Error::malformed(
                    self.file.path(),
                    format!(
                        "catalog entry {i} ({e:#x}) points past the end of the file at {:#x}",
                        self.file.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn bitmap_offset(&self, entry: u64) -> Option<u64> {
        entry
            .checked_mul(self.stride)?
            .checked_add(self.data_offset)
    }

    /// Bitmap bytes covering one extent's sectors.
    fn bitmap_len(&self) -> usize {
        to_usize((self.extent_size / SECTOR).div_ceil(8))
    }

    /// The catalog entry of extent `index`, `None` when unallocated.
    fn entry(&self, index: u64) -> Option<u64> {
        let e = *self.catalog.get(to_usize(index))?;
        (e != UNALLOCATED).then_some(e)
    }

    fn bitmap(&self, entry: u64) -> Result<Vec<u8>> {
        let at = self.bitmap_offset(entry).unwrap_or(u64::MAX);
        self.file
            .read_vec(at, self.bitmap_len(), "bochs extent bitmap")
    }

    /// Kind of the byte at `in_ext` inside extent `index` and the end of its run (bytes
    /// into the extent).
    fn run_in_extent(&self, index: u64, in_ext: u64) -> Result<(ExtentKind, u64)> {
        let Some(entry) = self.entry(index) else {
            return Ok((ExtentKind::Unallocated, self.extent_size));
        };
        let bitmap = self.bitmap(entry)?;
        let sectors = self.extent_size / SECTOR;
        let first = in_ext / SECTOR;
        let set = bit(&bitmap, first);
        let end = (first + 1..sectors)
            .find(|&s| bit(&bitmap, s) != set)
            .unwrap_or(sectors);
        let kind = if set {
            ExtentKind::Data
        } else {
            ExtentKind::Unallocated
        };
        Ok((kind, end * SECTOR))
    }

    /// Fills `buf` from inside one allocated extent, one pread per run of set bits.
    fn read_in_extent(&self, buf: &mut [u8], entry: u64, in_ext: u64) -> Result<()> {
        let bitmap = self.bitmap(entry)?;
        let data = self
            .bitmap_offset(entry)
            .unwrap_or(u64::MAX)
            .saturating_add(self.bitmap_span);
        let mut done = 0usize;
        while done < buf.len() {
            let at = in_ext + done as u64;
            let set = bit(&bitmap, at / SECTOR);
            let mut end = (at / SECTOR + 1) * SECTOR;
            while end < in_ext + buf.len() as u64 && bit(&bitmap, end / SECTOR) == set {
                end += SECTOR;
            }
            let n = to_usize(end - at).min(buf.len() - done);
            let chunk = &mut buf[done..done + n];
            if set {
                self.file
                    .read_exact_at(chunk, data.saturating_add(at), "bochs extent data")?;
            } else {
                chunk.fill(0);
            }
            done += n;
        }
        Ok(())
    }
}

/// Bochs bitmap bit of `sector`: byte `sector / 8`, least significant bit first.
fn bit(bitmap: &[u8], sector: u64) -> bool {
    let byte = bitmap.get(to_usize(sector / 8)).copied().unwrap_or(0);
    (byte >> (sector % 8)) & 1 != 0
}

impl DiskSource for BochsSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(&self.file, offset, buf.len(), self.size)?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let (index, in_ext) = (pos / self.extent_size, pos % self.extent_size);
            let n = to_usize(self.extent_size - in_ext).min(buf.len() - done);
            let chunk = &mut buf[done..done + n];
            match self.entry(index) {
                None => chunk.fill(0),
                Some(entry) => self.read_in_extent(chunk, entry, in_ext)?,
            }
            done += n;
        }
        Ok(())
    }

    fn extent_at(&self, offset: u64, max_len: u64) -> Result<Extent> {
        let end = offset + extent_len(&self.file, offset, max_len, self.size)?;
        let index = offset / self.extent_size;
        let (kind, run) = self.run_in_extent(index, offset % self.extent_size)?;
        let mut pos = index * self.extent_size + run;
        while pos < end && pos.is_multiple_of(self.extent_size) {
            let (k, run) = self.run_in_extent(pos / self.extent_size, 0)?;
            if k != kind {
                break;
            }
            pos += run;
        }
        Ok(Extent {
            offset,
            len: pos.min(end) - offset,
            kind,
        })
    }

    fn layers(&self) -> Vec<LayerInfo> {
        layer(&self.file, "bochs", "growing", self.size)
    }
}
