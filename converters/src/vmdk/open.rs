//! Opening a VMDK layer: a text descriptor file, or a KDMV sparse file with an embedded
//! descriptor; then its extents, then (for snapshot deltas) its parent.
//!
//! File names from the descriptor (extents, `parentFileNameHint`) are resolved inside the
//! descriptor's own folder only: absolute names and `..` components are refused, so an
//! image can never make ferry read an arbitrary host file.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::descriptor::{shown, Access, Descriptor, ExtentLine, ExtentType, MAX_DESCRIPTOR_BYTES};
use super::disk::{Body, Placed, VmdkDisk};
use super::flat::FlatExtent;
use super::header::{self, HostedHeader, COWD_MAGIC, KDMV_MAGIC, MAX_VIRTUAL_BYTES, SECTOR};
use super::sparse::SparseExtent;
use crate::chain::{ChainGuard, Layered};
use crate::error::{Error, Result};
use crate::image_file::ImageFile;
use crate::probe::{Format, OpenOptions};
use crate::source::{DiskSource, ExtentKind};

/// Grain directory entries all extents of one layer may load together (64 MiB).
const GD_BUDGET: u64 = 16 << 20;
/// First eight bytes of a seSparse extent (magic 0xcafebabe, little endian u64).
const SESPARSE_MAGIC: [u8; 8] = [0xbe, 0xba, 0xfe, 0xca, 0, 0, 0, 0];

