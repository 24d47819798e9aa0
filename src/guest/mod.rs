//! Finding guests on a disk: the glue between `converters` (which reads disk formats) and
//! `fixups` (which reads filesystems). Every partition, whole-disk filesystem and LVM2
//! logical volume is opened through a byte window of the disk and inspected read-only;
//! `ferry fixup` then reopens the root read-write on an [`Overlay`] of the same disk.

mod fixup_disk;
mod opened;
mod overlay;
mod source_range;
mod tree;

use std::sync::Arc;

use serde::Serialize;

use converters::DiskSource;
use fixups::blockdev::BlockDevice;
use fixups::guestfs::ext4::Access;
use fixups::inspect::{inspect_filesystem, GuestOs};

use fixups::blockdev::Window;

use crate::layout::{classify, filesystems::filesystem_uuid, read_layout, DiskLayout, Filesystem};
pub use fixup_disk::{
    fix_in_overlay, fixup_disk, Commit, FixedOverlay, FixupDiskError, FixupOptions, FixupRun,
};
pub use opened::OpenedFs;
pub use overlay::{commit_in_place, Overlay};
pub use source_range::SourceRange;
pub use tree::{needed_mounts, GuestMount, OpenedTree};

/// The byte window a filesystem was found in, to reopen it (read-write on an overlay).
#[derive(Clone)]
pub struct GuestDevice(pub Arc<dyn BlockDevice>);

impl std::fmt::Debug for GuestDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GuestDevice({} bytes)", self.0.size())
    }
}

/// One filesystem found on the disk, and the OS on it if it is a root.
#[derive(Debug, Serialize)]
pub struct FoundFilesystem {
    /// Where it is: `partition 1`, `whole disk`, `LV vg0/root (partition 2)`.
    pub location: String,
    /// Partition number when the filesystem is a partition itself (not in an LV).
    pub partition: Option<u32>,
    #[serde(skip)]
    pub device: Option<GuestDevice>,
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
    /// Filesystems of this disk the root's fstab mounts where inspection and fixups look
    /// (`/boot`); the root's OS was inspected with them mounted.
    pub mounts: Vec<GuestMount>,
}

/// Reads the partition table, LVM volumes and filesystems of `source`, without writing.
pub fn find_guests(source: Arc<dyn DiskSource>) -> Result<DiskGuests, crate::layout::LayoutError> {
    let disk: Arc<dyn BlockDevice> = Arc::new(SourceRange::whole(source.clone()));
    find_guests_on(source.as_ref(), disk)
}

/// [`find_guests`] with the bytes read through `disk` (the same disk as `source`, e.g. an
/// [`Overlay`] of it): the [`GuestDevice`]s found are windows of `disk`.
pub fn find_guests_on(
    source: &dyn DiskSource,
    disk: Arc<dyn BlockDevice>,
) -> Result<DiskGuests, crate::layout::LayoutError> {
    let layout = read_layout(source)?;
    let mut filesystems = Vec::new();
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
        let len = p.size.min(source.size().saturating_sub(p.start));
        let Ok(range) = Window::new(disk.clone(), p.start, len) else {
            continue;
        };
        let range: Arc<dyn BlockDevice> = Arc::new(range);
        let location = format!("partition {}", p.number);
        let found = examine(&range, location, p.start, len, p.filesystem);
        filesystems.extend(found.into_iter().map(|mut f| {
            if f.filesystem != Some(Filesystem::LvmPv) && !f.location.starts_with("LV ") {
                f.partition = Some(p.number);
            }
            f
        }));
    }
    let root = filesystems.iter().position(|f| f.os.is_some());
    let mounts = match root {
        Some(r) => inspect_with_mounts(&mut filesystems, r),
        None => Vec::new(),
    };
    Ok(DiskGuests {
        layout,
        filesystems,
        root,
        mounts,
    })
}

/// Re-inspects the root with its `/boot` (when on this disk) mounted, so kernels and the
/// bootloader on a separate `/boot` are found; keeps the root-only result if that fails.
fn inspect_with_mounts(filesystems: &mut [FoundFilesystem], root: usize) -> Vec<GuestMount> {
    let Some(os) = &filesystems[root].os else {
        return Vec::new();
    };
    let mounts = needed_mounts(os, filesystems);
    if mounts.is_empty() {
        return mounts;
    }
    let Ok(tree) = OpenedTree::open(filesystems, root, &mounts, Access::ReadOnly) else {
        return Vec::new();
    };
    match tree.with_fs(inspect_filesystem) {
        Ok(Some(os)) => {
            filesystems[root].os = Some(os);
            mounts
        }
        _ => Vec::new(),
    }
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
    classify(&first_bytes(range)?)
}

/// The bytes filesystem recognition looks at.
fn first_bytes(range: &dyn BlockDevice) -> Option<Vec<u8>> {
    let n = range.size().min(68 * 1024);
    let mut buf = vec![0u8; usize::try_from(n).unwrap_or(0)];
    range.read_at(&mut buf, 0).ok()?;
    Some(buf)
}

fn inspect_range(
    range: Arc<dyn BlockDevice>,
    location: String,
    offset: u64,
    size: u64,
    fs: Option<Filesystem>,
) -> FoundFilesystem {
    let opened = match OpenedFs::open(range.clone(), fs, Access::ReadOnly) {
        Ok(opened) => opened,
        Err(why) => {
            let uuid = fs.and_then(|f| filesystem_uuid(&first_bytes(range.as_ref())?, f));
            return FoundFilesystem {
                uuid,
                device: Some(GuestDevice(range)),
                ..failed(location, offset, size, fs, why)
            };
        }
    };
    let (os, error) = match inspect_filesystem(opened.guest_fs()) {
        Ok(os) => (os, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let label = Some(opened.label()).filter(|l| !l.is_empty());
    let uuid = Some(opened.uuid());
    drop(opened);
    FoundFilesystem {
        location,
        partition: None,
        device: Some(GuestDevice(range)),
        offset,
        size,
        filesystem: fs,
        label,
        uuid,
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
        partition: None,
        device: None,
        offset,
        size,
        filesystem: fs,
        label: None,
        uuid: None,
        os: None,
        error: Some(why).filter(|w| !w.is_empty()),
    }
}
