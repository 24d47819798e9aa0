//! Xen guest configs: `xl.cfg` and legacy `xm` (xend) files.
//!
//! DESIGN NOTE — why a hand-written parser. xl reads these files with libxlu's
//! flex/bison grammar (`libxlu_cfg_l.l` / `libxlu_cfg_y.y`): settings `IDENT = value`
//! ended by a newline or `;`, values that are strings, numbers or one-level lists.
//! xm instead *executed* the file as Python, so old configs may hold `import`, `def`
//! and `%` formatting. There is no Rust crate for either; a TOML/INI parser would
//! misread quoting and multi-line lists, and running Python is out of the question for
//! hostile input. The grammar is small enough that a tokenizer plus a loop
//! (`syntax.rs`) is shorter than the glue any generator would need, and it lets us
//! accept the Python-only bits xm files really use (triple quotes, trailing commas)
//! while refusing real code with a one-line error instead of evaluating it.
//!
//! What the model cannot hold is reported in `warnings`: `maxvcpus`, PCI passthrough,
//! HVM direct kernel boot, a `bootloader` on HVM, skipped network disks.

mod devices;
mod syntax;
#[cfg(test)]
mod tests;

use crate::{malformed, unsupported};
use std::path::Path;

use crate::model::{
    DiskBus, DiskDesc, DiskDevice, Firmware, SourceHypervisor, VmDescription, XenPvBoot,
};
use crate::DescError;

use syntax::{clip, Setting, SyntaxError, Value};

/// Guest configs are a few KiB; anything past this is not one.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

const MIB: u64 = 1024 * 1024;

/// Reads and parses the xl/xm config at `path`.
pub fn read_xen(path: &Path) -> Result<VmDescription, DescError> {
    const WHAT: &str = "a Xen guest config";
    let bytes = crate::capped::read_capped(path, MAX_FILE_BYTES, WHAT)?;
    let text = crate::capped::utf8(&path.display().to_string(), bytes, WHAT)?;
    parse_xen(path, &text)
}

/// The guest types xl knows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum GuestType {
    Pv,
    Pvh,
    Hvm,
}

struct Config<'a> {
    path: &'a Path,
    settings: Vec<Setting>,
}

impl Config<'_> {
    fn get(&self, key: &str) -> Option<&Setting> {
        self.settings.iter().rev().find(|s| s.key == key)
    }

    /// A single value; a list here is an error.
    fn string(&self, key: &str) -> Result<Option<&str>, DescError> {
        match self.get(key) {
            None => Ok(None),
            Some(Setting {
                value: Value::Atom(s),
                ..
            }) => Ok(Some(s.as_str())),
            Some(s) => Err(malformed(
                self.path,
                format!(
                    "line {}: `{key}` must be a single value, not a list",
                    s.line
                ),
            )),
        }
    }

    /// A list; a lone string is taken as a one-item list (xm accepted that).
    fn list(&self, key: &str) -> Option<(Vec<String>, usize)> {
        self.get(key).map(|s| match &s.value {
            Value::List(items) => (items.clone(), s.line),
            Value::Atom(a) => (vec![a.clone()], s.line),
        })
    }

    fn number(&self, key: &str) -> Result<Option<u64>, DescError> {
        let Some(text) = self.string(key)? else {
            return Ok(None);
        };
        let line = self.get(key).map_or(0, |s| s.line);
        text.trim().parse::<u64>().map(Some).map_err(|_| {
            malformed(
                self.path,
                format!(
                    "line {line}: `{key}` is not a whole number: `{}`",
                    clip(text)
                ),
            )
        })
    }

    fn mib(&self, key: &str) -> Result<Option<u64>, DescError> {
        let line = self.get(key).map_or(0, |s| s.line);
        match self.number(key)? {
            None => Ok(None),
            Some(n) => n.checked_mul(MIB).map(Some).ok_or_else(|| {
                malformed(
                    self.path,
                    format!("line {line}: `{key}` = {n} MiB is too large"),
                )
            }),
        }
    }
}

