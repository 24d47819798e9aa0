//! What kind of source a file is, from its content rather than its name: users hand
//! ferry `guest.cfg`, `export.xml`, `disk.img`, and the corpus holds an xm config named
//! `.vmx`. Only the first [`HEAD_BYTES`] are read, so sniffing a 100 GiB disk is cheap.

use std::path::Path;

use crate::model::VmDescription;
use crate::{libvirt, ova, ovf, vmx, xen, DescError};

#[cfg(test)]
mod tests;

/// Enough for the header of every disk format, an XML prologue plus root element, and
/// the comment block xm example configs open with.
pub const HEAD_BYTES: u64 = 16 * 1024;

/// The kinds of source ferry reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// VMware `.vmx`.
    Vmx,
    /// OVF descriptor.
    Ovf,
    /// OVA (a tar holding an OVF and its disks).
    Ova,
    /// Xen `xl.cfg` or `xm` config.
    Xen,
    /// libvirt domain XML.
    Libvirt,
    /// Anything else: a disk image (or a VMDK descriptor) with no VM description.
    Disk,
}

/// What [`read_description`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Described {
    Vm(VmDescription),
    Ova(ova::Ova),
    /// A bare disk: see [`VmDescription::from_disks`].
    Disk,
}

/// Sniffs the first bytes of `path`.
pub fn detect(path: &Path) -> Result<SourceKind, DescError> {
    let head = crate::capped::read_head(path, HEAD_BYTES)?;
    Ok(sniff(path, &head))
}

/// Detects what `path` is and reads it with the matching reader.
pub fn read_description(path: &Path) -> Result<Described, DescError> {
    Ok(match detect(path)? {
        SourceKind::Vmx => Described::Vm(vmx::read_vmx(path)?),
        SourceKind::Ovf => Described::Vm(ovf::read_ovf(path)?),
        SourceKind::Ova => Described::Ova(ova::read_ova(path)?),
        SourceKind::Xen => Described::Vm(xen::read_xen(path)?),
        SourceKind::Libvirt => Described::Vm(libvirt::read_libvirt(path)?),
        SourceKind::Disk => Described::Disk,
    })
}

/// Magics of disk formats whose headers could otherwise pass for text.
const DISK_MAGICS: &[&[u8]] = &[b"KDMV", b"QFI\xfb", b"conectix", b"vhdxfile", b"COWD"];

/// Decides from the first bytes; `path` only matters for the `.ova` extension.
pub(crate) fn sniff(path: &Path, head: &[u8]) -> SourceKind {
    if head.get(257..262) == Some(b"ustar") {
        return SourceKind::Ova;
    }
    // A compressed or damaged OVA is still one: its reader says what is wrong with it.
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ova"))
    {
        return SourceKind::Ova;
    }
    if DISK_MAGICS.iter().any(|m| head.starts_with(m)) || head.contains(&0) {
        return SourceKind::Disk;
    }
    // The head may end inside a multi-byte character; lossy is fine for sniffing.
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    // VMDK descriptors are key=value text too, but describe a disk, not a VM.
    if text
        .get(..64)
        .unwrap_or(text)
        .to_ascii_lowercase()
        .contains("# disk descriptorfile")
    {
        return SourceKind::Disk;
    }
    if text.starts_with('<') {
        return match root_element(text) {
            Some("Envelope") => SourceKind::Ovf,
            Some("domain") => SourceKind::Libvirt,
            _ => SourceKind::Disk,
        };
    }
    key_value_kind(text)
}

/// The local name of the first element, skipping the prologue (`<?xml?>`, comments,
/// DOCTYPE). `None` when the head ends before it.
fn root_element(mut text: &str) -> Option<&str> {
    loop {
        text = text.trim_start();
        let rest = text.strip_prefix('<')?;
        let skip_to = if rest.starts_with('?') {
            "?>"
        } else if rest.starts_with("!--") {
            "-->"
        } else if rest.starts_with('!') {
            ">"
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .unwrap_or(rest.len());
            let name = rest.get(..end)?;
            return Some(name.rsplit(':').next().unwrap_or(name));
        };
        let at = text.find(skip_to)?;
        text = text.get(at + skip_to.len()..)?;
    }
}

/// Keys only a `.vmx` has; every `.vmx` VMware writes has several.
const VMWARE_KEYS: &[&str] = &[
    ".encoding",
    "config.version",
    "virtualhw.version",
    "displayname",
    "guestos",
    "memsize",
    "numvcpus",
];
/// Device prefixes of `.vmx` keys, followed by a number (`scsi0:0.fileName`).
const VMWARE_DEVICES: &[&str] = &["scsi", "sata", "ide", "nvme", "ethernet", "floppy"];
/// Settings of an xl/xm guest config.
const XEN_KEYS: &[&str] = &[
    "name",
    "memory",
    "maxmem",
    "vcpus",
    "maxvcpus",
    "disk",
    "vif",
    "builder",
    "type",
    "kernel",
    "ramdisk",
    "bootloader",
    "extra",
    "root",
    "cmdline",
    "on_poweroff",
    "on_reboot",
    "on_crash",
    "cpus",
    "vfb",
    "pci",
];

/// `.vmx` vs Xen config vs neither, by which known keys the `key = value` lines set.
/// VMware keys win ties: a `.vmx` never sets a bare `name` or `memory`.
fn key_value_kind(text: &str) -> SourceKind {
    let mut vmware = 0usize;
    let mut xen_hits = 0usize;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim_start();
        // VMware quotes every value.
        if value.starts_with('"') && is_vmware_key(&key) {
            vmware += 1;
        } else if XEN_KEYS.contains(&key.as_str()) {
            xen_hits += 1;
        }
    }
    if vmware > 0 && vmware >= xen_hits {
        SourceKind::Vmx
    } else if xen_hits > 0 {
        SourceKind::Xen
    } else {
        SourceKind::Disk
    }
}

fn is_vmware_key(key: &str) -> bool {
    VMWARE_KEYS.contains(&key)
        || VMWARE_DEVICES.iter().any(|dev| {
            key.strip_prefix(dev)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
}
