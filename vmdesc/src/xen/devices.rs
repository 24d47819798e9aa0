//! `disk = [...]` diskspecs and `vif = [...]` vifspecs.
//!
//! A diskspec comes in two syntaxes that may be mixed in one entry
//! (docs/misc/xl-disk-configuration.txt):
//! - positional: `target,format,vdev,access` (xl), or the xm form
//!   `prefix:target,vdev[:cdrom],access` where the prefix (`phy:`, `file:`,
//!   `tap:aio:`, `tap2:tapdisk:vhd:`, …) names the backend and implies the format;
//! - keyword: `format=raw, vdev=xvda, access=rw, target=/dev/vg/lv`, where `target=`
//!   must come last and takes the rest of the entry verbatim (it may hold `,` and `=`).

use std::path::{Path, PathBuf};

use crate::model::{DiskBus, DiskDesc, DiskDevice, NicDesc};

use super::syntax::clip;

/// Formats xl names in a diskspec (`format=` or the second positional).
const FORMATS: &[&str] = &["raw", "qcow", "qcow2", "vhd", "qed", "empty"];

/// Bare words xl accepts among diskspec parameters; none changes what ferry copies.
const DISK_FLAGS: &[&str] = &[
    "discard",
    "no-discard",
    "direct-io-safe",
    "colo",
    "trusted",
    "untrusted",
];

/// Keys that, written after a misplaced `target=`, show where the target ends.
const TARGET_FOLLOWERS: &[&str] = &[
    ",vdev=",
    ",format=",
    ",access=",
    ",devtype=",
    ",backendtype=",
];

