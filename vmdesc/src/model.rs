//! The typed model every description reader fills.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A virtual machine as its source hypervisor described it.
///
/// Serialises for reports and deserialises back (a saved description can be edited and
/// fed to a later run); fields missing from the input take their [`Default`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum Firmware {
    #[default]
    Bios,
    Uefi {
        secure_boot: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    pub sockets: u32,
    pub cores: u32,
    pub threads: u32,
}

/// The controller a disk hangs off in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskDevice {
    Disk,
    Cdrom,
    Floppy,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicDesc {
    /// Lower-case `aa:bb:cc:dd:ee:ff`; `None` when the source generates one at power-on
    /// and none was recorded.
    pub mac: Option<String>,
    /// The source's model: `vmxnet3`, `e1000`, `e1000e`, `vlance`, `netfront`, …
    pub model: Option<String>,
    /// Port group, network or bridge name the NIC is connected to.
    pub network: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XenPvBoot {
    pub bootloader: Option<String>,
    pub kernel: Option<String>,
    pub ramdisk: Option<String>,
    pub extra: Option<String>,
}

/// What [`VmDescription::from_disks`] assumes: a small guest every OS installer accepts.
const BARE_DISK_VCPUS: u32 = 2;
const BARE_DISK_MEMORY: u64 = 2 << 30;

impl VmDescription {
    /// A description for disks that came without one (a bare `.qcow2`, a `dd` image):
    /// named after the first file, 2 vCPUs, 2 GiB, BIOS, no NICs, the disks in the
    /// order given as `disk0`, `disk1`, …. The format is left for the disk reader to
    /// probe. A warning says these were assumed, so reports do not present them as the
    /// source's.
    pub fn from_disks(paths: &[PathBuf]) -> VmDescription {
        let name = paths
            .first()
            .and_then(|p| p.file_stem())
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "vm".to_string());
        let disks = paths
            .iter()
            .enumerate()
            .map(|(n, p)| DiskDesc {
                path: Some(p.clone()),
                format: None,
                bus: DiskBus::Unknown,
                target: format!("disk{n}"),
                device: DiskDevice::Disk,
                read_only: false,
                capacity_bytes: None,
            })
            .collect();
        let mut warnings = vec![format!(
            "no VM description: assumed {BARE_DISK_VCPUS} vCPUs, {} GiB of memory, BIOS \
             firmware and no network interfaces",
            BARE_DISK_MEMORY >> 30
        )];
        if paths.is_empty() {
            warnings.push("no disks given".to_string());
        }
        VmDescription {
            name,
            hypervisor: SourceHypervisor::Unknown,
            firmware: Firmware::Bios,
            vcpus: BARE_DISK_VCPUS,
            topology: None,
            memory_bytes: BARE_DISK_MEMORY,
            max_memory_bytes: None,
            disks,
            nics: Vec::new(),
            os_hint: None,
            xen_pv: None,
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_disks_assumes_defaults_and_says_so() {
        let d = VmDescription::from_disks(&[
            PathBuf::from("/images/web01.qcow2"),
            PathBuf::from("data.raw"),
        ]);
        assert_eq!(d.name, "web01");
        assert_eq!(d.hypervisor, SourceHypervisor::Unknown);
        assert_eq!((d.vcpus, d.memory_bytes), (2, 2 << 30));
        assert_eq!(d.firmware, Firmware::Bios);
        assert!(d.nics.is_empty());
        let disks: Vec<_> = d
            .disks
            .iter()
            .map(|x| {
                (
                    x.path.clone(),
                    x.target.as_str(),
                    x.bus,
                    x.device,
                    x.format.clone(),
                )
            })
            .collect();
        assert_eq!(
            disks,
            [
                (
                    Some(PathBuf::from("/images/web01.qcow2")),
                    "disk0",
                    DiskBus::Unknown,
                    DiskDevice::Disk,
                    None
                ),
                (
                    Some(PathBuf::from("data.raw")),
                    "disk1",
                    DiskBus::Unknown,
                    DiskDevice::Disk,
                    None
                ),
            ]
        );
        assert!(d.warnings.iter().any(|w| w.contains("assumed 2 vCPUs")));

        let none = VmDescription::from_disks(&[]);
        assert_eq!(none.name, "vm");
        assert!(none.disks.is_empty());
        assert!(none.warnings.iter().any(|w| w.contains("no disks")));
    }

    #[test]
    fn serde_round_trip() {
        let mut d = VmDescription::from_disks(&[PathBuf::from("a.vmdk")]);
        d.firmware = Firmware::Uefi { secure_boot: true };
        d.topology = Some(Topology {
            sockets: 1,
            cores: 2,
            threads: 1,
        });
        d.nics.push(NicDesc {
            mac: Some("52:54:00:00:00:01".into()),
            model: None,
            network: Some("default".into()),
        });
        d.xen_pv = Some(XenPvBoot::default());
        let json = serde_json::to_string(&d).unwrap_or_else(|e| panic!("{e}"));
        let back: VmDescription = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, d);
        // Missing fields take their defaults.
        let partial: VmDescription =
            serde_json::from_str(r#"{"name":"x","vcpus":4}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((partial.name.as_str(), partial.vcpus), ("x", 4));
        assert_eq!(partial.firmware, Firmware::Bios);
    }
}
