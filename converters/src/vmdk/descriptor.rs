//! The VMDK text descriptor (VMware "Virtual Disk Format 1.1", section "The Descriptor
//! File"): `key=value` lines, extent lines and comments.
//!
//! Parsed from bytes, not from UTF-8 text: old VMware products write windows-1252
//! descriptors, so keys and values are decoded lossily while extent and parent file names
//! keep their raw bytes (they name files on the host filesystem). Lines may end in CRLF, values
//! may be quoted or not, spaces around `=` are optional. The descriptor ends at the first NUL
//! byte (an embedded descriptor is padded with zeros).
//!
//! Extent lines: `ACCESS SECTORS TYPE ["FILE" [OFFSET]]` with ACCESS one of `RW`, `RDONLY`,
//! `NOACCESS` and TYPE one of `FLAT`, `SPARSE`, `ZERO`, `VMFS`, `VMFSSPARSE`, `SESPARSE`,
//! `VMFSRDM`, `VMFSRAW`. Unknown types are kept and refused when the disk is opened.

use std::path::Path;

use crate::error::{Error, Result};

/// `parentCID` of a disk that has no parent.
pub(super) const NO_PARENT_CID: u32 = 0xffff_ffff;

/// How the descriptor lets the virtual machine use an extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    ReadWrite,
    ReadOnly,
    /// Reads as zeros (the extent's file is never opened).
    Denied,
}

/// Storage type of an extent, as the extent line names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ExtentType {
    Flat,
    Sparse,
    Zero,
    Vmfs,
    VmfsSparse,
    SeSparse,
    VmfsRdm,
    VmfsRaw,
    Other(String),
}

impl ExtentType {
    fn parse(word: &str) -> ExtentType {
        match word {
            "FLAT" => ExtentType::Flat,
            "SPARSE" => ExtentType::Sparse,
            "ZERO" => ExtentType::Zero,
            "VMFS" => ExtentType::Vmfs,
            "VMFSSPARSE" => ExtentType::VmfsSparse,
            "SESPARSE" => ExtentType::SeSparse,
            "VMFSRDM" => ExtentType::VmfsRdm,
            "VMFSRAW" => ExtentType::VmfsRaw,
            other => ExtentType::Other(other.to_string()),
        }
    }

    /// Extents whose file is the guest data itself at a sector offset.
    pub(super) fn is_flat(&self) -> bool {
        matches!(
            self,
            ExtentType::Flat | ExtentType::Vmfs | ExtentType::VmfsRdm | ExtentType::VmfsRaw
        )
    }
}

/// One extent line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ExtentLine {
    pub access: Access,
    pub sectors: u64,
    pub kind: ExtentType,
    /// Raw bytes of the quoted file name (absent for `ZERO`).
    pub file: Option<Vec<u8>>,
    /// Start of the data inside a flat extent file, in sectors.
    pub offset_sectors: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Descriptor {
    pub create_type: Option<String>,
    pub cid: Option<u32>,
    /// `None` when absent or `ffffffff` (no parent).
    pub parent_cid: Option<u32>,
    /// Raw bytes of `parentFileNameHint`.
    pub parent_hint: Option<Vec<u8>>,
    pub extents: Vec<ExtentLine>,
}

/// Longest descriptor ferry reads (qemu reads at most 1 MiB too).
pub(super) const MAX_DESCRIPTOR_BYTES: usize = 1 << 20;
/// Most extents a descriptor may list; each open extent keeps a file descriptor.
pub(super) const MAX_EXTENTS: usize = 8192;

