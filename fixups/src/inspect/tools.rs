//! Guest tools of the source hypervisor, which fail or misbehave under KVM.
//!
//! Each tool is reported with the guest paths that prove it is there:
//!
//! - `open-vm-tools`: `/usr/bin/vmtoolsd`, its units `open-vm-tools.service` and
//!   `vmtoolsd.service` in the systemd unit directories, enabled in
//!   `/etc/systemd/system/*.wants/`, or its SysV script;
//! - `vmware-tools` (VMware's own installer): `/usr/lib/vmware-tools`,
//!   `/etc/vmware-tools/locations`, `vmware-uninstall-tools.pl`, its units and script.
//!   `/etc/vmware-tools` alone counts only without open-vm-tools, which ships that folder
//!   too;
//! - `xe-guest-utilities`: `/usr/sbin/xe-daemon`, `xe-linux-distribution` (program,
//!   units, script);
//! - `xen-kernel-modules`: `xen_blkfront`/`xen_netfront` (either spelling) named in
//!   `/etc/modules`, `/etc/modules-load.d/*.conf`, `/etc/initramfs-tools/modules`,
//!   `/etc/dracut.conf` or `/etc/dracut.conf.d/*.conf`.
//!
//! Paths that resolve to the same file (`/lib` → `usr/lib`) are reported once.

use serde::Serialize;

use super::read::{config_lines, file_name, Reader};
use super::InspectError;
use crate::guestfs::{FileKind, GuestPath};

/// One foreign guest tool and why inspection thinks it is installed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GuestTool {
    /// `open-vm-tools`, `vmware-tools`, `xe-guest-utilities` or `xen-kernel-modules`.
    pub name: String,
    /// Guest paths that show it.
    pub evidence: Vec<String>,
}

const UNIT_DIRS: [&str; 3] = [
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/etc/systemd/system",
];

/// A tool: its name, files that prove it, and its service names.
struct Probe {
    name: &'static str,
    files: &'static [&'static str],
    services: &'static [&'static str],
}

const OPEN_VM_TOOLS: Probe = Probe {
    name: "open-vm-tools",
    files: &["/usr/bin/vmtoolsd", "/etc/init.d/open-vm-tools"],
    services: &["open-vm-tools.service", "vmtoolsd.service"],
};

const VMWARE_TOOLS: Probe = Probe {
    name: "vmware-tools",
    files: &[
        "/usr/lib/vmware-tools",
        "/etc/vmware-tools/locations",
        "/usr/bin/vmware-uninstall-tools.pl",
        "/etc/init.d/vmware-tools",
    ],
    services: &["vmware-tools.service", "vmware-tools-thinprint.service"],
};

const XE_GUEST_UTILITIES: Probe = Probe {
    name: "xe-guest-utilities",
    files: &[
        "/usr/sbin/xe-daemon",
        "/usr/sbin/xe-linux-distribution",
        "/etc/init.d/xe-linux-distribution",
    ],
    services: &["xe-linux-distribution.service", "xe-daemon.service"],
};

/// Files that can name kernel modules to load or to put in the initramfs.
const MODULE_LISTS: [&str; 3] = [
    "/etc/modules",
    "/etc/initramfs-tools/modules",
    "/etc/dracut.conf",
];
const MODULE_LIST_DIRS: [&str; 2] = ["/etc/modules-load.d", "/etc/dracut.conf.d"];
const XEN_MODULES: [&str; 2] = ["xen_blkfront", "xen_netfront"];

/// The foreign guest tools found, in a fixed order.
pub fn read(r: &Reader<'_>) -> Result<Vec<GuestTool>, InspectError> {
    let wants = enabled_units(r)?;
    let mut out = Vec::new();
    let open_vm_tools = probe(r, &OPEN_VM_TOOLS, &wants)?;
    let mut vmware_tools = probe(r, &VMWARE_TOOLS, &wants)?;
    if open_vm_tools.is_empty() && vmware_tools.is_empty() && r.is_dir("/etc/vmware-tools")? {
        vmware_tools.push("/etc/vmware-tools".to_string());
    }
    let tools = [
        (OPEN_VM_TOOLS.name, open_vm_tools),
        (VMWARE_TOOLS.name, vmware_tools),
        (
            XE_GUEST_UTILITIES.name,
            probe(r, &XE_GUEST_UTILITIES, &wants)?,
        ),
        ("xen-kernel-modules", xen_modules(r)?),
    ];
    for (name, evidence) in tools {
        if !evidence.is_empty() {
            out.push(GuestTool {
                name: name.to_string(),
                evidence,
            });
        }
    }
    Ok(out)
}

/// Links in `/etc/systemd/system/*.wants/`: the units enabled there.
fn enabled_units(r: &Reader<'_>) -> Result<Vec<GuestPath>, InspectError> {
    let mut out = Vec::new();
    for (dir, entry) in r.list("/etc/systemd/system")? {
        if !entry.name.ends_with(b".wants") || r.kind(&dir)? != Some(FileKind::Dir) {
            continue;
        }
        if let Some(dir) = dir.to_str() {
            out.extend(r.list(&dir)?.into_iter().map(|(path, _)| path));
        }
    }
    Ok(out)
}

/// Evidence of one tool: its files and unit files, then its enabled units.
fn probe(r: &Reader<'_>, p: &Probe, wants: &[GuestPath]) -> Result<Vec<String>, InspectError> {
    let mut candidates: Vec<String> = p.files.iter().map(|f| f.to_string()).collect();
    for dir in UNIT_DIRS {
        candidates.extend(p.services.iter().map(|s| format!("{dir}/{s}")));
    }
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for candidate in candidates {
        if let Some(resolved) = r.resolve(&candidate)? {
            if !seen.contains(&resolved) {
                seen.push(resolved);
                out.push(candidate);
            }
        }
    }
    for link in wants {
        if p.services.contains(&file_name(link).as_str()) {
            out.push(link.to_string());
        }
    }
    Ok(out)
}

/// Files that name a Xen PV driver module.
fn xen_modules(r: &Reader<'_>) -> Result<Vec<String>, InspectError> {
    let mut files: Vec<GuestPath> = Vec::new();
    for path in MODULE_LISTS {
        files.push(GuestPath::new(path)?);
    }
    for dir in MODULE_LIST_DIRS {
        files.extend(r.list_matching(dir, "", ".conf")?);
    }
    let mut out = Vec::new();
    for file in files {
        if r.kind(&file)? != Some(FileKind::File) {
            continue;
        }
        let text = r.text(&file)?.unwrap_or_default();
        if names_xen_module(&text) {
            out.push(file.to_string());
        }
    }
    Ok(out)
}

/// Whether a module list or dracut config names a Xen PV driver outside comments.
fn names_xen_module(text: &str) -> bool {
    config_lines(text).any(|line| {
        let code = line.split('#').next().unwrap_or_default();
        code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .map(|word| word.replace('-', "_"))
            .any(|word| XEN_MODULES.contains(&word.as_str()))
    })
}