/// Keys only a guest config sets; a file with none of them (xl.conf, a cpupool
/// file) is something else.
const GUEST_KEYS: &[&str] = &[
    "memory",
    "maxmem",
    "vcpus",
    "disk",
    "vif",
    "kernel",
    "bootloader",
    "builder",
    "type",
];

/// Parses the text of an xl/xm config; `path` names it in errors and anchors relative
/// disk paths.
pub fn parse_xen(path: &Path, text: &str) -> Result<VmDescription, DescError> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(malformed(path, "larger than 1 MiB: not a Xen guest config"));
    }
    // Editors on Windows may leave a byte-order mark; it is not content.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let settings = syntax::parse(text).map_err(|e| match e {
        SyntaxError::Malformed { line, reason } => {
            malformed(path, format!("line {line}: {reason}"))
        }
        SyntaxError::Python { line, what } => unsupported(
            path,
            format!("line {line}: {what}; xm configs that need Python to run are not evaluated"),
        ),
    })?;
    let cfg = Config { path, settings };
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut d = VmDescription {
        hypervisor: SourceHypervisor::Xen,
        ..VmDescription::default()
    };

    if !GUEST_KEYS.iter().any(|k| cfg.get(k).is_some()) {
        return Err(malformed(
            path,
            "no memory, vcpus, disk, kernel or type setting: not a Xen guest config",
        ));
    }
    d.name = match cfg.string("name")? {
        Some(n) if !n.trim().is_empty() => n.to_string(),
        _ => return Err(malformed(path, "no `name`: xl requires one for a guest")),
    };

    let guest = guest_type(&cfg)?;

    match cfg.mib("memory")? {
        Some(m) => d.memory_bytes = m,
        None => d
            .warnings
            .push("no `memory` set; xl's default would apply".into()),
    }
    if let Some(max) = cfg.mib("maxmem")? {
        if max > d.memory_bytes {
            d.max_memory_bytes = Some(max);
        }
    }
    d.vcpus = match cfg.number("vcpus")? {
        // xl starts a guest with one vCPU unless told otherwise.
        None => 1,
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| malformed(path, format!("`vcpus` = {n} is not a usable vCPU count")))?,
    };
    if let Some(max) = cfg.string("maxvcpus")? {
        d.warnings.push(format!(
            "maxvcpus = {} (vCPU hotplug ceiling) not kept; the model has only vcpus",
            clip(max)
        ));
    }

    d.firmware = firmware(&cfg, guest, &mut d.warnings)?;
    d.xen_pv = pv_boot(&cfg, guest, &mut d.warnings)?;

    if let Some((items, line)) = cfg.list("disk") {
        for (n, spec) in items.iter().enumerate() {
            let disk = devices::parse_disk(spec, dir, &mut d.warnings).map_err(|reason| {
                malformed(path, format!("line {line}: disk entry {}: {reason}", n + 1))
            })?;
            d.disks.extend(disk);
        }
    }
    // xm HVM configs named the CD-ROM image in a top-level `cdrom`; it was hdc.
    if guest == GuestType::Hvm {
        if let Some(iso) = cfg.string("cdrom")? {
            if !d.disks.iter().any(|disk| disk.target == "hdc") {
                let iso = iso.trim();
                d.disks.push(DiskDesc {
                    path: (!iso.is_empty()).then(|| dir.join(iso)),
                    format: (!iso.is_empty()).then(|| "raw".to_string()),
                    bus: DiskBus::Ide,
                    target: "hdc".into(),
                    device: DiskDevice::Cdrom,
                    read_only: true,
                    capacity_bytes: None,
                });
            }
        }
    }
    if let Some((items, _)) = cfg.list("vif") {
        for spec in &items {
            d.nics.push(devices::parse_vif(
                spec,
                guest == GuestType::Hvm,
                &mut d.warnings,
            ));
        }
    }
    if let Some((items, _)) = cfg.list("pci") {
        if !items.is_empty() {
            d.warnings.push(format!(
                "{} PCI passthrough device(s) not kept: host hardware does not move",
                items.len()
            ));
        }
    }
    Ok(d)
}

