//! Finding guests on a disk: the glue between `converters` (which reads disk formats) and
//! `fixups` (which reads filesystems). Every partition, whole-disk filesystem and LVM2
//! logical volume is opened read-only through a [`SourceRange`] and inspected.

mod source_range;

use std::sync::Arc;

use serde::Serialize;

use converters::DiskSource;
use fixups::blockdev::BlockDevice;
use fixups::guestfs::ext4::{Access, Ext4Fs};
use fixups::inspect::{inspect_filesystem, GuestOs};

use crate::layout::{classify, read_layout, DiskLayout, Filesystem};
pub use source_range::SourceRange;

/// One filesystem found on the disk, and the OS on it if it is a root.
#[derive(Debug, Serialize)]
pub struct FoundFilesystem {
    /// Where it is: `partition 1`, `whole disk`, `LV vg0/root (partition 2)`.
    pub location: String,
    pub offset: u64,
    pub size: u64,
    pub filesystem: Option<Filesystem>,
    pub label: Option<String>,
    pub uuid: Option<String>,
    /// Inspection result when this filesystem holds an operating system root.
    pub os: Option<GuestOs>,
    /// Why this filesystem could not be inspected, if it could not.
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DiskGuests {
    pub layout: DiskLayout,
    pub filesystems: Vec<FoundFilesystem>,
    /// Index into `filesystems` of the root filesystem, when one was found.
    pub root: Option<usize>,
}

/// Reads the partition table, LVM volumes and filesystems of `source`, without writing.
pub fn find_guests(source: Arc<dyn DiskSource>) -> Result<DiskGuests, crate::layout::LayoutError> {
    let layout = read_layout(source.as_ref())?;
    let mut filesystems = Vec::new();
    let disk: Arc<dyn BlockDevice> = Arc::new(SourceRange::whole(source.clone()));
    if let Some(fs) = layout.whole_disk_filesystem {
        filesystems.extend(examine(
            &disk,
            "whole disk".into(),
            0,
            source.size(),
            Some(fs),
        ));
    }
    for p in &layout.partitions {
        let Ok(range) = SourceRange::new(source.clone(), p.start, p.size) else {
            continue;
        };
        let range: Arc<dyn BlockDevice> = Arc::new(range);
        let location = format!("partition {}", p.number);
        filesystems.extend(examine(&range, location, p.start, p.size, p.filesystem));
    }
    let root = filesystems.iter().position(|f| f.os.is_some());
    Ok(DiskGuests {
        layout,
        filesystems,
        root,
    })
}

/// Inspects one byte range: an ext filesystem directly, an LVM PV through its LVs.
fn examine(
    range: &Arc<dyn BlockDevice>,
    location: String,
    offset: u64,
    size: u64,
    fs: Option<Filesystem>,
) -> Vec<FoundFilesystem> {
    match fs {
        Some(Filesystem::LvmPv) => examine_pv(range, &location, offset),
        _ => vec![inspect_range(range.clone(), location, offset, size, fs)],
    }
}

fn examine_pv(range: &Arc<dyn BlockDevice>, location: &str, offset: u64) -> Vec<FoundFilesystem> {
    let pv = match fixups::lvm::open(range.as_ref()) {
        Ok(Some(pv)) => pv,
        Ok(None) => return Vec::new(),
        Err(e) => {
            return vec![failed(
                location.to_string(),
                offset,
                range.size(),
                None,
                e.to_string(),
            )]
        }
    };
    pv.volumes
        .iter()
        .map(|lv| {
            let where_ = format!("LV {}/{} ({location})", pv.vg_name, lv.name);
            match fixups::lvm::LvRange::new(range.clone(), lv) {
                Ok(lv_range) => {
                    let lv_range: Arc<dyn BlockDevice> = Arc::new(lv_range);
                    let fs = sniff(lv_range.as_ref());
                    let size = lv_range.size();
                    inspect_range(lv_range, where_, offset, size, fs)
                }
                Err(e) => failed(where_, offset, 0, None, e.to_string()),
            }
        })
        .collect()
}

/// The filesystem at the start of a range that is not a partition (an LV).
fn sniff(range: &dyn BlockDevice) -> Option<Filesystem> {
    let n = range.size().min(68 * 1024);
    let mut buf = vec![0u8; usize::try_from(n).unwrap_or(0)];
    range.read_at(&mut buf, 0).ok()?;
    classify(&buf)
}

fn inspect_range(
    range: Arc<dyn BlockDevice>,
    location: String,
    offset: u64,
    size: u64,
    fs: Option<Filesystem>,
) -> FoundFilesystem {
    if !matches!(
        fs,
        Some(Filesystem::Ext2 | Filesystem::Ext3 | Filesystem::Ext4)
    ) {
        let why = fs.map(|f| format!("{} is not inspected (ext2/3/4 only)", f.name()));
        return FoundFilesystem {
            error: why,
            ..failed(location, offset, size, fs, String::new())
        };
    }
    let ext = match Ext4Fs::open(range, Access::ReadOnly) {
        Ok(ext) => ext,
        Err(e) => return failed(location, offset, size, fs, e.to_string()),
    };
    let (os, error) = match inspect_filesystem(&ext) {
        Ok(os) => (os, None),
        Err(e) => (None, Some(e.to_string())),
    };
    FoundFilesystem {
        location,
        offset,
        size,
        filesystem: fs,
        label: Some(ext.label()).filter(|l| !l.is_empty()),
        uuid: Some(ext.uuid()),
        os,
        error,
    }
}

fn failed(
    location: String,
    offset: u64,
    size: u64,
    fs: Option<Filesystem>,
    why: String,
) -> FoundFilesystem {
    FoundFilesystem {
        location,
        offset,
        size,
        filesystem: fs,
        label: None,
        uuid: None,
        os: None,
        error: Some(why).filter(|w| !w.is_empty()),
    }
}
