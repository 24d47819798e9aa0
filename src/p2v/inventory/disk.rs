//! The disks named for imaging: block devices (facts from sysfs) or raw dump files.

use std::fs::{self, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use vmdesc::{DiskBus, DiskDesc, DiskDevice};

use super::{read_attr, InventoryError, PhysicalDisk, SysRoot};

/// sysfs `size` counts 512-byte sectors whatever the device's logical block size.
const SECTOR: u64 = 512;

pub(super) struct FoundDisk {
    pub physical: PhysicalDisk,
    pub desc: DiskDesc,
}

/// Every disk in the order given; the first unusable one is the error.
pub(super) fn disks(
    root: &SysRoot,
    paths: &[PathBuf],
    warnings: &mut Vec<String>,
) -> Result<Vec<FoundDisk>, InventoryError> {
    let mut found = Vec::with_capacity(paths.len());
    let mut seen: Vec<(PathBuf, &Path)> = Vec::new();
    for path in paths {
        found.push(disk(root, path, warnings)?);
        // Imaging one device twice (by its /dev name and a by-id link) doubles the work and
        // gives the guest two copies of one disk.
        if let Ok(real) = fs::canonicalize(path) {
            if let Some((_, first)) = seen.iter().find(|(r, _)| *r == real) {
                warnings.push(format!(
                    "disk {} is the same as disk {}",
                    path.display(),
                    first.display()
                ));
            }
            seen.push((real, path));
        }
    }
    Ok(found)
}

fn disk(
    root: &SysRoot,
    path: &Path,
    warnings: &mut Vec<String>,
) -> Result<FoundDisk, InventoryError> {
    let meta = fs::metadata(path).map_err(|error| InventoryError::DiskMissing {
        path: path.to_path_buf(),
        error,
    })?;
    let (physical, target, bus) = if meta.is_file() {
        let target = path
            .file_name()
            .map_or_else(|| "disk".to_string(), |n| n.to_string_lossy().into_owned());
        (dump(path, &meta), target, DiskBus::Unknown)
    } else if meta.file_type().is_block_device() {
        let name = block_name(root, path, meta.rdev())?;
        let physical = facts_at(root, &name, path)?;
        let bus = bus(physical.transport.as_deref());
        (physical, name, bus)
    } else {
        return Err(InventoryError::NotADisk {
            path: path.to_path_buf(),
        });
    };
    if physical.size_bytes == 0 {
        warnings.push(format!("disk {} has size 0 (no medium?)", path.display()));
    }
    let desc = DiskDesc {
        path: Some(path.to_path_buf()),
        format: Some("raw".to_string()),
        bus,
        target,
        device: DiskDevice::Disk,
        read_only: false,
        capacity_bytes: Some(physical.size_bytes),
    };
    Ok(FoundDisk { physical, desc })
}

fn dump(path: &Path, meta: &Metadata) -> PhysicalDisk {
    PhysicalDisk {
        path: path.to_path_buf(),
        size_bytes: meta.len(),
        model: None,
        vendor: None,
        serial: None,
        rotational: None,
        transport: None,
    }
}

/// The kernel's name for a block device node. The device number is authoritative (a node
/// may be named anything); the node's own name, after following `/dev/disk/by-*` links,
/// serves when sysfs has no `dev/block`.
fn block_name(root: &SysRoot, path: &Path, rdev: u64) -> Result<String, InventoryError> {
    let number = root
        .join("sys/dev/block")
        .join(format!("{}:{}", major(rdev), minor(rdev)));
    if let Some(name) = fs::canonicalize(number)
        .ok()
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
    {
        return Ok(name);
    }
    let real = fs::canonicalize(path).map_err(|error| InventoryError::DiskMissing {
        path: path.to_path_buf(),
        error,
    })?;
    // sysfs spells subdirectories of /dev with '!' (`/dev/cciss/c0d0` is `cciss!c0d0`).
    let name = match real.strip_prefix("/dev") {
        Ok(rel) => rel.to_string_lossy().replace('/', "!"),
        Err(_) => real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    Ok(name)
}

/// Linux's `dev_t` layout (glibc `gnu_dev_major`/`gnu_dev_minor`).
pub(super) fn major(dev: u64) -> u64 {
    ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)
}

pub(super) fn minor(dev: u64) -> u64 {
    ((dev >> 12) & 0xffff_ff00) | (dev & 0xff)
}

/// What sysfs knows about the block device the kernel calls `name` (`sda`, `nvme0n1`,
/// `sda1`), under `root`. `path` in the result is `/dev/<name>`.
pub fn disk_facts(root: &SysRoot, name: &str) -> Result<PhysicalDisk, InventoryError> {
    facts_at(root, name, &Path::new("/dev").join(name))
}

fn facts_at(root: &SysRoot, name: &str, path: &Path) -> Result<PhysicalDisk, InventoryError> {
    let link = root.join("sys/class/block").join(name);
    let dir = fs::canonicalize(&link).map_err(|error| InventoryError::NoSysfs {
        path: path.to_path_buf(),
        sysfs: link,
        error,
    })?;
    let size_file = dir.join("size");
    let sectors = read_attr(&size_file)
        .ok_or_else(|| "missing or empty".to_string())
        .and_then(|s| s.parse::<u64>().map_err(|e| format!("{s:?}: {e}")))
        .map_err(|reason| InventoryError::NoSize {
            path: path.to_path_buf(),
            sysfs: size_file,
            reason,
        })?;
    // A partition has only its own size; model, serial and queue are on the whole disk.
    let whole = match dir.parent() {
        Some(parent) if dir.join("partition").exists() => parent,
        _ => &dir,
    };
    let device = whole.join("device");
    let sys = fs::canonicalize(root.join("sys")).unwrap_or_else(|_| root.join("sys"));
    Ok(PhysicalDisk {
        path: path.to_path_buf(),
        size_bytes: sectors.saturating_mul(SECTOR),
        model: read_attr(&device.join("model")),
        // virtio reports a PCI vendor number ("0x1af4"), not a name.
        vendor: read_attr(&device.join("vendor")).filter(|v| !v.starts_with("0x")),
        // virtio-blk and NVMe namespaces keep the serial beside `size`.
        serial: read_attr(&device.join("serial")).or_else(|| read_attr(&whole.join("serial"))),
        rotational: read_attr(&whole.join("queue/rotational")).and_then(|r| match r.as_str() {
            "0" => Some(false),
            "1" => Some(true),
            _ => None,
        }),
        transport: transport(dir.strip_prefix(&sys).unwrap_or(&dir)).map(str::to_string),
    })
}

/// The bus a block device hangs off, from its place in the sysfs device tree
/// (`devices/pci0000:00/0000:00:17.0/ata1/host0/…/block/sda`). Relative to `/sys`, so a
/// test root's own path cannot match.
pub(super) fn transport(sysfs_path: &Path) -> Option<&'static str> {
    let parts: Vec<&str> = sysfs_path.iter().filter_map(|c| c.to_str()).collect();
    let any = |pred: &dyn Fn(&str) -> bool| parts.iter().any(|p| pred(p));
    // USB first: a USB-SATA bridge also shows a SCSI host below the USB port.
    if any(&|p| numbered(p, "usb")) {
        Some("usb")
    } else if any(&|p| p.starts_with("nvme")) {
        Some("nvme")
    } else if any(&|p| numbered(p, "ata")) {
        Some("sata")
    } else if any(&|p| numbered(p, "host")) {
        // SAS, iSCSI and virtio-scsi: the guest saw a SCSI disk.
        Some("scsi")
    } else if any(&|p| numbered(p, "virtio")) {
        Some("virtio")
    } else if any(&|p| p.starts_with("mmc")) {
        Some("mmc")
    } else if any(&|p| p.starts_with("vbd-")) {
        Some("xen")
    } else {
        None
    }
}

/// `ata1` for prefix `ata`, not `ata` or `atapi`.
fn numbered(part: &str, prefix: &str) -> bool {
    part.strip_prefix(prefix)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// USB and MMC disks have no guest bus of their own; the planner picks one.
fn bus(transport: Option<&str>) -> DiskBus {
    match transport {
        Some("nvme") => DiskBus::Nvme,
        Some("sata") => DiskBus::Sata,
        Some("scsi") => DiskBus::Scsi,
        Some("virtio") => DiskBus::Virtio,
        Some("xen") => DiskBus::Xen,
        _ => DiskBus::Unknown,
    }
}
