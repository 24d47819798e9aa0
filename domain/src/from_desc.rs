//! From a source's [`VmDescription`] and the caller's choices to a [`Domain`].
//!
//! Every string that will reach the XML is checked here (absolute UTF-8 paths, no
//! characters XML cannot carry, unicast MACs), so the writer never has to fail.

use std::path::Path;

use vmdesc::{DiskDevice, Firmware as SourceFirmware, NicDesc, Topology, VmDescription};

use crate::model::{
    Bus, ClockOffset, Cpu, Disk, Firmware, Interface, Machine, NicModel, Os, Serial,
};
use crate::names::{disk_target, sanitize_name, xml_str_ok};
use crate::{ConvertedDisk, Domain, DomainError, DomainOptions, NetTarget, VirtType};

/// Used when the source states no memory size (OVFs without a memory item): enough
/// for most server guests to boot, small enough to fit on any host.
const DEFAULT_MEMORY_BYTES: u64 = 1 << 30;

/// Builds the domain for `desc`. `disks` are the converted files of the description's
/// hard disks (`device == Disk`), in the description's order.
pub fn domain_for(
    desc: &VmDescription,
    disks: &[ConvertedDisk],
    opts: &DomainOptions,
) -> Result<Domain, DomainError> {
    let mut notes = Vec::new();
    let name = sanitize_name(opts.name_override.as_deref().unwrap_or(&desc.name));

    let vcpus = if desc.vcpus == 0 {
        notes.push("source states no vCPU count; using 1".to_string());
        1
    } else {
        desc.vcpus
    };
    let (memory_kib, current_memory_kib) = memory(desc, &mut notes);
    let cpu = Cpu {
        host_model: opts.virt_type == VirtType::Kvm,
        topology: topology(desc.topology, vcpus, &mut notes),
    };
    let os = os(desc.firmware, opts.legacy_machine, &mut notes);
    if desc.xen_pv.as_ref().is_some_and(|pv| pv.kernel.is_some()) {
        // The fixups install a bootloader config on the disk; KVM has no PV boot path.
        notes.push("Xen PV kernel/ramdisk not carried over; the guest boots from its disk".into());
    }

    Ok(Domain {
        virt_type: opts.virt_type,
        name,
        // VmDescription carries no UUID today; inventing one would hide that.
        uuid: None,
        memory_kib,
        current_memory_kib,
        vcpus,
        cpu,
        os,
        clock: clock(desc.os_hint.as_deref()),
        disks: disk_devices(desc, disks, opts.virtio, &mut notes)?,
        interfaces: desc
            .nics
            .iter()
            .map(|nic| interface(nic, opts))
            .collect::<Result<_, _>>()?,
        serial: Serial {
            log: match &opts.serial_log {
                Some(p) => Some(host_path("serial log", p)?),
                None => None,
            },
        },
        virtio: opts.virtio,
        notes,
    })
}

/// `(memory, currentMemory)` in KiB, rounded up so the guest never gets less.
fn memory(desc: &VmDescription, notes: &mut Vec<String>) -> (u64, u64) {
    let current = if desc.memory_bytes == 0 {
        notes.push("source states no memory size; using 1 GiB".to_string());
        DEFAULT_MEMORY_BYTES
    } else {
        desc.memory_bytes
    };
    let max = desc.max_memory_bytes.unwrap_or(0).max(current);
    (max.div_ceil(1024), current.div_ceil(1024))
}

/// libvirt refuses a topology whose product differs from `<vcpu>`; without one it
/// picks its own, which is fine.
fn topology(t: Option<Topology>, vcpus: u32, notes: &mut Vec<String>) -> Option<Topology> {
    let t = t?;
    let product = t
        .sockets
        .checked_mul(t.cores)
        .and_then(|n| n.checked_mul(t.threads));
    if product == Some(vcpus) {
        Some(t)
    } else {
        notes.push(format!(
            "CPU topology {}x{}x{} does not match {vcpus} vCPUs; left to libvirt",
            t.sockets, t.cores, t.threads
        ));
        None
    }
}

fn os(firmware: SourceFirmware, legacy_machine: bool, notes: &mut Vec<String>) -> Os {
    let firmware = match firmware {
        SourceFirmware::Bios => Firmware::Bios,
        SourceFirmware::Uefi { secure_boot } => Firmware::Efi { secure_boot },
    };
    let secure_boot = matches!(firmware, Firmware::Efi { secure_boot: true });
    // OVMF's secure-boot builds need SMM, which QEMU offers only on q35.
    let machine = if legacy_machine && !secure_boot {
        Machine::Pc
    } else {
        if legacy_machine {
            notes.push("secure boot needs q35; legacy machine type not used".into());
        }
        Machine::Q35
    };
    Os { machine, firmware }
}

/// Windows keeps the hardware clock in local time; everything else in UTC.
fn clock(os_hint: Option<&str>) -> ClockOffset {
    let Some(hint) = os_hint else {
        return ClockOffset::Utc;
    };
    let hint = hint.to_ascii_lowercase();
    // VMware `guestOS` (`winxppro`, `windows9-64`, `longhorn`), OVF `osType`
    // (`windows7_64Guest`) and free-text descriptions ("Microsoft Windows Server").
    // Not a bare `contains("win")`: that would catch "darwin".
    if hint.starts_with("win")
        || hint.starts_with("longhorn")
        || hint.contains("windows")
        || hint.contains("microsoft")
    {
        ClockOffset::Localtime
    } else {
        ClockOffset::Utc
    }
}

