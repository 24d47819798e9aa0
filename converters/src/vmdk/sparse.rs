//! Grain directory / grain table lookups and reads for the sparse extent kinds (hosted
//! KDMV incl. streamOptimized, COWD, seSparse), after VMware "Virtual Disk Format 1.1" and
//! qemu's `get_cluster_offset` / `vmdk_read_extent`.
//!
//! ```text
//! grain directory (in memory)      grain table (re-read per lookup)     grains
//! [gt sector | 0] ──────────────►  [gte: 0 unallocated | 1 zeroed |  ──► data, or for
//!                                   sector of the grain / marker]        streamOptimized a
//!                                                                        marker + zlib stream
//! ```
//!
//! The grain directory is loaded once (capped, see [`MAX_GD_ENTRIES`]); grain table slices
//! are re-read with `pread` on every lookup (at most 32 KiB, served by the page cache), so
//! the source stays `&self` without locks or caches.

use std::ops::ControlFlow;

use flate2::{Decompress, FlushDecompress, Status};

use super::header::{Encoding, Geometry, MAX_VIRTUAL_BYTES, SECTOR};
use crate::error::{Error, Result};
use crate::image_file::ImageFile;
use crate::source::ExtentKind;

/// Most grain directory entries one extent may have (16 MiB in memory); at the usual 64 KiB
/// grains and 512-entry tables that covers 128 TiB.
pub(super) const MAX_GD_ENTRIES: u64 = 4 << 20;
/// Largest compressed grain ferry inflates (VMware writes 64 KiB grains).
const MAX_COMPRESSED_GRAIN_BYTES: u64 = 2 << 20;

/// What one grain table entry says about a grain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Grain {
    Unallocated,
    Zero,
    /// Byte offset of the grain in the extent file.
    Data(u64),
    /// Byte offset of the compressed grain (its marker when the file has markers).
    Compressed(u64),
}

impl Grain {
    pub(super) fn kind(self) -> ExtentKind {
        match self {
            Grain::Unallocated => ExtentKind::Unallocated,
            Grain::Zero => ExtentKind::Zero,
            Grain::Data(_) | Grain::Compressed(_) => ExtentKind::Data,
        }
    }
}

/// A piece of the extent covered by one grain (or one absent grain table).
#[derive(Debug, Clone, Copy)]
struct Piece {
    /// Offset within the extent, in bytes.
    offset: u64,
    len: u64,
    grain: Grain,
    /// Offset of `offset` inside its grain.
    within: u64,
}

pub(super) struct SparseExtent {
    file: ImageFile,
    geo: Geometry,
    /// Bytes of the extent the descriptor maps.
    len: u64,
    grain_bytes: u64,
    /// Bytes of guest data one grain table covers.
    gt_span: u64,
    /// Grain table sector offsets; 0 = no table (every grain unallocated).
    gd: Vec<u32>,
}

impl SparseExtent {
    /// Opens a sparse extent mapping `sectors` sectors; `gd_budget` is the number of grain
    /// directory entries the whole disk may still load (caps memory across extents).
    pub(super) fn open(
        file: ImageFile,
        geo: Geometry,
        sectors: u64,
        gd_budget: &mut u64,
    ) -> Result<SparseExtent> {
        let path = file.path().to_path_buf();
        let grain_bytes = geo.grain_sectors * SECTOR; // bounded by the header checks
        let gt_span = grain_bytes * geo.gtes_per_gt;
        let needed = sectors.div_ceil(geo.grain_sectors * geo.gtes_per_gt);
        if needed > MAX_GD_ENTRIES || needed > *gd_budget {
            return Err(Error::malformed(
                &path,
                format!("grain directory too large: {needed:#x} entries for {sectors:#x} sectors"),
            ));
        }
        let len = sectors
            .checked_mul(SECTOR)
            .filter(|&b| b <= MAX_VIRTUAL_BYTES)
            .ok_or_else(|| {
                Error::malformed(
                    &path,
                    format!("virtual size too large: {sectors:#x} sectors"),
                )
            })?;
        check_capacity(&path, &geo, sectors)?;
        if needed > geo.gd_entries {
            return Err(Error::malformed(
                &path,
                format!(
                    "grain directory has {:#x} entries but {needed:#x} are needed",
                    geo.gd_entries
                ),
            ));
        }
        if geo.compressed && grain_bytes > MAX_COMPRESSED_GRAIN_BYTES {
            return Err(Error::unsupported(
                &path,
                format!("compressed grains of {grain_bytes:#x} bytes"),
            ));
        }
        let gd = read_gd(&file, &geo, needed)?;
        *gd_budget -= needed;
        Ok(SparseExtent {
            file,
            geo,
            len,
            grain_bytes,
            gt_span,
            gd,
        })
    }

