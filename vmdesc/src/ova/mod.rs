//! OVA: a tar holding an OVF, its disks and usually a manifest. The tar is never
//! unpacked: its 512-byte headers are walked to learn where each member's data sits, so
//! a later stage can read a disk straight out of the archive at [`OvaMember::offset`].

pub(crate) mod manifest;
#[cfg(test)]
mod tests;

use crate::malformed;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::{DescError, VmDescription};

/// An OVA as read: the description of its OVF and where every member's data lies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ova {
    /// Disk paths are member names (`disk1.vmdk`, `folder/disk1.vmdk`).
    pub description: VmDescription,
    pub members: Vec<OvaMember>,
}

/// A regular file inside the tar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OvaMember {
    /// Name as stored, without a leading `./`.
    pub name: String,
    /// Byte offset of the data from the start of the archive.
    pub offset: u64,
    pub size: u64,
}

const BLOCK: u64 = 512;
/// Bounds for hostile archives: members, GNU long names / pax headers, the OVF itself.
const MAX_MEMBERS: usize = 100_000;
const MAX_META: u64 = 1 << 20;
const OVF_LIMIT: u64 = 16 << 20;

fn io(path: &Path, source: std::io::Error) -> DescError {
    DescError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reads an OVA: walks the tar, parses the first `.ovf` member, verifies the manifest.
pub fn read_ova(path: &Path) -> Result<Ova, DescError> {
    let mut file = File::open(path).map_err(|e| io(path, e))?;
    let len = file.metadata().map_err(|e| io(path, e))?.len();
    let mut magic = Vec::new();
    (&mut file)
        .take(8)
        .read_to_end(&mut magic)
        .map_err(|e| io(path, e))?;
    sniff(path, &magic)?;
    let members = walk_tar(path, &mut file, len)?;

    let ovf = members
        .iter()
        .find(|m| m.name.to_ascii_lowercase().ends_with(".ovf"))
        .ok_or_else(|| malformed(path, "no .ovf member in the archive"))?;
    if ovf.size > OVF_LIMIT {
        return Err(malformed(
            path,
            format!("{} is larger than 16 MiB", ovf.name),
        ));
    }
    let shown = path.display().to_string();
    let what = format!("an OVF descriptor ({})", ovf.name);
    let member = member_reader(path, &mut file, ovf)?;
    let bytes = crate::capped::read_capped_from(&shown, member, OVF_LIMIT, &what)?;
    let xml = crate::capped::utf8(&shown, bytes, &what)?;
    // Disk hrefs are relative to the OVF's folder inside the archive.
    let base = Path::new(&ovf.name).parent().unwrap_or(Path::new(""));
    let (mut description, sizes) = crate::ovf::parse_with_sizes(path, &xml, base)?;

    for disk in &description.disks {
        let Some(p) = &disk.path else { continue };
        let member = members
            .iter()
            .find(|m| Path::new(&m.name) == p)
            .ok_or_else(|| {
                malformed(path, format!("disk {} is not in the archive", p.display()))
            })?;
        // A size mismatch is usually a truncated copy; the disk reader will say more.
        if let Some((_, want)) = sizes.iter().find(|(s, _)| s == p) {
            if member.size != *want {
                description.warnings.push(format!(
                    "{} is {} bytes in the archive, the OVF says {want}",
                    member.name, member.size
                ));
            }
        }
    }

    let manifests: Vec<&OvaMember> = members
        .iter()
        .filter(|m| m.name.to_ascii_lowercase().ends_with(".mf"))
        .collect();
    if manifests.is_empty() {
        description
            .warnings
            .push("no manifest (.mf) in the archive: members not verified".into());
    }
    for mf in manifests {
        let text = manifest::read_text(&shown, member_reader(path, &mut file, mf)?)?;
        let dir = Path::new(&mf.name).parent().unwrap_or(Path::new(""));
        for entry in manifest::parse(&shown, &text)? {
            let want = manifest::resolve(&shown, dir, &entry.name)?;
            let member = members
                .iter()
                .find(|m| Path::new(&m.name) == want)
                .ok_or_else(|| {
                    malformed(
                        path,
                        format!(
                            "manifest {} names {}, not in the archive",
                            mf.name, entry.name
                        ),
                    )
                })?;
            manifest::check(&shown, &entry, member_reader(path, &mut file, member)?)?;
        }
    }
    Ok(Ova {
        description,
        members,
    })
}

fn member_reader<'a>(
    path: &Path,
    file: &'a mut File,
    member: &OvaMember,
) -> Result<std::io::Take<&'a mut File>, DescError> {
    file.seek(SeekFrom::Start(member.offset))
        .map_err(|e| io(path, e))?;
    Ok(file.take(member.size))
}

