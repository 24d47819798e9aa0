//! Whether a disk (or one of its partitions) is mounted on this machine: imaging a
//! mounted filesystem gives a copy that may be inconsistent, and writing to one (V2P)
//! would destroy the running system.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// The first mount point of `disk` or one of its partitions, from /proc/self/mountinfo
/// (matched by device number, so /dev/disk/by-id names and device-mapper names agree).
pub fn mounted_part_of(disk: &Path) -> Option<String> {
    let meta = std::fs::metadata(disk).ok()?;
    if !meta.file_type().is_block_device() {
        return None;
    }
    use std::os::unix::fs::MetadataExt;
    let rdev = meta.rdev();
    let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
    let name = std::fs::canonicalize(disk).ok()?;
    let name = name.file_name()?.to_string_lossy().into_owned();
    let partitions = partitions_of(&name);
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    for line in info.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(dev), Some(point)) = (fields.get(2), fields.get(4)) else {
            continue;
        };
        let Some((ma, mi)) = dev.split_once(':') else {
            continue;
        };
        let (Ok(ma), Ok(mi)) = (ma.parse::<u32>(), mi.parse::<u32>()) else {
            continue;
        };
        if (ma == major && mi == minor) || partitions.contains(&(ma, mi)) {
            return Some((*point).to_string());
        }
    }
    None
}

/// Device numbers of the partitions sysfs lists under a whole disk.
fn partitions_of(name: &str) -> Vec<(u32, u32)> {
    let dir = Path::new("/sys/class/block").join(name);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let dev = std::fs::read_to_string(e.path().join("dev")).ok()?;
            let (ma, mi) = dev.trim().split_once(':')?;
            Some((ma.parse().ok()?, mi.parse().ok()?))
        })
        .collect()
}
