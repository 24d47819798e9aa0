//! Target checks: everything that must be refused before a single byte is written.
//! Nothing here creates or modifies anything.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::V2pError;
use crate::p2v::mounted::mounted_part_of;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    BlockDevice,
    /// A regular file that does not exist yet: created sparse, holes read zero.
    NewFile,
    /// A regular file that exists (possibly empty): written in place.
    ExistingFile,
}

impl TargetKind {
    /// The name reports use.
    pub fn label(self) -> &'static str {
        match self {
            TargetKind::BlockDevice => "block device",
            TargetKind::NewFile | TargetKind::ExistingFile => "file",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    pub path: PathBuf,
    pub kind: TargetKind,
    /// Current size in bytes (0 for a file that does not exist yet).
    pub size: u64,
    /// An MBR or GPT was found on the target (only allowed with `force`).
    pub has_partition_table: bool,
}

/// Decides whether `target` may receive a disk of `source_size` bytes.
///
/// Refused: directories, character devices and other special files; block devices that are
/// mounted (whole or a partition), hold the running root, are used as swap or are held by
/// device-mapper/md; block devices smaller than the source; regular files used as swap;
/// block devices and non-empty files that already carry a partition table, unless `force`.
/// A regular file smaller than the source is accepted: it is extended (nothing of it is
/// lost that the copy would not overwrite anyway).
pub fn check_target(target: &Path, source_size: u64, force: bool) -> Result<TargetInfo, V2pError> {
    let shown = target.display();
    let meta = match std::fs::metadata(target) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(TargetInfo {
                path: target.to_path_buf(),
                kind: TargetKind::NewFile,
                size: 0,
                has_partition_table: false,
            });
        }
        Err(e) => return Err(V2pError::Io(format!("{shown}: cannot inspect target: {e}"))),
    };
    let ft = meta.file_type();
    if ft.is_file() {
        if let Some(swap) = swap_using(target, &meta) {
            return Err(V2pError::Refused(format!(
                "{shown} is in use as swap ({swap})"
            )));
        }
        let size = meta.len();
        let has_partition_table = size > 0 && has_partition_table(target)?;
        if has_partition_table && !force {
            return Err(V2pError::Refused(format!(
                "{shown} already holds a partition table (use --force to overwrite it)"
            )));
        }
        return Ok(TargetInfo {
            path: target.to_path_buf(),
            kind: TargetKind::ExistingFile,
            size,
            has_partition_table,
        });
    }
    if !ft.is_block_device() {
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_char_device() {
            "a character device"
        } else {
            "neither a block device nor a regular file"
        };
        return Err(V2pError::Refused(format!("{shown} is {what}")));
    }
    if let Some(point) = mounted_part_of(target) {
        return Err(V2pError::Refused(format!(
            "{shown} (or one of its partitions) is mounted on {point}"
        )));
    }
    if holds_root(&meta) {
        return Err(V2pError::Refused(format!(
            "{shown} holds the running system's root filesystem"
        )));
    }
    if let Some(swap) = swap_using(target, &meta) {
        return Err(V2pError::Refused(format!(
            "{shown} (or one of its partitions) is in use as swap ({swap})"
        )));
    }
    if let Some(holder) = held_by(target) {
        return Err(V2pError::Refused(format!(
            "{shown} is in use by {holder} (device-mapper, LVM or RAID)"
        )));
    }
    let size = File::open(target)
        .and_then(|f| converters::raw::device_size(&f))
        .map_err(|e| V2pError::Io(format!("{shown}: cannot read device size: {e}")))?;
    if size < source_size {
        return Err(V2pError::Refused(format!(
            "{shown} holds {size} bytes, the disk needs {source_size}"
        )));
    }
    let has_partition_table = has_partition_table(target)?;
    if has_partition_table && !force {
        return Err(V2pError::Refused(format!(
            "{shown} already holds a partition table (use --force to overwrite it)"
        )));
    }
    Ok(TargetInfo {
        path: target.to_path_buf(),
        kind: TargetKind::BlockDevice,
        size,
        has_partition_table,
    })
}

/// An MBR boot signature in sector 0, or a GPT header at LBA 1 for 512- or 4096-byte
/// sectors (a protective MBR is already caught by the first test, the GPT tests catch a
/// table whose MBR was wiped).
pub fn has_partition_table(target: &Path) -> Result<bool, V2pError> {
    let mut head = vec![0u8; 4096 + 512];
    let mut f = File::open(target)
        .map_err(|e| V2pError::Io(format!("{}: cannot open: {e}", target.display())))?;
    let mut got = 0;
    // A short file simply has fewer bytes to look at; read until EOF or full.
    while got < head.len() {
        match f.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(V2pError::Io(format!(
                    "{}: cannot read: {e}",
                    target.display()
                )))
            }
        }
    }
    let head = &head[..got];
    let mbr = head.get(510..512) == Some(&[0x55, 0xAA][..]);
    let gpt = head.get(512..520) == Some(&b"EFI PART"[..])
        || head.get(4096..4104) == Some(&b"EFI PART"[..]);
    Ok(mbr || gpt)
}

/// A /proc/swaps entry that is `target`, or (for a block device) one of its partitions.
fn swap_using(target: &Path, meta: &std::fs::Metadata) -> Option<String> {
    let swaps = std::fs::read_to_string("/proc/swaps").ok()?;
    let devices = if meta.file_type().is_block_device() {
        disk_and_partition_devs(target, meta.rdev())
    } else {
        Vec::new()
    };
    for line in swaps.lines().skip(1) {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        // /proc/swaps escapes spaces as \040; good enough for the paths swap lives on.
        let name = name.replace("\\040", " ");
        let Ok(swap_meta) = std::fs::metadata(&name) else {
            continue;
        };
        let same = if swap_meta.file_type().is_block_device() {
            devices.contains(&swap_meta.rdev())
        } else {
            swap_meta.dev() == meta.dev() && swap_meta.ino() == meta.ino()
        };
        if same {
            return Some(name);
        }
    }
    None
}

