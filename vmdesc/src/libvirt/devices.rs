//! `<devices>`: disks and network interfaces, in document order (the order libvirt
//! gives the guest, so the first disk stays the boot disk).

use std::path::{Path, PathBuf};

use roxmltree::Node;

use super::{child, children, clip, malformed};
use crate::model::{DiskBus, DiskDesc, DiskDevice, NicDesc, VmDescription};
use crate::DescError;

pub(super) fn read(
    path: &Path,
    dir: &Path,
    devs: Node,
    d: &mut VmDescription,
) -> Result<(), DescError> {
    for (n, disk) in children(devs, "disk").enumerate() {
        if let Some(disk) = read_disk(path, dir, n, disk, &mut d.warnings)? {
            d.disks.push(disk);
        }
    }
    for iface in children(devs, "interface") {
        d.nics.push(read_nic(iface, &mut d.warnings));
    }
    let passthrough = children(devs, "hostdev").count();
    if passthrough > 0 {
        d.warnings.push(format!(
            "{passthrough} host device(s) passed through not kept: host hardware does not move"
        ));
    }
    Ok(())
}

fn read_disk(
    path: &Path,
    dir: &Path,
    n: usize,
    disk: Node,
    warnings: &mut Vec<String>,
) -> Result<Option<DiskDesc>, DescError> {
    let target = child(disk, "target");
    let dev = target
        .and_then(|t| t.attribute("dev"))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| malformed(path, format!("disk {} has no <target dev>", n + 1)))?
        .to_string();
    let device = match disk.attribute("device").unwrap_or("disk") {
        "disk" => DiskDevice::Disk,
        "cdrom" => DiskDevice::Cdrom,
        "floppy" => DiskDevice::Floppy,
        "lun" => {
            warnings.push(format!(
                "disk {dev}: SCSI LUN passthrough read as a plain disk"
            ));
            DiskDevice::Disk
        }
        other => {
            return Err(malformed(
                path,
                format!("disk {dev}: unknown device `{}`", clip(other)),
            ))
        }
    };
    let source = child(disk, "source");
    let src = |attr: &str| {
        source
            .and_then(|s| s.attribute(attr))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let disk_path = match disk.attribute("type").unwrap_or("file") {
        // Relative names are relative to the XML, as for every other description.
        "file" => src("file").map(|f| dir.join(f)),
        "block" => src("dev").map(PathBuf::from),
        "volume" => match (src("pool"), src("volume")) {
            (Some(pool), Some(vol)) => {
                warnings.push(format!(
                    "disk {dev}: volume `{}` of pool `{}` must be looked up on the source host",
                    clip(vol),
                    clip(pool)
                ));
                Some(PathBuf::from(vol))
            }
            _ => None,
        },
        other => {
            // network (rbd, iscsi, nbd…), dir, nvme: no image file to copy.
            warnings.push(format!(
                "disk {dev}: type `{}` has no image file; skipped",
                clip(other)
            ));
            return Ok(None);
        }
    };
    if disk_path.is_none() && device == DiskDevice::Disk {
        warnings.push(format!("disk {dev} has no source; skipped"));
        return Ok(None);
    }
    let format = child(disk, "driver")
        .and_then(|drv| drv.attribute("type"))
        .map(|f| match f.trim().to_ascii_lowercase().as_str() {
            // Xen's tap driver names its raw backend `aio`; libvirt names VHD `vpc`.
            "aio" => "raw".to_string(),
            "vpc" => "vhd".to_string(),
            other => other.to_string(),
        });
    let bus = match target.and_then(|t| t.attribute("bus")) {
        Some(b) => bus_named(b),
        None => bus_from_dev(&dev),
    };
    Ok(Some(DiskDesc {
        path: disk_path,
        format,
        bus,
        target: dev,
        device,
        // libvirt makes CD-ROMs read-only whether or not it says so.
        read_only: child(disk, "readonly").is_some() || device == DiskDevice::Cdrom,
        capacity_bytes: None,
    }))
}

fn bus_named(bus: &str) -> DiskBus {
    match bus {
        "virtio" => DiskBus::Virtio,
        "sata" => DiskBus::Sata,
        "scsi" => DiskBus::Scsi,
        "ide" => DiskBus::Ide,
        "xen" => DiskBus::Xen,
        "nvme" => DiskBus::Nvme,
        // usb, fdc, sd: nothing a converted guest boots from.
        _ => DiskBus::Unknown,
    }
}

/// The bus libvirt picks when `<target>` names none (`virDiskNameToBusDeviceIndex`).
fn bus_from_dev(dev: &str) -> DiskBus {
    if dev.starts_with("xvd") {
        DiskBus::Xen
    } else if dev.starts_with("hd") {
        DiskBus::Ide
    } else if dev.starts_with("sd") {
        DiskBus::Scsi
    } else if dev.starts_with("vd") {
        DiskBus::Virtio
    } else if dev.starts_with("nvme") {
        DiskBus::Nvme
    } else {
        DiskBus::Unknown
    }
}

fn read_nic(iface: Node, warnings: &mut Vec<String>) -> NicDesc {
    let attr = |el: &str, name: &str| {
        child(iface, el)
            .and_then(|e| e.attribute(name))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let mac = attr("mac", "address").and_then(|m| {
        let norm = normalise_mac(m);
        if norm.is_none() {
            warnings.push(format!(
                "interface MAC `{}` is not usable; a new one is needed",
                clip(m)
            ));
        }
        norm
    });
    let network = attr("source", "network")
        .or_else(|| attr("source", "bridge"))
        .map(str::to_string);
    NicDesc {
        mac,
        model: attr("model", "type").map(str::to_string),
        network,
    }
}

/// `52:54:00:AB:cd:ef` → lower case; anything else is not a MAC.
fn normalise_mac(mac: &str) -> Option<String> {
    let parts: Vec<&str> = mac.split(':').collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    ok.then(|| mac.to_ascii_lowercase())
}
