//! The typed model every description reader fills.

use std::path::PathBuf;

use serde::Serialize;

/// A virtual machine as its source hypervisor described it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VmDescription {
    /// `displayName`, OVF `VirtualSystem` id/name, Xen `name`.
    pub name: String,
    pub hypervisor: SourceHypervisor,
    pub firmware: Firmware,
    /// Virtual CPUs (`numvcpus`, OVF `VirtualQuantity` of ResourceType 3, Xen `vcpus`).
    pub vcpus: u32,
    /// Sockets × cores × threads when the source says (`cpuid.coresPerSocket`).
    pub topology: Option<Topology>,
    /// Memory in bytes (`memsize` is MiB, Xen `memory` is MiB, OVF has allocation units).
    pub memory_bytes: u64,
    /// Xen `maxmem` in bytes, when larger than `memory_bytes`.
    pub max_memory_bytes: Option<u64>,
    /// Disks and CD-ROMs in the source's order (controller, then unit).
    pub disks: Vec<DiskDesc>,
    pub nics: Vec<NicDesc>,
    /// The guest OS the source names (`guestOS = "debian11-64"`, OVF `OperatingSystemSection`
    /// description or `osType`, nothing for Xen).
    pub os_hint: Option<String>,
    /// Xen PV boot: `kernel`/`ramdisk`/`extra`/`bootloader` as written.
    pub xen_pv: Option<XenPvBoot>,
    /// What was read but not understood, for reports.
    pub warnings: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceHypervisor {
    #[default]
    Unknown,
    Vmware,
    /// OVF from VirtualBox, vSphere or another exporter (see `warnings`/`os_hint`).
    Ovf,
    Xen,
    Libvirt,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum Firmware {
    #[default]
    Bios,
    Uefi {
        secure_boot: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Topology {
    pub sockets: u32,
    pub cores: u32,
    pub threads: u32,
}

/// The controller a disk hangs off in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskBus {
    Ide,
    Sata,
    Scsi,
    Nvme,
    Virtio,
    /// Xen paravirtual (`xvda`).
    Xen,
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskDevice {
    Disk,
    Cdrom,
    Floppy,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiskDesc {
    /// The disk file or device, resolved against the description's folder when relative
    /// (an OVA member is named by its member name). `None` for an empty CD-ROM drive.
    pub path: Option<PathBuf>,
    /// The format the description states (`vmdk`, `raw`, `qcow2`, `vhd`), if it does.
    pub format: Option<String>,
    pub bus: DiskBus,
    /// Where it sits in the source: `scsi0:1`, `sata0:0`, `ide1:0`, `xvda`, `hdc`; OVF:
    /// the controller's `InstanceID` and the `AddressOnParent`.
    pub target: String,
    pub device: DiskDevice,
    pub read_only: bool,
    /// Virtual size in bytes when the description states it (OVF `capacity`).
    pub capacity_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NicDesc {
    /// Lower-case `aa:bb:cc:dd:ee:ff`; `None` when the source generates one at power-on
    /// and none was recorded.
    pub mac: Option<String>,
    /// The source's model: `vmxnet3`, `e1000`, `e1000e`, `vlance`, `netfront`, …
    pub model: Option<String>,
    /// Port group, network or bridge name the NIC is connected to.
    pub network: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct XenPvBoot {
    pub bootloader: Option<String>,
    pub kernel: Option<String>,
    pub ramdisk: Option<String>,
    pub extra: Option<String>,
}
