//! Binary headers of the three sparse extent kinds, reduced to one [`Geometry`]:
//!
//! * hosted sparse `KDMV` (VMware "Virtual Disk Format 1.1", `SparseExtentHeader`, versions
//!   1–3; monolithicSparse, twoGbMaxExtentSparse and streamOptimized, whose real header may
//!   sit in a footer at the end of the file);
//! * ESXi `COWD` (vmfsSparse snapshot deltas, qemu's `VMDK3Header`);
//! * ESXi seSparse (`0xcafebabe` const header plus a volatile header, as qemu reads them; the
//!   format is not publicly documented, so qemu's strict checks are kept).
//!
//! ```text
//! KDMV header (little endian, sector 0)        COWD header (sector 0)
//!  0 magic "KDMV"   4 version   8 flags          0 magic "COWD"  4 version  8 flags
//! 12 capacity u64  20 grainSize u64              12 sectors u32  16 grain (sectors) u32
//! 28 descOffset    36 descSize                   20 gdOffset (sectors) u32
//! 44 numGTEsPerGT u32  48 rgdOffset  56 gdOffset 24 gdEntries u32 (GTs of 4096 entries)
//! 64 overhead      73 "\n \r\n"  77 compressAlgorithm u16
//! ```
//!
//! Not supported: the redundant grain directory is ignored, the newline check bytes are not
//! verified, and a seSparse disk with a journal to replay is refused.

use super::sparse::MAX_GD_ENTRIES;
use crate::error::{Error, Result};
use crate::image_file::ImageFile;

pub(super) const SECTOR: u64 = 512;
pub(super) const KDMV_MAGIC: &[u8; 4] = b"KDMV";
pub(super) const COWD_MAGIC: &[u8; 4] = b"COWD";
const SESPARSE_CONST_MAGIC: u64 = 0xcafe_babe;
const SESPARSE_VOLATILE_MAGIC: u64 = 0xcafe_cafe;
const SESPARSE_VERSION: u64 = 0x0000_0002_0000_0001;

const FLAG_ZERO_GRAIN: u32 = 1 << 2;
const FLAG_MARKERS: u32 = 1 << 17;
const COMPRESSION_DEFLATE: u16 = 1;
const GD_AT_END: u64 = u64::MAX;
/// qemu's cap: a grain of 2^21 sectors (1 GiB) is already unrealistic.
const MAX_GRAIN_SECTORS: u64 = 0x20_0000;
/// qemu refuses more than 512 entries per hosted grain table.
const MAX_HOSTED_GTES: u64 = 512;
/// Grain tables of COWD and seSparse extents have a fixed size.
const COWD_GTES: u64 = 4096;
const SESPARSE_GTES: u64 = 4096;
/// Largest virtual size ferry accepts (keeps every byte offset far from overflow).
pub(super) const MAX_VIRTUAL_BYTES: u64 = 1 << 60;

/// How grain directory and grain table entries are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    /// KDMV: u32 sector numbers; GTE 1 means a zeroed grain when `zero_grain` is set.
    Hosted { zero_grain: bool },
    /// COWD: u32 sector numbers, no zeroed grains.
    Cowd,
    /// seSparse: u64 entries with a type nibble; GTs and grains counted from these bases.
    SeSparse {
        tables_offset_sectors: u64,
        grains_offset_sectors: u64,
    },
}

/// Everything the sparse reader needs from any of the three headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Geometry {
    pub capacity_sectors: u64,
    pub grain_sectors: u64,
    pub gtes_per_gt: u64,
    /// Byte offset of the grain directory.
    pub gd_offset: u64,
    /// Entries the on-disk grain directory holds.
    pub gd_entries: u64,
    pub encoding: Encoding,
    /// streamOptimized: grains are deflated (zlib, RFC 1950).
    pub compressed: bool,
    /// Compressed grains start with a 12-byte marker (lba u64, size u32).
    pub markers: bool,
}

impl Geometry {
    /// Bytes per grain directory / grain table entry.
    pub(super) fn entry_bytes(&self) -> u64 {
        match self.encoding {
            Encoding::SeSparse { .. } => 8,
            _ => 4,
        }
    }
}

/// A parsed KDMV header plus where its embedded descriptor lives.
#[derive(Debug, Clone)]
pub(super) struct HostedHeader {
    pub geometry: Geometry,
    pub desc_offset_sectors: u64,
    pub desc_size_sectors: u64,
}

fn le32(b: &[u8], at: usize) -> u32 {
    let bytes = b.get(at..at + 4).and_then(|s| s.try_into().ok());
    u32::from_le_bytes(bytes.unwrap_or_default())
}

