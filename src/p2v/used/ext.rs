//! ext2/3/4: the blocks the block bitmaps mark in use.
//!
//! Reads the superblock, then group by group the group descriptor and the group's block
//! bitmap (one block in memory at a time), and turns runs of set bits into byte ranges.
//! A group whose bitmap was never written (`BLOCK_UNINIT`) gets the bitmap the kernel
//! computes for it (`ext4_init_block_bitmap`): superblock backup, descriptor blocks and
//! reserved GDT blocks where the group has a backup, plus its own bitmaps and inode table
//! when they lie inside it. Layout rules follow the kernel (fs/ext4/balloc.c, super.c);
//! kernel.org's ext4 "Layout" and "Meta Block Groups" pages describe them.
//!
//! Checksums (`metadata_csum`, `gdt_csum`) are not verified: instead every field that
//! decides what is copied is range-checked, and a filesystem that fails a check is copied
//! whole by the caller, which is never wrong, only larger.

use converters::DiskSource;

use super::ranges::RangeList;

const SUPERBLOCK_OFFSET: u64 = 1024;
const SUPERBLOCK_LEN: usize = 1024;
const MAGIC: u64 = 0xEF53;

/// `s_state`: cleanly unmounted / errors detected.
const STATE_VALID: u64 = 0x1;
const STATE_ERROR: u64 = 0x2;

const COMPAT_SPARSE_SUPER2: u32 = 0x200;

const INCOMPAT_RECOVER: u32 = 0x4;
const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
const INCOMPAT_META_BG: u32 = 0x10;
const INCOMPAT_64BIT: u32 = 0x80;
/// Every incompat feature the kernel knows except `compression` (never merged): an
/// unknown one may change what the bitmaps mean.
const INCOMPAT_KNOWN: u32 = 0x2
    | INCOMPAT_RECOVER
    | INCOMPAT_JOURNAL_DEV
    | INCOMPAT_META_BG
    | 0x40
    | INCOMPAT_64BIT
    | 0x100
    | 0x200
    | 0x400
    | 0x1000
    | 0x2000
    | 0x4000
    | 0x8000
    | 0x10000
    | 0x20000;

const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
const RO_COMPAT_GDT_CSUM: u32 = 0x10;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
/// Known ro_compat features whose bitmaps mean "block in use" as usual. Bigalloc (bits
/// are clusters, 0x200) and next3 snapshots (an exclude bitmap, 0x80) are left out on
/// purpose.
const RO_COMPAT_PLAIN: u32 = RO_COMPAT_SPARSE_SUPER
    | 0x2
    | 0x4
    | 0x8
    | RO_COMPAT_GDT_CSUM
    | 0x20
    | 0x40
    | 0x100
    | RO_COMPAT_METADATA_CSUM
    | 0x800
    | 0x1000
    | 0x2000
    | 0x4000
    | 0x8000
    | 0x10000;

/// `bg_flags`: the block bitmap was never initialised.
const BG_BLOCK_UNINIT: u16 = 0x2;

/// Most ranges one filesystem's map keeps before neighbours are merged across small gaps
/// (16 bytes each: 32 MiB).
const MAX_RANGES: usize = 1 << 21;

/// What the bitmaps say about one filesystem.
#[derive(Debug)]
pub(super) struct ExtUsage {
    /// Absolute byte ranges on the disk, ascending and merged.
    pub ranges: Vec<(u64, u64)>,
    /// Blocks marked in use, plus the boot block(s) before the first group.
    pub used_blocks: u64,
    pub blocks_count: u64,
    pub block_size: u64,
    /// Non-zero when the map was coarsened to stay under its cap: free gaps of at most
    /// this many bytes are copied too.
    pub filled_gap: u64,
}

impl ExtUsage {
    pub fn fs_bytes(&self) -> u64 {
        self.blocks_count.saturating_mul(self.block_size)
    }
}

