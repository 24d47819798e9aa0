//! What preflight knows about the two hosts and the domain. `gather` fills these in with
//! every libvirt call and network probe in one place, so each check is a pure function of
//! plain values and can be tested without a daemon.

use std::net::IpAddr;

use crate::model::{DomainState, InterfaceInfo};

/// A fact the host may fail to tell us; the error text ends up in the check's message.
pub(crate) type Fact<T> = Result<T, String>;

/// One libvirt host, as seen through its connection.
#[derive(Debug, Clone)]
pub(crate) struct HostFacts {
    pub uri: String,
    /// The URI names this machine (no host part, `localhost` or a loopback address), so
    /// its files and network devices can be looked at directly.
    pub local: bool,
    pub alive: Fact<bool>,
    pub hostname: Fact<String>,
    /// `virConnectGetType`: "QEMU" for the qemu driver.
    pub hv_type: Fact<String>,
    /// libvirt's version, major * 1_000_000 + minor * 1000 + micro.
    pub lib_version: Fact<u32>,
    /// The hypervisor's version (QEMU's, for the qemu driver), same encoding.
    pub hyp_version: Fact<u32>,
    /// Bytes.
    pub free_memory: Fact<u64>,
    pub caps: Fact<CapsFacts>,
    /// Seconds this host's clock is ahead of the machine running ferry; `None` when it
    /// cannot be asked (not local, not reached over ssh).
    pub clock_offset_s: Option<Fact<f64>>,
}

/// The parts of `virConnectGetCapabilities` the checks use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CapsFacts {
    pub host_uuid: Option<String>,
    /// (guest arch, machine type or alias) pairs the host can run.
    pub machines: Vec<(String, String)>,
}

/// The domain on the source: its state and the definition that would be sent.
#[derive(Debug, Clone)]
pub(crate) struct DomainFacts {
    pub state: DomainState,
    pub persistent: bool,
    pub def: DomainDef,
}

/// What the domain XML says, reduced to what the checks need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DomainDef {
    pub name: String,
    pub uuid: Option<String>,
    /// `<domain type=…>`: kvm, qemu (TCG), test, …
    pub virt_type: String,
    pub arch: Option<String>,
    pub machine: Option<String>,
    /// `<currentMemory>`, else `<memory>`, in KiB.
    pub memory_kib: u64,
    pub cpu: Option<CpuDef>,
    pub disks: Vec<Disk>,
    pub nics: Vec<InterfaceInfo>,
    pub hostdevs: Vec<HostDev>,
    /// Host paths behind `<serial>`, `<parallel>`, `<console>` or `<channel>` of type `dev`.
    pub char_devs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CpuDef {
    /// custom, host-model, host-passthrough or maximum.
    pub mode: String,
    pub model: Option<String>,
    /// The `<cpu>` element as written, for `virConnectCompareCPU`.
    pub xml: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Disk {
    /// `<target dev=…>`, e.g. vda.
    pub target: String,
    /// disk, cdrom, floppy or lun.
    pub device: String,
    /// file, block, volume, network, …
    pub kind: String,
    /// The file or device path; `POOL/VOLUME` for volume disks; none for empty drives.
    pub source: Option<String>,
    pub readonly: bool,
    pub shareable: bool,
    /// `<driver cache=…>`; none means the hypervisor default (writeback for QEMU).
    pub cache: Option<String>,
}

impl Disk {
    pub fn is_removable(&self) -> bool {
        self.device == "cdrom" || self.device == "floppy"
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostDev {
    /// pci, usb, scsi, scsi_host, mdev; or the capability type for mode='capabilities'.
    pub kind: String,
    /// Which device, for the message: a PCI address, USB vendor:product, …
    pub desc: String,
}

/// Where a disk's path stands on the two hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DiskPlace {
    /// The disk's `source` as in [`Disk::source`].
    pub path: String,
    /// Whether it exists at the destination; `None` when nothing there could tell.
    pub at_dest: Option<bool>,
    /// An active destination pool whose target is the path's directory (or, for volume
    /// disks, the named pool): where libvirt pre-creates a missing disk for copy-storage.
    pub dest_pool: Option<String>,
    /// Filesystem type holding the path on the source, when the source is this machine.
    pub source_fs: Option<String>,
}

/// A destination network, bridge or device, as far as it could be seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Presence {
    Active,
    Inactive,
    Missing,
    Unknown(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CpuVerdict {
    Identical,
    Superset,
    Incompatible,
}

/// A domain of the same name already at the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DestDomain {
    pub uuid: String,
    pub active: bool,
}

/// What the destination says about the things this domain needs there.
#[derive(Debug, Clone)]
pub(crate) struct DestFacts {
    pub disks: Vec<DiskPlace>,
    pub networks: Vec<(String, Presence)>,
    /// Bridges and `direct` devices, by name.
    pub devices: Vec<(String, Presence)>,
    /// `None` when no comparison was made (no `<cpu>`, TCG, host-passthrough).
    pub cpu: Option<Fact<CpuVerdict>>,
    pub same_name: Fact<Option<DestDomain>>,
}

impl Default for DestFacts {
    fn default() -> Self {
        DestFacts {
            disks: Vec::new(),
            networks: Vec::new(),
            devices: Vec::new(),
            cpu: None,
            same_name: Ok(None),
        }
    }
}

impl DestFacts {
    pub fn disk(&self, path: &str) -> Option<&DiskPlace> {
        self.disks.iter().find(|d| d.path == path)
    }

    pub fn network(&self, name: &str) -> Option<&Presence> {
        self.networks
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p)
    }

    pub fn device(&self, name: &str) -> Option<&Presence> {
        self.devices.iter().find(|(n, _)| n == name).map(|(_, p)| p)
    }
}

/// Name resolution and the migration-port probe, both from this machine.
#[derive(Debug, Clone, Default)]
pub(crate) struct NetFacts {
    /// The destination's host name resolved here; `None` when not attempted.
    pub resolved: Option<Fact<Vec<IpAddr>>>,
    /// The host part of the destination URI is an address or resolves here, so it can
    /// go into `--migrate-uri`.
    pub dest_uri_host_usable: bool,
    pub probe: Option<PortProbe>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortProbe {
    pub host: String,
    pub port: u16,
    pub outcome: ProbeOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProbeOutcome {
    Accepted,
    /// An RST came back: the path is open, nothing listens yet.
    Refused,
    TimedOut,
    Unreachable(String),
    /// The probe target did not resolve.
    NoAddress(String),
}

/// Everything `gather` found, handed to the checks as a whole.
#[derive(Debug, Clone)]
pub(crate) struct AllFacts {
    pub src: HostFacts,
    pub dest: HostFacts,
    /// Why the domain could not be read, when it could not.
    pub domain: Fact<DomainFacts>,
    pub at_dest: DestFacts,
    pub net: NetFacts,
}