/// Parses an octal header field (NUL/space padded), or GNU base-256 when the high bit
/// of the first byte is set (sizes of 8 GiB and more).
fn number(field: &[u8]) -> Option<u64> {
    if let Some((&first, rest)) = field.split_first() {
        if first & 0x80 != 0 {
            if first & 0x40 != 0 {
                return None; // negative
            }
            let mut v = u64::from(first & 0x3f);
            for &b in rest {
                v = v.checked_mul(256)?.checked_add(u64::from(b))?;
            }
            return Some(v);
        }
    }
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

fn cstr(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(field.get(..end).unwrap_or_default()).into_owned()
}

fn normalize(name: &str) -> String {
    let mut s = name;
    while let Some(rest) = s.strip_prefix("./") {
        s = rest;
    }
    s.to_string()
}

/// Walks ustar/GNU/pax headers and returns the regular members, in archive order.
fn walk_tar(path: &Path, file: &mut File, len: u64) -> Result<Vec<OvaMember>, DescError> {
    let mut members = Vec::new();
    let mut offset = 0u64;
    let mut long_name: Option<String> = None;
    let mut header = [0u8; 512];
    loop {
        if offset + BLOCK > len {
            if offset == len && offset > 0 {
                break; // archive without the two zero blocks: tolerated, as tar does
            }
            return Err(malformed(
                path,
                format!("truncated tar header at offset {offset}"),
            ));
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| io(path, e))?;
        file.read_exact(&mut header).map_err(|e| io(path, e))?;
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let stored = number(&header[148..156]);
        let sum: u64 = header
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        if stored != Some(sum) {
            return Err(malformed(
                path,
                format!("not a tar archive (bad header checksum at offset {offset})"),
            ));
        }
        let size = number(&header[124..136])
            .ok_or_else(|| malformed(path, format!("bad member size at offset {offset}")))?;
        let data = offset + BLOCK;
        let end = data
            .checked_add(size)
            .filter(|&e| e <= len)
            .ok_or_else(|| {
                malformed(path, format!("member at offset {offset} runs past the end"))
            })?;
        let kind = header[156];
        let read_meta = |file: &mut File| -> Result<Vec<u8>, DescError> {
            // The header states the size: refuse before reading anything.
            if size > MAX_META {
                return Err(malformed(
                    path,
                    format!("tar metadata at offset {offset} too large"),
                ));
            }
            crate::capped::read_capped_from(
                &path.display().to_string(),
                file.take(size),
                MAX_META,
                &format!("tar metadata (offset {offset})"),
            )
        };
        match kind {
            b'L' => long_name = Some(cstr(&read_meta(file)?)),
            b'x' => {
                if let Some(p) = pax_path(&read_meta(file)?) {
                    long_name = Some(p);
                }
            }
            b'0' | 0 | b'7' => {
                let name = match long_name.take() {
                    Some(n) => n,
                    None => {
                        let name = cstr(&header[0..100]);
                        let prefix = cstr(&header[345..500]);
                        if &header[257..262] == b"ustar" && !prefix.is_empty() {
                            format!("{prefix}/{name}")
                        } else {
                            name
                        }
                    }
                };
                if members.len() >= MAX_MEMBERS {
                    return Err(malformed(path, "more than 100000 tar members"));
                }
                members.push(OvaMember {
                    name: normalize(&name),
                    offset: data,
                    size,
                });
            }
            // Directories, links, global pax headers: nothing to record.
            _ => long_name = None,
        }
        offset = end
            .checked_next_multiple_of(BLOCK)
            .ok_or_else(|| malformed(path, "tar offset overflow"))?;
    }
    Ok(members)
}

/// Refuses compressed archives up front with a clearer message than a bad checksum.
fn sniff(path: &Path, header: &[u8]) -> Result<(), DescError> {
    let what = if header.starts_with(&[0x1f, 0x8b]) {
        "gzip-compressed OVA (gunzip it first)"
    } else if header.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        "xz-compressed OVA (unxz it first)"
    } else if header.starts_with(b"PK\x03\x04") {
        "zip OVA (only tar OVAs are read)"
    } else {
        return Ok(());
    };
    Err(DescError::Unsupported {
        path: path.display().to_string(),
        what: what.into(),
    })
}

/// The `path` record of a pax extended header (`"<len> path=<name>\n"` records).
fn pax_path(data: &[u8]) -> Option<String> {
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(rest.get(..space)?).ok()?.parse().ok()?;
        let record = rest.get(space + 1..len)?;
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(value) = record.strip_prefix(b"path=") {
            return Some(String::from_utf8_lossy(value).into_owned());
        }
        rest = rest.get(len..)?;
    }
    None
}

/// Verifies a directory-style OVF's sibling manifest (`NAME.mf`) when there is one.
/// Returns whether one was found.
pub(crate) fn verify_sibling_manifest(ovf: &Path) -> Result<bool, DescError> {
    let mf: PathBuf = ovf.with_extension("mf");
    let shown = mf.display().to_string();
    let file = match File::open(&mf) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io(&mf, e)),
    };
    let text = manifest::read_text(&shown, file)?;
    let dir = mf.parent().unwrap_or(Path::new(""));
    for entry in manifest::parse(&shown, &text)? {
        let target = manifest::resolve(&shown, dir, &entry.name)?;
        let f = File::open(&target).map_err(|_| {
            malformed(
                &mf,
                format!("manifest names {}, which is missing", entry.name),
            )
        })?;
        manifest::check(&shown, &entry, f)?;
    }
    Ok(true)
}
