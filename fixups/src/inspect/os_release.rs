//! The operating system, from `os-release(5)`.
//!
//! `/etc/os-release` is read first, then `/usr/lib/os-release`, as the man page says
//! (symlinks resolve inside the guest, so the usual `/etc/os-release ->
//! ../usr/lib/os-release` works). Values may be unquoted, or in single or double quotes;
//! inside double quotes `\"`, `\\`, `` \` `` and `\$` are unescaped. Lines that are not
//! `KEY=value` are ignored. Not supported: line continuations, `$VAR` expansion (the
//! format forbids both).

use serde::Serialize;

use super::read::{config_lines, Reader};
use super::InspectError;

/// The files `os-release(5)` names, in the order they are consulted.
pub const OS_RELEASE_PATHS: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// What `os-release` says about the guest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OsRelease {
    /// `ID`: lowercase distribution name (`debian`, `rhel`, `ubuntu`); `linux` when absent,
    /// as the man page specifies.
    pub id: String,
    /// `VERSION_ID` (`12`, `9.3`), absent on rolling releases.
    pub version_id: Option<String>,
    /// `PRETTY_NAME` (`Debian GNU/Linux 12 (bookworm)`).
    pub pretty_name: Option<String>,
    /// `ID_LIKE`, space separated (`rhel centos fedora`).
    pub id_like: Vec<String>,
}

/// The guest's `os-release`, `None` when neither file exists.
pub fn read(r: &Reader<'_>) -> Result<Option<OsRelease>, InspectError> {
    for path in OS_RELEASE_PATHS {
        if let Some(text) = r.text_at(path)? {
            return Ok(Some(parse(&text)));
        }
    }
    Ok(None)
}

/// Parse the text of an `os-release` file; unknown or malformed lines are ignored.
pub fn parse(text: &str) -> OsRelease {
    let mut os = OsRelease {
        id: "linux".to_string(),
        ..OsRelease::default()
    };
    for line in config_lines(text) {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = shell_value(value);
        match key.trim() {
            "ID" if !value.is_empty() => os.id = value,
            "VERSION_ID" => os.version_id = Some(value),
            "PRETTY_NAME" => os.pretty_name = Some(value),
            "ID_LIKE" => os.id_like = value.split_whitespace().map(str::to_string).collect(),
            _ => {}
        }
    }
    os
}

/// A shell-style value: `'…'` literal, `"…"` with backslash escapes, or bare.
pub fn shell_value(raw: &str) -> String {
    let raw = raw.trim();
    if let Some(inner) = raw.strip_prefix('\'') {
        return inner.strip_suffix('\'').unwrap_or(inner).to_string();
    }
    let Some(inner) = raw.strip_prefix('"') else {
        return raw.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some(e @ ('"' | '\\' | '`' | '$')) => out.push(e),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            _ => out.push(c),
        }
    }
    out
}
