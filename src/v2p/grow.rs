//! `--grow`: after the copy, extend the last partition to the end of a larger target and
//! grow the ext2/3/4 filesystem inside it.
//!
//! The filesystem is grown through e2fsprogs' `FILE?offset=BYTES` device syntax (the unix
//! I/O manager's offset option), which works on image files and block devices alike, so no
//! partition device node (/dev/sdY1, which needs BLKRRPART first) is needed. The new size
//! is always passed explicitly: with only an offset, resize2fs takes the size of the whole
//! file as the partition size and would grow past the partition's end.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use serde::Serialize;

use super::V2pError;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GrowReport {
    /// 1-based partition number, as Linux numbers them.
    pub partition: u32,
    /// Partition size in bytes before and after.
    pub old_size: u64,
    pub new_size: u64,
    pub filesystem_grown: bool,
    /// What was done to the filesystem, or why not.
    pub note: String,
}

const SECTOR: u64 = 512;
const GPT_PROTECTIVE: u8 = 0xEE;
const EXT_MAGIC: [u8; 2] = [0x53, 0xEF];

/// Grows the last partition of `target` (already holding the source's `source_size`
/// bytes) to `target_size`. `None` when there is nothing to grow: the target is not
/// larger, or it has no partition table.
pub fn grow_last_partition(
    target: &Path,
    is_device: bool,
    source_size: u64,
    target_size: u64,
) -> Result<Option<GrowReport>, V2pError> {
    if target_size <= source_size {
        return Ok(None);
    }
    let shown = target.display().to_string();
    let io = |what: &str, e: &dyn std::fmt::Display| V2pError::Io(format!("{shown}: {what}: {e}"));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(target)
        .map_err(|e| io("cannot open to grow", &e))?;
    let mut mbr = [0u8; 512];
    file.read_exact_at(&mut mbr, 0)
        .map_err(|e| io("cannot read the partition table", &e))?;
    if mbr[510..512] != [0x55, 0xAA] {
        return Ok(None);
    }
    let entries = mbr_entries(&mbr);
    let grown = if entries.iter().any(|e| e.kind == GPT_PROTECTIVE) {
        grow_gpt(&mut file, &shown, target_size)?
    } else {
        grow_mbr(&file, &shown, &entries, target_size)?
    };
    let Some((partition, start, old_size, new_size, mut note)) = grown else {
        return Ok(None);
    };
    file.sync_all().map_err(|e| io("cannot sync", &e))?;
    drop(file);
    let filesystem_grown = if new_size > old_size {
        let (done, fs_note) = grow_ext(target, start, new_size);
        note = join(&note, &fs_note);
        if !is_device {
            restore_file_size(target, target_size)?;
        }
        done
    } else {
        false
    };
    if is_device {
        note = join(&note, &reread_partitions(target));
    }
    Ok(Some(GrowReport {
        partition,
        old_size,
        new_size,
        filesystem_grown,
        note,
    }))
}

/// resize2fs on `FILE?offset=N` sets a regular file's length to the filesystem's new size,
/// ignoring the offset, which cuts the end of the disk image off (measured with e2fsprogs
/// 1.47: a 3 GiB target came back 1 MiB short, and QEMU then saw the partition run past
/// the end of the disk). Only free space lies there, so the length is put back.
fn restore_file_size(target: &Path, target_size: u64) -> Result<(), V2pError> {
    let file = OpenOptions::new()
        .write(true)
        .open(target)
        .map_err(|e| V2pError::Io(format!("{}: cannot reopen: {e}", target.display())))?;
    let len = file
        .metadata()
        .map_err(|e| V2pError::Io(format!("{}: {e}", target.display())))?
        .len();
    if len < target_size {
        file.set_len(target_size)
            .and_then(|()| file.sync_all())
            .map_err(|e| {
                V2pError::Io(format!(
                    "{}: cannot restore its size: {e}",
                    target.display()
                ))
            })?;
    }
    Ok(())
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}; {b}"),
    }
}