/// Why a filesystem's bitmaps were not used; the caller copies it whole and says this.
#[derive(Debug, thiserror::Error)]
pub(super) enum ExtError {
    #[error("reading it failed: {0}")]
    Read(#[from] converters::Error),
    #[error("corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Unsupported(String),
}

fn corrupt(what: impl Into<String>) -> ExtError {
    ExtError::Corrupt(what.into())
}

fn le16(buf: &[u8], off: usize) -> u64 {
    buf.get(off..off + 2)
        .map_or(0, |b| u64::from(u16::from_le_bytes([b[0], b[1]])))
}

fn le32(buf: &[u8], off: usize) -> u64 {
    buf.get(off..off + 4).map_or(0, |b| {
        u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    })
}

/// The superblock fields the bitmaps need, checked against each other and the partition.
#[derive(Debug)]
struct Super {
    block_size: u64,
    blocks_count: u64,
    first_data_block: u64,
    blocks_per_group: u64,
    inode_table_blocks: u64,
    desc_size: u64,
    reserved_gdt: u64,
    meta_bg: bool,
    first_meta_bg: u64,
    sparse_super: bool,
    /// `sparse_super2`: the only two groups (besides 0) with a backup.
    backup_bgs: Option<[u64; 2]>,
    /// `BLOCK_UNINIT` is honoured only with group descriptor checksums (the kernel's
    /// `ext4_has_group_desc_csum`).
    uninit_honoured: bool,
    groups: u64,
}

impl Super {
    fn parse(raw: &[u8], part_len: u64) -> Result<Super, ExtError> {
        if le16(raw, 0x38) != MAGIC {
            return Err(corrupt("no ext2/3/4 magic"));
        }
        let state = le16(raw, 0x3A);
        let rev = le32(raw, 0x4C);
        let compat = u32::try_from(le32(raw, 0x5C)).unwrap_or(u32::MAX);
        let incompat = u32::try_from(le32(raw, 0x60)).unwrap_or(u32::MAX);
        let ro_compat = u32::try_from(le32(raw, 0x64)).unwrap_or(u32::MAX);
        let (compat, incompat, ro_compat) = if rev == 0 {
            (0, 0, 0)
        } else {
            (compat, incompat, ro_compat)
        };

        // A filesystem that is mounted, needs journal recovery or has known errors may
        // have on-disk bitmaps behind the truth (the journal or the page cache holds the
        // newer ones): skipping a "free" block there would lose data.
        if incompat & INCOMPAT_RECOVER != 0 {
            return Err(ExtError::Unsupported(
                "the journal needs recovery (mounted or not cleanly unmounted), so the on-disk bitmaps may be stale".into(),
            ));
        }
        if state & STATE_VALID == 0 || state & STATE_ERROR != 0 {
            return Err(ExtError::Unsupported(format!(
                "state {state:#x}: not cleanly unmounted or has errors, so the bitmaps may be wrong"
            )));
        }
        if incompat & INCOMPAT_JOURNAL_DEV != 0 {
            return Err(ExtError::Unsupported(
                "an external journal device has no block bitmaps".into(),
            ));
        }
        if incompat & !INCOMPAT_KNOWN != 0 {
            return Err(ExtError::Unsupported(format!(
                "unknown incompat features {:#x}",
                incompat & !INCOMPAT_KNOWN
            )));
        }
        if ro_compat & !RO_COMPAT_PLAIN != 0 {
            return Err(ExtError::Unsupported(format!(
                "ro_compat features {:#x} (bigalloc, snapshots or unknown) change what the bitmaps mean",
                ro_compat & !RO_COMPAT_PLAIN
            )));
        }

        let log_block = le32(raw, 0x18);
        if log_block > 6 {
            return Err(corrupt(format!("block size 1024 << {log_block}")));
        }
        let block_size = 1024u64 << log_block;
        let is_64bit = incompat & INCOMPAT_64BIT != 0;
        let blocks_count = le32(raw, 0x04) | if is_64bit { le32(raw, 0x150) << 32 } else { 0 };
        let first_data_block = le32(raw, 0x14);
        let blocks_per_group = le32(raw, 0x20);
        let clusters_per_group = le32(raw, 0x24);
        let inodes_per_group = le32(raw, 0x28);
        let inodes_count = le32(raw, 0x00);
        let inode_size = if rev == 0 { 128 } else { le16(raw, 0x58) };
        let bits = block_size * 8;

        if first_data_block != u64::from(block_size == 1024) {
            return Err(corrupt(format!(
                "first data block {first_data_block} with {block_size}-byte blocks"
            )));
        }
        if blocks_per_group == 0 || blocks_per_group > bits {
            return Err(corrupt(format!("{blocks_per_group} blocks per group")));
        }
        if clusters_per_group != blocks_per_group && rev != 0 {
            return Err(corrupt(format!(
                "{clusters_per_group} clusters but {blocks_per_group} blocks per group without bigalloc"
            )));
        }
        if inodes_per_group == 0 || inodes_per_group > bits {
            return Err(corrupt(format!("{inodes_per_group} inodes per group")));
        }
        if !inode_size.is_power_of_two() || inode_size < 128 || inode_size > block_size {
            return Err(corrupt(format!("inode size {inode_size}")));
        }
        if blocks_count <= first_data_block {
            return Err(corrupt(format!("{blocks_count} blocks")));
        }
        match blocks_count.checked_mul(block_size) {
            Some(bytes) if bytes <= part_len => {}
            _ => {
                return Err(corrupt(format!(
                    "{blocks_count} blocks of {block_size} bytes do not fit the {part_len}-byte partition"
                )))
            }
        }
        let groups = (blocks_count - first_data_block).div_ceil(blocks_per_group);
        // The kernel refuses the same mismatch ("inodes count not valid").
        if groups.checked_mul(inodes_per_group) != Some(inodes_count) {
            return Err(corrupt(format!(
                "{inodes_count} inodes for {groups} groups of {inodes_per_group}"
            )));
        }
        let desc_size = if is_64bit { le16(raw, 0xFE) } else { 32 };
        if !desc_size.is_power_of_two() || !(32..=1024).contains(&desc_size) {
            return Err(corrupt(format!("group descriptor size {desc_size}")));
        }
        if is_64bit && desc_size < 64 {
            return Err(corrupt(format!(
                "group descriptor size {desc_size} with 64bit"
            )));
        }
        let reserved_gdt = le16(raw, 0xCE);
        if reserved_gdt > block_size / 4 {
            return Err(corrupt(format!("{reserved_gdt} reserved GDT blocks")));
        }
        let meta_bg = incompat & INCOMPAT_META_BG != 0;
        let backup_bgs =
            (compat & COMPAT_SPARSE_SUPER2 != 0).then(|| [le32(raw, 0x24C), le32(raw, 0x250)]);
        Ok(Super {
            block_size,
            blocks_count,
            first_data_block,
            blocks_per_group,
            inode_table_blocks: (inodes_per_group * inode_size).div_ceil(block_size),
            desc_size,
            reserved_gdt,
            meta_bg,
            first_meta_bg: if meta_bg { le32(raw, 0x104) } else { 0 },
            sparse_super: ro_compat & RO_COMPAT_SPARSE_SUPER != 0,
            backup_bgs,
            uninit_honoured: ro_compat & (RO_COMPAT_GDT_CSUM | RO_COMPAT_METADATA_CSUM) != 0,
            groups,
        })
    }

