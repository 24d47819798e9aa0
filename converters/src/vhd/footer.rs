//! The 512-byte VHD hard disk footer ("conectix"), its checksum, where it lives in the file
//! and the virtual size it implies.
//!
//! Layout (big-endian, Microsoft VHD specification v1.0, "Hard Disk Footer Format"):
//!
//! ```text
//!   0  cookie "conectix"      8      40  original size          8
//!   8  features               4      48  current size           8
//!  12  file format version    4      56  geometry C/H/S       2/1/1
//!  16  data offset            8      60  disk type              4
//!  24  time stamp             4      64  checksum               4
//!  28  creator application    4      68  unique id (UUID)      16
//!  32  creator version        4      84  saved state            1
//!  36  creator host OS        4      85  reserved             427
//! ```
//!
//! Fixed disks carry the footer only at the end of the file; dynamic and differencing disks
//! also keep a copy in the first sector. Like qemu's `vpc` driver, a file whose first sector
//! starts with the cookie must have a valid checksum there; the copy at the end, when it is
//! valid too, is the authoritative one. Pre-2004 Virtual PC 511-byte end footers are not
//! accepted for fixed disks (qemu refuses them as well); dynamic disks fall back to the copy.

use crate::error::{Error, Result};
use crate::image_file::ImageFile;

pub const FOOTER_SIZE: usize = 512;
pub const COOKIE: &[u8; 8] = b"conectix";
pub const SECTOR: u64 = 512;

/// Largest virtual size qemu opens: 0xff000000 sectors (2040 GiB).
pub const MAX_SECTORS: u64 = 0xff00_0000;
/// CHS 65535 x 16 x 255: the geometry that means "size does not fit CHS, use current size".
const MAX_GEOMETRY: u64 = 65535 * 16 * 255;

/// Creators whose images are sized by `current_size` rather than by CHS geometry (qemu's
/// `vpc_ignore_current_size` table: Hyper-V, qemu with force-size, Disk2vhd, XenConverter,
/// XenServer blktap).
const CURRENT_SIZE_CREATORS: [&[u8; 4]; 5] = [b"win ", b"qem2", b"d2v ", b"CTXS", b"tap\0"];

/// Disk type field values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskType {
    Fixed,
    Dynamic,
    Differencing,
}

/// The footer fields ferry uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footer {
    pub data_offset: u64,
    pub creator_app: [u8; 4],
    pub current_size: u64,
    pub cylinders: u16,
    pub heads: u8,
    pub sectors_per_track: u8,
    pub disk_type_raw: u32,
    pub unique_id: [u8; 16],
}

pub fn be_u16(b: &[u8], at: usize) -> u16 {
    let mut v = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        v.copy_from_slice(s);
    }
    u16::from_be_bytes(v)
}

pub fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        v.copy_from_slice(s);
    }
    u32::from_be_bytes(v)
}

pub fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        v.copy_from_slice(s);
    }
    u64::from_be_bytes(v)
}

/// One's complement of the byte sum of `buf`, skipping the 4-byte checksum field at `skip`.
pub fn checksum(buf: &[u8], skip: usize) -> u32 {
    let sum = buf
        .iter()
        .enumerate()
        .filter(|(i, _)| !(skip..skip + 4).contains(i))
        .fold(0u32, |acc, (_, b)| acc.wrapping_add(u32::from(*b)));
    !sum
}

impl Footer {
    /// Parses a footer; `Err` carries a one-line reason (bad cookie or checksum).
    pub fn parse(buf: &[u8; FOOTER_SIZE]) -> std::result::Result<Footer, String> {
        if &buf[..8] != COOKIE {
            return Err("no vhd footer cookie \"conectix\"".into());
        }
        let stored = be_u32(buf, 64);
        let computed = checksum(buf, 64);
        if stored != computed {
            return Err(format!(
                "incorrect footer checksum {stored:#010x} (computed {computed:#010x})"
            ));
        }
        let mut creator_app = [0u8; 4];
        creator_app.copy_from_slice(&buf[28..32]);
        let mut unique_id = [0u8; 16];
        unique_id.copy_from_slice(&buf[68..84]);
        Ok(Footer {
            data_offset: be_u64(buf, 16),
            creator_app,
            current_size: be_u64(buf, 48),
            cylinders: be_u16(buf, 56),
            heads: buf[58],
            sectors_per_track: buf[59],
            disk_type_raw: be_u32(buf, 60),
            unique_id,
        })
    }

    pub fn disk_type(&self) -> std::result::Result<DiskType, String> {
        match self.disk_type_raw {
            2 => Ok(DiskType::Fixed),
            3 => Ok(DiskType::Dynamic),
            4 => Ok(DiskType::Differencing),
            t => Err(format!("vhd disk type {t}")),
        }
    }

    pub fn chs_sectors(&self) -> u64 {
        u64::from(self.cylinders) * u64::from(self.heads) * u64::from(self.sectors_per_track)
    }

    /// Virtual size in bytes by qemu's rule: CHS geometry for Virtual PC and old qemu images,
    /// `current_size` (rounded down to a sector) for the creators that size by it and for the
    /// maximum CHS geometry; more than 2040 GiB is refused.
    pub fn virtual_size(&self) -> std::result::Result<u64, String> {
        let chs = self.chs_sectors();
        let by_current = CURRENT_SIZE_CREATORS.contains(&&self.creator_app) || chs == MAX_GEOMETRY;
        let sectors = if by_current {
            self.current_size / SECTOR
        } else {
            chs
        };
        if sectors > MAX_SECTORS {
            return Err(format!(
                "virtual size of {sectors:#x} sectors exceeds the vhd limit of 2040 GiB"
            ));
        }
        Ok(sectors * SECTOR)
    }
}

fn read_footer_at(file: &ImageFile, offset: u64) -> Result<[u8; FOOTER_SIZE]> {
    let mut buf = [0u8; FOOTER_SIZE];
    file.read_exact_at(&mut buf, offset, "vhd footer")?;
    Ok(buf)
}

/// Finds and validates the footer of an open VHD file.
pub fn locate(file: &ImageFile) -> Result<Footer> {
    let len = file.len();
    let size = FOOTER_SIZE as u64;
    if len < size {
        return Err(Error::malformed(
            file.path(),
            format!("file of {len:#x} bytes is too small for a vhd footer"),
        ));
    }
    let head = read_footer_at(file, 0)?;
    let tail = read_footer_at(file, len - size)?;
    if &head[..8] != COOKIE {
        // Fixed disk: the only footer is the last sector.
        let footer = Footer::parse(&tail).map_err(|r| {
            Error::malformed(file.path(), format!("{r} at offset {:#x}", len - size))
        })?;
        if footer.disk_type() != Ok(DiskType::Fixed) {
            return Err(Error::malformed(
                file.path(),
                "vhd footer at the end of the file has no copy at the start and is not a fixed disk",
            ));
        }
        return Ok(footer);
    }
    let head_footer = Footer::parse(&head)
        .map_err(|r| Error::malformed(file.path(), format!("{r} at offset 0x0")))?;
    match Footer::parse(&tail) {
        Ok(t) if len >= 2 * size => Ok(t),
        _ => Ok(head_footer),
    }
}
