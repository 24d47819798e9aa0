//! Dynamic and differencing VHDs: the block allocation table (BAT) and per-block sector
//! bitmaps.
//!
//! ```text
//!   BAT entry (u32 BE) = sector of the block's bitmap, 0xFFFFFFFF = unallocated
//!   file: ... [bitmap: bitmap_size bytes][block data: block_size bytes] ...
//! ```
//!
//! Dynamic disks (type 3) read allocated blocks whole, as qemu's `vpc` driver does (it never
//! looks at the bitmap), and unallocated blocks as zeros. Differencing disks (type 4) follow
//! the specification: within an allocated block a sector whose bitmap bit (most significant
//! bit first) is 0 belongs to the parent, so it is reported `Unallocated` and reads as zero
//! here; the [`crate::chain::Layered`] wrapper reads it from the parent.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::footer::SECTOR;
use super::header::DynHeader;
use crate::error::{Error, Result};
use crate::image_file::ImageFile;
use crate::source::{DiskSource, Extent, ExtentKind, LayerInfo};

const UNALLOCATED: u32 = 0xFFFF_FFFF;
/// Sector bitmaps kept in memory (differencing disks only); each is at most 512 KiB.
const BITMAP_CACHE_ENTRIES: usize = 8;
/// BAT bytes converted per read while loading it.
const BAT_CHUNK: usize = 1 << 20;

type Bitmap = Arc<Vec<u8>>;

pub struct DynamicSource {
    file: ImageFile,
    size: u64,
    block_size: u64,
    bitmap_size: u64,
    bat: Vec<u32>,
    differencing: bool,
    bitmaps: Mutex<VecDeque<(usize, Bitmap)>>,
}

impl DynamicSource {
    /// Loads and checks the BAT described by `header` for a disk of `size` bytes.
    pub fn new(file: ImageFile, header: &DynHeader, size: u64, differencing: bool) -> Result<Self> {
        let block_size = u64::from(header.block_size);
        let entries = u64::from(header.max_table_entries);
        if entries * block_size < size {
            return Err(Error::malformed(
                file.path(),
                format!(
                    "block allocation table of {entries} entries of {block_size:#x} bytes is too small for a virtual size of {size:#x}"
                ),
            ));
        }
        let bat = load_bat(&file, header.table_offset, header.max_table_entries)?;
        let source = DynamicSource {
            file,
            size,
            block_size,
            bitmap_size: header.bitmap_size(),
            bat,
            differencing,
            bitmaps: Mutex::new(VecDeque::new()),
        };
        source.check_blocks_in_file()?;
        Ok(source)
    }

