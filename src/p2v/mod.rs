//! P2V: imaging a physical disk into a VM disk.
//!
//! A physical disk is copied by the blocks its filesystems use, like partclone, so the
//! image holds neither free space nor the non-zero leftovers of deleted files:
//! [`used::used_map`] reads which byte ranges matter and [`used::UsedOnly`] presents the
//! disk with everything else reading as zeros, as a `DiskSource` the copy engine and
//! `verify` take unchanged.

pub mod used;
