//! The used-blocks map of a disk: which byte ranges a P2V image must copy.
//!
//! Rules, area by area (each area becomes one [`UsedRegion`] saying what was decided):
//!
//! - the partition-table area, from byte 0 up to the first partition (MBR or protective
//!   MBR and GPT, plus the boot loader gap where GRUB's core.img lives), is copied, and
//!   so is a GPT's backup at the end of the disk;
//! - ext2/3/4: only the blocks the block bitmaps mark in use (`ext.rs`), so deleted files
//!   are not copied even when their bytes are non-zero; the bytes of the partition past
//!   the filesystem's end are zero;
//! - swap: zero except the first 4 KiB (the header with the UUID fstab names);
//! - everything else (LVM PV, xfs, btrfs, vfat, ntfs, unrecognised) is copied whole, and so
//!   is an ext filesystem whose superblock or descriptors do not check out, or that is not
//!   cleanly unmounted: a larger image is never wrong, a skipped block can be;
//! - space outside every partition is zero; in an MBR extended partition the gaps before
//!   logical partitions (which hold their boot records) are copied, the rest is zero.
//!
//! [`UsedOnly`] is the disk seen through the map: bytes outside it read as zeros and are
//! reported as `Zero` extents, so the copy engine never reads them and `verify` compares
//! the used-only view with the output.
//!
//! DESIGN: the bitmaps are read by a small reader here (`ext.rs`) rather than through
//! `rust-fs-ext4` 0.8. That crate does expose superblock and group descriptor parsing, but
//! only `fixups` depends on it (this crate would need a new dependency), it reads through
//! its own `BlockDevice` and opens whole filesystems (descriptor table, checksums, journal)
//! where this needs one descriptor and one bitmap block at a time, and it has no rule for
//! the bitmap of a `BLOCK_UNINIT` group, which is the part easiest to get wrong. The
//! layout rules (sparse_super/sparse_super2 backups, meta_bg descriptor placement) are the
//! kernel's and agree with that crate's.

mod ext;
mod ranges;
mod table;
mod view;

#[cfg(test)]
mod tests;

use serde::Serialize;

use converters::DiskSource;

use crate::layout::{read_layout, DiskLayout, Filesystem, LayoutError, TableKind};

pub use view::UsedOnly;

/// One area of the disk and what the map does with it, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct UsedRegion {
    pub start: u64,
    pub len: u64,
    /// E.g. "partition 1 ext4: 1234 of 5000 blocks in use (4096-byte blocks)".
    pub why: String,
}

