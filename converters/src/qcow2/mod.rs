//! qcow2: the reader (a [`DiskSource`]) and the streaming writer ([`Qcow2Sink`]).
//!
//! Spec followed: qemu's `docs/interop/qcow2.txt` (versions 2 and 3).
//!
//! Reader supports: v2 and v3 headers, header extensions (backing format, feature name
//! table), standard, zero (even with a host offset), unallocated and compressed clusters
//! (zlib and zstd), extended L2 entries (subclusters), dirty and corrupt images (read-only,
//! nothing is repaired), backing files when the caller opted in with
//! [`OpenOptions::follow_backing`]. Not supported (clean errors): encryption, external data
//! files, unknown incompatible features, backing files given as protocols or `json:`.
//! Snapshots and bitmaps are ignored: they do not change the active image.
//!
//! Writer: qcow2 v3, 16-bit refcounts, data appended in arrival order, all metadata written
//! once by `finish` (see `write.rs`).
//!
//! DESIGN note — why hand-written rather than a crate: `imago` 0.2 reads qcow2 well but
//! cannot write compressed clusters, and ferry wants one header model (`header.rs`,
//! `entry.rs`) shared by its reader and writer so the two can never disagree on the layout.

mod entry;
mod header;
mod read;
mod write;

#[cfg(test)]
mod tests;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::chain::{ChainGuard, Layered};
use crate::error::{Error, Result};
use crate::probe::{Format, OpenOptions};
use crate::source::DiskSource;

pub use read::Qcow2Source;
pub use write::{Qcow2Sink, Qcow2WriteOptions};

/// Opens a qcow2 image (and, when `opts.follow_backing`, its backing chain).
pub fn open(
    path: &Path,
    opts: &OpenOptions,
    guard: &mut ChainGuard,
) -> Result<Box<dyn DiskSource>> {
    let (source, backing) = Qcow2Source::open(path)?;
    let Some(backing) = backing else {
        return Ok(Box::new(source));
    };
    let shown = String::from_utf8_lossy(&backing.name).into_owned();
    if !opts.follow_backing {
        return Err(Error::unsupported(
            path,
            format!("backing file '{shown}' (pass --follow-backing to read it)"),
        ));
    }
    let parent_path = resolve_backing(path, &backing.name)?;
    let format = match backing.format.as_deref() {
        None | Some("") => None,
        Some(name) => Some(Format::from_name(name).ok_or_else(|| {
            Error::unsupported(path, format!("backing file format '{name}' of '{shown}'"))
        })?),
    };
    let parent = crate::probe::open_layer(&parent_path, format, opts, guard)?;
    Ok(Box::new(Layered::new(Box::new(source), parent)))
}

/// Turns a backing file name (image data) into a path. Relative names are resolved against
/// the image's own folder, as qemu does; absolute names are honoured because the user asked
/// to follow backing files. Protocol URLs and `json:` descriptions are refused.
fn resolve_backing(image: &Path, name: &[u8]) -> Result<PathBuf> {
    let shown = String::from_utf8_lossy(name);
    let name = name.strip_prefix(b"file:").unwrap_or(name);
    if name.is_empty() || name.contains(&0) {
        return Err(Error::malformed(
            image,
            format!("backing file name '{shown}' is invalid"),
        ));
    }
    if name.starts_with(b"json:") || name.windows(3).any(|w| w == b"://") {
        return Err(Error::unsupported(
            image,
            format!("backing file '{shown}' that is not a local file"),
        ));
    }
    let rel = Path::new(OsStr::from_bytes(name));
    if rel.is_absolute() {
        return Ok(rel.to_path_buf());
    }
    let dir = image.parent().unwrap_or(Path::new("."));
    Ok(dir.join(rel))
}
