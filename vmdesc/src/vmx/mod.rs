//! VMware `.vmx` reader (ESX, Workstation, Fusion, GSX).
//!
//! A `.vmx` is a flat list of `key = "value"` lines. Keys are case-insensitive (VMware
//! writes `memSize` and `memsize` alike), values are always quoted and use `|XX` hex
//! escapes for bytes that would break the quoting (`|22` is `"`, `|7C` is `|`), as
//! libvirt's `src/vmx/vmx.c` documents. We keep only what ferry needs and note what we
//! read but could not use in `warnings`.
//!
//! Decisions worth knowing:
//! - Disk order is SCSI, SATA, IDE, NVMe, then floppies; within a bus by controller,
//!   then unit. This is the order virt-v2v's `-i vmx` uses, so the disk that becomes the
//!   first KVM disk is the same one virt-v2v would pick.
//! - A NIC without `virtualDev` gets the model VMware itself picks: `e1000` for 64-bit
//!   guests (`guestOS` ending in `-64`), `vlance` otherwise (libvirt does the same), with a
//!   warning saying it was assumed.
//! - Host-device CD-ROMs and floppies (`atapi-cdrom`, `cdrom-raw`, `/dev/fd0`) become
//!   empty drives: the host's device does not travel with the guest.

use crate::malformed;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::model::{
    DiskBus, DiskDesc, DiskDevice, Firmware, NicDesc, SourceHypervisor, Topology, VmDescription,
};
use crate::DescError;

#[cfg(test)]
mod tests;

/// Real `.vmx` files are a few KiB; anything bigger is not one, and reading it whole
/// would let a hostile file eat memory.
pub const MAX_VMX_BYTES: u64 = 4 * 1024 * 1024;

/// Hostile files could otherwise yield one warning per line.
const MAX_WARNINGS: usize = 200;

/// VMware's own limits (libvirt's vmx.c uses the same): controllers per bus and units
/// per controller. Anything outside is not a device VMware would power on.
const SCSI_CONTROLLERS: u32 = 4;
const SCSI_UNITS: u32 = 16;
const SATA_CONTROLLERS: u32 = 4;
const SATA_UNITS: u32 = 30;
const NVME_CONTROLLERS: u32 = 4;
const NVME_UNITS: u32 = 15;
const IDE_CONTROLLERS: u32 = 2;
const IDE_UNITS: u32 = 2;
const FLOPPIES: u32 = 2;
const ETHERNETS: u32 = 10;

/// VMware's default when `memsize` is absent.
const DEFAULT_MEMORY_MIB: u64 = 32;

/// Reads and parses a `.vmx` file.
pub fn read_vmx(path: &Path) -> Result<VmDescription, DescError> {
    let bytes = crate::capped::read_capped(path, MAX_VMX_BYTES, "a .vmx")?;
    if bytes.contains(&0) {
        return Err(malformed(path, "binary data (NUL bytes), not a .vmx"));
    }
    let (text, note) = decode(&bytes);
    let mut desc = parse_vmx(path, &text)?;
    if let Some(note) = note {
        desc.warnings.insert(0, note);
    }
    Ok(desc)
}

/// Turns the file into text. `.encoding` is almost always UTF-8; older Workstation files
/// without it may be in the host's code page, which we read as Latin-1 so names survive
/// rather than failing the whole conversion.
fn decode(bytes: &[u8]) -> (String, Option<String>) {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_owned(), None),
        Err(_) => (
            bytes.iter().map(|&b| char::from(b)).collect(),
            Some("file is not valid UTF-8; read as Latin-1".to_owned()),
        ),
    }
}