    fn descs_per_block(&self) -> u64 {
        self.block_size / self.desc_size
    }

    /// Blocks of the descriptor table that follows the primary superblock without meta_bg.
    fn gdt_blocks(&self) -> u64 {
        self.groups.div_ceil(self.descs_per_block())
    }

    fn first_block(&self, group: u64) -> u64 {
        self.first_data_block + group * self.blocks_per_group
    }

    /// The last group is usually shorter than the others.
    fn blocks_in_group(&self, group: u64) -> u64 {
        self.blocks_per_group
            .min(self.blocks_count.saturating_sub(self.first_block(group)))
    }

    /// The kernel's `ext4_bg_has_super`.
    fn has_super(&self, group: u64) -> bool {
        if group == 0 {
            return true;
        }
        if let Some([a, b]) = self.backup_bgs {
            return group == a || group == b;
        }
        if group == 1 || !self.sparse_super {
            return true;
        }
        if group.is_multiple_of(2) {
            return false;
        }
        [3u64, 5, 7].iter().any(|&base| {
            let mut n = base;
            while n < group {
                n *= base;
            }
            n == group
        })
    }

    /// Whether `group`'s descriptor lives in its meta group's own block (meta_bg) rather
    /// than in the table after the superblock.
    fn in_meta_group(&self, group: u64) -> bool {
        self.meta_bg && group / self.descs_per_block() >= self.first_meta_bg
    }

    /// The block holding the primary copy of `group`'s descriptor, and the byte offset in it.
    fn descriptor_location(&self, group: u64) -> (u64, usize) {
        let per_block = self.descs_per_block();
        let offset = usize::try_from((group % per_block) * self.desc_size).unwrap_or(0);
        // The table starts in the block after the superblock's (block 2 with 1 KiB blocks).
        let after_super = SUPERBLOCK_OFFSET / self.block_size + 1;
        let block = if self.in_meta_group(group) {
            let head = group / per_block * per_block;
            if head == 0 {
                after_super
            } else {
                self.first_block(head) + u64::from(self.has_super(head))
            }
        } else {
            after_super + group / per_block
        };
        (block, offset)
    }

