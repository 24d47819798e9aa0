//! VHD (Connectix / Microsoft Virtual PC, Hyper-V gen 1, XenServer) disk reader.
//!
//! Follows Microsoft's "Virtual Hard Disk Image Format Specification" v1.0 and, where the two
//! differ, qemu's `block/vpc.c` (the oracle the corpus is checked against):
//!
//! - footer ([`footer`]): checksum enforced; virtual size from CHS geometry or from
//!   `current_size` according to the creator application, exactly as qemu decides;
//!   more than 2040 GiB is refused like qemu does;
//! - fixed disks ([`fixed`]): the file's first `size` bytes, holes from the filesystem;
//! - dynamic disks ([`dynamic`]): allocated blocks are read whole (qemu ignores the sector
//!   bitmap), unallocated blocks are `Unallocated` and read as zeros;
//! - differencing disks: the sector bitmap decides, and the parent is found through the
//!   parent locators inside the child's folder ([`parent`]), checked by unique id, and
//!   layered with [`crate::chain::Layered`]. qemu ignores the parent entirely; ferry does
//!   what the specification says (and always follows the parent, which is confined to the
//!   child's folder, whatever `OpenOptions::follow_backing` says).
//!
//! Not supported: writing, the parent time stamp check, Mac OS 9 `Mac ` alias locators,
//! VHDX (a different format, refused by the probe).
//!
//! DESIGN note: hand-written rather than a crate: `vhd-core` 0.1 rejects differencing disks,
//! and the readers here share one small header model with the rest of ferry's formats and
//! answer `extent_at` from the BAT without reading data.

mod dynamic;
mod fixed;
mod footer;
mod header;
mod parent;

#[cfg(test)]
mod testbuild;
#[cfg(test)]
mod tests;

use std::path::Path;

use crate::chain::{ChainGuard, Layered};
use crate::error::{Error, Result};
use crate::image_file::ImageFile;
use crate::probe::{Format, OpenOptions};
use crate::source::DiskSource;

use dynamic::DynamicSource;
use fixed::FixedSource;
use footer::{DiskType, Footer};
use header::{DynHeader, HEADER_SIZE};

/// Opens a VHD (fixed, dynamic or differencing with its parent chain).
pub fn open(
    path: &Path,
    opts: &OpenOptions,
    guard: &mut ChainGuard,
) -> Result<Box<dyn DiskSource>> {
    let file = ImageFile::open(path)?;
    let footer = footer::locate(&file)?;
    let disk_type = footer
        .disk_type()
        .map_err(|what| Error::unsupported(path, what))?;
    let size = footer
        .virtual_size()
        .map_err(|what| Error::unsupported(path, what))?;
    match disk_type {
        DiskType::Fixed => Ok(Box::new(FixedSource::new(&file, size)?)),
        DiskType::Dynamic => {
            let header = read_header(&file, &footer)?;
            Ok(Box::new(DynamicSource::new(file, &header, size, false)?))
        }
        DiskType::Differencing => open_differencing(file, &footer, size, opts, guard),
    }
}

fn read_header(file: &ImageFile, footer: &Footer) -> Result<DynHeader> {
    let mut buf = [0u8; HEADER_SIZE];
    file.read_exact_at(&mut buf, footer.data_offset, "vhd dynamic disk header")?;
    DynHeader::parse(&buf).map_err(|reason| {
        Error::malformed(
            file.path(),
            format!("{reason} at offset {:#x}", footer.data_offset),
        )
    })
}

fn open_differencing(
    file: ImageFile,
    footer: &Footer,
    size: u64,
    opts: &OpenOptions,
    guard: &mut ChainGuard,
) -> Result<Box<dyn DiskSource>> {
    let header = read_header(&file, footer)?;
    let candidates = parent::candidates(&file, &header)?;
    let path = file.path().to_path_buf();
    let top = DynamicSource::new(file, &header, size, true)?;
    let parent_path = parent::find(&path, &candidates, &header.parent_name)?;
    let found = parent::unique_id(&parent_path)?;
    if found != header.parent_unique_id {
        return Err(Error::malformed(
            &path,
            format!(
                "parent {} has unique id {} but this differencing vhd expects {}",
                parent_path.display(),
                parent::format_uuid(&found),
                parent::format_uuid(&header.parent_unique_id)
            ),
        ));
    }
    let parent = crate::probe::open_layer(&parent_path, Some(Format::Vhd), opts, guard)?;
    Ok(Box::new(Layered::new(Box::new(top), parent)))
}
