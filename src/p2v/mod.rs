//! `ferry p2v`: image a physical machine and run it as a KVM guest.
//!
//! [`inventory`] turns the machine's hardware (CPUs, memory, firmware, NICs, disks) into a
//! `VmDescription`. A physical disk is copied by the blocks its filesystems use, like
//! partclone, so the image holds neither free space nor the non-zero leftovers of deleted
//! files: [`used::used_map`] reads which byte ranges matter and [`used::UsedOnly`]
//! presents the disk with everything else reading as zeros, as a `DiskSource` the copy
//! engine and `verify` take unchanged. [`pipeline`] hands both to the `ferry v2v` stages.

pub mod inventory;
pub mod mounted;
pub mod pipeline;
pub mod used;
