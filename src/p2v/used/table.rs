//! Where the partition table keeps copies outside the first sectors: the GPT backup header
//! and its entry array at the end of the disk.

use converters::DiskSource;

/// Sectors a backup GPT takes with the usual 128 entries of 128 bytes on 512-byte sectors,
/// copied when the primary header does not say where the backup is.
const DEFAULT_BACKUP_SECTORS: u64 = 33;

/// The byte range `[start, end)` of the backup GPT (entries, then the header at its
/// alternate LBA), read from the primary header at LBA 1; the last 33 sectors when the
/// primary header cannot be trusted.
pub(super) fn gpt_backup(
    disk: &dyn DiskSource,
    sector_size: u64,
) -> Result<(u64, u64), converters::Error> {
    let size = disk.size();
    let fallback = (
        size.saturating_sub(DEFAULT_BACKUP_SECTORS * sector_size),
        size,
    );
    if size < 2 * sector_size || sector_size < 92 {
        return Ok(fallback);
    }
    let mut header = [0u8; 92];
    disk.read_exact_at(&mut header, sector_size)?;
    if &header[..8] != b"EFI PART" {
        return Ok(fallback);
    }
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&header[o..o + 8]);
        u64::from_le_bytes(b)
    };
    let u32_at = |o: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&header[o..o + 4]);
        u64::from(u32::from_le_bytes(b))
    };
    let alternate = u64_at(32);
    let entries = u32_at(80);
    let entry_size = u32_at(84);
    let entry_sectors = (entries * entry_size).div_ceil(sector_size);
    let header_end = alternate
        .checked_add(1)
        .and_then(|l| l.checked_mul(sector_size));
    match header_end {
        Some(end) if alternate > entry_sectors + 1 && end <= size && entry_sectors <= 1024 => {
            Ok(((alternate - entry_sectors) * sector_size, end))
        }
        _ => Ok(fallback),
    }
}