fn le64(b: &[u8], at: usize) -> u64 {
    let bytes = b.get(at..at + 8).and_then(|s| s.try_into().ok());
    u64::from_le_bytes(bytes.unwrap_or_default())
}

fn le16(b: &[u8], at: usize) -> u16 {
    let bytes = b.get(at..at + 2).and_then(|s| s.try_into().ok());
    u16::from_le_bytes(bytes.unwrap_or_default())
}

/// Reads a KDMV header; for streamOptimized files whose header says the grain directory
/// is at the end, the footer copy of the header (1 KiB before the end) is used instead.
pub(super) fn read_hosted(file: &ImageFile) -> Result<HostedHeader> {
    let mut head = [0u8; 512];
    file.read_exact_at(&mut head, 0, "sparse header")?;
    if &head[..4] != KDMV_MAGIC {
        return Err(Error::malformed(
            file.path(),
            "bad sparse extent magic (want KDMV)",
        ));
    }
    let desc_offset_sectors = le64(&head, 28);
    let desc_size_sectors = le64(&head, 36);
    let hdr = if le64(&head, 56) == GD_AT_END && le64(&head, 12) != 0 {
        read_footer(file)?
    } else {
        head
    };
    let geometry = hosted_geometry(file, &hdr)?;
    Ok(HostedHeader {
        geometry,
        desc_offset_sectors,
        desc_size_sectors,
    })
}

/// Footer layout (last three sectors): footer marker, header copy, end-of-stream marker.
fn read_footer(file: &ImageFile) -> Result<[u8; 512]> {
    let at = file.len().checked_sub(3 * SECTOR).ok_or_else(|| {
        Error::malformed(
            file.path(),
            "invalid footer: file too short for a stream footer",
        )
    })?;
    let mut tail = [0u8; 1536];
    file.read_exact_at(&mut tail, at, "stream footer")?;
    let marker_ok = le32(&tail, 8) == 0 && le32(&tail, 12) == 3;
    let eos_ok = le64(&tail, 1024) == 0 && le32(&tail, 1032) == 0 && le32(&tail, 1036) == 0;
    if !marker_ok || !eos_ok || tail.get(512..516) != Some(KDMV_MAGIC.as_slice()) {
        return Err(Error::malformed(
            file.path(),
            format!("invalid footer at offset {at:#x}: the stream is truncated or damaged"),
        ));
    }
    let mut hdr = [0u8; 512];
    hdr.copy_from_slice(tail.get(512..1024).unwrap_or(&[0u8; 512]));
    Ok(hdr)
}

fn hosted_geometry(file: &ImageFile, h: &[u8]) -> Result<Geometry> {
    let path = file.path();
    let version = le32(h, 4);
    if version > 3 {
        return Err(Error::unsupported(
            path,
            format!("sparse extent version {version}"),
        ));
    }
    let flags = le32(h, 8);
    let gtes_per_gt = u64::from(le32(h, 44));
    if gtes_per_gt == 0 || gtes_per_gt > MAX_HOSTED_GTES {
        return Err(Error::malformed(
            path,
            format!("grain table size {gtes_per_gt} entries is out of range (1..=512)"),
        ));
    }
    let capacity_sectors = le64(h, 12);
    let grain_sectors = le64(h, 20);
    let gd_entries = gd_entries_for(path, capacity_sectors, grain_sectors, gtes_per_gt)?;
    let gd_offset = sectors_to_bytes(path, le64(h, 56), "grain directory offset")?;
    let overhead = le64(h, 64);
    if overhead > file.len() / SECTOR {
        return Err(Error::malformed(
            path,
            format!("truncated: header says the grains start at sector {overhead:#x}, past the end of the file"),
        ));
    }
    Ok(Geometry {
        capacity_sectors,
        grain_sectors,
        gtes_per_gt,
        gd_offset,
        gd_entries,
        encoding: Encoding::Hosted {
            zero_grain: flags & FLAG_ZERO_GRAIN != 0,
        },
        compressed: le16(h, 77) == COMPRESSION_DEFLATE,
        markers: flags & FLAG_MARKERS != 0,
    })
}