/// Opens the layer at `path` and, for a snapshot delta, its parent chain.
pub(super) fn open(
    path: &Path,
    opts: &OpenOptions,
    guard: &mut ChainGuard,
) -> Result<Box<dyn DiskSource>> {
    let (disk, desc) = open_disk(path)?;
    let Some((parent_path, parent_cid)) = parent_link(path, &desc)? else {
        return Ok(Box::new(disk));
    };
    if !parent_path.exists() {
        return Err(Error::io(
            &parent_path,
            "cannot open the parent disk named by parentFileNameHint",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let parent = crate::probe::open_layer(&parent_path, Some(Format::Vmdk), opts, guard)?;
    let actual = read_descriptor(&parent_path)?.cid;
    if actual != Some(parent_cid) {
        let actual = actual.map_or("none".to_string(), |c| format!("{c:08x}"));
        return Err(Error::malformed(
            path,
            format!("parentCID {parent_cid:08x} does not match the parent's CID {actual}: the parent changed after this snapshot was taken"),
        ));
    }
    Ok(Box::new(Layered::new(Box::new(disk), parent)))
}

/// A VMDK inside another file can only be one self-contained sparse file: its descriptor
/// could not name extent or parent files next to it.
pub(super) fn open_embedded(file: ImageFile) -> Result<Box<dyn DiskSource>> {
    let path = file.path().to_path_buf();
    let single_file_only = |what: &str| {
        Error::unsupported(
            &path,
            format!("{what} inside an archive; only single-file VMDKs (monolithicSparse, streamOptimized) are read from one"),
        )
    };
    match kind_of(&file)? {
        Kind::Hosted => {}
        Kind::Delta(what) => return Err(single_file_only(what)),
        Kind::Text => return Err(single_file_only("a VMDK descriptor naming other files")),
    }
    let hdr = header::read_hosted(&file)?;
    if hdr.geometry.capacity_sectors == 0 {
        return Err(single_file_only("a VMDK descriptor naming other files"));
    }
    let (disk, desc) = open_hosted(&path, file)?;
    if parent_link(&path, &desc)?.is_some() {
        return Err(single_file_only("a snapshot delta"));
    }
    Ok(Box::new(disk))
}

/// What kind of file `path` is, from its first bytes.
enum Kind {
    Hosted,
    Delta(&'static str),
    Text,
}

fn kind_of(file: &ImageFile) -> Result<Kind> {
    let mut head = [0u8; 8];
    let n = file.read_at_most(&mut head, 0, "magic")?;
    Ok(match head.get(..n).unwrap_or_default() {
        h if h.starts_with(KDMV_MAGIC) => Kind::Hosted,
        h if h.starts_with(COWD_MAGIC) => Kind::Delta("vmfsSparse (COWD)"),
        h if h == SESPARSE_MAGIC => Kind::Delta("seSparse"),
        _ => Kind::Text,
    })
}

/// Opens one layer without its parent.
fn open_disk(path: &Path) -> Result<(VmdkDisk, Descriptor)> {
    let file = ImageFile::open(path)?;
    match kind_of(&file)? {
        Kind::Hosted => open_hosted(path, file),
        Kind::Delta(what) => Err(delta_without_descriptor(path, what)),
        Kind::Text => {
            let desc = read_text_descriptor(&file)?;
            let disk = open_described(path, &desc)?;
            Ok((disk, desc))
        }
    }
}

fn delta_without_descriptor(path: &Path, what: &str) -> Error {
    Error::malformed(
        path,
        format!(
            "{what} extent has no descriptor of its own; open the descriptor file that lists it"
        ),
    )
}

/// The descriptor of any VMDK file (used to check a parent's CID).
fn read_descriptor(path: &Path) -> Result<Descriptor> {
    let file = ImageFile::open(path)?;
    match kind_of(&file)? {
        Kind::Hosted => {
            let hdr = header::read_hosted(&file)?;
            read_embedded(&file, &hdr)
        }
        Kind::Delta(what) => Err(delta_without_descriptor(path, what)),
        Kind::Text => read_text_descriptor(&file),
    }
}

fn read_text_descriptor(file: &ImageFile) -> Result<Descriptor> {
    let len = usize::try_from(file.len())
        .ok()
        .filter(|&n| n <= MAX_DESCRIPTOR_BYTES)
        .ok_or_else(|| {
            Error::malformed(
                file.path(),
                "not a VMDK: no sparse magic, and too large for a text descriptor",
            )
        })?;
    let bytes = file.read_vec(0, len, "descriptor")?;
    Descriptor::parse(file.path(), &bytes)
}

/// The descriptor embedded in a KDMV file (zero-padded text at `descOffset`).
fn read_embedded(file: &ImageFile, hdr: &HostedHeader) -> Result<Descriptor> {
    let offset = hdr.desc_offset_sectors.checked_mul(SECTOR);
    let size = hdr
        .desc_size_sectors
        .saturating_mul(SECTOR)
        .min(MAX_DESCRIPTOR_BYTES as u64);
    let (Some(offset), true) = (offset.filter(|&o| o > 0), size > 0) else {
        return Ok(Descriptor::default());
    };
    let len = usize::try_from(size).unwrap_or(MAX_DESCRIPTOR_BYTES);
    let bytes = file.read_vec(offset, len, "embedded descriptor")?;
    Descriptor::parse(file.path(), &bytes)
}

/// A KDMV file opened directly: monolithicSparse or streamOptimized, or (capacity 0) a
/// descriptor that happens to live in a sparse header.
fn open_hosted(path: &Path, file: ImageFile) -> Result<(VmdkDisk, Descriptor)> {
    let hdr = header::read_hosted(&file)?;
    let geo = hdr.geometry.clone();
    if geo.capacity_sectors == 0 && hdr.desc_offset_sectors != 0 {
        let desc = read_embedded(&file, &hdr)?;
        let disk = open_described(path, &desc)?;
        return Ok((disk, desc));
    }
    let create_type = if geo.compressed {
        "streamOptimized"
    } else {
        "monolithicSparse"
    };
    let sectors = geo.capacity_sectors;
    let mut budget = GD_BUDGET;
    let sparse = SparseExtent::open(file.clone(), geo, sectors, &mut budget)?;
    let desc = read_embedded(&file, &hdr)?;
    if desc.cid.is_none() {
        return Err(Error::malformed(
            path,
            "sparse file has no embedded descriptor (no CID): if it is one extent of a split disk, open the disk's descriptor file",
        ));
    }
    let size = sectors * SECTOR; // bounded by SparseExtent::open
    let disk = VmdkDisk {
        path: path.to_path_buf(),
        create_type: create_type.to_string(),
        size,
        files: vec![path.to_path_buf()],
        extents: vec![Placed {
            start: 0,
            len: size,
            body: Body::Sparse(sparse),
        }],
    };
    Ok((disk, desc))
}

/// Builds the disk a descriptor describes, opening every extent file.
fn open_described(path: &Path, desc: &Descriptor) -> Result<VmdkDisk> {
    let create_type = desc
        .create_type
        .clone()
        .ok_or_else(|| Error::malformed(path, "invalid descriptor: no createType"))?;
    if desc.extents.is_empty() {
        return Err(Error::malformed(
            path,
            "invalid descriptor: no extent lines",
        ));
    }
    let hole_kind = match parent_link(path, desc)? {
        Some(_) => ExtentKind::Zero,
        None => ExtentKind::Unallocated,
    };
    let mut disk = VmdkDisk {
        path: path.to_path_buf(),
        create_type,
        size: 0,
        files: vec![path.to_path_buf()],
        extents: Vec::new(),
    };
    let mut budget = GD_BUDGET;
    for (i, line) in desc.extents.iter().enumerate() {
        let len = line
            .sectors
            .checked_mul(SECTOR)
            .and_then(|l| l.checked_add(disk.size))
            .filter(|&end| end <= MAX_VIRTUAL_BYTES)
            .map(|end| end - disk.size)
            .ok_or_else(|| {
                Error::malformed(path, format!("virtual size too large at extent {}", i + 1))
            })?;
        if len == 0 {
            continue;
        }
        let body = open_extent(path, line, hole_kind, &mut budget, &mut disk.files)?;
        disk.extents.push(Placed {
            start: disk.size,
            len,
            body,
        });
        disk.size += len;
    }
    Ok(disk)
}

fn open_extent(
    path: &Path,
    line: &ExtentLine,
    hole_kind: ExtentKind,
    budget: &mut u64,
    files: &mut Vec<PathBuf>,
) -> Result<Body> {
    if line.access == Access::Denied || line.kind == ExtentType::Zero {
        return Ok(Body::Zero);
    }
    if let ExtentType::Other(t) = &line.kind {
        return Err(Error::unsupported(
            path,
            format!("extent type {}", shown(t.as_bytes())),
        ));
    }
    let name = line
        .file
        .as_deref()
        .ok_or_else(|| Error::malformed(path, "extent line names no file"))?;
    let extent_path = resolve_in_folder(path, name, "extent")?;
    // Name the descriptor the user gave, and the extent that is missing.
    let file = ImageFile::open(&extent_path).map_err(|e| match e {
        Error::Io { err, .. } => Error::io(path, format!("extent file {}", shown(name)), err),
        other => other,
    })?;
    if !files.contains(&extent_path) {
        files.push(extent_path.clone());
    }
    let len = line.sectors * SECTOR; // checked by the caller
    if line.kind.is_flat() {
        let base = line
            .offset_sectors
            .checked_mul(SECTOR)
            .ok_or_else(|| Error::malformed(path, "flat extent offset overflows"))?;
        return Ok(Body::Flat(FlatExtent::new(file, base, len, hole_kind)?));
    }
    let geo = match (&line.kind, kind_of(&file)?) {
        (ExtentType::SeSparse, _) => header::read_sesparse(&file)?,
        (_, Kind::Hosted) => {
            let hdr = header::read_hosted(&file)?;
            if hdr.geometry.capacity_sectors == 0 {
                return Err(Error::malformed(
                    &extent_path,
                    "sparse extent has capacity 0 (is it a descriptor?)",
                ));
            }
            hdr.geometry
        }
        (_, Kind::Delta(_)) => header::read_cowd(&file)?,
        _ => {
            return Err(Error::malformed(
                &extent_path,
                "not a sparse extent (no KDMV or COWD magic)",
            ))
        }
    };
    Ok(Body::Sparse(SparseExtent::open(
        file,
        geo,
        line.sectors,
        budget,
    )?))
}

/// The parent a descriptor names, with the CID it must have. `parentCID=ffffffff` means no
/// parent (a stale `parentFileNameHint` is then ignored, as the VMDK spec says).
fn parent_link(path: &Path, desc: &Descriptor) -> Result<Option<(PathBuf, u32)>> {
    match (desc.parent_cid, &desc.parent_hint) {
        (None, _) => Ok(None),
        (Some(cid), Some(hint)) => Ok(Some((resolve_in_folder(path, hint, "parent")?, cid))),
        (Some(cid), None) => Err(Error::malformed(
            path,
            format!(
                "delta disk has parentCID {cid:08x} but no parentFileNameHint naming its parent"
            ),
        )),
    }
}

/// Resolves a file name from the descriptor at `descriptor` inside the descriptor's folder.
pub(super) fn resolve_in_folder(descriptor: &Path, name: &[u8], what: &str) -> Result<PathBuf> {
    let rel = Path::new(std::ffi::OsStr::from_bytes(name));
    let climbs = rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if name.is_empty() {
        return Err(Error::malformed(
            descriptor,
            format!("{what} file name is empty"),
        ));
    }
    if name.contains(&0) || climbs {
        return Err(Error::malformed(
            descriptor,
            format!(
                "{what} file name climbs out of the descriptor's folder: \"{}\"",
                shown(name)
            ),
        ));
    }
    let dir = descriptor.parent().unwrap_or(Path::new(""));
    Ok(dir.join(rel))
}