    /// The longest run of one kind starting at `offset` (within the extent), up to `max_len`.
    pub(super) fn extent_at(&self, offset: u64, max_len: u64) -> Result<(u64, ExtentKind)> {
        let mut run: Option<(u64, ExtentKind)> = None;
        self.visit(offset, max_len.min(self.len - offset), &mut |p| {
            let kind = p.grain.kind();
            match run.as_mut() {
                None => run = Some((p.len, kind)),
                Some((len, k)) if *k == kind => *len += p.len,
                Some(_) => return Ok(ControlFlow::Break(())),
            }
            Ok(ControlFlow::Continue(()))
        })?;
        run.ok_or_else(|| {
            Error::invalid_request(self.file.path(), format!("empty extent at {offset:#x}"))
        })
    }

    /// Reads `buf.len()` bytes at `offset` within the extent; unallocated grains read as zero.
    /// Physically contiguous uncompressed grains are read with one `pread`.
    pub(super) fn read(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        // (position in buf, file offset, length) of the uncompressed run being gathered.
        let mut pending: Option<(usize, u64, usize)> = None;
        self.visit(offset, buf.len() as u64, &mut |p| {
            let at = to_usize(p.offset - offset)?;
            let n = to_usize(p.len)?;
            if let Grain::Data(grain_off) = p.grain {
                let file_off = grain_off + p.within;
                match pending.as_mut() {
                    Some((b, f, l)) if *b + *l == at && *f + *l as u64 == file_off => *l += n,
                    _ => {
                        self.flush(buf, pending.take())?;
                        pending = Some((at, file_off, n));
                    }
                }
                return Ok(ControlFlow::Continue(()));
            }
            self.flush(buf, pending.take())?;
            let out = buf
                .get_mut(at..at + n)
                .ok_or_else(|| self.bug("read piece"))?;
            match p.grain {
                Grain::Compressed(marker) => self.read_compressed(marker, p.within, out)?,
                _ => out.fill(0),
            }
            Ok(ControlFlow::Continue(()))
        })?;
        self.flush(buf, pending)
    }

    fn flush(&self, buf: &mut [u8], run: Option<(usize, u64, usize)>) -> Result<()> {
        let Some((at, file_off, n)) = run else {
            return Ok(());
        };
        let out = buf
            .get_mut(at..at + n)
            .ok_or_else(|| self.bug("data run"))?;
        self.file.read_exact_at(out, file_off, "grain data")
    }

    fn bug(&self, what: &str) -> Error {
        Error::invalid_request(
            self.file.path(),
            format!("internal error: {what} out of the buffer"),
        )
    }

    /// Walks the grains covering `[offset, offset + len)` in order.
    fn visit(
        &self,
        offset: u64,
        len: u64,
        f: &mut dyn FnMut(Piece) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        let end = offset + len;
        let mut pos = offset;
        while pos < end {
            let index = pos / self.gt_span;
            let gt_start = index * self.gt_span;
            let gt_end = (gt_start + self.gt_span).min(end);
            let gt_sector = usize::try_from(index)
                .ok()
                .and_then(|i| self.gd.get(i))
                .copied()
                .ok_or_else(|| self.bug("grain directory index"))?;
            if gt_sector == 0 {
                let piece = Piece {
                    offset: pos,
                    len: gt_end - pos,
                    grain: Grain::Unallocated,
                    within: 0,
                };
                if f(piece)?.is_break() {
                    return Ok(());
                }
            } else if self
                .visit_table(gt_sector, gt_start, pos, gt_end, f)?
                .is_break()
            {
                return Ok(());
            }
            pos = gt_end;
        }
        Ok(())
    }

