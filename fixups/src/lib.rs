//! ferry's guest side: everything that looks inside a guest, and nothing that knows disk
//! formats.
//!
//! A converted disk reaches this crate as byte ranges ([`blockdev::BlockDevice`]): a
//! partition, or later an LVM2 logical volume. [`guestfs`] opens a filesystem on such a
//! range and offers [`guestfs::GuestFs`], through which inspection and fixups read and
//! edit the guest without mounting it and without a helper VM.

pub mod blockdev;
pub mod fixup;
pub mod guestfs;
pub mod inspect;
pub mod lvm;
#[cfg(test)]
mod testutil;