fn guest_type(cfg: &Config<'_>) -> Result<GuestType, DescError> {
    let line = |key: &str| cfg.get(key).map_or(0, |s| s.line);
    if let Some(t) = cfg.string("type")? {
        return match t.trim().to_ascii_lowercase().as_str() {
            "hvm" => Ok(GuestType::Hvm),
            "pv" => Ok(GuestType::Pv),
            "pvh" => Ok(GuestType::Pvh),
            other => Err(unsupported(
                cfg.path,
                format!("line {}: guest type `{}`", line("type"), clip(other)),
            )),
        };
    }
    if let Some(b) = cfg.string("builder")? {
        return match b.trim().to_ascii_lowercase().as_str() {
            // `vmx` is Xen 3.0's name for HVM.
            "hvm" | "vmx" => Ok(GuestType::Hvm),
            "generic" | "linux" => Ok(GuestType::Pv),
            other => Err(unsupported(
                cfg.path,
                format!("line {}: builder `{}`", line("builder"), clip(other)),
            )),
        };
    }
    // Xen 4.4–4.9 spelled PVH as a flag on a PV config.
    if cfg.number("pvh").ok().flatten() == Some(1) {
        return Ok(GuestType::Pvh);
    }
    // Without `type` or `builder`, xl and xm both build a PV guest.
    Ok(GuestType::Pv)
}

fn firmware(
    cfg: &Config<'_>,
    guest: GuestType,
    warnings: &mut Vec<String>,
) -> Result<Firmware, DescError> {
    // Xen has no secure-boot setting for OVMF guests in xl.cfg.
    let uefi = Firmware::Uefi { secure_boot: false };
    if guest == GuestType::Hvm {
        if let Some(bios) = cfg.string("bios")? {
            match bios.trim().to_ascii_lowercase().as_str() {
                "ovmf" => return Ok(uefi),
                "seabios" | "rombios" => {}
                other => warnings.push(format!(
                    "bios `{}` not recognised; BIOS assumed",
                    clip(other)
                )),
            }
        }
    }
    if guest != GuestType::Pv {
        if let Some(fw) = cfg.string("firmware")? {
            match fw.trim().to_ascii_lowercase().as_str() {
                "ovmf" | "uefi" => return Ok(uefi),
                "bios" | "seabios" | "rombios" | "pvh" => {}
                other => warnings.push(format!(
                    "firmware `{}` not recognised; BIOS assumed",
                    clip(other)
                )),
            }
        }
    }
    Ok(Firmware::Bios)
}

fn pv_boot(
    cfg: &Config<'_>,
    guest: GuestType,
    warnings: &mut Vec<String>,
) -> Result<Option<XenPvBoot>, DescError> {
    let kernel = cfg.string("kernel")?.map(str::to_string);
    let bootloader = cfg.string("bootloader")?.map(str::to_string);
    if guest == GuestType::Hvm {
        // xm HVM configs name hvmloader as `kernel`; that is Xen's BIOS, not a guest
        // kernel.
        if let Some(k) = kernel.filter(|k| !k.contains("hvmloader")) {
            warnings.push(format!(
                "HVM direct kernel boot (`kernel = {}`) not kept",
                clip(&k)
            ));
        }
        if let Some(b) = bootloader {
            warnings.push(format!(
                "bootloader `{}` ignored for an HVM guest",
                clip(&b)
            ));
        }
        return Ok(None);
    }
    // xl builds the command line from `root` and `extra` unless `cmdline` is given.
    let extra = match cfg.string("cmdline")? {
        Some(c) => Some(c.to_string()),
        None => {
            let root = cfg.string("root")?.map(|r| format!("root={r}"));
            let extra = cfg.string("extra")?;
            match (root, extra) {
                (Some(r), Some(e)) => Some(format!("{r} {e}")),
                (Some(r), None) => Some(r),
                (None, e) => e.map(str::to_string),
            }
        }
    };
    Ok(Some(XenPvBoot {
        bootloader,
        kernel,
        ramdisk: cfg.string("ramdisk")?.map(str::to_string),
        extra,
    }))
}
