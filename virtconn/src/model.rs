//! Plain data handed back to callers.

/// A domain as libvirt knows it right after `define`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainInfo {
    pub name: String,
    /// Canonical lowercase, hyphenated form, as libvirt reports it.
    pub uuid: String,
}

/// One `<interface>` of a domain's XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Empty only if the XML had no `<mac>`; libvirt fills one in on define.
    pub mac: String,
    /// The interface's `type`: "network", "bridge", "user", "direct", …
    pub kind: String,
    /// The network, bridge or device the interface attaches to; none for "user".
    pub source: Option<String>,
    /// The NIC model, e.g. "virtio" or "e1000".
    pub model: Option<String>,
}

/// Which `<domain type=…>` the host can run x86_64 guests with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtTypeSupport {
    Kvm,
    /// No KVM for x86_64: guests must use `type='qemu'` (TCG).
    Qemu,
}

/// Run state of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainState {
    Running,
    Paused,
    ShutOff,
    /// Any other libvirt state ("blocked", "shutdown", "crashed", "pmsuspended", "nostate").
    Other(String),
}