/// Parses the text of a `.vmx`; `path` names it in errors and anchors relative disk
/// file names.
pub fn parse_vmx(path: &Path, text: &str) -> Result<VmDescription, DescError> {
    if text.len() as u64 > MAX_VMX_BYTES {
        return Err(malformed(
            path,
            format!("larger than {MAX_VMX_BYTES} bytes, not a .vmx"),
        ));
    }
    if text.contains('\0') {
        return Err(malformed(path, "binary data (NUL bytes), not a .vmx"));
    }
    let mut warn = Warnings::default();
    let entries = parse_entries(path, text, &mut warn)?;
    let vmx = Vmx {
        entries,
        dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let mut desc = VmDescription {
        hypervisor: SourceHypervisor::Vmware,
        ..VmDescription::default()
    };
    vmx.fill_basics(path, &mut desc, &mut warn);
    desc.disks = vmx.disks(&mut warn);
    desc.nics = vmx.nics(desc.os_hint.as_deref(), &mut warn);
    desc.warnings = warn.finish();
    Ok(desc)
}

/// Warnings with a cap, so a hostile file cannot turn them into a memory sink.
#[derive(Default)]
struct Warnings {
    list: Vec<String>,
    dropped: usize,
}

impl Warnings {
    fn push(&mut self, w: String) {
        if self.list.len() < MAX_WARNINGS {
            self.list.push(w);
        } else {
            self.dropped += 1;
        }
    }

    fn finish(mut self) -> Vec<String> {
        if self.dropped > 0 {
            self.list
                .push(format!("{} more warnings not shown", self.dropped));
        }
        self.list
    }
}

/// Splits the text into lower-cased keys and unescaped values (last one wins, as in
/// VMware). Fails only when the text is not a `.vmx` at all.
fn parse_entries(
    path: &Path,
    text: &str,
    warn: &mut Warnings,
) -> Result<BTreeMap<String, String>, DescError> {
    let mut entries = BTreeMap::new();
    let mut good = 0usize;
    let mut bad = 0usize;
    for (idx, raw) in text.split('\n').enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Some((key, value)) => {
                good += 1;
                let (value, bad_escape) = unescape(value);
                if bad_escape {
                    warn.push(format!(
                        "line {}: {key}: invalid |XX escape kept as written",
                        idx + 1
                    ));
                }
                entries.insert(key.to_ascii_lowercase(), value);
            }
            None => {
                bad += 1;
                warn.push(format!(
                    "line {}: not a key = \"value\" line, ignored",
                    idx + 1
                ));
            }
        }
    }
    // A real .vmx has nothing but key = "value" lines; a Python xm config or random
    // text named .vmx has mostly other lines. Half is the line between "a .vmx with a
    // few damaged lines" and "something else".
    if good == 0 {
        return Err(malformed(path, "no key = \"value\" lines, not a .vmx"));
    }
    if bad > good {
        return Err(malformed(
            path,
            format!(
                "{bad} of {} lines are not key = \"value\", not a .vmx",
                good + bad
            ),
        ));
    }
    Ok(entries)
}

/// `key = "value"` with an optional trailing `# comment`. Keys are VMware identifiers:
/// letters, digits and `._:-*` (`pciPassthru*.present` is real).
fn parse_line(line: &str) -> Option<(&str, &str)> {
    let (key, rest) = line.split_once('=')?;
    let key = key.trim();
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-*[]".contains(&b))
    {
        return None;
    }
    let rest = rest.trim().strip_prefix('"')?;
    // Escapes keep `"` out of the value, so the next quote closes it.
    let (value, tail) = rest.split_once('"')?;
    let tail = tail.trim();
    if !tail.is_empty() && !tail.starts_with('#') {
        return None;
    }
    Some((key, value))
}

/// Undoes VMware's `|XX` hex escapes. Returns whether an invalid escape was seen (kept
/// literally rather than failing: a name with a stray `|` is still usable).
fn unescape(value: &str) -> (String, bool) {
    if !value.contains('|') {
        return (value.to_owned(), false);
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut bad = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'|' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
            bad = true;
        }
        out.push(b);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => (s, bad),
        // An escape produced a byte sequence that is not UTF-8.
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
    }
}

/// The parsed entries plus the folder relative file names hang off.
struct Vmx {
    entries: BTreeMap<String, String>,
    dir: PathBuf,
}

