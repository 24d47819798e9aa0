//! Guest inspection: what a Linux root filesystem says about the system on it.
//!
//! [`inspect_filesystem`] reads a guest only through [`GuestFs`] (symlinks resolve inside
//! the guest) and never runs guest code. It reports the OS (`os-release`), kernels and
//! their initramfs images, GRUB 2 and the firmware it boots with, `/etc/fstab`, network
//! configuration in five styles, foreign guest tools, consoles and the root device.
//!
//! Guest files are hostile: reads are capped (see [`read`]), text is decoded lossily,
//! parsers skip what they do not understand, and a missing file is just absent. Files
//! that cannot be read as configuration are skipped and listed in [`GuestOs::warnings`];
//! only I/O errors and filesystem corruption fail inspection.
//!
//! A separate `/boot` is seen by inspecting a [`crate::guestfs::mounts::MountedFs`] (the
//! caller mounts what the root's fstab names); Windows and BSD guests return `None`.

pub mod boot;
pub mod cmdline;
pub mod fstab;
pub mod network;
pub mod os_release;
pub mod read;
pub mod tools;

#[cfg(test)]
mod tests;

use serde::Serialize;

pub use boot::{Bootloader, Firmware, InitramfsKind, Kernel};
pub use fstab::FstabEntry;
pub use network::{NetConfig, NetStyle};
pub use os_release::OsRelease;
pub use read::Reader;
pub use tools::GuestTool;

use crate::guestfs::{GuestFs, GuestFsError};

/// Why inspection failed: the guest filesystem could not be read (I/O or corruption).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    #[error("cannot inspect the guest filesystem")]
    Guest(#[from] GuestFsError),
}

/// Everything inspection found on a guest's root filesystem.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GuestOs {
    pub os: OsRelease,
    /// Newest version first.
    pub kernels: Vec<Kernel>,
    pub bootloader: Option<Bootloader>,
    pub fstab: Vec<FstabEntry>,
    pub network: Vec<NetConfig>,
    /// Whether `/etc/udev/rules.d/70-persistent-net.rules` exists (it pins NIC names to
    /// the old MACs).
    pub persistent_net_rules: bool,
    pub guest_tools: Vec<GuestTool>,
    /// `console=` values (`ttyS0,115200n8`, `hvc0`) and ttys of enabled getty units.
    pub consoles: Vec<String>,
    /// `root=` of the first boot entry (`/dev/sda1`, `UUID=…`).
    pub root_device: Option<String>,
    /// Files skipped because they could not be read as configuration.
    pub warnings: Vec<String>,
}

/// Files whose presence marks an OS root filesystem.
const ROOT_MARKERS: [&str; 3] = ["/etc/os-release", "/usr/lib/os-release", "/etc/fstab"];

/// Inspect `fs` as a Linux root filesystem; `None` when it is not one (it has no
/// `os-release` and no `/etc/fstab`).
pub fn inspect_filesystem(fs: &dyn GuestFs) -> Result<Option<GuestOs>, InspectError> {
    let r = Reader::new(fs);
    let mut is_root = false;
    for marker in ROOT_MARKERS {
        is_root |= r.is_file(marker)?;
    }
    if !is_root {
        return Ok(None);
    }
    let os = os_release::read(&r)?.unwrap_or_else(|| os_release::parse(""));
    let fstab = fstab::read(&r)?;
    let bootloader = boot::bootloader(&r, &fstab)?;
    let cmdlines = cmdline::kernel_cmdlines(&r, bootloader.as_ref().map(|b| b.config.as_str()))?;
    let root_device = cmdlines
        .first()
        .and_then(|c| cmdline::param(c, "root"))
        .map(str::to_string);
    Ok(Some(GuestOs {
        os,
        kernels: boot::kernels(&r)?,
        network: network::read(&r)?,
        persistent_net_rules: r.exists("/etc/udev/rules.d/70-persistent-net.rules")?,
        guest_tools: tools::read(&r)?,
        consoles: cmdline::consoles(&r, &cmdlines)?,
        root_device,
        bootloader,
        fstab,
        warnings: r.into_warnings(),
    }))
}
