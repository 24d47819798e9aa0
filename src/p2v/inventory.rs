//! The hardware of the machine ferry runs on (CPUs, memory, firmware, NICs) and of the
//! disks named for imaging, as a [`VmDescription`] the rest of ferry can plan a guest from.
//!
//! Everything is read from procfs and sysfs under a [`SysRoot`], so tests point it at a
//! fake tree. Disk paths are host paths (`/dev/sda`, `/dev/disk/by-id/…`, a raw dump):
//! only their sysfs facts are looked up under the root.
//!
//! What cannot be read becomes a warning in the description and a conservative value;
//! only a named disk that cannot be used is an error.

mod cpu;
mod disk;
mod net;
#[cfg(test)]
mod tests;

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use vmdesc::{Firmware, NicDesc, SourceHypervisor, VmDescription};

pub use disk::disk_facts;

/// The filesystem root procfs and sysfs are read under: `/` for the running machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SysRoot(PathBuf);

impl SysRoot {
    pub fn new(path: impl Into<PathBuf>) -> SysRoot {
        SysRoot(path.into())
    }

    /// The machine ferry runs on.
    pub fn host() -> SysRoot {
        SysRoot(PathBuf::from("/"))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `rel` is relative (`sys/class/net`), so a test root is never escaped.
    fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Default for SysRoot {
    fn default() -> SysRoot {
        SysRoot::host()
    }
}

/// The machine as a VM description plus the physical facts a description has no room for.
#[derive(Clone, Debug, Serialize)]
pub struct Inventory {
    pub description: VmDescription,
    /// The named disks, in the order given.
    pub disks: Vec<PhysicalDisk>,
    /// Every interface but `lo`, virtual ones included with `is_physical: false`.
    pub nics: Vec<PhysicalNic>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PhysicalDisk {
    /// The path as given (`/dev/sda`, a by-id link, or a raw dump file).
    pub path: PathBuf,
    pub size_bytes: u64,
    pub model: Option<String>,
    pub vendor: Option<String>,
    pub serial: Option<String>,
    pub rotational: Option<bool>,
    /// `sata`, `nvme`, `usb`, `virtio`, `scsi`, `mmc`, `xen`; `None` for virtual block
    /// devices (loop, device-mapper) and dump files.
    pub transport: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PhysicalNic {
    pub name: String,
    /// As sysfs shows it, lower-case; empty for interfaces without a hardware address.
    pub mac: String,
    pub driver: Option<String>,
    /// `None` when the link is down or the driver does not say.
    pub speed_mbps: Option<u32>,
    /// Backed by a device (PCI, USB, …) rather than a bridge, bond, veth or tun.
    pub is_physical: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("disk {}: {error}", path.display())]
    DiskMissing {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("disk {}: neither a block device nor a regular file", path.display())]
    NotADisk { path: PathBuf },
    #[error("disk {}: no sysfs entry {} ({error}); is /sys mounted?", path.display(), sysfs.display())]
    NoSysfs {
        path: PathBuf,
        sysfs: PathBuf,
        error: std::io::Error,
    },
    #[error("disk {}: cannot read its size from {}: {reason}", path.display(), sysfs.display())]
    NoSize {
        path: PathBuf,
        sysfs: PathBuf,
        reason: String,
    },
}

/// Used when no name is given and the host name cannot be read.
const FALLBACK_NAME: &str = "p2v-machine";
/// Used when `/proc/meminfo` cannot be read, matching what bare disks get.
const FALLBACK_MEMORY: u64 = 2 << 30;
const MIB: u64 = 1 << 20;
const SECURE_BOOT_VAR: &str = "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";

/// Inventories the machine under `root` and the disks named (in that order); `name`
/// overrides the host name.
pub fn inventory(
    root: &SysRoot,
    disks: &[PathBuf],
    name: Option<&str>,
) -> Result<Inventory, InventoryError> {
    // `SourceHypervisor` has no physical variant; say so instead of leaving readers to guess.
    let mut warnings = vec![format!(
        "source is a physical machine (no hypervisor), inventoried from {}",
        root.path().display()
    )];
    // Disks first: a bad disk name is the one thing that fails, and should fail fast.
    let found = disk::disks(root, disks, &mut warnings)?;
    let cpus = cpu::cpus(root, &mut warnings);
    let memory_bytes = memory_bytes(root, &mut warnings);
    let firmware = firmware(root, &mut warnings);
    let nics = net::nics(root, &mut warnings);
    let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => host_name(root, &mut warnings),
    };
    let description = VmDescription {
        name,
        hypervisor: SourceHypervisor::Unknown,
        firmware,
        vcpus: cpus.vcpus,
        topology: cpus.topology,
        memory_bytes,
        max_memory_bytes: None,
        disks: found.iter().map(|d| d.desc.clone()).collect(),
        nics: nic_descs(&nics, &mut warnings),
        os_hint: os_hint(root),
        xen_pv: None,
        warnings,
    };
    Ok(Inventory {
        description,
        disks: found.into_iter().map(|d| d.physical).collect(),
        nics,
    })
}

/// A sysfs or procfs attribute, trimmed; `None` when missing, unreadable or blank (sysfs
/// pads SCSI strings with spaces, and blank is as good as absent).
fn read_attr(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// `MemTotal` rounded up to whole MiB, since guests are sized in MiB and rounding down
/// would shrink the machine.
fn memory_bytes(root: &SysRoot, warnings: &mut Vec<String>) -> u64 {
    let path = root.join("proc/meminfo");
    let kib = fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|t| {
            mem_total_kib(&t)
                .filter(|k| *k > 0)
                .ok_or_else(|| "no MemTotal line".to_string())
        });
    match kib {
        Ok(kib) => kib.div_ceil(1024).saturating_mul(MIB),
        Err(why) => {
            warnings.push(format!(
                "could not read memory size from {} ({why}): assumed {} GiB",
                path.display(),
                FALLBACK_MEMORY >> 30
            ));
            FALLBACK_MEMORY
        }
    }
}

fn mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix("MemTotal:")?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn firmware(root: &SysRoot, warnings: &mut Vec<String>) -> Firmware {
    // The kernel creates /sys/firmware/efi only when booted through UEFI.
    if !root.join("sys/firmware/efi").is_dir() {
        return Firmware::Bios;
    }
    Firmware::Uefi {
        secure_boot: secure_boot(root, warnings),
    }
}

/// The `SecureBoot` variable: 4 bytes of attributes, then 1 when enforcing.
fn secure_boot(root: &SysRoot, warnings: &mut Vec<String>) -> bool {
    let vars = root.join("sys/firmware/efi/efivars");
    let path = vars.join(SECURE_BOOT_VAR);
    match fs::read(&path) {
        Ok(bytes) if bytes.len() >= 5 => bytes[4] == 1,
        Ok(bytes) => {
            warnings.push(format!(
                "{} is {} bytes, expected 5: secure boot assumed off",
                path.display(),
                bytes.len()
            ));
            false
        }
        // Firmware without secure boot support has no such variable.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && vars.is_dir() => false,
        Err(e) => {
            warnings.push(format!(
                "could not read {} ({e}): secure boot assumed off",
                path.display()
            ));
            false
        }
    }
}

fn host_name(root: &SysRoot, warnings: &mut Vec<String>) -> String {
    let found = ["proc/sys/kernel/hostname", "etc/hostname"]
        .iter()
        .find_map(|rel| read_attr(&root.join(rel)));
    found.unwrap_or_else(|| {
        warnings.push(format!(
            "could not read the host name: named the machine {FALLBACK_NAME}"
        ));
        FALLBACK_NAME.to_string()
    })
}

/// `PRETTY_NAME` (else `NAME`) from os-release, in its two standard places.
fn os_hint(root: &SysRoot) -> Option<String> {
    let text = ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|rel| fs::read_to_string(root.join(rel)).ok())?;
    os_release_field(&text, "PRETTY_NAME").or_else(|| os_release_field(&text, "NAME"))
}

fn os_release_field(text: &str, key: &str) -> Option<String> {
    let value = text.lines().find_map(|line| {
        let (k, v) = line.trim().split_once('=')?;
        (k == key).then_some(v.trim())
    })?;
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| value.strip_prefix(*q)?.strip_suffix(*q))
        .unwrap_or(value);
    // Shell-style escapes are allowed in os-release; only these occur in practice.
    let value = unquoted
        .replace("\\\"", "\"")
        .replace("\\$", "$")
        .replace("\\`", "`")
        .replace("\\\\", "\\");
    (!value.is_empty()).then_some(value)
}

/// Physical NICs for the description; a guest NIC needs an Ethernet MAC, so others
/// (InfiniBand, interfaces without an address) are left out with a warning.
fn nic_descs(nics: &[PhysicalNic], warnings: &mut Vec<String>) -> Vec<NicDesc> {
    let mut descs = Vec::new();
    for nic in nics.iter().filter(|n| n.is_physical) {
        if !is_ethernet_mac(&nic.mac) {
            warnings.push(format!(
                "network interface {}: address {:?} is not an Ethernet MAC; left out",
                nic.name, nic.mac
            ));
            continue;
        }
        descs.push(NicDesc {
            mac: Some(nic.mac.clone()),
            model: nic.driver.clone(),
            network: None,
        });
    }
    descs
}

fn is_ethernet_mac(mac: &str) -> bool {
    let octets: Vec<&str> = mac.split(':').collect();
    octets.len() == 6
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.chars().all(|c| c.is_ascii_hexdigit()))
}