    /// Every allocated block (bitmap + data) must lie inside the file, as qemu requires.
    fn check_blocks_in_file(&self) -> Result<()> {
        let len = self.file.len();
        let span = self.bitmap_size + self.block_size;
        for (index, &entry) in self.bat.iter().enumerate() {
            if entry == UNALLOCATED {
                continue;
            }
            let start = u64::from(entry) * SECTOR;
            if start + span > len {
                return Err(Error::malformed(
                    self.file.path(),
                    format!(
                        "bat entry {index} points to a block at {start:#x} that ends past the end of the file at {len:#x}"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn entry(&self, block: u64) -> Option<u32> {
        let e = *self.bat.get(usize::try_from(block).ok()?)?;
        (e != UNALLOCATED).then_some(e)
    }

    /// Bitmap of an allocated block, cached.
    fn bitmap(&self, block: usize, entry: u32) -> Result<Bitmap> {
        let mut cache = self.bitmaps.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, b)) = cache.iter().find(|(i, _)| *i == block) {
            return Ok(Arc::clone(b));
        }
        drop(cache);
        let len = usize::try_from(self.bitmap_size).unwrap_or(usize::MAX);
        let bytes = self
            .file
            .read_vec(u64::from(entry) * SECTOR, len, "vhd sector bitmap")?;
        let bitmap = Arc::new(bytes);
        cache = self.bitmaps.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= BITMAP_CACHE_ENTRIES {
            cache.pop_front();
        }
        cache.push_back((block, Arc::clone(&bitmap)));
        Ok(bitmap)
    }

    /// Kind of the run starting at `in_block` bytes into `block`, and where the run ends
    /// (bytes into the block, at most `block_size`).
    fn run_in_block(&self, block: u64, in_block: u64) -> Result<(ExtentKind, u64)> {
        let Some(entry) = self.entry(block) else {
            return Ok((ExtentKind::Unallocated, self.block_size));
        };
        if !self.differencing {
            return Ok((ExtentKind::Data, self.block_size));
        }
        let index = usize::try_from(block).unwrap_or(usize::MAX);
        let bitmap = self.bitmap(index, entry)?;
        let sectors = self.block_size / SECTOR;
        let first = in_block / SECTOR;
        let bit = sector_bit(&bitmap, first);
        let end = run_end(&bitmap, first, sectors, bit);
        let kind = if bit {
            ExtentKind::Data
        } else {
            ExtentKind::Unallocated
        };
        Ok((kind, end * SECTOR))
    }

    /// Reads `buf.len()` bytes at `offset`, all inside `block` (allocated at `entry`).
    fn read_in_block(&self, buf: &mut [u8], block: u64, in_block: u64, entry: u32) -> Result<()> {
        let phys = u64::from(entry) * SECTOR + self.bitmap_size + in_block;
        self.file.read_exact_at(buf, phys, "vhd block data")?;
        if !self.differencing {
            return Ok(());
        }
        // Sectors the bitmap leaves to the parent read as zero in this layer.
        let index = usize::try_from(block).unwrap_or(usize::MAX);
        let bitmap = self.bitmap(index, entry)?;
        let mut pos = 0u64;
        let len = buf.len() as u64;
        while pos < len {
            let at = in_block + pos;
            let sector = at / SECTOR;
            let n = ((sector + 1) * SECTOR - at).min(len - pos);
            if !sector_bit(&bitmap, sector) {
                let (a, b) = (to_usize(pos), to_usize(pos + n));
                if let Some(chunk) = buf.get_mut(a..b) {
                    chunk.fill(0);
                }
            }
            pos += n;
        }
        Ok(())
    }
}

fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// Bit for `sector` in a VHD sector bitmap: byte `sector / 8`, most significant bit first.
fn sector_bit(bitmap: &[u8], sector: u64) -> bool {
    let byte = usize::try_from(sector / 8)
        .ok()
        .and_then(|i| bitmap.get(i))
        .copied()
        .unwrap_or(0);
    byte & (0x80 >> (sector % 8)) != 0
}

/// First sector after `first` (< `sectors`) whose bit differs from `bit`, or `sectors`;
/// whole bytes of equal bits are skipped at once.
fn run_end(bitmap: &[u8], first: u64, sectors: u64, bit: bool) -> u64 {
    let same = if bit { 0xFF } else { 0x00 };
    let mut end = first + 1;
    while end < sectors {
        if end.is_multiple_of(8) && end + 8 <= sectors {
            let byte = usize::try_from(end / 8).ok().and_then(|i| bitmap.get(i));
            if byte == Some(&same) {
                end += 8;
                continue;
            }
        }
        if sector_bit(bitmap, end) != bit {
            break;
        }
        end += 1;
    }
    end
}

/// Reads the BAT in bounded chunks (entries already capped by the header parser).
fn load_bat(file: &ImageFile, offset: u64, entries: u32) -> Result<Vec<u32>> {
    let total = usize::try_from(entries).unwrap_or(usize::MAX);
    let mut bat = Vec::with_capacity(total);
    let mut pos = offset;
    while bat.len() < total {
        let n = (total - bat.len()).min(BAT_CHUNK / 4);
        let bytes = file.read_vec(pos, n * 4, "vhd block allocation table")?;
        bat.extend(
            bytes
                .chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])),
        );
        pos += n as u64 * 4;
    }
    Ok(bat)
}

impl DiskSource for DynamicSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(self.file.path(), offset, buf.len() as u64, self.size)?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let block = pos / self.block_size;
            let in_block = pos % self.block_size;
            let n = to_usize(self.block_size - in_block).min(buf.len() - done);
            let chunk = &mut buf[done..done + n];
            match self.entry(block) {
                None => chunk.fill(0),
                Some(entry) => self.read_in_block(chunk, block, in_block, entry)?,
            }
            done += n;
        }
        Ok(())
    }

    fn extent_at(&self, offset: u64, max_len: u64) -> Result<Extent> {
        let len = crate::source::extent_len(self.file.path(), offset, max_len, self.size)?;
        let end = offset + len;
        let (kind, mut pos) = self.first_run(offset)?;
        while pos < end {
            let block = pos / self.block_size;
            if block >= self.bat.len() as u64 && kind == ExtentKind::Unallocated {
                pos = end;
                break;
            }
            let (k, run_end) = self.run_in_block(block, pos % self.block_size)?;
            if k != kind {
                break;
            }
            pos = block * self.block_size + run_end;
        }
        Ok(Extent {
            offset,
            len: pos.min(end) - offset,
            kind,
        })
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let subformat = if self.differencing {
            "differencing"
        } else {
            "dynamic"
        };
        vec![LayerInfo {
            path: self.file.path().to_path_buf(),
            format: "vhd".into(),
            subformat: Some(subformat.into()),
            virtual_size: self.size,
            files: vec![self.file.path().to_path_buf()],
        }]
    }
}

impl DynamicSource {
    /// The kind at `offset` and the absolute end of its run within its block.
    fn first_run(&self, offset: u64) -> Result<(ExtentKind, u64)> {
        let block = offset / self.block_size;
        let (kind, run_end) = self.run_in_block(block, offset % self.block_size)?;
        Ok((kind, block * self.block_size + run_end))
    }
}

pub fn check_range(path: &Path, offset: u64, len: u64, size: u64) -> Result<()> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(Error::invalid_request(
            path,
            format!(
                "read of {len:#x} bytes at {offset:#x} is past the end of the disk at {size:#x}"
            ),
        )),
    }
}