    /// The kernel's `ext4_num_base_meta_blocks`: superblock copy, descriptor blocks and
    /// reserved GDT blocks at the head of `group`.
    fn base_meta_blocks(&self, group: u64) -> u64 {
        let sup = u64::from(self.has_super(group));
        if !self.in_meta_group(group) {
            if sup == 0 {
                return 0;
            }
            let gdt = if self.meta_bg {
                self.first_meta_bg
            } else {
                self.gdt_blocks()
            };
            return 1 + gdt + self.reserved_gdt;
        }
        let per_block = self.descs_per_block();
        let place = group % per_block;
        // The meta group's descriptor block has copies in its second and last possible group.
        sup + u64::from(place == 0 || place == 1 || place == per_block - 1)
    }
}

/// One group descriptor's fields that locate metadata.
#[derive(Debug, Clone, Copy)]
struct Desc {
    block_bitmap: u64,
    inode_bitmap: u64,
    inode_table: u64,
    flags: u16,
}

/// Reads descriptors group by group, keeping only the last descriptor block read.
struct Descriptors<'a> {
    disk: &'a dyn DiskSource,
    base: u64,
    block: Option<u64>,
    buf: Vec<u8>,
}

impl Descriptors<'_> {
    fn get(&mut self, sb: &Super, group: u64) -> Result<Desc, ExtError> {
        let (block, off) = sb.descriptor_location(group);
        if block >= sb.blocks_count {
            return Err(corrupt(format!(
                "group {group}'s descriptor would be in block {block}, past the end"
            )));
        }
        if self.block != Some(block) {
            self.disk
                .read_exact_at(&mut self.buf, self.base + block * sb.block_size)?;
            self.block = Some(block);
        }
        let wide = sb.desc_size >= 64;
        let field = |lo: usize, hi: usize| {
            le32(&self.buf, off + lo)
                | if wide {
                    le32(&self.buf, off + hi) << 32
                } else {
                    0
                }
        };
        let d = Desc {
            block_bitmap: field(0x00, 0x20),
            inode_bitmap: field(0x04, 0x24),
            inode_table: field(0x08, 0x28),
            flags: u16::try_from(le16(&self.buf, off + 0x12)).unwrap_or(0),
        };
        let inside = |b: u64| b >= sb.first_data_block && b < sb.blocks_count;
        if !inside(d.block_bitmap)
            || !inside(d.inode_bitmap)
            || !inside(d.inode_table)
            || d.inode_table + sb.inode_table_blocks > sb.blocks_count
        {
            return Err(corrupt(format!(
                "group {group}'s descriptor points outside the filesystem (bitmaps {}, {}, inode table {})",
                d.block_bitmap, d.inode_bitmap, d.inode_table
            )));
        }
        Ok(d)
    }
}

/// The blocks in use in the ext2/3/4 filesystem at `[start, start + len)` of `disk`.
pub(super) fn used_blocks(
    disk: &dyn DiskSource,
    start: u64,
    len: u64,
) -> Result<ExtUsage, ExtError> {
    if len < SUPERBLOCK_OFFSET + SUPERBLOCK_LEN as u64 {
        return Err(corrupt("too small to hold a superblock"));
    }
    let mut raw = [0u8; SUPERBLOCK_LEN];
    disk.read_exact_at(&mut raw, start + SUPERBLOCK_OFFSET)?;
    let sb = Super::parse(&raw, len)?;
    let bs = sb.block_size;
    let block_len = usize::try_from(bs).map_err(|_| corrupt("block size"))?;

    let mut out = RangeList::new(MAX_RANGES, bs);
    // Blocks before the first group (the boot block of a 1 KiB-block filesystem) are in
    // no bitmap but may hold a boot loader: always copied.
    out.push(start, start + sb.first_data_block * bs);
    let mut used = sb.first_data_block;

    let mut descs = Descriptors {
        disk,
        base: start,
        block: None,
        buf: vec![0u8; block_len],
    };
    let mut bitmap = vec![0u8; block_len];
    for group in 0..sb.groups {
        let d = descs.get(&sb, group)?;
        let first = sb.first_block(group);
        let n = sb.blocks_in_group(group);
        if sb.uninit_honoured && d.flags & BG_BLOCK_UNINIT != 0 {
            init_bitmap(&sb, group, &d, &mut bitmap)?;
        } else {
            disk.read_exact_at(&mut bitmap, start + d.block_bitmap * bs)?;
        }
        used += bit_runs(&bitmap, n, |a, b| {
            out.push(start + (first + a) * bs, start + (first + b) * bs);
        });
    }
    Ok(ExtUsage {
        filled_gap: out.filled_gap(),
        ranges: out.into_vec(),
        used_blocks: used,
        blocks_count: sb.blocks_count,
        block_size: bs,
    })
}

