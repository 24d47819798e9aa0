//! The guest's file tree as it boots: the root filesystem plus what its fstab mounts below
//! it from this disk (a separate `/boot`), opened together as one [`GuestFs`].

use fixups::fixup::devices::first_disk_partition;
use fixups::guestfs::ext4::Access;
use fixups::guestfs::mounts::MountedFs;
use fixups::guestfs::{GuestFs, GuestPath};
use fixups::inspect::GuestOs;
use serde::Serialize;

use super::{FoundFilesystem, OpenedFs};

/// Mount points whose contents inspection and fixups need: kernels, initramfs images and
/// the bootloader configuration live under `/boot`.
const NEEDED_MOUNTS: [&str; 1] = ["/boot"];

/// A filesystem of this disk that the root's fstab mounts.
#[derive(Debug, Clone, Serialize)]
pub struct GuestMount {
    pub mountpoint: String,
    /// Index into [`super::DiskGuests::filesystems`].
    pub filesystem: usize,
}

/// The mounts from the root's fstab that name a filesystem found on this disk.
pub fn needed_mounts(os: &GuestOs, filesystems: &[FoundFilesystem]) -> Vec<GuestMount> {
    let mut out = Vec::new();
    for entry in &os.fstab {
        if !NEEDED_MOUNTS.contains(&entry.mountpoint.as_str()) {
            continue;
        }
        if let Some(i) = filesystems.iter().position(|f| names(&entry.spec, f)) {
            out.push(GuestMount {
                mountpoint: entry.mountpoint.clone(),
                filesystem: i,
            });
        }
    }
    out
}

/// Whether an fstab `spec` names the found filesystem `f`.
fn names(spec: &str, f: &FoundFilesystem) -> bool {
    if let Some(uuid) = spec.strip_prefix("UUID=") {
        return f
            .uuid
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case(uuid.trim_matches('"')));
    }
    if let Some(label) = spec.strip_prefix("LABEL=") {
        return f.label.as_deref() == Some(label.trim_matches('"'));
    }
    if let Some(lv) = lv_name(spec) {
        return f.location.starts_with(&format!("LV {lv} "));
    }
    first_disk_partition(spec).is_some_and(|n| f.partition == Some(n))
}

/// `vg/lv` from `/dev/vg/lv` or `/dev/mapper/vg-lv` (where a `-` in a name is `--`).
fn lv_name(spec: &str) -> Option<String> {
    if let Some(mapped) = spec.strip_prefix("/dev/mapper/") {
        let marked = mapped.replace("--", "\u{0}");
        let (vg, lv) = marked.split_once('-')?;
        return Some(format!("{vg}/{lv}").replace('\u{0}', "-"));
    }
    let rest = spec.strip_prefix("/dev/")?;
    let (vg, lv) = rest.split_once('/')?;
    (!lv.contains('/') && !matches!(vg, "disk" | "mapper" | "md" | "cciss"))
        .then(|| format!("{vg}/{lv}"))
}

/// The root and its mounts, open.
pub struct OpenedTree {
    root: OpenedFs,
    mounts: Vec<(GuestPath, OpenedFs)>,
}

impl OpenedTree {
    /// Opens filesystem `root` of `filesystems` and each of `mounts`.
    pub fn open(
        filesystems: &[FoundFilesystem],
        root: usize,
        mounts: &[GuestMount],
        access: Access,
    ) -> Result<Self, String> {
        let open = |i: usize| {
            let f = &filesystems[i];
            let device = f
                .device
                .clone()
                .ok_or_else(|| format!("{}: cannot be reopened", f.location))?;
            OpenedFs::open(device.0, f.filesystem, access)
                .map_err(|e| format!("{}: {e}", f.location))
        };
        let root = open(root)?;
        let mut opened = Vec::new();
        for m in mounts {
            let at = GuestPath::new(&m.mountpoint).map_err(|e| e.to_string())?;
            opened.push((at, open(m.filesystem)?));
        }
        Ok(OpenedTree {
            root,
            mounts: opened,
        })
    }

    /// Runs `f` on the tree seen as one filesystem.
    pub fn with_fs<R>(&self, f: impl FnOnce(&dyn GuestFs) -> R) -> R {
        let mut tree = MountedFs::new(self.root.guest_fs());
        for (at, fs) in &self.mounts {
            tree.mount(at.clone(), fs.guest_fs());
        }
        f(&tree)
    }

    /// Whether every filesystem of the tree can be written.
    pub fn is_writable(&self) -> bool {
        self.root.is_writable() && self.mounts.iter().all(|(_, fs)| fs.is_writable())
    }

    /// Closes the mounts, then the root.
    pub fn close(self) -> Result<(), String> {
        for (_, fs) in self.mounts {
            fs.close()?;
        }
        self.root.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lvm_names_from_fstab() {
        assert_eq!(lv_name("/dev/mapper/vg0-root").as_deref(), Some("vg0/root"));
        assert_eq!(
            lv_name("/dev/mapper/debian--vg-root").as_deref(),
            Some("debian-vg/root")
        );
        assert_eq!(lv_name("/dev/vg0/boot").as_deref(), Some("vg0/boot"));
        assert_eq!(lv_name("/dev/disk/by-uuid"), None);
        assert_eq!(lv_name("/dev/sda1"), None);
    }
}