/// One `busX:Y` or `floppyN` device found with `.present = "TRUE"`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    // Variant order is the disk order (see the module comment).
    Scsi(u32, u32),
    Sata(u32, u32),
    Ide(u32, u32),
    Nvme(u32, u32),
    Floppy(u32),
}

impl Slot {
    fn prefix(self) -> String {
        match self {
            Slot::Scsi(c, u) => format!("scsi{c}:{u}"),
            Slot::Sata(c, u) => format!("sata{c}:{u}"),
            Slot::Ide(c, u) => format!("ide{c}:{u}"),
            Slot::Nvme(c, u) => format!("nvme{c}:{u}"),
            Slot::Floppy(n) => format!("floppy{n}"),
        }
    }

    fn controller(self) -> Option<String> {
        match self {
            Slot::Scsi(c, _) => Some(format!("scsi{c}")),
            Slot::Sata(c, _) => Some(format!("sata{c}")),
            Slot::Nvme(c, _) => Some(format!("nvme{c}")),
            // IDE controllers and the floppy controller are always there.
            Slot::Ide(..) | Slot::Floppy(_) => None,
        }
    }

    fn bus(self) -> DiskBus {
        match self {
            Slot::Scsi(..) => DiskBus::Scsi,
            Slot::Sata(..) => DiskBus::Sata,
            Slot::Ide(..) => DiskBus::Ide,
            Slot::Nvme(..) => DiskBus::Nvme,
            // The model has no floppy controller bus.
            Slot::Floppy(_) => DiskBus::Unknown,
        }
    }

    /// Parses the device part of a key (`scsi0:1`, `floppy0`), checking VMware's limits.
    fn parse(dev: &str) -> Result<Option<Slot>, String> {
        if let Some(n) = dev.strip_prefix("floppy") {
            let Ok(n) = n.parse::<u32>() else {
                return Ok(None);
            };
            return if n < FLOPPIES {
                Ok(Some(Slot::Floppy(n)))
            } else {
                Err(format!("{dev}: VMware has only {FLOPPIES} floppy drives"))
            };
        }
        let Some((ctrl, unit)) = dev.split_once(':') else {
            return Ok(None);
        };
        let split = |prefix: &str| -> Option<(u32, u32)> {
            let c = ctrl.strip_prefix(prefix)?.parse().ok()?;
            let u = unit.parse().ok()?;
            Some((c, u))
        };
        type Make = fn(u32, u32) -> Slot;
        let kinds: [(&str, u32, u32, Make); 4] = [
            ("scsi", SCSI_CONTROLLERS, SCSI_UNITS, Slot::Scsi),
            ("sata", SATA_CONTROLLERS, SATA_UNITS, Slot::Sata),
            ("ide", IDE_CONTROLLERS, IDE_UNITS, Slot::Ide),
            ("nvme", NVME_CONTROLLERS, NVME_UNITS, Slot::Nvme),
        ];
        for (prefix, ctrls, units, make) in kinds {
            if let Some((c, u)) = split(prefix) {
                if c >= ctrls || u >= units {
                    return Err(format!(
                        "{dev}: outside VMware's {prefix} limits ({ctrls} controllers, {units} units)"
                    ));
                }
                if prefix == "scsi" && u == 7 {
                    // Unit 7 is the SCSI controller itself.
                    return Err(format!("{dev}: scsi unit 7 is the controller, not a disk"));
                }
                return Ok(Some(make(c, u)));
            }
        }
        Ok(None)
    }
}

impl Vmx {
    fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// A non-empty value.
    fn text(&self, key: &str) -> Option<&str> {
        self.get(key).map(str::trim).filter(|v| !v.is_empty())
    }

