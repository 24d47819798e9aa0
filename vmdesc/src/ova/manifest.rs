//! OVF manifests (`.mf`): one `ALGO(name)= hex` line per package file. ovftool writes
//! `SHA256(disk1.vmdk)= ab…`, `sha1sum --tag` (govmomi) writes `SHA1 (disk1.vmdk) = ab…`;
//! both are accepted. Files are streamed through the digest so a 100 GiB disk costs one
//! buffer, not its size.

use std::io::Read;

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::DescError;

/// A manifest larger than this is not a manifest: real ones are a few lines.
const MANIFEST_LIMIT: u64 = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Algo {
    Sha1,
    Sha256,
    Sha512,
}

impl Algo {
    fn name(self) -> &'static str {
        match self {
            Algo::Sha1 => "SHA1",
            Algo::Sha256 => "SHA256",
            Algo::Sha512 => "SHA512",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub algo: Algo,
    pub name: String,
    /// Lower-case hex as written.
    pub hex: String,
}

fn malformed(path: &str, reason: String) -> DescError {
    DescError::Malformed {
        path: path.to_string(),
        reason,
    }
}

/// Reads a manifest's text, capped at [`MANIFEST_LIMIT`].
pub(crate) fn read_text(path: &str, reader: impl Read) -> Result<String, DescError> {
    let bytes = crate::capped::read_capped_from(path, reader, MANIFEST_LIMIT, "a manifest")?;
    crate::capped::utf8(path, bytes, "a manifest")
}

/// Parses every non-blank line; `path` names the manifest in errors.
pub(crate) fn parse(path: &str, text: &str) -> Result<Vec<Entry>, DescError> {
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = || {
            malformed(
                path,
                format!("manifest line {}: expected ALGO(name)= hex", n + 1),
            )
        };
        let open = line.find('(').ok_or_else(bad)?;
        // The last ')' before the '=': file names may themselves contain parentheses.
        let eq = line.rfind('=').ok_or_else(bad)?;
        let close = line[..eq].rfind(')').ok_or_else(bad)?;
        if close <= open {
            return Err(bad());
        }
        let algo = match line[..open].trim().to_ascii_uppercase().as_str() {
            "SHA1" => Algo::Sha1,
            "SHA256" => Algo::Sha256,
            "SHA512" => Algo::Sha512,
            other => {
                return Err(DescError::Unsupported {
                    path: path.to_string(),
                    what: format!("manifest digest {other:?} (line {})", n + 1),
                })
            }
        };
        if !line[close + 1..eq].trim().is_empty() {
            return Err(bad());
        }
        let hex = line[eq + 1..].trim().to_ascii_lowercase();
        let want = match algo {
            Algo::Sha1 => 40,
            Algo::Sha256 => 64,
            Algo::Sha512 => 128,
        };
        if hex.len() != want || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed(
                path,
                format!("manifest line {}: not a {} digest", n + 1, algo.name()),
            ));
        }
        entries.push(Entry {
            algo,
            name: line[open + 1..close].to_string(),
            hex,
        });
    }
    Ok(entries)
}

fn hex_of(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Streams `reader` through the entry's digest and compares.
pub(crate) fn check(path: &str, entry: &Entry, mut reader: impl Read) -> Result<(), DescError> {
    let mut buf = vec![0u8; 1 << 16];
    let mut sha1 = Sha1::new();
    let mut sha256 = Sha256::new();
    let mut sha512 = Sha512::new();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(DescError::Io {
                    path: path.to_string(),
                    source,
                })
            }
        };
        let chunk = buf.get(..n).unwrap_or_default();
        match entry.algo {
            Algo::Sha1 => sha1.update(chunk),
            Algo::Sha256 => sha256.update(chunk),
            Algo::Sha512 => sha512.update(chunk),
        }
    }
    let got = match entry.algo {
        Algo::Sha1 => hex_of(&sha1.finalize()),
        Algo::Sha256 => hex_of(&sha256.finalize()),
        Algo::Sha512 => hex_of(&sha512.finalize()),
    };
    if got != entry.hex {
        return Err(malformed(
            path,
            format!(
                "manifest: {} of {} does not match",
                entry.algo.name(),
                entry.name
            ),
        ));
    }
    Ok(())
}

/// Joins a manifest name to the manifest's folder, refusing names that climb out of it.
pub(crate) fn resolve(
    path: &str,
    dir: &std::path::Path,
    name: &str,
) -> Result<std::path::PathBuf, DescError> {
    let rel = std::path::Path::new(name);
    let safe = rel.components().all(|c| {
        matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    });
    if !safe || name.is_empty() {
        return Err(malformed(
            path,
            format!("manifest names {name:?}, outside the package"),
        ));
    }
    Ok(dir.join(rel))
}