#[derive(Debug, Clone, Copy)]
struct MbrEntry {
    /// 1-based slot.
    number: u32,
    kind: u8,
    start: u64,
    sectors: u64,
}

/// The used primary entries of an MBR sector.
fn mbr_entries(sector: &[u8; 512]) -> Vec<MbrEntry> {
    (0..4u32)
        .filter_map(|i| {
            let at = 446 + 16 * i as usize;
            let e = &sector[at..at + 16];
            let le = |o: usize| u64::from(u32::from_le_bytes([e[o], e[o + 1], e[o + 2], e[o + 3]]));
            let entry = MbrEntry {
                number: i + 1,
                kind: e[4],
                start: le(8),
                sectors: le(12),
            };
            (entry.kind != 0 && entry.sectors != 0).then_some(entry)
        })
        .collect()
}

type Grown = Option<(u32, u64, u64, u64, String)>;

/// MBR: the primary partition that ends last takes everything up to the end of the target
/// (capped at 2 TiB, where the 32-bit LBA fields end). Only its size field (and the
/// obsolete end CHS) change; the rest of the table is left byte for byte.
fn grow_mbr(
    file: &File,
    shown: &str,
    entries: &[MbrEntry],
    target_size: u64,
) -> Result<Grown, V2pError> {
    let Some(last) = entries.iter().max_by_key(|e| e.start + e.sectors) else {
        return Ok(None);
    };
    let old_size = last.sectors * SECTOR;
    if matches!(last.kind, 0x05 | 0x0F | 0x85) {
        return Ok(Some((
            last.number,
            last.start * SECTOR,
            old_size,
            old_size,
            "the last partition is an extended partition; logical partitions are not grown".into(),
        )));
    }
    let end = (target_size / SECTOR).min(u64::from(u32::MAX));
    if end <= last.start + last.sectors {
        return Ok(Some((
            last.number,
            last.start * SECTOR,
            old_size,
            old_size,
            "the partition already reaches the end of the target (or the 2 TiB MBR limit)".into(),
        )));
    }
    let new_sectors = u32::try_from(end - last.start)
        .map_err(|_| V2pError::Io(format!("{shown}: partition size overflows MBR")))?;
    let at = 446 + 16 * (last.number as usize - 1);
    file.write_all_at(&new_sectors.to_le_bytes(), (at + 12) as u64)
        .map_err(|e| V2pError::Io(format!("{shown}: cannot write the MBR: {e}")))?;
    // Past cylinder 1023 the end CHS is conventionally 1023/254/63; nobody reads it.
    if end > 1024 * 255 * 63 {
        file.write_all_at(&[0xFE, 0xFF, 0xFF], (at + 5) as u64)
            .map_err(|e| V2pError::Io(format!("{shown}: cannot write the MBR: {e}")))?;
    }
    Ok(Some((
        last.number,
        last.start * SECTOR,
        old_size,
        u64::from(new_sectors) * SECTOR,
        String::new(),
    )))
}

