//! A libvirt `<domain>` as a typed model, built from a [`vmdesc::VmDescription`] and
//! written as XML for `virsh define`.
//!
//! [`domain_for`] turns what the source hypervisor said (name, firmware, CPUs, memory,
//! disks, NICs) plus the caller's choices ([`DomainOptions`]: networks, virtio or not,
//! machine type, KVM or TCG) into a [`Domain`]; [`Domain::to_xml`] writes it. Defaults
//! chosen and source settings dropped are listed in [`Domain::notes`].
//!
//! DESIGN NOTE — why a hand-written model and quick-xml. No crate models libvirt domain
//! XML in a maintained way: `virt` binds the C library and takes XML as a string,
//! `libvirt-xdr` speaks the RPC protocol, and serde-based XML mappers would have to be
//! taught libvirt's attribute/element split type by type anyway. ferry writes a small,
//! fixed subset of the schema, so the model holds exactly that subset, shaped so that
//! combinations libvirt refuses cannot be expressed (a topology that does not multiply
//! out to the vCPU count, secure boot without q35 and SMM). The XML is emitted through
//! quick-xml's `Writer`/`ElementWriter`, which does all attribute and text escaping; no
//! markup is pasted together from strings, so a VM named `a&b<'c'>` cannot break out of
//! its element. What escaping cannot fix (control characters XML 1.0 forbids, non-UTF-8
//! paths) is refused by [`domain_for`] or replaced by [`sanitize_name`], so writing
//! never fails. The output is checked against libvirt's own RELAX NG schema by
//! `virt-xml-validate` in `tests/validate.rs`, over synthetic guests and every VM
//! description in the shared corpus.

mod from_desc;
mod model;
mod names;
mod net;
mod options;
mod write;

#[cfg(test)]
mod tests;

pub use from_desc::domain_for;
pub use model::{
    Bus, ClockOffset, Cpu, Disk, Domain, Firmware, Interface, Machine, NicModel, Os, Serial,
};
pub use names::sanitize_name;
pub use net::NetTarget;
pub use options::{ConvertedDisk, DomainOptions, VirtType};

/// Why a domain could not be built. Messages are one line whatever the input holds.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// The converted disks do not pair up with the description's hard disks.
    #[error("{converted} converted disk(s) for {described} hard disk(s) in the description")]
    DiskCount { described: usize, converted: usize },
    #[error("{path}: disk format `{format}` is neither qcow2 nor raw")]
    DiskFormat { path: String, format: String },
    #[error("{what} path {path}: {reason}")]
    HostPath {
        what: &'static str,
        path: String,
        reason: &'static str,
    },
    #[error("network target `{spec}`: {reason}")]
    BadNetTarget { spec: String, reason: String },
    #[error("NIC MAC `{mac}`: {reason}")]
    BadMac { mac: String, reason: String },
}