    /// VMware booleans are `TRUE`/`FALSE` in any case; anything else is noted and the
    /// default used.
    fn boolean(&self, key: &str, default: bool, warn: &mut Warnings) -> bool {
        match self.get(key).map(str::trim) {
            None | Some("") => default,
            Some(v) if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("yes") => true,
            Some(v) if v.eq_ignore_ascii_case("false") || v.eq_ignore_ascii_case("no") => false,
            Some(v) => {
                warn.push(format!(
                    "{key} = \"{v}\" is not TRUE/FALSE; using {default}"
                ));
                default
            }
        }
    }

    fn number(&self, key: &str, warn: &mut Warnings) -> Option<u64> {
        let v = self.text(key)?;
        match v.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                warn.push(format!("{key} = \"{v}\" is not a number; ignored"));
                None
            }
        }
    }

    fn fill_basics(&self, path: &Path, desc: &mut VmDescription, warn: &mut Warnings) {
        desc.name = match self.text("displayname") {
            Some(n) => n.to_owned(),
            None => {
                warn.push("no displayName; named after the file".into());
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            }
        };
        desc.os_hint = self.text("guestos").map(str::to_owned);

        desc.vcpus = match self.number("numvcpus", warn) {
            None => 1,
            Some(0) => {
                warn.push("numvcpus = \"0\"; using 1".into());
                1
            }
            Some(n) => u32::try_from(n).unwrap_or_else(|_| {
                warn.push(format!("numvcpus = \"{n}\" is absurd; using 1"));
                1
            }),
        };
        if let Some(cores) = self.number("cpuid.corespersocket", warn) {
            match u32::try_from(cores) {
                Ok(cores) if cores > 0 && desc.vcpus.is_multiple_of(cores) => {
                    desc.topology = Some(Topology {
                        sockets: desc.vcpus / cores,
                        cores,
                        threads: 1,
                    });
                }
                _ => warn.push(format!(
                    "cpuid.coresPerSocket = \"{cores}\" does not divide numvcpus = {}; topology ignored",
                    desc.vcpus
                )),
            }
        }

        let mib = match self.number("memsize", warn) {
            None | Some(0) => DEFAULT_MEMORY_MIB,
            Some(n) => n,
        };
        desc.memory_bytes = mib.checked_mul(1024 * 1024).unwrap_or_else(|| {
            warn.push(format!(
                "memsize = \"{mib}\" overflows; using {DEFAULT_MEMORY_MIB} MiB"
            ));
            DEFAULT_MEMORY_MIB * 1024 * 1024
        });

        let secure = self.boolean("uefi.secureboot.enabled", false, warn);
        desc.firmware = match self
            .text("firmware")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("efi") => Firmware::Uefi {
                secure_boot: secure,
            },
            None | Some("bios") => {
                if secure {
                    warn.push("uefi.secureBoot.enabled without firmware = \"efi\"; ignored".into());
                }
                Firmware::Bios
            }
            Some(other) => {
                warn.push(format!("firmware = \"{other}\" unknown; assuming BIOS"));
                Firmware::Bios
            }
        };
    }

    /// Every present disk, CD-ROM and floppy, in the documented order.
    fn disks(&self, warn: &mut Warnings) -> Vec<DiskDesc> {
        let mut slots = Vec::new();
        for key in self.entries.keys() {
            let Some(dev) = key.strip_suffix(".present") else {
                continue;
            };
            match Slot::parse(dev) {
                Ok(Some(slot)) => slots.push(slot),
                Ok(None) => {}
                Err(e) => {
                    if self.boolean(key, false, warn) {
                        warn.push(format!("{e}; ignored"));
                    }
                }
            }
        }
        slots.sort();
        // `scsi0:01` and `scsi0:1` name the same slot.
        slots.dedup();
        slots
            .into_iter()
            .filter_map(|slot| self.disk(slot, warn))
            .collect()
    }

    fn disk(&self, slot: Slot, warn: &mut Warnings) -> Option<DiskDesc> {
        let p = slot.prefix();
        if !self.boolean(&format!("{p}.present"), false, warn) {
            return None;
        }
        if let Some(ctrl) = slot.controller() {
            // VMware ignores devices on an absent controller; so does libvirt.
            if !self.boolean(&format!("{ctrl}.present"), true, warn) {
                warn.push(format!("{p}: controller {ctrl} is not present; ignored"));
                return None;
            }
        }
        let file = self.text(&format!("{p}.filename"));
        let device_type = self
            .text(&format!("{p}.devicetype"))
            .map(str::to_ascii_lowercase);
        let lower_file = file.map(str::to_ascii_lowercase).unwrap_or_default();

        // (device, whether fileName is a guest image we should keep)
        let (device, is_image) = if let Slot::Floppy(_) = slot {
            let host = self
                .text(&format!("{p}.filetype"))
                .is_some_and(|t| t.eq_ignore_ascii_case("device"))
                || lower_file.starts_with("/dev/")
                || lower_file == "vmware-null-remote-floppy";
            (DiskDevice::Floppy, !host)
        } else {
            match device_type.as_deref() {
                Some("scsi-harddisk" | "disk" | "ata-harddisk" | "plaindisk") => {
                    (DiskDevice::Disk, true)
                }
                Some("rawdisk" | "scsi-passthru") if file.is_some() => {
                    warn.push(format!(
                        "{p}: deviceType {} maps a host disk; kept as a disk image",
                        device_type.as_deref().unwrap_or_default()
                    ));
                    (DiskDevice::Disk, true)
                }
                Some("cdrom-image") => (DiskDevice::Cdrom, true),
                Some("atapi-cdrom" | "cdrom-raw") => {
                    if let Some(f) = file.filter(|f| !is_empty_backing(f)) {
                        warn.push(format!(
                            "{p}: CD-ROM passes through host drive \"{f}\"; kept as an empty drive"
                        ));
                    }
                    (DiskDevice::Cdrom, false)
                }
                // No deviceType: VMware decides from the file, as libvirt does.
                None if lower_file.ends_with(".iso") => (DiskDevice::Cdrom, true),
                None if file.is_some() => {
                    if !lower_file.ends_with(".vmdk") {
                        warn.push(format!(
                            "{p}: no deviceType and \"{}\" is not a .vmdk; assumed a disk",
                            file.unwrap_or_default()
                        ));
                    }
                    (DiskDevice::Disk, true)
                }
                None => {
                    warn.push(format!(
                        "{p}: present but has no deviceType or fileName; ignored"
                    ));
                    return None;
                }
                Some(other) => {
                    warn.push(format!("{p}: deviceType \"{other}\" unknown; ignored"));
                    return None;
                }
            }
        };

        let path = match file {
            Some(f) if is_image && !is_empty_backing(f) => Some(self.resolve(&p, f, warn)),
            Some(_) | None if device == DiskDevice::Disk => {
                warn.push(format!("{p}: disk has no fileName; ignored"));
                return None;
            }
            _ => None,
        };
        let format = path.as_ref().and_then(|_| {
            if lower_file.ends_with(".vmdk") {
                Some("vmdk".to_owned())
            } else if lower_file.ends_with(".iso") || lower_file.ends_with(".flp") {
                // ISO and floppy images are plain bytes.
                Some("raw".to_owned())
            } else {
                None
            }
        });
        Some(DiskDesc {
            path,
            format,
            bus: slot.bus(),
            target: p,
            device,
            read_only: device == DiskDevice::Cdrom,
            capacity_bytes: None,
        })
    }

    /// Relative names are beside the .vmx; absolute ones (datastore paths, host paths)
    /// are kept as written because only the source host can resolve them.
    fn resolve(&self, dev: &str, file: &str, warn: &mut Warnings) -> PathBuf {
        let windows_abs = file.starts_with('\\')
            || matches!(file.as_bytes(), [d, b':', ..] if d.is_ascii_alphabetic());
        if file.starts_with("/vmfs/volumes/") {
            warn.push(format!(
                "{dev}: \"{file}\" is an ESX datastore path; kept as given"
            ));
            PathBuf::from(file)
        } else if file.starts_with('/') || windows_abs {
            warn.push(format!(
                "{dev}: \"{file}\" is an absolute host path; kept as given"
            ));
            PathBuf::from(file)
        } else {
            if Path::new(file)
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                warn.push(format!("{dev}: \"{file}\" leaves the .vmx folder"));
            }
            self.dir.join(file)
        }
    }

    /// Present `ethernetN` adapters in N order.
    fn nics(&self, guest_os: Option<&str>, warn: &mut Warnings) -> Vec<NicDesc> {
        let mut nics = Vec::new();
        for n in 0..ETHERNETS {
            let p = format!("ethernet{n}");
            if !self.boolean(&format!("{p}.present"), false, warn) {
                continue;
            }
            nics.push(self.nic(&p, guest_os, warn));
        }
        for key in self.entries.keys() {
            if let Some(n) = key
                .strip_prefix("ethernet")
                .and_then(|k| k.strip_suffix(".present"))
                .and_then(|n| n.parse::<u32>().ok())
            {
                if n >= ETHERNETS {
                    warn.push(format!(
                        "ethernet{n}: VMware has only {ETHERNETS} NICs; ignored"
                    ));
                }
            }
        }
        nics
    }

    fn nic(&self, p: &str, guest_os: Option<&str>, warn: &mut Warnings) -> NicDesc {
        let model = match self.text(&format!("{p}.virtualdev")) {
            Some(m) => m.to_ascii_lowercase(),
            None => {
                let is64 = guest_os.is_some_and(|g| g.to_ascii_lowercase().ends_with("-64"));
                let m = if is64 { "e1000" } else { "vlance" };
                warn.push(format!(
                    "{p}: no virtualDev; assumed {m} as VMware picks for guestOS \"{}\"",
                    guest_os.unwrap_or_default()
                ));
                m.to_owned()
            }
        };
        let address_type = self
            .text(&format!("{p}.addresstype"))
            .map(str::to_ascii_lowercase)
            .unwrap_or_else(|| "generated".to_owned());
        let static_mac = self.text(&format!("{p}.address"));
        let generated = self.text(&format!("{p}.generatedaddress"));
        let raw = match address_type.as_str() {
            "static" => static_mac.or_else(|| {
                warn.push(format!("{p}: addressType static but no address"));
                generated
            }),
            "generated" | "vpx" => generated.or(static_mac),
            other => {
                warn.push(format!("{p}: addressType \"{other}\" unknown"));
                generated.or(static_mac)
            }
        };
        let mac = raw.and_then(|m| {
            let norm = normalise_mac(m);
            if norm.is_none() {
                warn.push(format!(
                    "{p}: MAC \"{m}\" is not usable; a new one is needed"
                ));
            }
            norm
        });
        let network = self.text(&format!("{p}.networkname")).map(str::to_owned);
        if network.is_none() {
            let how = self
                .text(&format!("{p}.connectiontype"))
                .unwrap_or("unknown");
            warn.push(format!("{p}: no networkName (connectionType {how})"));
        }
        NicDesc {
            mac,
            model: Some(model),
            network,
        }
    }
}

/// VMware's placeholders for "no medium".
fn is_empty_backing(file: &str) -> bool {
    file.eq_ignore_ascii_case("emptyBackingString")
        || file.eq_ignore_ascii_case("auto detect")
        || file.eq_ignore_ascii_case("vmware-null-remote-floppy")
}

/// `00:50:56:A0:cf:2f` or `00-50-56-…` → `00:50:56:a0:cf:2f`. The all-zero MAC VMware
/// writes for "unset" is refused, so the caller generates one.
fn normalise_mac(mac: &str) -> Option<String> {
    let parts: Vec<&str> = mac.trim().split([':', '-']).collect();
    if parts.len() != 6
        || !parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return None;
    }
    let norm = parts.join(":").to_ascii_lowercase();
    if norm == "00:00:00:00:00:00" {
        return None;
    }
    Some(norm)
}