/// The bitmap the kernel builds for a `BLOCK_UNINIT` group (`ext4_init_block_bitmap`).
fn init_bitmap(sb: &Super, group: u64, d: &Desc, bitmap: &mut [u8]) -> Result<(), ExtError> {
    bitmap.fill(0);
    let n = sb.blocks_in_group(group);
    let head = sb.base_meta_blocks(group);
    if head > n {
        return Err(corrupt(format!(
            "group {group}: {head} metadata blocks in a group of {n}"
        )));
    }
    let first = sb.first_block(group);
    let mut mark = |from: u64, to: u64| {
        // Only the part inside this group: with flex_bg the bitmaps and inode table
        // usually live in another group, whose own bitmap has them.
        let (a, b) = (from.max(first), to.min(first + n));
        for bit in a.saturating_sub(first)..b.saturating_sub(first) {
            if let Some(byte) = usize::try_from(bit / 8)
                .ok()
                .and_then(|i| bitmap.get_mut(i))
            {
                *byte |= 1 << (bit % 8);
            }
        }
    };
    mark(first, first + head);
    mark(d.block_bitmap, d.block_bitmap + 1);
    mark(d.inode_bitmap, d.inode_bitmap + 1);
    mark(d.inode_table, d.inode_table + sb.inode_table_blocks);
    Ok(())
}

/// Calls `f(a, b)` for each run of set bits `[a, b)` among the first `n` bits of `bitmap`
/// (ext bitmaps are little-endian: bit i is bit i % 8 of byte i / 8) and returns how many
/// bits are set. Bits past the bitmap count as set, which copies rather than skips.
fn bit_runs(bitmap: &[u8], n: u64, mut f: impl FnMut(u64, u64)) -> u64 {
    let byte_at = |i: u64| {
        usize::try_from(i / 8)
            .ok()
            .and_then(|i| bitmap.get(i).copied())
            .unwrap_or(0xFF)
    };
    let mut set = 0u64;
    let mut run: Option<u64> = None;
    let mut i = 0u64;
    while i < n {
        let byte = byte_at(i);
        // Whole bytes of one value are the common case in large bitmaps.
        let (step, on) = if i.is_multiple_of(8) && i + 8 <= n && (byte == 0 || byte == 0xFF) {
            (8, byte == 0xFF)
        } else {
            (1, byte >> (i % 8) & 1 == 1)
        };
        match (on, run) {
            (true, None) => run = Some(i),
            (false, Some(a)) => {
                f(a, i);
                run = None;
            }
            _ => {}
        }
        if on {
            set += step;
        }
        i += step;
    }
    if let Some(a) = run {
        f(a, n);
    }
    set
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn bit_runs_find_runs_and_count() {
        let bitmap = [0b1111_0001u8, 0xFF, 0x00, 0b0000_0001];
        let mut runs = Vec::new();
        let set = bit_runs(&bitmap, 26, |a, b| runs.push((a, b)));
        assert_eq!(runs, vec![(0, 1), (4, 16), (24, 25)]);
        assert_eq!(set, 1 + 12 + 1);
        // A run reaching the last bit is closed at n.
        let mut runs = Vec::new();
        assert_eq!(bit_runs(&[0xFF], 5, |a, b| runs.push((a, b))), 5);
        assert_eq!(runs, vec![(0, 5)]);
    }

    #[test]
    fn sparse_super_groups() {
        let sb = Super {
            block_size: 4096,
            blocks_count: 1 << 30,
            first_data_block: 0,
            blocks_per_group: 32768,
            inode_table_blocks: 512,
            desc_size: 64,
            reserved_gdt: 0,
            meta_bg: false,
            first_meta_bg: 0,
            sparse_super: true,
            backup_bgs: None,
            uninit_honoured: true,
            groups: 32768,
        };
        let with: Vec<u64> = (0..100).filter(|&g| sb.has_super(g)).collect();
        assert_eq!(with, vec![0, 1, 3, 5, 7, 9, 25, 27, 49, 81]);
        let sb2 = Super {
            backup_bgs: Some([1, 99]),
            ..sb
        };
        let with: Vec<u64> = (0..100).filter(|&g| sb2.has_super(g)).collect();
        assert_eq!(with, vec![0, 1, 99]);
    }
}
