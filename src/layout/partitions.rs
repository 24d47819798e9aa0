//! Partition tables: GPT (gptman, which also finds 4 KiB-sector GPTs) when the protective
//! MBR says so, else MBR with its logical partitions (mbrman), else none.

use serde::Serialize;

use converters::DiskSource;

use super::cursor::SourceCursor;
use super::filesystems::{detect_filesystem, Filesystem};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    Mbr,
    Gpt,
    None,
}

#[derive(Debug, Clone, Serialize)]
pub struct Partition {
    /// 1-based, as Linux numbers them (logical MBR partitions start at 5).
    pub number: u32,
    pub start: u64,
    pub size: u64,
    /// MBR type byte as `0x83`, or the GPT type GUID.
    pub type_id: String,
    pub name: Option<String>,
    pub bootable: bool,
    pub filesystem: Option<Filesystem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiskLayout {
    pub table: TableKind,
    pub sector_size: u64,
    pub partitions: Vec<Partition>,
    /// A filesystem on the whole disk (no partition table), e.g. a raw partition dump.
    pub whole_disk_filesystem: Option<Filesystem>,
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error(transparent)]
    Read(#[from] converters::Error),
    #[error("partition table: {0}")]
    Table(String),
}

const MBR_PROTECTIVE_GPT: u8 = 0xEE;

/// Reads the partition table of `source` and recognises each partition's filesystem.
pub fn read_layout(source: &dyn DiskSource) -> Result<DiskLayout, LayoutError> {
    if source.size() < 512 {
        return Ok(empty_layout(None));
    }
    let mut sector0 = [0u8; 512];
    source.read_exact_at(&mut sector0, 0)?;
    if sector0[510..512] != [0x55, 0xAA] {
        let fs = detect_filesystem(source, 0, source.size())?;
        return Ok(empty_layout(fs));
    }
    let first_type = sector0[446 + 4];
    if first_type == MBR_PROTECTIVE_GPT {
        return read_gpt(source);
    }
    // A FAT/NTFS boot sector also ends in 55 AA: a whole-disk filesystem wins over an
    // "MBR" whose entries are boot code.
    if let Some(fs) = detect_filesystem(source, 0, source.size())? {
        return Ok(empty_layout(Some(fs)));
    }
    read_mbr(source)
}

fn empty_layout(fs: Option<Filesystem>) -> DiskLayout {
    DiskLayout {
        table: TableKind::None,
        sector_size: 512,
        partitions: Vec::new(),
        whole_disk_filesystem: fs,
    }
}

fn read_gpt(source: &dyn DiskSource) -> Result<DiskLayout, LayoutError> {
    let mut cursor = SourceCursor::new(source);
    let gpt = gptman::GPT::find_from(&mut cursor).map_err(|e| LayoutError::Table(e.to_string()))?;
    let ss = gpt.sector_size;
    let mut partitions = Vec::new();
    for (number, entry) in gpt.iter().filter(|(_, e)| e.is_used()) {
        let start = entry.starting_lba.saturating_mul(ss);
        let size = (entry.ending_lba.saturating_sub(entry.starting_lba) + 1).saturating_mul(ss);
        partitions.push(Partition {
            number,
            start,
            size,
            type_id: guid_string(&entry.partition_type_guid),
            name: Some(entry.partition_name.as_str().to_string()).filter(|n| !n.is_empty()),
            bootable: false,
            filesystem: partition_filesystem(source, start, size)?,
        });
    }
    Ok(DiskLayout {
        table: TableKind::Gpt,
        sector_size: ss,
        partitions,
        whole_disk_filesystem: None,
    })
}

fn read_mbr(source: &dyn DiskSource) -> Result<DiskLayout, LayoutError> {
    let mut cursor = SourceCursor::new(source);
    let mbr =
        mbrman::MBR::read_from(&mut cursor, 512).map_err(|e| LayoutError::Table(e.to_string()))?;
    let mut partitions = Vec::new();
    for (number, entry) in mbr.iter().filter(|(_, e)| e.is_used()) {
        let start = u64::from(entry.starting_lba) * 512;
        let size = u64::from(entry.sectors) * 512;
        let extended = matches!(entry.sys, 0x05 | 0x0F | 0x85);
        partitions.push(Partition {
            number: u32::try_from(number).unwrap_or(u32::MAX),
            start,
            size,
            type_id: format!("{:#04x}", entry.sys),
            name: None,
            bootable: entry.boot == mbrman::BOOT_ACTIVE,
            filesystem: if extended {
                None
            } else {
                partition_filesystem(source, start, size)?
            },
        });
    }
    Ok(DiskLayout {
        table: TableKind::Mbr,
        sector_size: 512,
        partitions,
        whole_disk_filesystem: None,
    })
}

/// A partition entry may point past the end of a truncated image: that is not an error
/// for listing, it just has no recognisable filesystem.
fn partition_filesystem(
    source: &dyn DiskSource,
    start: u64,
    size: u64,
) -> Result<Option<Filesystem>, LayoutError> {
    if start >= source.size() || size == 0 {
        return Ok(None);
    }
    Ok(detect_filesystem(source, start, size)?)
}

/// GPT GUIDs are stored mixed-endian; this prints them the way tools show them.
fn guid_string(g: &[u8; 16]) -> String {
    format!(
        "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
        g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]
    )
}
