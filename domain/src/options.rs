//! What the caller decides: the converted disks and how the domain should look on
//! this host.

use std::path::PathBuf;

use serde::Serialize;

use crate::NetTarget;

/// A disk as converted for KVM, in the order of the description's hard disks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConvertedDisk {
    pub path: PathBuf,
    /// `qcow2` or `raw`.
    pub format: String,
}

/// The `<domain type=…>`: hardware acceleration, or TCG where `/dev/kvm` is missing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VirtType {
    #[default]
    Kvm,
    Qemu,
}

impl VirtType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            VirtType::Kvm => "kvm",
            VirtType::Qemu => "qemu",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DomainOptions {
    pub name_override: Option<String>,
    /// Source network name → target, matched exactly.
    pub network_map: Vec<(String, NetTarget)>,
    /// For NICs whose source network is unmapped or unknown.
    pub default_network: NetTarget,
    /// `false` when the guest has no virtio drivers: SATA disks, e1000 NICs, VGA, and
    /// no virtio-only devices.
    pub virtio: bool,
    /// i440fx (`pc`) instead of q35, for guests that cannot boot on PCIe.
    pub legacy_machine: bool,
    pub virt_type: VirtType,
    /// When set, the serial console is also appended to this host file.
    pub serial_log: Option<PathBuf>,
}

impl Default for DomainOptions {
    fn default() -> Self {
        DomainOptions {
            name_override: None,
            network_map: Vec::new(),
            default_network: NetTarget::Network("default".to_string()),
            virtio: true,
            legacy_machine: false,
            virt_type: VirtType::Kvm,
            serial_log: None,
        }
    }
}
