//! Finding the parent of a differencing VHD, inside the child's own folder only.
//!
//! Candidates, most local first: the relative locators `W2ru` (UTF-16LE) and `Wi2r`
//! (deprecated, ANSI), `MacX` (UTF-8 `file://` URL; XenServer's blktap writes
//! `file://./name.vhd`), the absolute locators `W2ku`/`Wi2k`, then the header's parent
//! unicode name. Windows paths use backslashes. A relative path with a `..` component is
//! rejected; an absolute Windows path contributes only its file name, looked up in the
//! child's folder; an absolute POSIX path (MacX) is accepted only when it names a file in
//! the child's folder. The first candidate that exists is the parent; its footer unique id
//! must match the parent id recorded in the child's header.

use std::path::{Path, PathBuf};

use super::footer;
use super::header::{utf16_le, DynHeader, Locator, MAX_LOCATOR_BYTES};
use crate::error::{Error, Result};
use crate::image_file::ImageFile;

/// A parent reference taken from the image, before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub origin: &'static str,
    pub name: String,
}

/// Reads the usable parent references of `header`, most local first.
pub fn candidates(file: &ImageFile, header: &DynHeader) -> Result<Vec<Candidate>> {
    const ORDER: [&[u8; 4]; 5] = [b"W2ru", b"Wi2r", b"MacX", b"W2ku", b"Wi2k"];
    let mut out = Vec::new();
    for code in ORDER {
        for loc in header.locators.iter().filter(|l| &l.platform == code) {
            if let Some(name) = read_locator(file, loc)? {
                out.push(Candidate {
                    origin: locator_origin(code),
                    name,
                });
            }
        }
    }
    if !header.parent_name.is_empty() {
        out.push(Candidate {
            origin: "parent unicode name",
            name: header.parent_name.clone(),
        });
    }
    Ok(out)
}

fn locator_origin(code: &[u8; 4]) -> &'static str {
    match code {
        b"W2ru" => "W2ru locator",
        b"Wi2r" => "Wi2r locator",
        b"MacX" => "MacX locator",
        b"W2ku" => "W2ku locator",
        _ => "Wi2k locator",
    }
}

fn read_locator(file: &ImageFile, loc: &Locator) -> Result<Option<String>> {
    if loc.data_length == 0 {
        return Ok(None);
    }
    if loc.data_length > MAX_LOCATOR_BYTES {
        return Err(Error::malformed(
            file.path(),
            format!(
                "parent locator of {:#x} bytes at {:#x} is too long",
                loc.data_length, loc.data_offset
            ),
        ));
    }
    let len = usize::try_from(loc.data_length).unwrap_or(usize::MAX);
    let raw = file.read_vec(loc.data_offset, len, "vhd parent locator")?;
    let text = match &loc.platform {
        b"W2ru" | b"W2ku" => utf16_le(&raw),
        b"MacX" => url_path(&String::from_utf8_lossy(&raw)),
        _ => String::from_utf8_lossy(&raw).into_owned(),
    };
    let text = text.trim_end_matches('\0').to_string();
    Ok((!text.is_empty()).then_some(text))
}

/// `file://./name.vhd` → `./name.vhd`; `file:///abs` → `/abs`; percent escapes decoded.
fn url_path(url: &str) -> String {
    let url = url.trim_end_matches('\0');
    let rest = url.strip_prefix("file://").unwrap_or(url);
    percent_decode(rest)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where a parent reference points inside `dir`, or why it is refused.
pub fn resolve(dir: &Path, name: &str) -> std::result::Result<PathBuf, String> {
    let windows = name.contains('\\') || has_drive_letter(name);
    let unified = name.replace('\\', "/");
    if windows && (has_drive_letter(name) || unified.starts_with('/')) {
        // Absolute Windows path (drive or UNC): only the file name is used.
        let base = unified.rsplit('/').next().unwrap_or_default();
        return plain_file_name(base, name).map(|b| dir.join(b));
    }
    if unified.starts_with('/') {
        return resolve_posix_absolute(dir, &unified);
    }
    let mut path = dir.to_path_buf();
    let mut any = false;
    for part in unified.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("'{name}' has a '..' component")),
            p => {
                path.push(p);
                any = true;
            }
        }
    }
    if any {
        Ok(path)
    } else {
        Err(format!("'{name}' names no file"))
    }
}

fn has_drive_letter(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

fn plain_file_name<'a>(base: &'a str, name: &str) -> std::result::Result<&'a str, String> {
    match base {
        "" | "." | ".." => Err(format!("'{name}' names no file")),
        b => Ok(b),
    }
}

fn resolve_posix_absolute(dir: &Path, abs: &str) -> std::result::Result<PathBuf, String> {
    let p = Path::new(abs);
    let (Some(parent), Some(file)) = (p.parent(), p.file_name()) else {
        return Err(format!("'{abs}' names no file"));
    };
    let same = match (parent.canonicalize(), dir.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        Ok(dir.join(file))
    } else {
        Err(format!("'{abs}' is outside the differencing disk's folder"))
    }
}

/// Picks the first candidate that exists in `dir`; errors name the parent and what was tried.
pub fn find(child: &Path, candidates: &[Candidate], header_name: &str) -> Result<PathBuf> {
    let dir = child
        .parent()
        .map(Path::to_path_buf)
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let mut notes = Vec::new();
    for cand in candidates {
        let note = match resolve(&dir, &cand.name) {
            Ok(path) if path.is_file() => return Ok(path),
            Ok(path) => format!("{} not found", path.display()),
            Err(reason) => format!("{} {reason}", cand.origin),
        };
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
    let shown = candidates
        .first()
        .map(|c| c.name.as_str())
        .filter(|_| header_name.is_empty())
        .unwrap_or(header_name);
    Err(Error::malformed(
        child,
        format!(
            "parent disk '{shown}' of this differencing vhd is missing: {}",
            if notes.is_empty() {
                "the image names no parent".to_string()
            } else {
                notes.join("; ")
            }
        ),
    ))
}

/// The unique id in the footer of the VHD at `path`.
pub fn unique_id(path: &Path) -> Result<[u8; 16]> {
    let file = ImageFile::open(path)?;
    Ok(footer::locate(&file)?.unique_id)
}

pub fn format_uuid(id: &[u8; 16]) -> String {
    let h: String = id.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
