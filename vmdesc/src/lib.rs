//! What a VM description says about a machine, whoever wrote it: VMware `.vmx`
//! ([`vmx`]), OVF 1.x/2.x and OVA ([`ovf`], [`ova`]), Xen `xl.cfg` and legacy `xm`
//! ([`xen`]), libvirt domain XML from a source host ([`libvirt`]). Every reader fills
//! the same [`VmDescription`]; the domain XML writer and `ferry v2v` only ever see that.
//! Bare disks with no description get one of assumed defaults from
//! [`VmDescription::from_disks`].
//!
//! [`detect`] tells which of these a file is from its first bytes, not its name, and
//! [`read_description`] dispatches to the matching reader.
//!
//! Descriptions are hostile input: readers cap sizes, never panic, and fail with a
//! one-line [`DescError`] naming the file and what is wrong. Values a reader does not
//! understand are kept out of the model, with a note in [`VmDescription::warnings`].

mod capped;
pub mod detect;
pub mod libvirt;
pub mod model;
pub mod ova;
pub mod ovf;
#[cfg(test)]
pub(crate) mod testutil;
pub mod vmx;
pub mod xen;

pub use detect::{detect, read_description, Described, SourceKind};
pub use model::{
    DiskBus, DiskDesc, DiskDevice, Firmware, NicDesc, SourceHypervisor, Topology, VmDescription,
    XenPvBoot,
};

/// Why a description could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DescError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not what it claims or breaks its format's rules.
    #[error("{path}: {reason}")]
    Malformed { path: String, reason: String },
    /// Valid, but describes something ferry does not handle.
    #[error("{path}: unsupported: {what}")]
    Unsupported { path: String, what: String },
}

/// `DescError::Malformed` for `path`: every reader's one way to say a file breaks its rules.
pub(crate) fn malformed(path: &std::path::Path, reason: impl Into<String>) -> DescError {
    DescError::Malformed {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// `DescError::Unsupported` for `path`.
pub(crate) fn unsupported(path: &std::path::Path, what: impl Into<String>) -> DescError {
    DescError::Unsupported {
        path: path.display().to_string(),
        what: what.into(),
    }
}