    /// Visits the grains of one grain table between `pos` and `end`.
    fn visit_table(
        &self,
        gt_sector: u32,
        gt_start: u64,
        pos: u64,
        end: u64,
        f: &mut dyn FnMut(Piece) -> Result<ControlFlow<()>>,
    ) -> Result<ControlFlow<()>> {
        let first = (pos - gt_start) / self.grain_bytes;
        let last = (end - 1 - gt_start) / self.grain_bytes;
        let width = self.geo.entry_bytes();
        let at = u64::from(gt_sector) * SECTOR + first * width;
        let raw = self
            .file
            .read_vec(at, to_usize((last - first + 1) * width)?, "grain table")?;
        for (i, entry) in raw.chunks_exact(to_usize(width)?).enumerate() {
            let grain_start = gt_start + (first + i as u64) * self.grain_bytes;
            let start = grain_start.max(pos);
            let stop = (grain_start + self.grain_bytes).min(end);
            let piece = Piece {
                offset: start,
                len: stop - start,
                grain: self.decode(entry, at + i as u64 * width)?,
                within: start - grain_start,
            };
            if f(piece)?.is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Decodes one grain table entry found at byte `at` of the file.
    fn decode(&self, entry: &[u8], at: u64) -> Result<Grain> {
        let value = match *entry {
            [a, b, c, d] => u64::from(u32::from_le_bytes([a, b, c, d])),
            [a, b, c, d, e, f, g, h] => u64::from_le_bytes([a, b, c, d, e, f, g, h]),
            _ => return Err(self.bug("grain table entry width")),
        };
        match self.geo.encoding {
            _ if value == 0 => Ok(Grain::Unallocated),
            Encoding::Hosted { zero_grain: true } if value == 1 => Ok(Grain::Zero),
            Encoding::SeSparse {
                grains_offset_sectors,
                ..
            } => self.decode_sesparse(value, grains_offset_sectors, at),
            _ if self.geo.compressed => Ok(Grain::Compressed(value * SECTOR)),
            _ => Ok(Grain::Data(value * SECTOR)),
        }
    }

    /// seSparse grain table entry: top nibble 0 unallocated, 1 unmapped, 2 zero, 3 data
    /// with a 60-bit cluster number split in two fields.
    fn decode_sesparse(&self, value: u64, grains_offset_sectors: u64, at: u64) -> Result<Grain> {
        let bad = || {
            Error::malformed(
                self.file.path(),
                format!("invalid seSparse grain table entry {value:#018x} at offset {at:#x}"),
            )
        };
        match value >> 60 {
            1 | 2 => Ok(Grain::Zero),
            3 => {
                let cluster = ((value & 0x0fff_0000_0000_0000) >> 48)
                    | ((value & 0x0000_ffff_ffff_ffff) << 12);
                cluster
                    .checked_mul(self.geo.grain_sectors)
                    .and_then(|s| s.checked_add(grains_offset_sectors))
                    .and_then(|s| s.checked_mul(SECTOR))
                    .map(Grain::Data)
                    .ok_or_else(bad)
            }
            _ => Err(bad()),
        }
    }

    /// Inflates the compressed grain at `at` and copies bytes `within..within + out.len()`.
    fn read_compressed(&self, at: u64, within: u64, out: &mut [u8]) -> Result<()> {
        let path = self.file.path();
        let max = 2 * self.grain_bytes;
        let data = if self.geo.markers {
            let mut marker = [0u8; 12];
            self.file.read_exact_at(&mut marker, at, "grain marker")?;
            let size = u64::from(u32::from_le_bytes([
                marker[8], marker[9], marker[10], marker[11],
            ]));
            if size == 0 || size > max {
                return Err(Error::malformed(
                    path,
                    format!("grain marker at offset {at:#x} claims {size:#x} compressed bytes"),
                ));
            }
            self.file
                .read_vec(at + 12, to_usize(size)?, "compressed grain")?
        } else {
            let mut data = vec![0u8; to_usize(max)?];
            let n = self.file.read_at_most(&mut data, at, "compressed grain")?;
            data.truncate(n);
            data
        };
        let whole = within == 0 && out.len() as u64 == self.grain_bytes;
        if whole {
            return inflate(path, &data, out, out.len(), at);
        }
        let mut grain = vec![0u8; to_usize(self.grain_bytes)?];
        let need = to_usize(within)? + out.len();
        inflate(path, &data, &mut grain, need, at)?;
        let src = grain
            .get(to_usize(within)?..need)
            .ok_or_else(|| self.bug("compressed grain"))?;
        out.copy_from_slice(src);
        Ok(())
    }
}

/// Inflates a zlib (RFC 1950) stream into `out`; at least `need` bytes must come out.
fn inflate(
    path: &std::path::Path,
    data: &[u8],
    out: &mut [u8],
    need: usize,
    at: u64,
) -> Result<()> {
    let mut z = Decompress::new(true);
    let status = z
        .decompress(data, out, FlushDecompress::Finish)
        .map_err(|e| {
            Error::malformed(
                path,
                format!("compressed grain at offset {at:#x} does not inflate: {e}"),
            )
        })?;
    let got = usize::try_from(z.total_out()).unwrap_or(0);
    if got < need || (status != Status::StreamEnd && got < out.len()) {
        return Err(Error::malformed(
            path,
            format!(
                "compressed grain at offset {at:#x} inflates to {got:#x} bytes, {need:#x} needed"
            ),
        ));
    }
    Ok(())
}

fn to_usize(n: u64) -> Result<usize> {
    usize::try_from(n)
        .map_err(|_| Error::invalid_request("", format!("length {n:#x} does not fit in memory")))
}

/// The header capacity must cover what the descriptor maps.
fn check_capacity(path: &std::path::Path, geo: &Geometry, sectors: u64) -> Result<()> {
    if geo.capacity_sectors < sectors {
        return Err(Error::malformed(
            path,
            format!(
                "extent header holds {:#x} sectors but the descriptor maps {sectors:#x}",
                geo.capacity_sectors
            ),
        ));
    }
    Ok(())
}

/// Loads the first `entries` grain directory entries as grain table sector offsets, checking
/// each table lies inside the file.
fn read_gd(file: &ImageFile, geo: &Geometry, entries: u64) -> Result<Vec<u32>> {
    let path = file.path();
    let width = geo.entry_bytes();
    let bytes = entries * width;
    if geo
        .gd_offset
        .checked_add(bytes)
        .is_none_or(|end| end > file.len())
    {
        return Err(Error::malformed(
            path,
            format!("truncated: grain directory at offset {:#x} ({bytes:#x} bytes) runs past the end of the file ({:#x})", geo.gd_offset, file.len()),
        ));
    }
    let gt_bytes = geo.gtes_per_gt * width;
    let mut gd = Vec::with_capacity(to_usize(entries)?);
    let chunk_entries = 8192u64;
    let mut index = 0u64;
    while index < entries {
        let n = chunk_entries.min(entries - index);
        let raw = file.read_vec(
            geo.gd_offset + index * width,
            to_usize(n * width)?,
            "grain directory",
        )?;
        for entry in raw.chunks_exact(to_usize(width)?) {
            let gt = gt_sector(path, geo, entry, index)?;
            let end = u64::from(gt) * SECTOR + gt_bytes;
            if gt != 0 && end > file.len() {
                return Err(Error::malformed(
                    path,
                    format!("grain table {index:#x} at sector {gt:#x} lies past the end of the file ({:#x})", file.len()),
                ));
            }
            gd.push(gt);
            index += 1;
        }
    }
    Ok(gd)
}

/// Decodes one grain directory entry to the sector of its grain table (0 = none).
fn gt_sector(path: &std::path::Path, geo: &Geometry, entry: &[u8], index: u64) -> Result<u32> {
    match (entry, geo.encoding) {
        (&[a, b, c, d], _) => Ok(u32::from_le_bytes([a, b, c, d])),
        (
            &[a, b, c, d, e, f, g, h],
            Encoding::SeSparse {
                tables_offset_sectors,
                ..
            },
        ) => {
            let value = u64::from_le_bytes([a, b, c, d, e, f, g, h]);
            if value == 0 {
                return Ok(0);
            }
            let bad = || {
                Error::malformed(
                    path,
                    format!("invalid seSparse grain directory entry {index:#x}: {value:#018x}"),
                )
            };
            if value & 0xffff_ffff_0000_0000 != 0x1000_0000_0000_0000 {
                return Err(bad());
            }
            let table = value & 0xffff_ffff;
            let sectors_per_table = geo.gtes_per_gt * 8 / SECTOR;
            table
                .checked_mul(sectors_per_table)
                .and_then(|s| s.checked_add(tables_offset_sectors))
                .and_then(|s| u32::try_from(s).ok())
                .filter(|&s| s != 0)
                .ok_or_else(bad)
        }
        _ => Err(Error::malformed(
            path,
            "grain directory entry width mismatch",
        )),
    }
}
