//! The typed `<domain>`: only what ferry writes, each part shaped so that it cannot
//! express a combination libvirt would refuse (a topology that does not multiply out,
//! secure boot on i440fx, a CD-ROM with a source).
//!
//! A [`Domain`] is only made by [`crate::domain_for`], which checks every string it
//! stores; that is why its fields are private and the writer can trust them.

use serde::Serialize;

use crate::{NetTarget, VirtType};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Domain {
    pub(crate) virt_type: VirtType,
    pub(crate) name: String,
    pub(crate) uuid: Option<String>,
    /// `<memory>`: the most the guest may have.
    pub(crate) memory_kib: u64,
    /// `<currentMemory>`: what it boots with.
    pub(crate) current_memory_kib: u64,
    pub(crate) vcpus: u32,
    pub(crate) cpu: Cpu,
    pub(crate) os: Os,
    pub(crate) clock: ClockOffset,
    pub(crate) disks: Vec<Disk>,
    pub(crate) interfaces: Vec<Interface>,
    pub(crate) serial: Serial,
    /// Guest has virtio drivers: adds the agent channel and RNG, picks virtio video and
    /// balloon.
    pub(crate) virtio: bool,
    /// Defaults ferry had to choose and source settings it could not carry over, one
    /// line each, for reports.
    pub(crate) notes: Vec<String>,
}

impl Domain {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn uuid(&self) -> Option<&str> {
        self.uuid.as_deref()
    }

    /// The MACs the source recorded, in NIC order; NICs without one get a MAC from
    /// libvirt at define time.
    pub fn macs(&self) -> Vec<String> {
        self.interfaces
            .iter()
            .filter_map(|i| i.mac.clone())
            .collect()
    }

    pub fn disks(&self) -> &[Disk] {
        &self.disks
    }

    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Cpu {
    /// `mode='host-model'`; only meaningful with KVM.
    pub host_model: bool,
    /// Present only when sockets × cores × threads equals the vCPU count.
    pub topology: Option<vmdesc::Topology>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Machine {
    Q35,
    /// i440fx.
    Pc,
}

impl Machine {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Machine::Q35 => "q35",
            Machine::Pc => "pc",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum Firmware {
    Bios,
    /// Secure boot implies q35 and SMM; `domain_for` guarantees both.
    Efi {
        secure_boot: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Os {
    pub machine: Machine,
    pub firmware: Firmware,
}

impl Os {
    /// SMM keeps the UEFI variable store out of the guest's reach; secure boot is
    /// worthless without it and OVMF's secure-boot builds refuse to start without it.
    pub fn smm(&self) -> bool {
        matches!(self.firmware, Firmware::Efi { secure_boot: true })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockOffset {
    Utc,
    /// Windows keeps the RTC in local time.
    Localtime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bus {
    Virtio,
    Sata,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "device")]
pub enum Disk {
    Disk {
        /// Absolute, UTF-8, XML-safe.
        source: String,
        /// `qcow2` or `raw`.
        format: String,
        target: String,
        bus: Bus,
        read_only: bool,
    },
    /// An empty drive: the source ISO stays behind on the old hypervisor.
    Cdrom { target: String, bus: Bus },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NicModel {
    Virtio,
    E1000,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Interface {
    pub target: NetTarget,
    /// Lower-case `aa:bb:cc:dd:ee:ff`, unicast.
    pub mac: Option<String>,
    pub model: NicModel,
    /// The source's network name, for reports.
    pub source_network: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Serial {
    /// Absolute, UTF-8, XML-safe host path the console is appended to.
    pub log: Option<String>,
}
