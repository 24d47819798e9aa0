//! Foreign tools: VMware's and XenServer's guest agents and Xen-only kernel modules are
//! disabled, so they do not fail on every boot under KVM.
//!
//! - systemd units of open-vm-tools, VMware Tools and xe-guest-utilities (see [`UNITS`])
//!   are masked (`/etc/systemd/system/UNIT -> /dev/null`) when the distribution ships
//!   them (`/lib/systemd/system` or `/usr/lib/systemd/system`, one and the same
//!   directory on merged-usr guests). A unit whose `/etc/systemd/system/UNIT` is a file
//!   of its own (VMware's installer writes one) cannot be masked without losing it, so
//!   its `*.wants/` and `*.requires/` links are removed instead. A mask already there, or
//!   an alias symlink, is left as it is;
//! - SysV init scripts without a systemd unit of the same name ([`SYSV_SCRIPTS`]) lose
//!   their `S??NAME` start links in the `rc?.d` directories (`/etc/rc3.d` and
//!   `/etc/rc.d/rc3.d` are the same directory on RHEL and are visited once). The `K` links
//!   stay: stopping a service that never started is harmless;
//! - Xen PV driver modules ([`XEN_MODULES`]) named in `/etc/modules` or
//!   `/etc/modules-load.d/*.conf` are commented out with `# ferry: `; every other line
//!   stays byte for byte.
//!
//! For [`Target::Physical`] the QEMU and SPICE agents ([`PHYSICAL_UNITS`]) are masked
//! as well: on bare metal there is no virtio-serial channel for them, and
//! `qemu-guest-agent` waits for its device on every boot.
//!
//! Packages are not removed (that would mean running the guest's package manager), and
//! the initramfs configuration (`/etc/initramfs-tools/modules`, dracut) is left alone: a
//! Xen module it names is only missing, never loaded, under KVM.

#[cfg(test)]
mod tests;

use crate::guestfs::{FileKind, GuestFs, GuestPath};
use crate::inspect::Reader;

use super::guestio::{
    disable_line, gpath, is_comment_or_blank, lines, link_target, lstat_kind, read_config,
    resolved, split_eol, stat_kind, write_change,
};
use super::{Change, FixupError, GuestContext, GuestFixup, Plan, Target};

pub struct ForeignTools;

/// systemd units of the foreign tools.
pub const UNITS: [&str; 8] = [
    // open-vm-tools
    "open-vm-tools.service",
    "vmtoolsd.service",
    "vgauth.service",
    "run-vmblock\\x2dfuse.mount",
    // VMware Tools from VMware's installer
    "vmware-tools.service",
    "vmware-tools-thinprint.service",
    // XenServer / XCP-ng guest utilities
    "xe-linux-distribution.service",
    "xe-daemon.service",
];

/// systemd units of the KVM guest agents, disabled on bare metal too.
pub const PHYSICAL_UNITS: [&str; 4] = [
    "qemu-guest-agent.service",
    "spice-vdagent.service",
    "spice-vdagentd.service",
    "spice-vdagentd.socket",
];

/// SysV init scripts of the foreign tools.
pub const SYSV_SCRIPTS: [&str; 3] = ["vmware-tools", "open-vm-tools", "xe-linux-distribution"];

/// Xen PV driver modules, `-` and `_` spellings alike (modprobe treats them the same).
pub const XEN_MODULES: [&str; 5] = [
    "xen_blkfront",
    "xen_netfront",
    "xenfs",
    "xen_kbdfront",
    "xen_fbfront",
];

/// Where distributions install unit files.
const VENDOR_UNIT_DIRS: [&str; 2] = ["/lib/systemd/system", "/usr/lib/systemd/system"];
const LOCAL_UNIT_DIR: &str = "/etc/systemd/system";
const MASK_TARGET: &str = "/dev/null";
const INIT_DIRS: [&str; 2] = ["/etc/init.d", "/etc/rc.d/init.d"];
/// SysV runlevel directories: Debian's, RHEL's (whose `/etc/rcN.d` link to these), old
/// SUSE's.
const RC_DIRS: [&str; 22] = [
    "/etc/rc0.d",
    "/etc/rc1.d",
    "/etc/rc2.d",
    "/etc/rc3.d",
    "/etc/rc4.d",
    "/etc/rc5.d",
    "/etc/rc6.d",
    "/etc/rcS.d",
    "/etc/rc.d/rc0.d",
    "/etc/rc.d/rc1.d",
    "/etc/rc.d/rc2.d",
    "/etc/rc.d/rc3.d",
    "/etc/rc.d/rc4.d",
    "/etc/rc.d/rc5.d",
    "/etc/rc.d/rc6.d",
    "/etc/init.d/rc0.d",
    "/etc/init.d/rc1.d",
    "/etc/init.d/rc2.d",
    "/etc/init.d/rc3.d",
    "/etc/init.d/rc4.d",
    "/etc/init.d/rc5.d",
    "/etc/init.d/rc6.d",
];
const MODULES_FILE: &str = "/etc/modules";
const MODULES_LOAD_DIR: &str = "/etc/modules-load.d";

