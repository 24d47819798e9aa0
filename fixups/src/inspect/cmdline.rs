//! Kernel command lines: the root device and the consoles the guest uses.
//!
//! Command lines come from `grub.cfg`'s `linux`/`linux16`/`linuxefi` lines; when it has
//! none (RHEL 8+ and Fedora use BootLoaderSpec), from the `options` lines of
//! `/boot/loader/entries/*.conf`, with `$kernelopts` taken from `grubenv`. Consoles also
//! come from `GRUB_CMDLINE_LINUX*` in `/etc/default/grub` and from getty units enabled in
//! `/etc/systemd/system/getty.target.wants/`. Not supported: GRUB variables other than
//! `$kernelopts`, `/etc/inittab` gettys.

use super::boot::version_cmp;
use super::os_release::shell_value;
use super::read::{config_lines, file_name, unquote, Reader};
use super::InspectError;

/// Kernel command lines of the boot entries, in the order the bootloader lists them.
pub fn kernel_cmdlines(
    r: &Reader<'_>,
    grub_cfg: Option<&str>,
) -> Result<Vec<String>, InspectError> {
    let text = match grub_cfg {
        Some(path) => r.text_at(path)?.unwrap_or_default(),
        None => String::new(),
    };
    let lines: Vec<String> = config_lines(&text).filter_map(linux_args).collect();
    if !lines.is_empty() {
        return Ok(lines);
    }
    bls_cmdlines(r)
}

/// The arguments of a GRUB `linux` line, after the kernel path.
fn linux_args(line: &str) -> Option<String> {
    let mut words = line.split_whitespace();
    let command = words.next()?;
    if !matches!(command, "linux" | "linux16" | "linuxefi") {
        return None;
    }
    words.next()?;
    Some(words.collect::<Vec<_>>().join(" "))
}

/// `options` of BootLoaderSpec entries, newest first, `$kernelopts` expanded.
fn bls_cmdlines(r: &Reader<'_>) -> Result<Vec<String>, InspectError> {
    let mut entries = r.list_matching("/boot/loader/entries", "", ".conf")?;
    entries.sort_by(|a, b| version_cmp(&file_name(b), &file_name(a)));
    let mut kernelopts = None;
    let mut out = Vec::new();
    for entry in entries {
        let text = r.text(&entry)?.unwrap_or_default();
        let Some(options) = config_lines(&text).find_map(|l| {
            l.strip_prefix("options")
                .filter(|rest| rest.starts_with([' ', '\t']))
        }) else {
            continue;
        };
        if options.contains("$kernelopts") && kernelopts.is_none() {
            kernelopts = Some(grubenv_kernelopts(r)?);
        }
        let expanded = options.replace("$kernelopts", kernelopts.as_deref().unwrap_or(""));
        out.push(expanded.trim().to_string());
    }
    Ok(out)
}

fn grubenv_kernelopts(r: &Reader<'_>) -> Result<String, InspectError> {
    for path in ["/boot/grub2/grubenv", "/boot/grub/grubenv"] {
        if let Some(text) = r.text_at(path)? {
            let found = config_lines(&text).find_map(|l| l.strip_prefix("kernelopts="));
            if let Some(opts) = found {
                return Ok(opts.to_string());
            }
        }
    }
    Ok(String::new())
}

/// The value of the first `key=` parameter of a command line, unquoted.
pub fn param<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    params(cmdline, key).into_iter().next()
}

/// The values of every `key=` parameter of a command line, unquoted.
pub fn params<'a>(cmdline: &'a str, key: &str) -> Vec<&'a str> {
    cmdline
        .split_whitespace()
        .filter_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .map(unquote)
        .filter(|v| !v.is_empty())
        .collect()
}

/// `GRUB_CMDLINE_LINUX` and `GRUB_CMDLINE_LINUX_DEFAULT` (and the other
/// `GRUB_CMDLINE_LINUX*` variables) of `/etc/default/grub`.
pub fn default_grub_cmdlines(r: &Reader<'_>) -> Result<Vec<String>, InspectError> {
    let text = r.text_at("/etc/default/grub")?.unwrap_or_default();
    Ok(config_lines(&text)
        .filter_map(|l| l.split_once('='))
        .filter(|(key, _)| key.trim().starts_with("GRUB_CMDLINE_LINUX"))
        .map(|(_, value)| shell_value(value))
        .collect())
}

/// Consoles the guest uses: `console=` values, then getty units, without duplicates.
pub fn consoles(r: &Reader<'_>, cmdlines: &[String]) -> Result<Vec<String>, InspectError> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |value: String| {
        if !out.contains(&value) {
            out.push(value);
        }
    };
    for cmdline in default_grub_cmdlines(r)?.iter().chain(cmdlines) {
        params(cmdline, "console")
            .into_iter()
            .for_each(|v| push(v.to_string()));
    }
    for unit in r.list_matching("/etc/systemd/system/getty.target.wants", "", ".service")? {
        if let Some(tty) = getty_tty(&file_name(&unit)) {
            push(tty);
        }
    }
    Ok(out)
}

/// `serial-getty@hvc0.service` → `hvc0`, `getty@tty1.service` → `tty1`.
fn getty_tty(unit: &str) -> Option<String> {
    let instance = unit
        .strip_prefix("serial-getty@")
        .or_else(|| unit.strip_prefix("getty@"))?;
    let tty = instance.strip_suffix(".service")?;
    (!tty.is_empty()).then(|| tty.to_string())
}