/// True when the filesystem at `/` lives on `disk` (directly, on a partition of it, or
/// through device-mapper/md stacked on it): mountinfo alone misses root on LVM, whose
/// mounted device is dm-N rather than the disk.
fn holds_root(disk: &std::fs::Metadata) -> bool {
    let Ok(root) = std::fs::metadata("/") else {
        return false;
    };
    let Some(name) = block_name_of(disk.rdev()) else {
        return false;
    };
    // Walk down from the root's device through its slaves; any device that is the disk or
    // lives under it (a partition's sysfs path contains the disk's name) counts.
    let mut pending = vec![root.dev()];
    let mut seen = Vec::new();
    while let Some(dev) = pending.pop() {
        if seen.contains(&dev) || seen.len() > 64 {
            continue;
        }
        seen.push(dev);
        if dev == disk.rdev() {
            return true;
        }
        let sys = PathBuf::from(format!(
            "/sys/dev/block/{}:{}",
            rustix::fs::major(dev),
            rustix::fs::minor(dev)
        ));
        let Ok(real) = std::fs::canonicalize(&sys) else {
            continue;
        };
        // /sys/devices/.../block/sda/sda2: the parent directory is the whole disk.
        if real
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|p| p.to_string_lossy() == name)
        {
            return true;
        }
        if let Ok(slaves) = std::fs::read_dir(real.join("slaves")) {
            for s in slaves.flatten() {
                if let Some(d) = read_devno(&s.path().join("dev")) {
                    pending.push(d);
                }
            }
        }
    }
    false
}

/// The first holder (dm-N, mdN) of the disk or one of its partitions, from sysfs.
fn held_by(disk: &Path) -> Option<String> {
    let name = std::fs::canonicalize(disk).ok()?;
    let name = name.file_name()?.to_string_lossy().into_owned();
    let base = Path::new("/sys/class/block").join(&name);
    let mut dirs = vec![base.clone()];
    if let Ok(entries) = std::fs::read_dir(&base) {
        dirs.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.join("partition").exists()),
        );
    }
    dirs.iter().find_map(|d| {
        std::fs::read_dir(d.join("holders"))
            .ok()?
            .flatten()
            .next()
            .map(|h| h.file_name().to_string_lossy().into_owned())
    })
}

/// The kernel name (sda, nvme0n1) of a block device number.
fn block_name_of(rdev: u64) -> Option<String> {
    let sys = format!(
        "/sys/dev/block/{}:{}",
        rustix::fs::major(rdev),
        rustix::fs::minor(rdev)
    );
    let real = std::fs::canonicalize(sys).ok()?;
    Some(real.file_name()?.to_string_lossy().into_owned())
}

/// Device numbers of a whole disk and its partitions.
fn disk_and_partition_devs(disk: &Path, rdev: u64) -> Vec<u64> {
    let mut devs = vec![rdev];
    let Some(name) = std::fs::canonicalize(disk)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    else {
        return devs;
    };
    if let Ok(entries) = std::fs::read_dir(Path::new("/sys/class/block").join(name)) {
        devs.extend(
            entries
                .flatten()
                .filter_map(|e| read_devno(&e.path().join("dev"))),
        );
    }
    devs
}

/// Parses a sysfs `dev` file ("8:1") into a device number.
fn read_devno(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let (ma, mi) = text.trim().split_once(':')?;
    Some(rustix::fs::makedev(ma.parse().ok()?, mi.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(bytes: &[(usize, &[u8])], len: u64) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().set_len(len).unwrap();
        for (off, b) in bytes {
            std::os::unix::fs::FileExt::write_all_at(f.as_file(), b, *off as u64).unwrap();
        }
        f
    }

    #[test]
    fn mbr_file_refused_without_force_accepted_with() {
        let f = file_with(&[(510, &[0x55, 0xAA])], 1 << 20);
        let err = check_target(f.path(), 1 << 20, false).unwrap_err();
        assert!(matches!(err, V2pError::Refused(ref m) if m.contains("partition table")));
        let info = check_target(f.path(), 1 << 20, true).unwrap();
        assert_eq!(info.kind, TargetKind::ExistingFile);
        assert!(info.has_partition_table);
    }

    #[test]
    fn gpt_header_without_mbr_is_a_partition_table() {
        let f = file_with(&[(512, b"EFI PART")], 1 << 20);
        assert!(check_target(f.path(), 1 << 20, false).is_err());
        let f = file_with(&[(4096, b"EFI PART")], 1 << 20);
        assert!(check_target(f.path(), 1 << 20, false).is_err());
    }

    #[test]
    fn smaller_file_is_accepted_to_be_extended() {
        let f = file_with(&[], 4096);
        let info = check_target(f.path(), 1 << 20, false).unwrap();
        assert_eq!(info.size, 4096);
    }

    #[test]
    fn missing_file_is_new_and_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("disk.raw");
        let info = check_target(&p, 1 << 20, false).unwrap();
        assert_eq!(info.kind, TargetKind::NewFile);
        assert!(!p.exists());
    }

    #[test]
    fn directory_and_char_device_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            check_target(dir.path(), 1, true),
            Err(V2pError::Refused(_))
        ));
        assert!(matches!(
            check_target(Path::new("/dev/null"), 1, true),
            Err(V2pError::Refused(_))
        ));
    }
}