/// GPT: moves the backup header and table to the new end, extends the partition that ends
/// last to the new last usable LBA, and stretches the protective MBR entry.
fn grow_gpt(file: &mut File, shown: &str, target_size: u64) -> Result<Grown, V2pError> {
    let gerr = |e: gptman::Error| V2pError::Io(format!("{shown}: GPT: {e}"));
    let mut gpt = gptman::GPT::find_from(file).map_err(gerr)?;
    let ss = gpt.sector_size;
    let old_backup = gpt.header.backup_lba;
    let first_usable = gpt.header.first_usable_lba;
    gpt.header.update_from(file, ss).map_err(gerr)?;
    // update_from recomputes first_usable_lba from the table size; keep the original, which
    // some tools set higher (e.g. 2048) and which the existing partitions respect anyway.
    gpt.header.first_usable_lba = first_usable;
    let Some((number, start, end)) = gpt
        .iter()
        .filter(|(_, p)| p.is_used())
        .max_by_key(|(_, p)| p.ending_lba)
        .map(|(n, p)| (n, p.starting_lba, p.ending_lba))
    else {
        return Ok(None);
    };
    let old_size = (end + 1 - start) * ss;
    let new_end = gpt.header.last_usable_lba;
    if new_end <= end {
        return Ok(Some((
            number,
            start * ss,
            old_size,
            old_size,
            "the partition already reaches the end of the target".into(),
        )));
    }
    gpt[number].ending_lba = new_end;
    gpt.write_into(file).map_err(gerr)?;
    // The old backup header now lies inside the grown partition: wipe it so nothing
    // mistakes it for a GPT later (the filesystem has not grown over it yet).
    if old_backup < gpt.header.backup_lba {
        let zero = vec![0u8; usize::try_from(ss).unwrap_or(512)];
        file.write_all_at(&zero, old_backup * ss)
            .map_err(|e| V2pError::Io(format!("{shown}: cannot wipe the old backup GPT: {e}")))?;
    }
    // The protective MBR entry covers the disk (or as much as 32 bits can say).
    let total = target_size / ss;
    let mut mbr = [0u8; 512];
    file.read_exact_at(&mut mbr, 0)
        .map_err(|e| V2pError::Io(format!("{shown}: cannot read the MBR: {e}")))?;
    if let Some(p) = mbr_entries(&mbr).iter().find(|e| e.kind == GPT_PROTECTIVE) {
        let sectors = u32::try_from((total - p.start).min(u64::from(u32::MAX))).unwrap_or(u32::MAX);
        let at = 446 + 16 * (p.number as usize - 1) + 12;
        file.write_all_at(&sectors.to_le_bytes(), at as u64)
            .map_err(|e| V2pError::Io(format!("{shown}: cannot write the MBR: {e}")))?;
    }
    Ok(Some((
        number,
        start * ss,
        old_size,
        (new_end + 1 - start) * ss,
        String::new(),
    )))
}

/// Grows an ext2/3/4 filesystem at byte `start` of `target` to `size` bytes: e2fsck -f -p
/// first (resize2fs insists on a freshly checked filesystem), then resize2fs with an
/// explicit size. Returns whether it grew and a note for the report.
fn grow_ext(target: &Path, start: u64, size: u64) -> (bool, String) {
    let mut magic = [0u8; 2];
    let read = File::open(target).and_then(|f| f.read_exact_at(&mut magic, start + 1024 + 56));
    if read.is_err() || magic != EXT_MAGIC {
        return (
            false,
            "no ext2/3/4 filesystem in the partition; only the partition was grown".into(),
        );
    }
    let path = target.to_string_lossy();
    if path.contains('?') {
        return (
            false,
            "filesystem not grown: the target path contains '?', which e2fsprogs would read as options".into(),
        );
    }
    let spec = format!("{path}?offset={start}");
    let fsck = Command::new("e2fsck").args(["-f", "-p", &spec]).output();
    match fsck {
        // 0: clean, 1: errors corrected.
        Ok(o) if matches!(o.status.code(), Some(0 | 1)) => {}
        Ok(o) => {
            return (
                false,
                format!(
                    "filesystem not grown: e2fsck -f -p exited {}: {}",
                    o.status.code().unwrap_or(-1),
                    last_line(&o.stdout, &o.stderr)
                ),
            )
        }
        Err(e) => {
            return (
                false,
                format!("filesystem not grown: cannot run e2fsck: {e}"),
            )
        }
    }
    let new_k = format!("{}K", size / 1024);
    match Command::new("resize2fs")
        .args([spec.as_str(), &new_k])
        .output()
    {
        Ok(o) if o.status.success() => (
            true,
            format!(
                "ext filesystem grown to {}",
                ext_size(target, start)
                    .map_or_else(|| "the partition size".into(), |b| format!("{b} bytes"))
            ),
        ),
        Ok(o) => (
            false,
            format!(
                "filesystem not grown: resize2fs exited {}: {}",
                o.status.code().unwrap_or(-1),
                last_line(&o.stdout, &o.stderr)
            ),
        ),
        Err(e) => (
            false,
            format!("filesystem not grown: cannot run resize2fs: {e}"),
        ),
    }
}

