//! The 1024-byte dynamic disk header ("cxsparse") of dynamic and differencing VHDs.
//!
//! Layout (big-endian, VHD specification v1.0, "Dynamic Disk Header Format"):
//!
//! ```text
//!    0  cookie "cxsparse"        8     40  parent unique id        16
//!    8  data offset (unused)     8     56  parent time stamp        4
//!   16  table (BAT) offset       8     60  reserved                 4
//!   24  header version           4     64  parent unicode name    512  (UTF-16 big-endian)
//!   28  max table entries        4    576  8 parent locators x 24
//!   32  block size               4    768  reserved               256
//!   36  checksum                 4
//! ```
//!
//! A parent locator entry is: platform code (4), platform data space (4), platform data
//! length (4), reserved (4), platform data offset (8). The sizes checked here are the ones
//! every later step relies on: the block size is a power of two of at least one sector and
//! the BAT is capped at [`MAX_BAT_BYTES`].

use super::footer::{be_u32, be_u64, checksum, SECTOR};

pub const HEADER_SIZE: usize = 1024;
pub const COOKIE: &[u8; 8] = b"cxsparse";
/// Largest BAT ferry loads: 16 Mi entries, i.e. 32 TiB of 2 MiB blocks.
pub const MAX_BAT_BYTES: u64 = 64 << 20;
/// Longest parent locator ferry reads (a path; Windows caps them far below this).
pub const MAX_LOCATOR_BYTES: u32 = 64 << 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locator {
    pub platform: [u8; 4],
    pub data_length: u32,
    pub data_offset: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynHeader {
    pub table_offset: u64,
    pub max_table_entries: u32,
    pub block_size: u32,
    pub parent_unique_id: [u8; 16],
    /// Parent file name from the header (UTF-16BE decoded, NULs trimmed).
    pub parent_name: String,
    pub locators: Vec<Locator>,
}

impl DynHeader {
    /// Parses and checks a header read at some offset; `Err` is a one-line reason.
    pub fn parse(buf: &[u8; HEADER_SIZE]) -> Result<DynHeader, String> {
        if &buf[..8] != COOKIE {
            return Err("no dynamic disk header cookie \"cxsparse\"".into());
        }
        let stored = be_u32(buf, 36);
        let computed = checksum(buf, 36);
        if stored != computed {
            return Err(format!(
                "incorrect dynamic disk header checksum {stored:#010x} (computed {computed:#010x})"
            ));
        }
        let block_size = be_u32(buf, 32);
        if !block_size.is_power_of_two() || u64::from(block_size) < SECTOR {
            return Err(format!(
                "invalid block size {block_size:#x} (must be a power of two of at least 512)"
            ));
        }
        let max_table_entries = be_u32(buf, 28);
        if u64::from(max_table_entries) * 4 > MAX_BAT_BYTES {
            return Err(format!(
                "max table entries too large ({max_table_entries}, limit {})",
                MAX_BAT_BYTES / 4
            ));
        }
        let mut parent_unique_id = [0u8; 16];
        parent_unique_id.copy_from_slice(&buf[40..56]);
        Ok(DynHeader {
            table_offset: be_u64(buf, 16),
            max_table_entries,
            block_size,
            parent_unique_id,
            parent_name: utf16_be(&buf[64..576]),
            locators: parse_locators(&buf[576..768]),
        })
    }

    /// Sector bitmap bytes in front of each block: one bit per sector, padded to a sector.
    pub fn bitmap_size(&self) -> u64 {
        let sectors = u64::from(self.block_size) / SECTOR;
        sectors.div_ceil(8).div_ceil(SECTOR) * SECTOR
    }
}

fn parse_locators(raw: &[u8]) -> Vec<Locator> {
    raw.chunks_exact(24)
        .filter_map(|e| {
            let mut platform = [0u8; 4];
            platform.copy_from_slice(&e[..4]);
            if platform == [0; 4] {
                return None;
            }
            Some(Locator {
                platform,
                data_length: be_u32(e, 8),
                data_offset: be_u64(e, 16),
            })
        })
        .collect()
}

/// Decodes NUL-terminated UTF-16 (big- or little-endian) into a String, lossily.
fn utf16(raw: &[u8], big_endian: bool) -> String {
    let units: Vec<u16> = raw
        .chunks_exact(2)
        .map(|c| {
            if big_endian {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_le_bytes([c[0], c[1]])
            }
        })
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

pub fn utf16_be(raw: &[u8]) -> String {
    utf16(raw, true)
}

pub fn utf16_le(raw: &[u8]) -> String {
    utf16(raw, false)
}
