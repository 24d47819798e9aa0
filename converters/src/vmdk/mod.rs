//! VMware VMDK reader: every layout VMware and qemu write, as a [`DiskSource`].
//!
//! Spec followed: VMware "Virtual Disk Format 1.1" (descriptor, hosted sparse extents,
//! streamOptimized) and, for what VMware never published (ESXi vmfsSparse `COWD` deltas and
//! seSparse), the behaviour of qemu's `block/vmdk.c`.
//!
//! Supported:
//! * text descriptors (standalone, or embedded in a KDMV sparse file), extent lines with
//!   access `RW`/`RDONLY`/`NOACCESS` (the latter reads as zeros) and types `FLAT`, `VMFS`,
//!   `VMFSRDM`, `VMFSRAW` (flat data at a sector offset), `SPARSE`, `VMFSSPARSE`, `SESPARSE`
//!   and `ZERO`; createTypes monolithicSparse, streamOptimized, twoGbMaxExtentSparse,
//!   monolithicFlat, twoGbMaxExtentFlat, vmfs, vmfsSparse, seSparse (and any other whose
//!   extents are of those types);
//! * hosted sparse extents v1–v3 incl. zeroed grains, streamOptimized compressed grains with
//!   markers and the footer copy of the header;
//! * snapshot chains through `parentFileNameHint` (parent CID checked, depth and loops capped
//!   by [`ChainGuard`]); the top's unallocated grains read from the parent.
//!
//! Not supported: writing; extent or parent files outside the descriptor's folder (refused
//! on purpose); the redundant grain directory (ignored); seSparse journals (refused);
//! device-backed createTypes whose extents name absolute device paths.
//!
//! Differences from qemu: qemu ignores `RDONLY`, `NOACCESS` and `ZERO` extent lines and
//! takes a sparse extent's size from its header; ferry maps every extent line and sizes
//! sparse extents by the descriptor (refusing a header smaller than the descriptor says).
//!
//! DESIGN: hand-written rather than a crate: `vmdk-core` 0.8 (measured) has no allocation
//! map for split or flat layouts and is `Read + Seek` only (no positional reads through
//! `&self`); `imago` 0.2 cannot write compressed clusters, and ferry keeps one header model
//! for its readers and writers.

mod descriptor;
mod disk;
mod flat;
mod header;
mod open;
mod sparse;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_build;
#[cfg(test)]
mod tests_corpus;
#[cfg(test)]
mod tests_hostile;

use std::path::Path;

use crate::chain::ChainGuard;
use crate::error::Result;
use crate::probe::OpenOptions;
use crate::source::DiskSource;

/// Opens the VMDK at `path` (descriptor or sparse file) with its extents and, for snapshot
/// deltas, its parents. `probe::open_layer` has already entered `path` into `guard`.
pub fn open(
    path: &Path,
    opts: &OpenOptions,
    guard: &mut ChainGuard,
) -> Result<Box<dyn DiskSource>> {
    open::open(path, opts, guard)
}

/// Opens a single-file VMDK (monolithicSparse or streamOptimized) held in a window of
/// another file, such as a disk inside an OVA, without copying it out.
pub fn open_embedded(file: crate::image_file::ImageFile) -> Result<Box<dyn DiskSource>> {
    open::open_embedded(file)
}
