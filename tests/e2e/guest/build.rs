//! The guest builder: a cached debootstrap tree, then one cached raw disk per [`GuestSpec`].
//!
//! Each step writes under a `.tmp` name and renames into place, so a run killed half way
//! leaves nothing that a later run would take for finished.

use super::{cache_dir, configure, debian_mirror, disk, tools_present, CacheLock};
use super::{BASE_RECIPE, RECIPE};
use crate::util::run_ok;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Packages on top of debootstrap's minbase: a bootable systemd guest with ifupdown
/// networking and, as on a VMware machine, open-vm-tools (the Xen flavour disables it).
/// `grub2-common` (grub-mkconfig, as any Debian installed with GRUB has) lets virt-v2v
/// convert the same guests in `bench/fixup.py`; GRUB itself is installed from the host.
const PACKAGES: &[&str] = &[
    "linux-image-amd64",
    "systemd-sysv",
    "udev",
    "kmod",
    "initramfs-tools",
    "busybox",
    "e2fsprogs",
    "ifupdown",
    "isc-dhcp-client",
    "iproute2",
    "netbase",
    "open-vm-tools",
    "grub2-common",
];

/// Which source hypervisor the guest looks as if it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// `/dev/sda1` in fstab and grub, an initramfs with only SATA/SCSI drivers (no virtio),
    /// ifupdown DHCP on `ens192` pinned to the MAC, open-vm-tools enabled.
    Vmware,
    /// `/dev/xvda1` in fstab and grub, console `hvc0` (with a getty on it), `eth0` named
    /// by MAC in `70-persistent-net.rules`, the stock initramfs.
    Xen,
}

/// What to build. Disks are cached per spec, so tests share them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestSpec {
    pub flavour: Flavour,
    /// The source NIC's MAC, written into the guest's network config.
    pub mac: String,
}

impl GuestSpec {
    pub fn vmware() -> Self {
        Self {
            flavour: Flavour::Vmware,
            mac: "00:50:56:8a:3c:01".to_owned(),
        }
    }

    pub fn xen() -> Self {
        Self {
            flavour: Flavour::Xen,
            mac: "00:16:3e:5a:7b:02".to_owned(),
        }
    }

    /// The root device the guest's fstab and grub name.
    pub fn root_device(&self) -> &'static str {
        match self.flavour {
            Flavour::Vmware => "/dev/sda1",
            Flavour::Xen => "/dev/xvda1",
        }
    }

    /// The interface name the guest's network config uses.
    pub fn ifname(&self) -> &'static str {
        match self.flavour {
            Flavour::Vmware => "ens192",
            Flavour::Xen => "eth0",
        }
    }

    fn cache_name(&self) -> String {
        let flavour = match self.flavour {
            Flavour::Vmware => "vmware",
            Flavour::Xen => "xen",
        };
        format!("{flavour}-{}-{RECIPE}", self.mac.replace(':', ""))
    }
}

/// A finished guest: a raw MBR disk in the cache. Never boot or edit it in place; copy it
/// or convert it first (the boot helper always boots with `snapshot=on`).
#[derive(Clone, Debug)]
pub struct Guest {
    pub spec: GuestSpec,
    pub disk: PathBuf,
    /// The one installed kernel, e.g. `6.1.0-37-amd64`.
    pub kernel: String,
}

/// Builds (or finds in the cache) the disk for `spec`. `None` when a tool is missing and
/// the test should skip (under `CI` it panics instead).
pub fn build(spec: &GuestSpec) -> Option<Guest> {
    if !tools_present() {
        return None;
    }
    let cache = cache_dir();
    let _lock = CacheLock::acquire(&cache.join("lock"));
    let disk = cache.join(format!("{}.raw", spec.cache_name()));
    let kernel_file = cache.join(format!("{}.kernel", spec.cache_name()));
    if !disk.exists() {
        let base = base_tree(&cache);
        let kernel = build_disk(&cache, &base, spec, &disk);
        std::fs::write(&kernel_file, &kernel).expect("write kernel name");
    }
    let kernel = std::fs::read_to_string(&kernel_file).expect("cached kernel name");
    Some(Guest {
        spec: spec.clone(),
        disk,
        kernel,
    })
}

/// The debootstrap tree every flavour starts from (about 2 minutes, once).
fn base_tree(cache: &Path) -> PathBuf {
    let root = cache.join(format!("base-{BASE_RECIPE}"));
    if root.exists() {
        return root;
    }
    let tmp = cache.join(format!("base-{BASE_RECIPE}.tmp"));
    remove_tree(&tmp);
    let started = std::time::Instant::now();
    // Inside `unshare -m`, debootstrap's /proc and /sys mounts stay private and vanish with
    // the namespace even if it fails half way.
    run_ok(
        Command::new("unshare")
            .args(["-m", "debootstrap", "--variant=minbase"])
            .arg(format!("--include={}", PACKAGES.join(",")))
            .arg("bookworm")
            .arg(&tmp)
            .arg(debian_mirror()),
    );
    // The downloaded .debs (~120 MiB) would only bloat every disk made from the tree.
    for deb in std::fs::read_dir(tmp.join("var/cache/apt/archives")).expect("read archives") {
        let path = deb.expect("archive entry").path();
        if path.extension().is_some_and(|e| e == "deb") {
            std::fs::remove_file(&path).expect("remove .deb");
        }
    }
    std::fs::rename(&tmp, &root).expect("rename base tree");
    eprintln!("guest: debootstrap took {:?}", started.elapsed());
    root
}

/// Copies the base tree, configures it as `spec` says and assembles `disk` from it.
/// Returns the kernel version.
fn build_disk(cache: &Path, base: &Path, spec: &GuestSpec, disk: &Path) -> String {
    let started = std::time::Instant::now();
    let tree = cache.join(format!("{}.tree", spec.cache_name()));
    remove_tree(&tree);
    run_ok(Command::new("cp").arg("-a").arg(base).arg(&tree));
    let kernel = configure::configure(&tree, spec);
    let tmp = disk.with_extension("raw.tmp");
    disk::assemble(&tree, &tmp);
    std::fs::rename(&tmp, disk).expect("rename disk");
    remove_tree(&tree);
    eprintln!("guest: built {} in {:?}", disk.display(), started.elapsed());
    kernel
}

fn remove_tree(path: &Path) {
    if path.exists() {
        std::fs::remove_dir_all(path).unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
    }
}
