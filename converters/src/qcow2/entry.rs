//! L1/L2 table entries and the compressed cluster descriptor, shared by reader and writer.
//!
//! ```text
//! L1 entry:  63 COPIED | 9..=55 L2 table offset
//! L2 entry:  63 COPIED | 62 COMPRESSED | 0..=61 descriptor
//!   standard:   9..=55 host cluster offset | 0 reads-as-zero
//!   compressed: x = 62 - (cluster_bits - 8)
//!               0..x host byte offset | x..=61 additional 512-byte sectors
//! extended L2 (16 bytes): the entry above, then a bitmap:
//!               0..=31 subcluster allocated | 32..=63 subcluster reads as zero
//! ```

pub const COPIED: u64 = 1 << 63;
pub const COMPRESSED: u64 = 1 << 62;
pub const ZERO: u64 = 1;
/// Bits 9..=55: an L2 table offset (in an L1 entry) or a host cluster offset.
pub const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
pub const SECTOR: u64 = 512;

/// Where a compressed cluster's bytes are: `len` bytes from `offset` (the sector count
/// rounded to whole sectors, as qemu reads them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressedDescriptor {
    pub offset: u64,
    pub sectors: u64,
}

impl CompressedDescriptor {
    /// Bit position `x` where the sector count starts.
    fn shift(cluster_bits: u32) -> u32 {
        62 - (cluster_bits - 8)
    }

    pub fn decode(entry: u64, cluster_bits: u32) -> CompressedDescriptor {
        let x = Self::shift(cluster_bits);
        let offset = entry & ((1u64 << x) - 1);
        let count_mask = (1u64 << (cluster_bits - 8)) - 1;
        CompressedDescriptor {
            offset,
            sectors: ((entry >> x) & count_mask) + 1,
        }
    }

    /// Bytes from `offset` to the end of the last sector (qemu's `csize`).
    pub fn len(&self) -> u64 {
        self.sectors * SECTOR - (self.offset & (SECTOR - 1))
    }

    /// Host byte range the refcounts account for: whole sectors.
    pub fn sector_range(&self) -> (u64, u64) {
        let start = self.offset & !(SECTOR - 1);
        (start, start + self.sectors * SECTOR)
    }

    /// The L2 entry for `len` compressed bytes at `offset`; None if they do not fit the
    /// descriptor (offset too high or data longer than the sector field allows).
    pub fn encode(offset: u64, len: u64, cluster_bits: u32) -> Option<u64> {
        let x = Self::shift(cluster_bits);
        if len == 0 || offset >= 1u64 << x.min(56) {
            return None;
        }
        let last = (offset + len - 1) / SECTOR;
        let extra = last - offset / SECTOR;
        if extra > (1u64 << (cluster_bits - 8)) - 1 {
            return None;
        }
        Some(COMPRESSED | (extra << x) | offset)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn compressed_descriptor_round_trips() {
        for bits in [12u32, 16, 21] {
            let e = CompressedDescriptor::encode(0x12_3400 + 7, 3000, bits).unwrap();
            let d = CompressedDescriptor::decode(e, bits);
            assert_eq!(d.offset, 0x12_3407);
            assert!(d.len() >= 3000);
            assert!(d.len() < 3000 + 512);
        }
        assert!(CompressedDescriptor::encode(0, 4096, 9).is_none());
    }
}
