//! Kernels, their initramfs images, and the GRUB 2 bootloader.
//!
//! Kernels are the `/boot/vmlinuz-VERSION` files; the initramfs beside each is the first
//! of `/boot/initrd.img-VERSION` (Debian, initramfs-tools), `/boot/initramfs-VERSION.img`
//! (RHEL/Fedora, dracut) and `/boot/initrd-VERSION` (SUSE). Which tool builds initramfs
//! images is read from the guest's installed files, never by running them. GRUB 2 is found
//! by its `grub.cfg`; the firmware is UEFI when fstab mounts `/boot/efi` or the root
//! filesystem holds a non-empty `/boot/efi/EFI`. Not supported: a separate `/boot`
//! filesystem (inspect it with its own [`super::Reader`]), GRUB legacy, systemd-boot,
//! extlinux.

use std::cmp::Ordering;

use serde::Serialize;

use super::fstab::FstabEntry;
use super::read::{file_name, Reader};
use super::InspectError;
use crate::guestfs::FileKind;

/// The program that builds the guest's initramfs images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitramfsKind {
    /// Debian and Ubuntu's `update-initramfs`.
    InitramfsTools,
    /// RHEL, Fedora, SUSE, and Debian when installed instead.
    Dracut,
    Unknown,
}

/// One installed kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Kernel {
    /// `6.1.0-13-amd64`, `5.14.0-362.8.1.el9_3.x86_64`.
    pub version: String,
    /// Guest path of the kernel image.
    pub image: String,
    /// Guest path of its initramfs, when there is one.
    pub initramfs: Option<String>,
    /// What built that initramfs; `None` when there is no initramfs.
    pub initramfs_kind: Option<InitramfsKind>,
    /// Whether `/lib/modules/VERSION` (or `/usr/lib/modules/VERSION`) exists.
    pub modules_dir: bool,
}

/// Whether the machine boots through BIOS or UEFI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Firmware {
    Bios,
    Uefi,
}

/// The guest's bootloader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Bootloader {
    /// Always `grub2` for now.
    pub kind: String,
    /// Guest path of `grub.cfg`.
    pub config: String,
    pub firmware: Firmware,
    /// `/etc/default/grub` when present.
    pub default_grub: Option<String>,
}

/// Where `grub.cfg` lives: Debian, then RHEL/SUSE.
pub const GRUB_CFG_PATHS: [&str; 2] = ["/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"];

/// The kernels under `/boot`, newest version first.
pub fn kernels(r: &Reader<'_>) -> Result<Vec<Kernel>, InspectError> {
    let kind = initramfs_kind(r)?;
    let mut out = Vec::new();
    for image in r.list_matching("/boot", "vmlinuz-", "")? {
        let name = file_name(&image);
        let Some(version) = name.strip_prefix("vmlinuz-").filter(|v| !v.is_empty()) else {
            continue;
        };
        let version = version.to_string();
        if r.kind(&image)? == Some(FileKind::File) {
            out.push(kernel(r, version, image.to_string(), kind)?);
        }
    }
    out.sort_by(|a, b| version_cmp(&b.version, &a.version));
    Ok(out)
}

fn kernel(
    r: &Reader<'_>,
    version: String,
    image: String,
    kind: InitramfsKind,
) -> Result<Kernel, InspectError> {
    let candidates = [
        format!("/boot/initrd.img-{version}"),
        format!("/boot/initramfs-{version}.img"),
        format!("/boot/initrd-{version}"),
    ];
    let mut initramfs = None;
    for candidate in candidates {
        if r.is_file(&candidate)? {
            initramfs = Some(candidate);
            break;
        }
    }
    let modules_dir = r.is_dir(&format!("/lib/modules/{version}"))?
        || r.is_dir(&format!("/usr/lib/modules/{version}"))?;
    Ok(Kernel {
        initramfs_kind: initramfs.as_ref().map(|_| kind),
        version,
        image,
        initramfs,
        modules_dir,
    })
}

/// Which initramfs generator the guest has installed. A dracut binary wins over
/// initramfs-tools' leftovers (Debian lets dracut replace it, keeping its conffiles);
/// configuration directories count only when no binary is found.
pub fn initramfs_kind(r: &Reader<'_>) -> Result<InitramfsKind, InspectError> {
    let probes = [
        ("/usr/bin/dracut", InitramfsKind::Dracut),
        ("/usr/sbin/dracut", InitramfsKind::Dracut),
        ("/sbin/dracut", InitramfsKind::Dracut),
        ("/usr/sbin/update-initramfs", InitramfsKind::InitramfsTools),
        ("/sbin/update-initramfs", InitramfsKind::InitramfsTools),
        ("/etc/dracut.conf", InitramfsKind::Dracut),
        ("/etc/dracut.conf.d", InitramfsKind::Dracut),
        ("/etc/initramfs-tools", InitramfsKind::InitramfsTools),
    ];
    for (path, kind) in probes {
        if r.exists(path)? {
            return Ok(kind);
        }
    }
    Ok(InitramfsKind::Unknown)
}

/// GRUB 2 with its firmware, `None` when no `grub.cfg` is found.
pub fn bootloader(
    r: &Reader<'_>,
    fstab: &[FstabEntry],
) -> Result<Option<Bootloader>, InspectError> {
    let mut config = None;
    for path in GRUB_CFG_PATHS {
        if r.is_file(path)? {
            config = Some(path.to_string());
            break;
        }
    }
    let Some(config) = config else {
        return Ok(None);
    };
    let efi_in_fstab = fstab
        .iter()
        .any(|e| e.mountpoint.trim_end_matches('/') == "/boot/efi");
    let efi_dir = !r.list("/boot/efi/EFI")?.is_empty();
    let firmware = if efi_in_fstab || efi_dir {
        Firmware::Uefi
    } else {
        Firmware::Bios
    };
    let default_grub = r
        .is_file("/etc/default/grub")?
        .then(|| "/etc/default/grub".to_string());
    Ok(Some(Bootloader {
        kind: "grub2".to_string(),
        config,
        firmware,
        default_grub,
    }))
}

/// Compare kernel versions: digit runs numerically, everything else bytewise.
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (na, ra) = split_digits(a);
                let (nb, rb) = split_digits(b);
                let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if ord != Ordering::Equal {
                    return ord;
                }
                (a, b) = (ra, rb);
            }
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => (a, b) = (&a[1..], &b[1..]),
        }
    }
}

/// A leading run of digits without leading zeros, and the rest.
fn split_digits(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(s.len());
    let (digits, rest) = s.split_at(end);
    let start = digits
        .iter()
        .position(|&c| c != b'0')
        .unwrap_or(digits.len());
    (&digits[start..], rest)
}
