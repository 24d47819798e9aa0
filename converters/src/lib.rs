//! ferry's disk formats: every source disk ferry reads, the sinks it writes, and the
//! parallel copy engine between them. Knows nothing of guests or libvirt.

// Test code builds fixtures with plain casts; the cast lints guard production code.
#![cfg_attr(
    test,
    allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_possible_wrap
    )
)]

pub mod chain;
pub mod compress;
pub mod direct;
pub mod error;
pub mod image_file;
pub mod legacy;
pub mod member;
pub mod probe;
pub mod qcow2;
pub mod raw;
pub mod sink;
pub mod source;
pub mod vhd;
pub mod vmdk;

pub use error::{Error, Result};
pub use probe::{open, probe, Format, OpenOptions};
pub use sink::{DiskSink, SinkSummary};
pub use source::{DiskSource, Extent, ExtentKind, LayerInfo};
pub mod copy;
pub mod raw_sink;
#[cfg(test)]
pub(crate) mod testutil;
pub mod verify;
