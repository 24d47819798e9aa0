//! Size-capped reading, shared by every reader. Descriptions are hostile input: a
//! "config file" that is really a 100 GiB disk, a FIFO or `/dev/zero` must cost at most
//! the cap, never the file's size.

use std::io::Read;
use std::path::Path;

use crate::DescError;

/// Reads `path` whole, refusing it when longer than `limit` bytes. `what` finishes the
/// refusal: "larger than 1 MiB: not {what}".
pub(crate) fn read_capped(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, DescError> {
    let file = std::fs::File::open(path).map_err(|source| io(path, source))?;
    read_capped_from(&path.display().to_string(), file, limit, what)
}

/// [`read_capped`] for something already open (an archive member, a manifest);
/// `shown` names it in errors.
pub(crate) fn read_capped_from(
    shown: &str,
    reader: impl Read,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>, DescError> {
    let mut bytes = Vec::new();
    // One byte past the cap tells "exactly at the cap" from "longer", without trusting
    // metadata (a pipe or a /proc file reports length 0).
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| DescError::Io {
            path: shown.to_string(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(DescError::Malformed {
            path: shown.to_string(),
            reason: format!("larger than {}: not {what}", human(limit)),
        });
    }
    Ok(bytes)
}

/// The first `n` bytes of `path` (fewer when it is shorter), for sniffing.
pub(crate) fn read_head(path: &Path, n: u64) -> Result<Vec<u8>, DescError> {
    let file = std::fs::File::open(path).map_err(|source| io(path, source))?;
    let mut bytes = Vec::new();
    file.take(n)
        .read_to_end(&mut bytes)
        .map_err(|source| io(path, source))?;
    Ok(bytes)
}

/// The bytes as UTF-8 text; `what` finishes the refusal. A byte-order mark is left for
/// the parser, which knows whether it may appear.
pub(crate) fn utf8(shown: &str, bytes: Vec<u8>, what: &str) -> Result<String, DescError> {
    String::from_utf8(bytes).map_err(|_| DescError::Malformed {
        path: shown.to_string(),
        reason: format!("not UTF-8 text: not {what}"),
    })
}

fn io(path: &Path, source: std::io::Error) -> DescError {
    DescError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// `16 MiB` rather than `16777216 bytes` when the cap is a round number.
fn human(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    const KIB: u64 = 1 << 10;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}