impl GuestFixup for ForeignTools {
    fn id(&self) -> &'static str {
        "tools"
    }

    fn description(&self, target: Target) -> &'static str {
        match target {
            Target::Kvm => "VMware and Xen guest tools and PV-only bits disabled",
            Target::Physical => "VMware, Xen, QEMU and SPICE guest tools disabled",
        }
    }

    fn plan(&self, ctx: &GuestContext<'_>) -> Result<Plan, FixupError> {
        let fs = ctx.fs;
        let r = Reader::new(fs);
        let mut found = false;
        let mut changes = Vec::new();
        let wants = wants_links(fs, &r)?;
        let physical: &[&str] = match ctx.target {
            Target::Kvm => &[],
            Target::Physical => &PHYSICAL_UNITS,
        };
        for unit in UNITS.iter().chain(physical) {
            found |= disable_unit(fs, unit, &wants, &mut changes)?;
        }
        let rc_dirs = rc_dirs(fs)?;
        for script in SYSV_SCRIPTS {
            found |= disable_sysv(fs, &r, script, &rc_dirs, &mut changes)?;
        }
        let mut module_files = vec![gpath(MODULES_FILE)?];
        module_files.extend(r.list_matching(MODULES_LOAD_DIR, "", ".conf")?);
        for file in module_files {
            let Some(before) = read_config(fs, &file)? else {
                continue;
            };
            if let Some(after) = disable_xen_modules(&before) {
                found = true;
                changes.extend(write_change(&file, Some(before), after));
            }
        }
        if !found {
            let tools = match ctx.target {
                Target::Kvm => "VMware or Xen",
                Target::Physical => "VMware, Xen, QEMU or SPICE",
            };
            return Ok(Plan::Skip(format!(
                "no {tools} guest tools and no Xen PV modules found"
            )));
        }
        Ok(Plan::Changes(changes))
    }
}

/// Symlinks in `/etc/systemd/system/*.wants/` and `*.requires/`: (link, unit name).
fn wants_links(fs: &dyn GuestFs, r: &Reader<'_>) -> Result<Vec<(GuestPath, Vec<u8>)>, FixupError> {
    let mut out = Vec::new();
    for (dir, e) in r.list(LOCAL_UNIT_DIR)? {
        let is_deps = e.name.ends_with(b".wants") || e.name.ends_with(b".requires");
        if !is_deps || stat_kind(fs, &dir)? != Some(FileKind::Dir) {
            continue;
        }
        let Some(dir) = dir.to_str() else {
            continue;
        };
        for (link, e) in r.list(&dir)? {
            if e.kind == FileKind::Symlink {
                out.push((link, e.name));
            }
        }
    }
    Ok(out)
}

/// Plan disabling one unit; whether the unit is installed at all.
fn disable_unit(
    fs: &dyn GuestFs,
    unit: &str,
    wants: &[(GuestPath, Vec<u8>)],
    changes: &mut Vec<Change>,
) -> Result<bool, FixupError> {
    let mut vendor = false;
    for dir in VENDOR_UNIT_DIRS {
        let path = gpath(dir)?.join(unit.as_bytes())?;
        vendor |= stat_kind(fs, &path)? == Some(FileKind::File);
    }
    let local = gpath(LOCAL_UNIT_DIR)?.join(unit.as_bytes())?;
    match lstat_kind(fs, &local)? {
        None if vendor => {
            changes.push(Change::CreateSymlink {
                path: local,
                target: MASK_TARGET.to_string(),
            });
            Ok(true)
        }
        None => Ok(false),
        Some(FileKind::Symlink) => {
            if is_local_link(fs, &local, unit)? {
                remove_wants(fs, unit, wants, changes)?;
            }
            Ok(true)
        }
        Some(FileKind::File) => {
            remove_wants(fs, unit, wants, changes)?;
            Ok(true)
        }
        // A directory or device where the unit should be: not a unit ferry knows.
        Some(_) => Ok(vendor),
    }
}

