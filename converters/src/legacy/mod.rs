//! Three small legacy read-only formats qemu can read: Bochs growing redologs, Parallels
//! (`WithoutFreeSpace` / `WithouFreSpacExt`) and cloop v2.0 compressed images.
//!
//! qemu's `block/bochs.c`, `block/parallels.c` (+ `parallels-ext.c`) and `block/cloop.c` are
//! the oracles (the corpus is checked against `qemu-img convert`), so virtual sizes, the
//! sanity caps and what reads as zero follow them:
//!
//! - [`bochs`]: catalog of u32 extent indices, per-extent sector bitmap (least significant
//!   bit first); a sector is data only when its extent is in the catalog *and* its bit is set;
//! - [`parallels`]: BAT of u32 cluster offsets (sectors in v1, clusters in v2), 0 = hole;
//!   the format extension (dirty bitmaps) is walked only to refuse unknown features;
//! - [`cloop`]: `n_blocks + 1` big-endian u64 offsets, each block zlib (RFC 1950)
//!   compressed, every block data.
//!
//! Not supported: writing; Bochs "Undoable"/"Volatile" redologs and flat images; Parallels
//! backing files (the format has no parent reference of its own), the format extension
//! checksum (not verified) and images whose BAT points past the end of the file (qemu reads
//! zeros there; ferry refuses them); cloop formats other than v2.0 (offsets table at the end
//! of the file, lzma/xz/zstd blocks).
//!
//! DESIGN note: hand-written rather than a crate: no maintained crate reads these formats
//! with an allocation map and positional `&self` reads; each reader here is a page of code
//! over [`ImageFile`].

mod bochs;
mod cloop;
mod parallels;

#[cfg(test)]
mod testbuild;
#[cfg(test)]
mod tests;

use std::path::Path;

use crate::error::{Error, Result};
use crate::image_file::ImageFile;
use crate::source::{DiskSource, LayerInfo};

/// Largest table (catalog, BAT, offsets) loaded into memory, in bytes.
const MAX_TABLE_BYTES: u64 = 64 << 20;
/// Largest virtual size accepted, whatever a header claims.
const MAX_VIRTUAL_SIZE: u64 = 1 << 60;
const SECTOR: u64 = 512;

/// Opens a Bochs growing redolog image (`Bochs Virtual HD Image`, `Redolog`, `Growing`).
pub fn open_bochs(path: &Path) -> Result<Box<dyn DiskSource>> {
    let file = ImageFile::open(path)?;
    Ok(Box::new(bochs::BochsSource::open(file)?))
}

/// Opens a Parallels image (`WithoutFreeSpace` v1 or `WithouFreSpacExt` v2).
pub fn open_parallels(path: &Path) -> Result<Box<dyn DiskSource>> {
    let file = ImageFile::open(path)?;
    Ok(Box::new(parallels::ParallelsSource::open(file)?))
}

/// Opens a cloop v2.0 compressed image.
pub fn open_cloop(path: &Path) -> Result<Box<dyn DiskSource>> {
    let file = ImageFile::open(path)?;
    Ok(Box::new(cloop::CloopSource::open(file)?))
}

fn u32_le(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    u32::from_le_bytes(w)
}

fn u64_le(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        w.copy_from_slice(s);
    }
    u64::from_le_bytes(w)
}

fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// Reads a table of `count` little- or big-endian u32 (`width` 4) or u64 (`width` 8) words
/// at `offset`, refusing tables over [`MAX_TABLE_BYTES`] before allocating.
fn read_table(
    file: &ImageFile,
    offset: u64,
    count: u64,
    width: u64,
    big_endian: bool,
    what: &str,
) -> Result<Vec<u64>> {
    let bytes = count.checked_mul(width).filter(|&b| b <= MAX_TABLE_BYTES);
    let Some(bytes) = bytes else {
        return Err(Error::malformed(
            file.path(),
            format!("{what} of {count} entries exceeds the {MAX_TABLE_BYTES:#x}-byte cap"),
        ));
    };
    let raw = file.read_vec(offset, to_usize(bytes), what)?;
    let word = |c: &[u8]| -> u64 {
        let mut w = [0u8; 8];
        let n = c.len();
        if big_endian {
            w[8 - n..].copy_from_slice(c);
            u64::from_be_bytes(w)
        } else {
            w[..n].copy_from_slice(c);
            u64::from_le_bytes(w)
        }
    };
    Ok(raw.chunks_exact(to_usize(width)).map(word).collect())
}

/// Errors unless `[offset, offset + len)` lies inside a disk of `size` bytes.
fn check_range(file: &ImageFile, offset: u64, len: usize, size: u64) -> Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(Error::invalid_request(
            file.path(),
            format!(
                "read of {len:#x} bytes at {offset:#x} is past the end of the disk at {size:#x}"
            ),
        )),
    }
}

/// The clipped extent length at `offset`, or an error for a request past the end.
fn extent_len(file: &ImageFile, offset: u64, max_len: u64, size: u64) -> Result<u64> {
    crate::source::extent_len(file.path(), offset, max_len, size)
}

fn layer(file: &ImageFile, format: &str, subformat: &str, size: u64) -> Vec<LayerInfo> {
    vec![LayerInfo {
        path: file.path().to_path_buf(),
        format: format.into(),
        subformat: Some(subformat.into()),
        virtual_size: size,
        files: vec![file.path().to_path_buf()],
    }]
}
