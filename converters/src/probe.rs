//! Format probing by magic, and opening a source in the named or probed format.
//!
//! A format is never guessed to be raw: a guest can write any header into its own raw disk
//! (CVE-2008-2004), so a file without a known magic is an error that asks the user to say
//! `--source-format raw`. Known formats ferry does not read are named in the error.

use std::path::Path;

use serde::Serialize;

use crate::chain::ChainGuard;
use crate::error::{Error, Result};
use crate::image_file::ImageFile;
use crate::raw::RawSource;
use crate::source::DiskSource;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Raw,
    Vmdk,
    Vhd,
    Qcow2,
    /// Legacy formats found in old labs and qemu's own test images, read-only.
    Bochs,
    Parallels,
    Cloop,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Vmdk => "vmdk",
            Format::Vhd => "vhd",
            Format::Qcow2 => "qcow2",
            Format::Bochs => "bochs",
            Format::Parallels => "parallels",
            Format::Cloop => "cloop",
        }
    }

    /// Parses a user-given or header-given format name (qemu's names are accepted too).
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "raw" | "host_device" | "file" => Some(Format::Raw),
            "vmdk" => Some(Format::Vmdk),
            "vhd" | "vpc" => Some(Format::Vhd),
            "qcow2" => Some(Format::Qcow2),
            "bochs" => Some(Format::Bochs),
            "parallels" => Some(Format::Parallels),
            "cloop" => Some(Format::Cloop),
            _ => None,
        }
    }
}

/// How sources are opened.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Follow qcow2 backing-file references. Off by default: a backing file name is data
    /// from the image and may point anywhere on the host.
    pub follow_backing: bool,
}

const VMDK_SPARSE_MAGIC: &[u8; 4] = b"KDMV";
const VMDK_COWD_MAGIC: &[u8; 4] = b"COWD";
const VMDK_DESCRIPTOR_MARK: &[u8] = b"# Disk DescriptorFile";
const QCOW_MAGIC: &[u8; 4] = b"QFI\xfb";
const VHD_COOKIE: &[u8; 8] = b"conectix";

/// Known magics of formats ferry does not read, so the error can name them.
const UNSUPPORTED_MAGICS: &[(usize, &[u8], &str)] = &[
    (
        0,
        b"vhdxfile",
        "format VHDX (Hyper-V); convert it with `qemu-img convert -O raw` first",
    ),
    (0x40, b"\x7f\x10\xda\xbe", "format VDI (VirtualBox)"),
    (0, b"QEVM", "format QED"),
];

/// Identifies the format of `path` from its magic bytes.
pub fn probe(path: &Path) -> Result<Format> {
    let file = ImageFile::open(path)?;
    let mut head = [0u8; 512];
    let n = file.read_at_most(&mut head, 0, "header")?;
    let head = &head[..n];
    if head.starts_with(QCOW_MAGIC) {
        let version = head
            .get(4..8)
            .map(|v| u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
        return match version {
            Some(2 | 3) => Ok(Format::Qcow2),
            Some(v) => Err(Error::unsupported(path, format!("qcow version {v}"))),
            None => Err(Error::malformed(path, "truncated qcow header")),
        };
    }
    if head.starts_with(VMDK_SPARSE_MAGIC)
        || head.starts_with(VMDK_COWD_MAGIC)
        || head.starts_with(VMDK_DESCRIPTOR_MARK)
        || is_vmdk_descriptor_text(head)
    {
        return Ok(Format::Vmdk);
    }
    if head.starts_with(VHD_COOKIE) {
        return Ok(Format::Vhd);
    }
    if head.starts_with(b"WithoutFreeSpace") || head.starts_with(b"WithouFreSpacExt") {
        return Ok(Format::Parallels);
    }
    if head.starts_with(b"Bochs Virtual HD Image") {
        return Ok(Format::Bochs);
    }
    if head.starts_with(b"#!/bin/sh\n#V2.0 Format") {
        return Ok(Format::Cloop);
    }
    for (at, magic, what) in UNSUPPORTED_MAGICS {
        if head.get(*at..at + magic.len()) == Some(magic) {
            return Err(Error::unsupported(path, *what));
        }
    }
    if has_vhd_extension(path) && has_vhd_footer(&file)? {
        return Ok(Format::Vhd);
    }
    Err(Error::UnknownFormat {
        path: path.to_path_buf(),
    })
}

/// A descriptor may start with blank lines or other comments before the marker; a small
/// text file whose lines include `createType=` is a descriptor too.
fn is_vmdk_descriptor_text(head: &[u8]) -> bool {
    // Descriptors may be windows-1252 and a UTF-8 character may be cut at the end of the
    // probe window, so search bytes, not text.
    let contains = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    contains(VMDK_DESCRIPTOR_MARK)
        || head
            .split(|&b| b == b'\n')
            .any(|line| line.trim_ascii_start().starts_with(b"createType"))
}

fn has_vhd_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("vhd"))
}

