//! The few superblock fields ferry reads itself: the label and UUID, the size check
//! against the range, and where an inode sits, for the owner the reader does not report.

use crate::blockdev::BlockDevice;

/// `XFSB`.
pub(super) const SB_MAGIC: u32 = 0x5846_5342;
/// `IN`, the first bytes of every inode.
const INODE_MAGIC: u16 = 0x494e;
/// Bytes of the inode core read for the owner: up to and including v3's `di_ino`.
const CORE_BYTES: usize = 160;

/// Superblock geometry, validated so that every shift below is in range.
#[derive(Clone, Debug)]
pub(super) struct Geometry {
    pub blocklog: u8,
    pub inodelog: u8,
    pub inopblog: u8,
    pub agblklog: u8,
    pub agblocks: u32,
    pub agcount: u32,
    pub inodesize: u16,
    /// Bytes of the data section: `sb_dblocks` blocks.
    pub bytes: u64,
    /// Version 5 (CRCs, self-describing metadata).
    pub v5: bool,
    pub uuid: [u8; 16],
    pub fname: [u8; 12],
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub(super) fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The magic number at the start of `sb`, 0 when it is too short to hold one.
pub(super) fn magic(sb: &[u8]) -> u32 {
    be32(sb, 0).unwrap_or(0)
}

impl Geometry {
    /// Parse the first 512 bytes of the primary superblock.
    pub(super) fn parse(sb: &[u8]) -> Result<Self, String> {
        let short = || "superblock is cut short".to_string();
        let byte = |at: usize| sb.get(at).copied().ok_or_else(short);
        let blocksize = be32(sb, 4).ok_or_else(short)?;
        let dblocks = be64(sb, 8).ok_or_else(short)?;
        let agblocks = be32(sb, 84).ok_or_else(short)?;
        let agcount = be32(sb, 88).ok_or_else(short)?;
        let versionnum = be16(sb, 100).ok_or_else(short)?;
        let inodesize = be16(sb, 104).ok_or_else(short)?;
        let (blocklog, inodelog, inopblog, agblklog) =
            (byte(120)?, byte(122)?, byte(123)?, byte(124)?);
        let uuid: [u8; 16] = sb
            .get(32..48)
            .ok_or_else(short)?
            .try_into()
            .map_err(|_| short())?;
        let fname: [u8; 12] = sb
            .get(108..120)
            .ok_or_else(short)?
            .try_into()
            .map_err(|_| short())?;
        let sane = (9..=16).contains(&blocklog)
            && 1u32.checked_shl(u32::from(blocklog)) == Some(blocksize)
            && (8..=11).contains(&inodelog)
            && 1u32.checked_shl(u32::from(inodelog)) == Some(u32::from(inodesize))
            && blocklog.checked_sub(inodelog) == Some(inopblog)
            && (1..=31).contains(&agblklog)
            && agblocks != 0
            && u64::from(agblocks) <= 1u64 << agblklog
            && agcount != 0;
        if !sane {
            return Err(format!(
                "impossible geometry ({blocksize}-byte blocks, block log {blocklog}, \
                 {inodesize}-byte inodes, inode log {inodelog}, {agcount} AGs of {agblocks} \
                 blocks, AG block log {agblklog})"
            ));
        }
        let bytes = dblocks
            .checked_mul(u64::from(blocksize))
            .ok_or_else(|| format!("{dblocks} blocks of {blocksize} bytes overflow"))?;
        Ok(Self {
            blocklog,
            inodelog,
            inopblog,
            agblklog,
            agblocks,
            agcount,
            inodesize,
            bytes,
            v5: versionnum & 0xf == 5,
            uuid,
            fname,
        })
    }

    /// The label (`sb_fname`) as `xfs_admin -l` prints it: up to the first NUL.
    pub(super) fn label(&self) -> String {
        let end = self.fname.iter().position(|&b| b == 0).unwrap_or(12);
        String::from_utf8_lossy(&self.fname[..end]).into_owned()
    }