fn disk_devices(
    desc: &VmDescription,
    converted: &[ConvertedDisk],
    virtio: bool,
    notes: &mut Vec<String>,
) -> Result<Vec<Disk>, DomainError> {
    let described = desc
        .disks
        .iter()
        .filter(|d| d.device == DiskDevice::Disk)
        .count();
    if described != converted.len() {
        return Err(DomainError::DiskCount {
            described,
            converted: converted.len(),
        });
    }
    let disk_bus = if virtio { Bus::Virtio } else { Bus::Sata };
    // Hard disks take the first SATA letters so the boot disk is `sda` either way.
    let mut next_sata = if virtio { 0 } else { described };
    let mut converted = converted.iter().enumerate();
    let mut out = Vec::new();
    for d in &desc.disks {
        match d.device {
            DiskDevice::Disk => {
                let Some((index, file)) = converted.next() else {
                    break; // counts were checked above
                };
                if file.format != "qcow2" && file.format != "raw" {
                    return Err(DomainError::DiskFormat {
                        path: shown(&file.path),
                        format: file.format.escape_debug().to_string(),
                    });
                }
                // QEMU cannot make an AHCI hard disk read-only; virtio-blk can.
                let read_only = d.read_only && virtio;
                if d.read_only && !virtio {
                    notes.push(format!(
                        "disk {} is read-only in the source but writable on SATA",
                        d.target.escape_debug()
                    ));
                }
                out.push(Disk::Disk {
                    source: host_path("disk", &file.path)?,
                    format: file.format.clone(),
                    target: disk_target(if virtio { "vd" } else { "sd" }, index),
                    bus: disk_bus,
                    read_only,
                });
            }
            DiskDevice::Cdrom => {
                out.push(Disk::Cdrom {
                    target: disk_target("sd", next_sata),
                    bus: Bus::Sata,
                });
                next_sata += 1;
            }
            // No floppy controller on q35, and nothing to put in the drive.
            DiskDevice::Floppy => {}
        }
    }
    Ok(out)
}

fn interface(nic: &NicDesc, opts: &DomainOptions) -> Result<Interface, DomainError> {
    let target = nic
        .network
        .as_deref()
        .and_then(|net| {
            opts.network_map
                .iter()
                .find(|(source, _)| source == net)
                .map(|(_, target)| target)
        })
        .unwrap_or(&opts.default_network)
        .clone();
    // NetTarget::parse checks names, but a target may have been built directly.
    if let NetTarget::Network(n) | NetTarget::Bridge(n) = &target {
        if n.is_empty() || !xml_str_ok(n) {
            return Err(DomainError::BadNetTarget {
                spec: target.to_string().escape_debug().to_string(),
                reason: "empty name or a character XML cannot carry".into(),
            });
        }
    }
    let mac = match &nic.mac {
        Some(mac) => Some(unicast_mac(mac)?),
        None => None,
    };
    Ok(Interface {
        target,
        mac,
        model: if opts.virtio {
            NicModel::Virtio
        } else {
            NicModel::E1000
        },
        source_network: nic.network.clone(),
    })
}

/// Normalises a MAC to lower-case `aa:bb:cc:dd:ee:ff`; libvirt refuses multicast ones
/// at define time, so refuse them here with a clearer message.
fn unicast_mac(mac: &str) -> Result<String, DomainError> {
    let bad = |reason: &str| DomainError::BadMac {
        mac: mac.escape_debug().to_string(),
        reason: reason.to_string(),
    };
    let octets: Vec<u8> = mac
        .split([':', '-'])
        .map(|o| {
            if o.len() == 2 {
                u8::from_str_radix(o, 16).ok()
            } else {
                None
            }
        })
        .collect::<Option<_>>()
        .ok_or_else(|| bad("not six hex octets"))?;
    if octets.len() != 6 {
        return Err(bad("not six hex octets"));
    }
    if octets.first().is_some_and(|first| first & 1 == 1) {
        return Err(bad("multicast address"));
    }
    Ok(octets
        .iter()
        .map(|o| format!("{o:02x}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// A host path as libvirt wants it: absolute, UTF-8, and writable as XML.
fn host_path(what: &'static str, path: &Path) -> Result<String, DomainError> {
    let bad = |reason: &'static str| DomainError::HostPath {
        what,
        path: shown(path),
        reason,
    };
    // Relative paths would be resolved against libvirtd's working directory.
    let abs = std::path::absolute(path).map_err(|_| bad("cannot be made absolute"))?;
    let s = abs.to_str().ok_or_else(|| bad("not UTF-8"))?;
    if !xml_str_ok(s) {
        return Err(bad("holds a character XML cannot carry"));
    }
    Ok(s.to_string())
}

/// A path on one line whatever it holds.
fn shown(path: &Path) -> String {
    path.display().to_string().escape_debug().to_string()
}