/// The byte ranges of a disk worth copying.
#[derive(Debug, Clone, Serialize)]
pub struct UsedMap {
    pub disk_size: u64,
    /// Half-open byte ranges `[start, end)` to copy: sorted, merged, within the disk.
    pub ranges: Vec<(u64, u64)>,
    /// One per area, sorted by start, covering the disk.
    pub regions: Vec<UsedRegion>,
    /// The total length of `ranges`.
    pub used_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UsedError {
    #[error(transparent)]
    Read(#[from] converters::Error),
    #[error("{what}")]
    Corrupt { what: String },
}

impl From<LayoutError> for UsedError {
    fn from(e: LayoutError) -> Self {
        match e {
            LayoutError::Read(e) => UsedError::Read(e),
            LayoutError::Table(what) => UsedError::Corrupt {
                what: format!("partition table: {what}"),
            },
        }
    }
}

/// The first bytes of a swap area kept: the 4 KiB header page with its UUID and label.
const SWAP_HEADER: u64 = 4096;
/// Bytes copied as partition-table area on a partitioned disk with no partition.
const MIB: u64 = 1 << 20;

/// Reads the partition table and every filesystem's allocation and returns what to copy.
/// Only an unreadable disk or a broken partition table fail; a filesystem that cannot be
/// read is copied whole, with a region saying why.
pub fn used_map(disk: &dyn DiskSource) -> Result<UsedMap, UsedError> {
    let layout = read_layout(disk)?;
    let mut map = Builder::new(disk.size());
    match layout.table {
        TableKind::None => map.whole_disk(disk, layout.whole_disk_filesystem),
        TableKind::Mbr | TableKind::Gpt => map.partitioned(disk, &layout)?,
    }
    Ok(map.finish())
}

struct Builder {
    size: u64,
    ranges: Vec<(u64, u64)>,
    regions: Vec<UsedRegion>,
}

impl Builder {
    fn new(size: u64) -> Self {
        Builder {
            size,
            ranges: Vec::new(),
            regions: Vec::new(),
        }
    }

    fn region(&mut self, start: u64, end: u64, why: String) {
        let end = end.min(self.size);
        if start < end {
            self.regions.push(UsedRegion {
                start,
                len: end - start,
                why,
            });
        }
    }

    fn copy(&mut self, start: u64, end: u64, why: String) {
        self.ranges.push((start, end.min(self.size)));
        self.region(start, end, why);
    }

    fn whole_disk(&mut self, disk: &dyn DiskSource, fs: Option<Filesystem>) {
        let size = self.size;
        match fs {
            Some(fs) => self.filesystem(disk, "whole disk", 0, size, Some(fs)),
            None => self.copy(
                0,
                size,
                "no partition table or filesystem recognised: copied whole".into(),
            ),
        }
    }

    fn partitioned(&mut self, disk: &dyn DiskSource, layout: &DiskLayout) -> Result<(), UsedError> {
        let size = self.size;
        let first_start = layout
            .partitions
            .iter()
            .map(|p| p.start)
            .min()
            .unwrap_or(MIB)
            .min(size);
        self.copy(0, first_start, "partition table and boot loader gap".into());
        if layout.table == TableKind::Gpt {
            let (start, end) = table::gpt_backup(disk, layout.sector_size)?;
            self.copy(start, end, "backup GPT".into());
        }
        let bounds: Vec<(u64, u64)> = layout
            .partitions
            .iter()
            .map(|p| (p.start.min(size), p.start.saturating_add(p.size).min(size)))
            .collect();
        for (p, &(start, end)) in layout.partitions.iter().zip(&bounds) {
            if start >= end {
                continue;
            }
            let label = format!("partition {}", p.number);
            if layout.table == TableKind::Mbr && is_extended(&p.type_id) {
                let logical: Vec<(u64, u64)> = layout
                    .partitions
                    .iter()
                    .zip(&bounds)
                    .filter(|(q, _)| !is_extended(&q.type_id))
                    .map(|(_, &b)| b)
                    .collect();
                self.extended(&label, start, end, logical);
                continue;
            }
            self.filesystem(disk, &label, start, end, p.filesystem);
        }
        Ok(())
    }

    /// An MBR extended partition `[start, end)`: each logical partition's boot record
    /// (EBR) sits in the gap before it, so those gaps are copied; space after the last
    /// logical partition is referred to by no EBR and is zero, except the first sector of
    /// an extended partition without logical partitions (the empty chain's only EBR).
    fn extended(&mut self, label: &str, start: u64, end: u64, logical: Vec<(u64, u64)>) {
        for (a, b) in uncovered(start, end, logical) {
            if b < end {
                self.copy(a, b, format!("{label} (extended): boot record"));
            } else if a == start {
                self.ranges.push((a, a.saturating_add(512).min(b)));
                self.region(
                    a,
                    b,
                    format!("{label} (extended): zero except its boot record"),
                );
            } else {
                self.region(a, b, format!("{label} (extended): unallocated: zero"));
            }
        }
    }

    /// The rule for one area `[start, end)` holding `fs`.
    fn filesystem(
        &mut self,
        disk: &dyn DiskSource,
        label: &str,
        start: u64,
        end: u64,
        fs: Option<Filesystem>,
    ) {
        let Some(fs) = fs else {
            self.copy(
                start,
                end,
                format!("{label}: no filesystem recognised: copied whole"),
            );
            return;
        };
        let name = fs.name();
        match fs {
            Filesystem::Ext2 | Filesystem::Ext3 | Filesystem::Ext4 => {
                match ext::used_blocks(disk, start, end - start) {
                    Ok(usage) => {
                        let mut why = format!(
                            "{label} {name}: {} of {} blocks in use ({}-byte blocks)",
                            usage.used_blocks, usage.blocks_count, usage.block_size
                        );
                        if usage.filled_gap > 0 {
                            why += &format!(
                                "; free gaps up to {} bytes copied too, to keep the map small",
                                usage.filled_gap
                            );
                        }
                        let tail = (end - start).saturating_sub(usage.fs_bytes());
                        if tail > 0 {
                            why += &format!("; the {tail} bytes past the filesystem's end: zero");
                        }
                        self.ranges.extend(usage.ranges);
                        self.region(start, end, why);
                    }
                    Err(e) => self.copy(start, end, format!("{label} {name}: copied whole ({e})")),
                }
            }
            Filesystem::Swap => {
                self.ranges
                    .push((start, start.saturating_add(SWAP_HEADER).min(end)));
                self.region(
                    start,
                    end,
                    format!(
                        "{label} swap: zero except its {SWAP_HEADER}-byte header (UUID, label)"
                    ),
                );
            }
            _ => self.copy(
                start,
                end,
                format!("{label} {name}: copied whole (ferry reads ext2/3/4 bitmaps only)"),
            ),
        }
    }

    fn finish(mut self) -> UsedMap {
        let size = self.size;
        for r in &mut self.ranges {
            r.1 = r.1.min(size);
        }
        ranges::normalize(&mut self.ranges);
        self.regions.sort_by_key(|r| (r.start, r.len));
        let covered = self
            .regions
            .iter()
            .map(|r| (r.start, r.start + r.len))
            .collect();
        for (a, b) in uncovered(0, size, covered) {
            self.region(a, b, "unpartitioned: zero".into());
        }
        self.regions.sort_by_key(|r| (r.start, r.len));
        UsedMap {
            disk_size: size,
            used_bytes: self.ranges.iter().map(|(s, e)| e - s).sum(),
            ranges: self.ranges,
            regions: self.regions,
        }
    }
}

/// MBR types of extended partitions (CHS, LBA, Linux), as `read_layout` prints them.
fn is_extended(type_id: &str) -> bool {
    matches!(type_id, "0x05" | "0x0f" | "0x85")
}

/// The parts of `[start, end)` that none of `covered` overlaps.
fn uncovered(start: u64, end: u64, mut covered: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges::normalize(&mut covered);
    let mut out = Vec::new();
    let mut pos = start;
    for (a, b) in covered {
        if b <= pos || a >= end {
            continue;
        }
        if a > pos {
            out.push((pos, a));
        }
        pos = pos.max(b);
    }
    if pos < end {
        out.push((pos, end));
    }
    out
}