    /// Byte offset of inode `ino`, `None` when the number points outside the filesystem.
    pub(super) fn inode_offset(&self, ino: u64) -> Option<u64> {
        let agino_bits = u32::from(self.agblklog) + u32::from(self.inopblog);
        let agno = ino.checked_shr(agino_bits).unwrap_or(0);
        if agno >= u64::from(self.agcount) {
            return None;
        }
        let agino = ino & ((1u64 << agino_bits) - 1);
        let agbno = agino >> self.inopblog;
        if agbno >= u64::from(self.agblocks) {
            return None;
        }
        let index = agino & ((1u64 << self.inopblog) - 1);
        let block = agno
            .checked_mul(u64::from(self.agblocks))?
            .checked_add(agbno)?;
        block
            .checked_shl(u32::from(self.blocklog))?
            .checked_add(index << self.inodelog)
    }

    /// Owner (`di_uid`, `di_gid`) of inode `ino`, whose mode the reader reported as
    /// `mode`. The reader replays a dirty log in memory and does not report owners, so
    /// this reads the inode as it is on the device: when that copy is not the same inode
    /// (a magic, mode or, on v5, inode number that disagrees: the inode exists only in
    /// the log), the owner is reported as root.
    pub(super) fn owner(&self, dev: &dyn BlockDevice, ino: u64, mode: u32) -> (u32, u32) {
        let Some(at) = self.inode_offset(ino) else {
            return (0, 0);
        };
        let mut core = vec![0u8; CORE_BYTES.min(usize::from(self.inodesize))];
        if dev.read_at(&mut core, at).is_err() {
            return (0, 0);
        }
        let same = be16(&core, 0) == Some(INODE_MAGIC)
            && be16(&core, 2).map(u32::from) == Some(mode)
            && (!self.v5 || core.get(4) != Some(&3) || be64(&core, 152) == Some(ino));
        match (same, be32(&core, 8), be32(&core, 12)) {
            (true, Some(uid), Some(gid)) => (uid, gid),
            _ => (0, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sb() -> Vec<u8> {
        let mut sb = vec![0u8; 512];
        sb[0..4].copy_from_slice(&SB_MAGIC.to_be_bytes());
        sb[4..8].copy_from_slice(&4096u32.to_be_bytes());
        sb[8..16].copy_from_slice(&65536u64.to_be_bytes());
        sb[84..88].copy_from_slice(&16384u32.to_be_bytes());
        sb[88..92].copy_from_slice(&4u32.to_be_bytes());
        sb[100..102].copy_from_slice(&0xb4a5u16.to_be_bytes());
        sb[104..106].copy_from_slice(&512u16.to_be_bytes());
        sb[108..113].copy_from_slice(b"guest");
        sb[120] = 12;
        sb[122] = 9;
        sb[123] = 3;
        sb[124] = 14;
        sb
    }

    #[test]
    fn inode_numbers_map_to_offsets() {
        let g = Geometry::parse(&sb()).unwrap();
        assert!(g.v5);
        assert_eq!(g.label(), "guest");
        assert_eq!(g.bytes, 65536 * 4096);
        // Root inode of a default mkfs: AG 0, block 16, slot 0.
        assert_eq!(g.inode_offset(128), Some(16 * 4096));
        assert_eq!(g.inode_offset(131), Some(16 * 4096 + 3 * 512));
        // AG 1 starts at inode number 1 << (14 + 3).
        assert_eq!(g.inode_offset((1 << 17) + 8), Some((16384 + 1) * 4096));
        assert_eq!(g.inode_offset(4 << 17), None);
        assert_eq!(g.inode_offset(u64::MAX), None);
        // A block number past the AG's end (AGs shorter than 1 << agblklog).
        let mut short = sb();
        short[84..88].copy_from_slice(&16000u32.to_be_bytes());
        let g = Geometry::parse(&short).unwrap();
        assert_eq!(g.inode_offset(16100 << 3), None);
        assert_eq!(g.inode_offset((1 << 17) + 8), Some((16000 + 1) * 4096));
    }

    #[test]
    fn hostile_geometry_is_refused() {
        for (at, value) in [
            (120, 40u8),
            (120, 0),
            (122, 13),
            (123, 7),
            (124, 0),
            (124, 60),
        ] {
            let mut b = sb();
            b[at] = value;
            assert!(Geometry::parse(&b).is_err(), "byte {at} = {value}");
        }
        let mut b = sb();
        b[88..92].copy_from_slice(&0u32.to_be_bytes());
        assert!(Geometry::parse(&b).is_err());
        let mut b = sb();
        b[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(Geometry::parse(&b).is_err());
        assert!(Geometry::parse(&sb()[..100]).is_err());
        assert_eq!(magic(&[0x58]), 0);
    }
}