/// Grain directory entries needed to cover `capacity_sectors`; also checks the grain size.
fn gd_entries_for(
    path: &std::path::Path,
    capacity_sectors: u64,
    grain_sectors: u64,
    gtes_per_gt: u64,
) -> Result<u64> {
    if grain_sectors == 0 || grain_sectors > MAX_GRAIN_SECTORS {
        return Err(Error::malformed(
            path,
            format!("grain size {grain_sectors:#x} sectors is out of range (1..=0x200000)"),
        ));
    }
    let span = grain_sectors * gtes_per_gt; // both bounded: no overflow
    let entries = capacity_sectors.div_ceil(span);
    if entries > MAX_GD_ENTRIES {
        return Err(Error::malformed(
            path,
            format!(
                "grain directory too large: {entries:#x} entries for {capacity_sectors:#x} sectors"
            ),
        ));
    }
    Ok(entries)
}

fn sectors_to_bytes(path: &std::path::Path, sectors: u64, what: &str) -> Result<u64> {
    sectors
        .checked_mul(SECTOR)
        .ok_or_else(|| Error::malformed(path, format!("{what} {sectors:#x} sectors overflows")))
}

/// Reads a COWD (vmfsSparse) header.
pub(super) fn read_cowd(file: &ImageFile) -> Result<Geometry> {
    let mut h = [0u8; 512];
    file.read_exact_at(&mut h, 0, "COWD header")?;
    if &h[..4] != COWD_MAGIC {
        return Err(Error::malformed(
            file.path(),
            "bad vmfsSparse magic (want COWD)",
        ));
    }
    let path = file.path();
    let capacity_sectors = u64::from(le32(&h, 12));
    let grain_sectors = u64::from(le32(&h, 16));
    gd_entries_for(path, capacity_sectors, grain_sectors, COWD_GTES)?;
    Ok(Geometry {
        capacity_sectors,
        grain_sectors,
        gtes_per_gt: COWD_GTES,
        gd_offset: u64::from(le32(&h, 20)) * SECTOR,
        gd_entries: u64::from(le32(&h, 24)),
        encoding: Encoding::Cowd,
        compressed: false,
        markers: false,
    })
}

/// Reads the seSparse const and volatile headers (qemu's strict checks).
pub(super) fn read_sesparse(file: &ImageFile) -> Result<Geometry> {
    let path = file.path();
    let mut h = [0u8; 512];
    file.read_exact_at(&mut h, 0, "seSparse header")?;
    if le64(&h, 0) != SESPARSE_CONST_MAGIC {
        return Err(Error::malformed(
            path,
            "bad seSparse magic (want 0xcafebabe)",
        ));
    }
    check_sesparse_const(path, &h)?;
    let volatile_at = sectors_to_bytes(path, le64(&h, 80), "volatile header offset")?;
    let mut v = [0u8; 512];
    file.read_exact_at(&mut v, volatile_at, "seSparse volatile header")?;
    if le64(&v, 0) != SESPARSE_VOLATILE_MAGIC {
        return Err(Error::malformed(path, "bad seSparse volatile header magic"));
    }
    if le64(&v, 24) != 0 {
        return Err(Error::unsupported(
            path,
            "seSparse disk with a journal to replay (dirty)",
        ));
    }
    if v[32..].iter().any(|&b| b != 0) {
        return Err(Error::unsupported(
            path,
            "non-zero seSparse volatile header padding",
        ));
    }
    let gd_size_sectors = le64(&h, 136);
    Ok(Geometry {
        capacity_sectors: le64(&h, 16),
        grain_sectors: 8,
        gtes_per_gt: SESPARSE_GTES,
        gd_offset: sectors_to_bytes(path, le64(&h, 128), "grain directory offset")?,
        gd_entries: gd_size_sectors.saturating_mul(SECTOR / 8),
        encoding: Encoding::SeSparse {
            tables_offset_sectors: le64(&h, 144),
            grains_offset_sectors: le64(&h, 192),
        },
        compressed: false,
        markers: false,
    })
}

fn check_sesparse_const(path: &std::path::Path, h: &[u8; 512]) -> Result<()> {
    let version = le64(h, 8);
    if version != SESPARSE_VERSION {
        return Err(Error::unsupported(
            path,
            format!("seSparse version {version:#x}"),
        ));
    }
    let (grain, gt_sectors, flags) = (le64(h, 24), le64(h, 32), le64(h, 40));
    if grain != 8 || gt_sectors != 64 {
        return Err(Error::unsupported(
            path,
            format!("seSparse geometry (grain {grain} sectors, grain table {gt_sectors} sectors)"),
        ));
    }
    if flags != 0 || (48..80).step_by(8).any(|at| le64(h, at) != 0) {
        return Err(Error::unsupported(
            path,
            "seSparse flags or reserved fields",
        ));
    }
    if h[208..].iter().any(|&b| b != 0) {
        return Err(Error::unsupported(path, "non-zero seSparse header padding"));
    }
    Ok(())
}
