//! Filesystem recognition by superblock magic (what blkid does for the common Linux and
//! Windows filesystems), reading at most the first 68 KiB of a partition.

use serde::Serialize;

use converters::{DiskSource, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Filesystem {
    Ext2,
    Ext3,
    Ext4,
    Xfs,
    Btrfs,
    Vfat,
    Ntfs,
    Swap,
    #[serde(rename = "lvm2_member")]
    LvmPv,
    Iso9660,
}

impl Filesystem {
    pub fn name(self) -> &'static str {
        match self {
            Filesystem::Ext2 => "ext2",
            Filesystem::Ext3 => "ext3",
            Filesystem::Ext4 => "ext4",
            Filesystem::Xfs => "xfs",
            Filesystem::Btrfs => "btrfs",
            Filesystem::Vfat => "vfat",
            Filesystem::Ntfs => "ntfs",
            Filesystem::Swap => "swap",
            Filesystem::LvmPv => "LVM2_member",
            Filesystem::Iso9660 => "iso9660",
        }
    }
}

/// Enough to reach btrfs' superblock at 64 KiB and iso9660's volume descriptor at 32 KiB.
const PROBE_LEN: u64 = 68 * 1024;

/// Recognises the filesystem that starts at `offset` and spans `len` bytes.
pub fn detect_filesystem(
    source: &dyn DiskSource,
    offset: u64,
    len: u64,
) -> Result<Option<Filesystem>> {
    let n = PROBE_LEN.min(len).min(source.size().saturating_sub(offset));
    let mut buf = vec![0u8; usize::try_from(n).unwrap_or(0)];
    source.read_exact_at(&mut buf, offset)?;
    Ok(classify(&buf))
}

fn at(buf: &[u8], off: usize, magic: &[u8]) -> bool {
    buf.get(off..off + magic.len()) == Some(magic)
}

fn le32(buf: &[u8], off: usize) -> u32 {
    buf.get(off..off + 4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Classifies a partition's first bytes.
pub fn classify(buf: &[u8]) -> Option<Filesystem> {
    if at(buf, 0x438, &[0x53, 0xEF]) {
        return Some(ext_kind(buf));
    }
    if at(buf, 0, b"XFSB") {
        return Some(Filesystem::Xfs);
    }
    if at(buf, 0x10040, b"_BHRfS_M") {
        return Some(Filesystem::Btrfs);
    }
    if at(buf, 3, b"NTFS    ") {
        return Some(Filesystem::Ntfs);
    }
    if at(buf, 0x1FE, &[0x55, 0xAA])
        && (at(buf, 0x36, b"FAT1") || at(buf, 0x52, b"FAT32") || at(buf, 0x36, b"FAT "))
    {
        return Some(Filesystem::Vfat);
    }
    if at(buf, 4096 - 10, b"SWAPSPACE2") || at(buf, 4096 - 10, b"SWAP-SPACE") {
        return Some(Filesystem::Swap);
    }
    // LVM2 label: "LABELONE" in one of the first four sectors, type "LVM2 001" at +0x18.
    for sector in 0..4 {
        let base = sector * 512;
        if at(buf, base, b"LABELONE") && at(buf, base + 0x18, b"LVM2 001") {
            return Some(Filesystem::LvmPv);
        }
    }
    if at(buf, 0x8001, b"CD001") {
        return Some(Filesystem::Iso9660);
    }
    None
}

/// The UUID `blkid` reports for a filesystem or swap area (what `UUID=` in fstab matches),
/// from the same first bytes [`classify`] read; `None` for kinds without one or an all-zero
/// UUID.
pub fn filesystem_uuid(buf: &[u8], fs: Filesystem) -> Option<String> {
    let uuid_at = |off: usize| {
        let b = buf.get(off..off + 16)?;
        if b.iter().all(|&x| x == 0) {
            return None;
        }
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        Some(format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        ))
    };
    match fs {
        Filesystem::Ext2 | Filesystem::Ext3 | Filesystem::Ext4 => uuid_at(0x468),
        Filesystem::Xfs => uuid_at(32),
        Filesystem::Btrfs => uuid_at(0x10020),
        // After 1024 bytes of boot block: version, last_page, nr_badpages, then the UUID.
        Filesystem::Swap => uuid_at(0x40C),
        Filesystem::Vfat => {
            let off = if at(buf, 0x52, b"FAT32") { 0x43 } else { 0x27 };
            let id = le32(buf, off);
            (id != 0).then(|| format!("{:04X}-{:04X}", id >> 16, id & 0xffff))
        }
        _ => None,
    }
}

/// ext4 if any ext4-only feature is set, ext3 if it has a journal, else ext2 (blkid's rule).
fn ext_kind(buf: &[u8]) -> Filesystem {
    const HAS_JOURNAL: u32 = 0x4;
    // extents, 64bit, flex_bg, huge_file, dir_nlink/extra_isize in ro_compat, …
    const EXT4_INCOMPAT: u32 = 0x40 | 0x80 | 0x200 | 0x2 << 8 | 0x10000;
    const EXT4_RO_COMPAT: u32 = 0x8 | 0x20 | 0x40 | 0x400;
    let compat = le32(buf, 0x400 + 0x5C);
    let incompat = le32(buf, 0x400 + 0x60);
    let ro_compat = le32(buf, 0x400 + 0x64);
    if incompat & EXT4_INCOMPAT != 0 || ro_compat & EXT4_RO_COMPAT != 0 {
        Filesystem::Ext4
    } else if compat & HAS_JOURNAL != 0 {
        Filesystem::Ext3
    } else {
        Filesystem::Ext2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_read_like_blkid() {
        let mut b = vec![0u8; 0x11000];
        b[0x468..0x478].copy_from_slice(&[
            0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
            0xcd, 0xef,
        ]);
        assert_eq!(
            filesystem_uuid(&b, Filesystem::Ext4).as_deref(),
            Some("12345678-9abc-def0-0123-456789abcdef")
        );
        assert_eq!(filesystem_uuid(&b, Filesystem::Swap), None);
        b[0x27..0x2b].copy_from_slice(&0x1234_abcd_u32.to_le_bytes());
        assert_eq!(
            filesystem_uuid(&b, Filesystem::Vfat).as_deref(),
            Some("1234-ABCD")
        );
    }

    #[test]
    fn recognises_magics() {
        let mut b = vec![0u8; 0x11000];
        assert_eq!(classify(&b), None);
        b[0x438] = 0x53;
        b[0x439] = 0xEF;
        assert_eq!(classify(&b), Some(Filesystem::Ext2));
        b[0x45C] = 0x4;
        assert_eq!(classify(&b), Some(Filesystem::Ext3));
        b[0x460] = 0x40;
        assert_eq!(classify(&b), Some(Filesystem::Ext4));
        let mut x = vec![0u8; 4096];
        x[..4].copy_from_slice(b"XFSB");
        assert_eq!(classify(&x), Some(Filesystem::Xfs));
        let mut s = vec![0u8; 4096];
        s[4086..].copy_from_slice(b"SWAPSPACE2");
        assert_eq!(classify(&s), Some(Filesystem::Swap));
        let mut l = vec![0u8; 4096];
        l[512..520].copy_from_slice(b"LABELONE");
        l[512 + 0x18..512 + 0x20].copy_from_slice(b"LVM2 001");
        assert_eq!(classify(&l), Some(Filesystem::LvmPv));
    }

    #[test]
    fn short_buffers_are_fine() {
        assert_eq!(classify(&[]), None);
        assert_eq!(classify(&[0x53; 10]), None);
    }
}