/// A fixed VHD carries its only footer in the last 512 bytes; qemu does not probe it at
/// all. ferry accepts it only for `.vhd` files whose footer checksum is right, so a raw
/// disk whose last sector happens to hold a footer is not misread.
fn has_vhd_footer(file: &ImageFile) -> Result<bool> {
    if file.len() < 512 {
        return Ok(false);
    }
    let mut footer = [0u8; 512];
    file.read_exact_at(&mut footer, file.len() - 512, "VHD footer")?;
    if &footer[..8] != VHD_COOKIE {
        return Ok(false);
    }
    let stored = u32::from_be_bytes([footer[64], footer[65], footer[66], footer[67]]);
    let sum = footer
        .iter()
        .enumerate()
        .filter(|(i, _)| !(64..68).contains(i))
        .fold(0u32, |acc, (_, b)| acc.wrapping_add(u32::from(*b)));
    Ok(!sum == stored)
}

/// Opens `path` as `format` (probing when `None`).
pub fn open(
    path: &Path,
    format: Option<Format>,
    opts: &OpenOptions,
) -> Result<Box<dyn DiskSource>> {
    let mut guard = ChainGuard::default();
    open_layer(path, format, opts, &mut guard)
}

/// Opens one layer of a chain; formats call this for their parents so the chain guard
/// sees every file.
pub fn open_layer(
    path: &Path,
    format: Option<Format>,
    opts: &OpenOptions,
    guard: &mut ChainGuard,
) -> Result<Box<dyn DiskSource>> {
    let format = match format {
        Some(f) => f,
        None => probe(path)?,
    };
    guard.enter(path)?;
    match format {
        Format::Raw => Ok(Box::new(RawSource::open(path)?)),
        Format::Vmdk => crate::vmdk::open(path, opts, guard),
        Format::Vhd => crate::vhd::open(path, opts, guard),
        Format::Qcow2 => crate::qcow2::open(path, opts, guard),
        Format::Bochs => crate::legacy::open_bochs(path),
        Format::Parallels => crate::legacy::open_parallels(path),
        Format::Cloop => crate::legacy::open_cloop(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8], name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        (dir, path)
    }

    #[test]
    fn no_magic_asks_for_raw() {
        let (_d, p) = file_with(&[0u8; 4096], "disk.img");
        let err = probe(&p).unwrap_err();
        assert!(matches!(err, Error::UnknownFormat { .. }));
        assert!(err.to_string().contains("--source-format raw"));
    }

    #[test]
    fn magics_are_recognised() {
        let (_d, p) = file_with(b"QFI\xfb\0\0\0\x03", "a");
        assert_eq!(probe(&p).unwrap(), Format::Qcow2);
        let (_d, p) = file_with(b"QFI\xfb\0\0\0\x01", "a");
        assert!(matches!(probe(&p), Err(Error::Unsupported { .. })));
        let (_d, p) = file_with(b"KDMV\x01\0\0\0", "a");
        assert_eq!(probe(&p).unwrap(), Format::Vmdk);
        let (_d, p) = file_with(b"# Disk DescriptorFile\nversion=1\n", "a");
        assert_eq!(probe(&p).unwrap(), Format::Vmdk);
        let (_d, p) = file_with(b"vhdxfile", "a");
        assert!(probe(&p).unwrap_err().to_string().contains("VHDX"));
    }

    #[test]
    fn empty_file_is_unknown() {
        let (_d, p) = file_with(b"", "a");
        assert!(matches!(probe(&p), Err(Error::UnknownFormat { .. })));
    }
}