/// Whether the symlink `/etc/systemd/system/UNIT` is a unit file linked in from
/// elsewhere (`systemctl link`), which a mask would replace. A mask (`/dev/null`) or an
/// alias of another unit (`vmtoolsd.service -> open-vm-tools.service`, disabled under its
/// own name) is not.
fn is_local_link(fs: &dyn GuestFs, link: &GuestPath, unit: &str) -> Result<bool, FixupError> {
    if link_target(fs, link)?.as_deref() == Some(MASK_TARGET.as_bytes()) {
        return Ok(false);
    }
    let Some(real) = resolved(fs, link)? else {
        return Ok(false);
    };
    let is_file = stat_kind(fs, &real)? == Some(FileKind::File);
    Ok(is_file && real.file_name() == Some(unit.as_bytes()))
}

/// Plan removing the `*.wants/UNIT` and `*.requires/UNIT` links.
fn remove_wants(
    fs: &dyn GuestFs,
    unit: &str,
    wants: &[(GuestPath, Vec<u8>)],
    changes: &mut Vec<Change>,
) -> Result<(), FixupError> {
    for (link, name) in wants {
        if name.as_slice() != unit.as_bytes() {
            continue;
        }
        // A target that is not UTF-8 cannot be recorded in a plan.
        if let Some(target) = link_target(fs, link)?.and_then(|t| String::from_utf8(t).ok()) {
            changes.push(Change::RemoveSymlink {
                path: link.clone(),
                target,
            });
        }
    }
    Ok(())
}

/// The runlevel directories that exist, each once however it is reached.
fn rc_dirs(fs: &dyn GuestFs) -> Result<Vec<GuestPath>, FixupError> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for dir in RC_DIRS {
        let path = gpath(dir)?;
        if stat_kind(fs, &path)? != Some(FileKind::Dir) {
            continue;
        }
        if let Some(real) = resolved(fs, &path)? {
            if !seen.contains(&real) {
                seen.push(real);
                out.push(path);
            }
        }
    }
    Ok(out)
}

/// Plan removing the start links of a SysV script that systemd does not replace by a
/// unit; whether the script is installed.
fn disable_sysv(
    fs: &dyn GuestFs,
    r: &Reader<'_>,
    script: &str,
    rc_dirs: &[GuestPath],
    changes: &mut Vec<Change>,
) -> Result<bool, FixupError> {
    let mut installed = false;
    for dir in INIT_DIRS {
        installed |= stat_kind(fs, &gpath(dir)?.join(script.as_bytes())?)?.is_some();
    }
    if !installed {
        return Ok(false);
    }
    let unit = format!("{script}.service");
    for dir in VENDOR_UNIT_DIRS.into_iter().chain([LOCAL_UNIT_DIR]) {
        if lstat_kind(fs, &gpath(dir)?.join(unit.as_bytes())?)?.is_some() {
            // systemd runs (or, masked, does not run) the unit and ignores the script.
            return Ok(true);
        }
    }
    for dir in rc_dirs {
        let Some(dir_str) = dir.to_str() else {
            continue;
        };
        for (link, e) in r.list(&dir_str)? {
            if e.kind != FileKind::Symlink || !is_start_link(&e.name, script) {
                continue;
            }
            if let Some(target) = link_target(fs, &link)?.and_then(|t| String::from_utf8(t).ok()) {
                changes.push(Change::RemoveSymlink { path: link, target });
            }
        }
    }
    Ok(true)
}

/// `S20vmware-tools`: `S`, two digits, the script's name.
fn is_start_link(name: &[u8], script: &str) -> bool {
    match name {
        [b'S', a, b, rest @ ..] => {
            a.is_ascii_digit() && b.is_ascii_digit() && rest == script.as_bytes()
        }
        _ => false,
    }
}

/// A module list with Xen PV module lines commented out, `None` when it has none.
fn disable_xen_modules(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len());
    let mut changed = false;
    for line in lines(data) {
        let (body, _) = split_eol(line);
        if !is_comment_or_blank(body) && names_xen_module(body) {
            out.extend(disable_line(line));
            changed = true;
        } else {
            out.extend_from_slice(line);
        }
    }
    changed.then_some(out)
}

/// Whether a module list line loads a Xen module: its first word, before any comment
/// (`/etc/modules` allows `module arguments`).
fn names_xen_module(body: &[u8]) -> bool {
    let code = body.split(|&b| b == b'#').next().unwrap_or_default();
    let Some(module) = code.split(u8::is_ascii_whitespace).find(|w| !w.is_empty()) else {
        return false;
    };
    let module: Vec<u8> = module
        .iter()
        .map(|&b| if b == b'-' { b'_' } else { b })
        .collect();
    XEN_MODULES.iter().any(|m| m.as_bytes() == module)
}