/// What a deprecated target prefix says about the backing.
enum Prefix {
    /// Backend or driver names (`phy`, `file`, `tap`, `tapdisk`, …); `phy:` makes a
    /// bare device name like `hda1` mean `/dev/hda1`, as xm did.
    Backend { phy: bool },
    /// Names the image format (`aio` = raw, `qcow2`, `vhd`, …).
    Format(&'static str),
    /// A network block device: no file or device for ferry to copy.
    Network,
}

fn prefix(word: &str) -> Option<Prefix> {
    Some(match word {
        "phy" => Prefix::Backend { phy: true },
        "file" | "tap" | "tap2" | "tapdisk" | "ioemu" | "qdisk" => Prefix::Backend { phy: false },
        "aio" | "raw" => Prefix::Format("raw"),
        "qcow" => Prefix::Format("qcow"),
        "qcow2" => Prefix::Format("qcow2"),
        "vhd" => Prefix::Format("vhd"),
        "qed" => Prefix::Format("qed"),
        "nbd" | "iscsi" | "drbd" | "rbd" | "enbd" | "nfs" | "sheepdog" => Prefix::Network,
        _ => return None,
    })
}

/// Parses one diskspec. `Ok(None)` means the entry names no disk ferry can copy (a
/// network target or a blank entry); the reason is in `warnings`.
pub(crate) fn parse_disk(
    spec: &str,
    dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<Option<DiskDesc>, String> {
    if spec.trim().is_empty() {
        warnings.push("disk: empty diskspec ignored".into());
        return Ok(None);
    }
    let mut positional: Vec<&str> = Vec::new();
    let mut target: Option<&str> = None;
    let mut format: Option<String> = None;
    let mut vdev: Option<&str> = None;
    let mut access: Option<&str> = None;
    let mut devtype: Option<&str> = None;
    let mut rest = spec;
    loop {
        let trimmed = rest.trim_start();
        if let Some(t) = trimmed.strip_prefix("target=") {
            // xl takes the rest verbatim. Some writers (libvirt's tests) still put
            // `target=` first; when no vdev was seen yet, the entry would be
            // unusable that way, so split at the first known `,key=` instead.
            let split = (vdev.is_none())
                .then(|| TARGET_FOLLOWERS.iter().filter_map(|k| t.find(k)).min())
                .flatten();
            match split.and_then(|at| Some((t.get(..at)?, t.get(at + 1..)?))) {
                Some((tgt, more)) => {
                    target = Some(tgt.trim());
                    rest = more;
                    continue;
                }
                None => {
                    target = Some(t.trim());
                    break;
                }
            }
        }
        let (item, next) = match trimmed.split_once(',') {
            Some((item, next)) => (item.trim(), Some(next)),
            None => (trimmed.trim(), None),
        };
        match item.split_once('=') {
            Some((k, v)) => {
                let v = v.trim();
                match k.trim() {
                    "format" => format = Some(v.to_ascii_lowercase()),
                    "vdev" => vdev = Some(v),
                    "access" => access = Some(v),
                    "devtype" => devtype = Some(v),
                    // Where the backend runs or which driver serves the disk does not
                    // change what is copied.
                    "backendtype" | "backend" | "script" | "colo-host" | "colo-port"
                    | "colo-export" | "active-disk" | "hidden-disk" | "specification" => {}
                    other => return Err(format!("unknown diskspec key `{}`", clip(other))),
                }
            }
            None if DISK_FLAGS.contains(&item) => {}
            None if item == "cdrom" => devtype = Some("cdrom"),
            None => positional.push(item),
        }
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    // Empty trailing positionals (`path,,hdb,,`) are allowed and mean "default".
    while positional.len() > 1 && positional.last().is_some_and(|p| p.is_empty()) {
        positional.pop();
    }

    let mut raw_target = positional.first().copied();
    let mut legacy = false;
    if let Some(t) = raw_target {
        legacy = t.split_once(':').is_some_and(|(p, _)| prefix(p).is_some());
    }
    let second = positional.get(1).copied();
    let xl_positional = !legacy
        && (positional.len() >= 4 || second.is_some_and(|s| s.is_empty() || FORMATS.contains(&s)));
    let max = if xl_positional { 4 } else { 3 };
    if positional.len() > max {
        return Err(format!(
            "too many positional parameters in diskspec `{}`",
            clip(spec)
        ));
    }
    if xl_positional {
        if let Some(f) = second.filter(|s| !s.is_empty()) {
            format = Some(f.to_ascii_lowercase());
        }
        vdev = positional.get(2).copied().or(vdev);
        access = positional.get(3).copied().or(access);
    } else {
        vdev = second.or(vdev);
        access = positional.get(2).copied().or(access);
    }
    if target.is_some() {
        raw_target = target;
    }

    // The vdev may carry xm's `ioemu:` prefix and a `:cdrom`/`:disk` suffix.
    let vdev_raw = vdev.unwrap_or("").trim();
    let vdev_raw = vdev_raw.strip_prefix("ioemu:").unwrap_or(vdev_raw);
    let (vdev_name, suffix) = match vdev_raw.split_once(':') {
        Some((v, s)) => (v, Some(s)),
        None => (vdev_raw, None),
    };
    if vdev_name.is_empty() {
        return Err(format!("diskspec `{}` names no vdev", clip(spec)));
    }
    // Messages are one line whatever the vdev holds.
    let shown = clip(vdev_name);
    let mut device = DiskDevice::Disk;
    match suffix {
        Some("cdrom") => device = DiskDevice::Cdrom,
        Some("disk") | None => {}
        Some(other) => warnings.push(format!(
            "disk {shown}: unknown vdev suffix `:{}` ignored",
            clip(other)
        )),
    }
    match devtype {
        Some("cdrom") => device = DiskDevice::Cdrom,
        Some("disk") | None => {}
        Some(other) => warnings.push(format!(
            "disk {shown}: unknown devtype `{}` ignored",
            clip(other)
        )),
    }
    let bus = if vdev_name.starts_with("xvd") {
        DiskBus::Xen
    } else if vdev_name.starts_with("hd") {
        DiskBus::Ide
    } else if vdev_name.starts_with("sd") {
        DiskBus::Scsi
    } else {
        warnings.push(format!(
            "disk {}: vdev naming scheme not recognised, bus unknown",
            clip(vdev_name)
        ));
        DiskBus::Unknown
    };

    let mut read_only = match access.map(str::trim) {
        None | Some("") | Some("w") | Some("rw") | Some("w!") => false,
        Some("r") | Some("ro") => true,
        Some(other) => return Err(format!("disk {shown}: unknown access `{}`", clip(other))),
    };
    // xl attaches every CD-ROM read-only whatever the access says.
    if device == DiskDevice::Cdrom {
        read_only = true;
    }

    // Strip deprecated prefixes from the target (`tap2:tapdisk:vhd:/x`).
    let mut path_text = raw_target.unwrap_or("").trim();
    let mut phy = false;
    let mut prefix_format: Option<&str> = None;
    while let Some((p, rest)) = path_text.split_once(':') {
        match prefix(p) {
            Some(Prefix::Backend { phy: is_phy }) => phy |= is_phy,
            Some(Prefix::Format(f)) => prefix_format = Some(f),
            Some(Prefix::Network) => {
                warnings.push(format!(
                    "disk {shown}: network target `{}` skipped (no file or device to copy)",
                    clip(path_text)
                ));
                return Ok(None);
            }
            None => break,
        }
        path_text = rest;
    }
    // Unprefixed network targets in keyword form (`target=rbd:pool/image:…`).
    if let Some((p, _)) = path_text.split_once(':') {
        if matches!(prefix(p), Some(Prefix::Network)) {
            warnings.push(format!(
                "disk {shown}: network target `{}` skipped (no file or device to copy)",
                clip(path_text)
            ));
            return Ok(None);
        }
    }
    let format = match format.as_deref() {
        Some("aio" | "file" | "phy") => Some("raw".to_string()),
        Some(f) => Some(f.to_string()),
        None => prefix_format.map(str::to_string),
    };
    if format.as_deref() == Some("empty") || path_text.is_empty() {
        if device != DiskDevice::Cdrom {
            return Err(format!("disk {shown} has no target"));
        }
        return Ok(Some(DiskDesc {
            path: None,
            format: None,
            bus,
            target: vdev_name.to_string(),
            device,
            read_only,
            capacity_bytes: None,
        }));
    }
    let path = if Path::new(path_text).is_absolute() {
        PathBuf::from(path_text)
    } else if phy {
        Path::new("/dev").join(path_text)
    } else {
        dir.join(path_text)
    };
    // xl treats an unstated format as raw.
    let format = Some(format.unwrap_or_else(|| "raw".to_string()));
    Ok(Some(DiskDesc {
        path: Some(path),
        format,
        bus,
        target: vdev_name.to_string(),
        device,
        read_only,
        capacity_bytes: None,
    }))
}

/// `aa:bb:cc:dd:ee:ff`, lower-cased, or `None` when `s` is not a MAC.
fn mac(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split(':').collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    ok.then(|| s.to_ascii_lowercase())
}

/// Parses one vifspec (`mac=…, bridge=…, model=…`). `hvm` picks xl's default model:
/// an HVM guest's NIC is emulated (`type=ioemu`, the default) as an rtl8139 unless
/// `model=` says otherwise, while `type=vif` and PV/PVH guests get only netfront.
pub(crate) fn parse_vif(spec: &str, hvm: bool, warnings: &mut Vec<String>) -> NicDesc {
    let mut nic = NicDesc {
        mac: None,
        model: None,
        network: None,
    };
    let mut emulated = hvm;
    for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (k, v) = item.split_once('=').unwrap_or((item, ""));
        let v = v.trim();
        match k.trim() {
            "mac" => {
                nic.mac = mac(v);
                if nic.mac.is_none() {
                    warnings.push(format!(
                        "vif: mac `{}` is not a MAC address, ignored",
                        clip(v)
                    ));
                }
            }
            "bridge" => nic.network = Some(v.to_string()).filter(|b| !b.is_empty()),
            "model" => nic.model = Some(v.to_string()).filter(|m| !m.is_empty()),
            "type" => match v {
                "vif" | "netfront" => emulated = false,
                "ioemu" => {}
                other => warnings.push(format!("vif: unknown type `{}` ignored", clip(other))),
            },
            // Addressing, naming, QoS and backend placement are host-side matters.
            _ => {}
        }
    }
    if nic.model.is_none() {
        nic.model = Some(if emulated { "rtl8139" } else { "netfront" }.to_string());
    }
    nic
}