impl Descriptor {
    /// Parses descriptor text; `path` only names the file in errors.
    pub(super) fn parse(path: &Path, bytes: &[u8]) -> Result<Descriptor> {
        let text = match bytes.iter().position(|&b| b == 0) {
            Some(nul) => &bytes[..nul],
            None => bytes,
        };
        let mut desc = Descriptor::default();
        for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
            let line = trim(raw);
            if line.is_empty() || line.starts_with(b"#") {
                continue;
            }
            desc.parse_line(path, index + 1, line)?;
        }
        if desc.extents.len() > MAX_EXTENTS {
            return Err(Error::malformed(
                path,
                format!(
                    "descriptor lists {} extents, more than {MAX_EXTENTS}",
                    desc.extents.len()
                ),
            ));
        }
        Ok(desc)
    }

    fn parse_line(&mut self, path: &Path, line_no: usize, line: &[u8]) -> Result<()> {
        let first = line
            .split(|b| b.is_ascii_whitespace())
            .next()
            .unwrap_or_default();
        let access = match first {
            b"RW" => Some(Access::ReadWrite),
            b"RDONLY" => Some(Access::ReadOnly),
            b"NOACCESS" => Some(Access::Denied),
            _ => None,
        };
        if let Some(access) = access {
            let extent = parse_extent(line, access).ok_or_else(|| {
                Error::malformed(
                    path,
                    format!("invalid extent line {line_no}: {}", shown(line)),
                )
            })?;
            self.extents.push(extent);
            return Ok(());
        }
        let Some(eq) = line.iter().position(|&b| b == b'=') else {
            return Ok(()); // Not a key=value line: VMware ignores such lines too.
        };
        let key = String::from_utf8_lossy(trim(&line[..eq]));
        let value = unquote(trim(&line[eq + 1..]));
        self.set(path, &key, value)
    }

    fn set(&mut self, path: &Path, key: &str, value: &[u8]) -> Result<()> {
        if key.eq_ignore_ascii_case("createType") {
            self.create_type = Some(String::from_utf8_lossy(value).into_owned());
        } else if key.eq_ignore_ascii_case("CID") {
            self.cid = Some(parse_cid(path, "CID", value)?);
        } else if key.eq_ignore_ascii_case("parentCID") {
            let cid = parse_cid(path, "parentCID", value)?;
            self.parent_cid = (cid != NO_PARENT_CID).then_some(cid);
        } else if key.eq_ignore_ascii_case("parentFileNameHint") && !value.is_empty() {
            self.parent_hint = Some(value.to_vec());
        }
        Ok(())
    }
}

fn parse_cid(path: &Path, key: &str, value: &[u8]) -> Result<u32> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim(), 16).ok())
        .ok_or_else(|| {
            Error::malformed(
                path,
                format!("{key} is not a 32-bit hex number: {}", shown(value)),
            )
        })
}

/// `ACCESS SECTORS TYPE ["FILE" [OFFSET]]`; `None` when the line does not fit that shape.
fn parse_extent(line: &[u8], access: Access) -> Option<ExtentLine> {
    let (_, rest) = next_word(line)?;
    let (sectors, rest) = next_word(rest)?;
    let sectors: u64 = std::str::from_utf8(sectors).ok()?.parse().ok()?;
    let (kind, rest) = next_word(rest)?;
    let kind = ExtentType::parse(std::str::from_utf8(kind).ok()?);
    let rest = trim(rest);
    let mut extent = ExtentLine {
        access,
        sectors,
        kind,
        file: None,
        offset_sectors: 0,
    };
    if rest.is_empty() {
        return (extent.kind == ExtentType::Zero).then_some(extent);
    }
    let after_quote = rest.strip_prefix(b"\"")?;
    let close = after_quote.iter().position(|&b| b == b'"')?;
    extent.file = Some(after_quote[..close].to_vec());
    let tail = trim(&after_quote[close + 1..]);
    if !tail.is_empty() {
        let (offset, rest) = next_word(tail)?;
        extent.offset_sectors = std::str::from_utf8(offset).ok()?.parse().ok()?;
        // Anything after the offset (VMware writes nothing there) makes the line suspect.
        if !trim(rest).is_empty() {
            return None;
        }
    }
    Some(extent)
}

fn next_word(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let s = trim(s);
    if s.is_empty() {
        return None;
    }
    let end = s
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or_default()
}

fn unquote(s: &[u8]) -> &[u8] {
    match s {
        [b'"', inner @ .., b'"'] => inner,
        _ => s,
    }
}

/// A short, printable rendering of descriptor bytes for error messages.
pub(super) fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(80).flat_map(char::escape_debug).collect();
    if text.chars().count() > 80 {
        out.push('…');
    }
    out
}