/// The size in bytes an ext2/3/4 superblock at partition byte `start` declares.
pub fn ext_size(target: &Path, start: u64) -> Option<u64> {
    let mut sb = [0u8; 1024];
    File::open(target)
        .and_then(|f| f.read_exact_at(&mut sb, start + 1024))
        .ok()?;
    if sb[56..58] != EXT_MAGIC {
        return None;
    }
    let u32_at = |o: usize| u32::from_le_bytes([sb[o], sb[o + 1], sb[o + 2], sb[o + 3]]);
    let incompat = u32_at(0x60);
    let mut blocks = u64::from(u32_at(4));
    // INCOMPAT_64BIT: the high half of the block count is stored separately.
    if incompat & 0x80 != 0 {
        blocks |= u64::from(u32_at(0x150)) << 32;
    }
    let block_size = 1024u64 << u32_at(24).min(16);
    Some(blocks * block_size)
}

fn last_line(stdout: &[u8], stderr: &[u8]) -> String {
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(stdout),
        String::from_utf8_lossy(stderr)
    );
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Tells the kernel about the new table with `blockdev --rereadpt` (the BLKRRPART ioctl,
/// done by a tool so this crate stays free of unsafe ioctls). Best effort: the written
/// table is correct either way; the kernel just sees it at the next boot or replug.
fn reread_partitions(target: &Path) -> String {
    match Command::new("blockdev").arg("--rereadpt").arg(target).output() {
        Ok(o) if o.status.success() => String::new(),
        Ok(o) => format!(
            "the kernel still has the old partition table ({}); it reads the new one after a replug or reboot",
            last_line(&o.stdout, &o.stderr)
        ),
        Err(e) => format!("cannot run blockdev --rereadpt ({e}); the kernel reads the new table after a replug or reboot"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::v2p::{write_disk, WriteOptions};

    const MIB: u64 = 1 << 20;

    fn have(tool: &str) -> bool {
        Command::new(tool).arg("-V").output().is_ok()
    }

    /// A 32 MiB raw disk: hand-written MBR with one Linux partition from 1 MiB to the end,
    /// holding a fresh ext4 with a file in it.
    pub(crate) fn mbr_ext4_image(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("src.raw");
        let f = File::create(&path).unwrap();
        f.set_len(32 * MIB).unwrap();
        let mut mbr = [0u8; 512];
        let e = &mut mbr[446..462];
        e[4] = 0x83;
        e[8..12].copy_from_slice(&2048u32.to_le_bytes());
        e[12..16].copy_from_slice(&(((32 * MIB) / 512 - 2048) as u32).to_le_bytes());
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        f.write_all_at(&mbr, 0).unwrap();
        drop(f);
        let out = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-E", "offset=1048576"])
            .arg(&path)
            .arg("31M")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        path
    }

    #[test]
    fn mbr_last_partition_and_ext4_grow_on_a_file() {
        if !have("mkfs.ext4") || !have("resize2fs") {
            eprintln!("skipped: e2fsprogs missing");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let src_path = mbr_ext4_image(dir.path());
        let old_fs = ext_size(&src_path, MIB).unwrap();
        let src = converters::raw::RawSource::open(&src_path).unwrap();
        // An existing, larger, empty target file: extended targets are how files grow.
        let target = dir.path().join("big.raw");
        File::create(&target).unwrap().set_len(96 * MIB).unwrap();
        let opts = WriteOptions {
            grow: true,
            jobs: 2,
            ..WriteOptions::default()
        };
        let r = write_disk(&src, &target, &opts, &|_| {}).unwrap();
        let g = r.grown.unwrap();
        assert_eq!(g.partition, 1);
        assert_eq!(g.old_size, 31 * MIB);
        assert_eq!(g.new_size, 95 * MIB);
        assert!(g.filesystem_grown, "{}", g.note);
        // The disk keeps its length (resize2fs alone would cut it to the fs size).
        assert_eq!(std::fs::metadata(&target).unwrap().len(), 96 * MIB);
        let new_fs = ext_size(&target, MIB).unwrap();
        assert!(
            new_fs > old_fs && new_fs <= 95 * MIB,
            "{old_fs} -> {new_fs}"
        );
        let spec = format!("{}?offset={}", target.display(), MIB);
        let fsck = Command::new("e2fsck")
            .args(["-fn", &spec])
            .output()
            .unwrap();
        assert!(fsck.status.success(), "{fsck:?}");
        // The table on disk says so too.
        let mut s0 = [0u8; 512];
        File::open(&target)
            .unwrap()
            .read_exact_at(&mut s0, 0)
            .unwrap();
        let e = mbr_entries(&s0);
        assert_eq!(e[0].start + e[0].sectors, 96 * MIB / 512);
    }

    #[test]
    fn gpt_last_partition_grows_and_backup_moves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gpt.raw");
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        f.set_len(8 * MIB).unwrap();
        let mut gpt = gptman::GPT::new_from(&mut f, 512, [7; 16]).unwrap();
        for (i, (start, end)) in [(2048u64, 4095u64), (4096, 8191)].into_iter().enumerate() {
            gpt[i as u32 + 1] = gptman::GPTPartitionEntry {
                partition_type_guid: [0x11; 16],
                unique_partition_guid: [i as u8 + 1; 16],
                starting_lba: start,
                ending_lba: end,
                attribute_bits: 0,
                partition_name: "p".into(),
            };
        }
        gptman::GPT::write_protective_mbr_into(&mut f, 512).unwrap();
        gpt.write_into(&mut f).unwrap();
        // Now the disk lands on a 16 MiB target.
        f.set_len(16 * MIB).unwrap();
        drop(f);
        let g = grow_last_partition(&path, false, 8 * MIB, 16 * MIB)
            .unwrap()
            .unwrap();
        assert_eq!(g.partition, 2);
        assert_eq!(g.old_size, 4096 * 512);
        assert!(!g.filesystem_grown);
        let total = 16 * MIB / 512;
        let mut f = File::open(&path).unwrap();
        let gpt = gptman::GPT::find_from(&mut f).unwrap();
        assert_eq!(gpt.header.backup_lba, total - 1);
        assert_eq!(gpt[2].ending_lba, total - 34);
        assert_eq!(g.new_size, (total - 34 + 1 - 4096) * 512);
        // The backup header at the new end is valid and the old one is gone.
        let mut backup = std::io::Cursor::new(vec![0u8; 512]);
        f.read_exact_at(backup.get_mut(), (total - 1) * 512)
            .unwrap();
        let h = gptman::GPTHeader::read_from(&mut backup).unwrap();
        assert_eq!(h.primary_lba, total - 1);
        let mut old = [0u8; 8];
        f.read_exact_at(&mut old, (8 * MIB / 512 - 1) * 512)
            .unwrap();
        assert_ne!(&old, b"EFI PART");
        if have("sfdisk") {
            let out = Command::new("sfdisk")
                .arg("--verify")
                .arg(&path)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
    }

    #[test]
    fn not_larger_means_nothing_to_grow() {
        let f = tempfile::NamedTempFile::new().unwrap();
        assert_eq!(
            grow_last_partition(f.path(), false, MIB, MIB).unwrap(),
            None
        );
    }
}
