//! `/etc/fstab`, as `fstab(5)` describes it.
//!
//! Fields are separated by blanks; `\040`-style octal escapes (a space in a mount point)
//! are decoded. Blank and `#` lines are skipped. Missing trailing fields take the defaults
//! util-linux uses (`auto`, `defaults`, 0, 0); a line with fewer than two fields, or a
//! non-numeric dump or pass field (read as 0), never fails the parse.

use serde::Serialize;

use super::read::{config_lines, Reader};
use super::InspectError;

/// One line of `/etc/fstab`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FstabEntry {
    /// What is mounted: `/dev/sda1`, `UUID=…`, `LABEL=…`, `tmpfs`.
    pub spec: String,
    pub mountpoint: String,
    pub fstype: String,
    pub options: String,
    pub dump: u32,
    pub pass: u32,
}

/// Entries of the guest's `/etc/fstab`; empty when it does not exist.
pub fn read(r: &Reader<'_>) -> Result<Vec<FstabEntry>, InspectError> {
    Ok(r.text_at("/etc/fstab")?
        .map(|t| parse(&t))
        .unwrap_or_default())
}

/// Parse the text of an fstab.
pub fn parse(text: &str) -> Vec<FstabEntry> {
    config_lines(text).filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<FstabEntry> {
    let mut fields = line.split_whitespace().map(unescape);
    let spec = fields.next()?;
    let mountpoint = fields.next()?;
    let fstype = fields.next().unwrap_or_else(|| "auto".to_string());
    let options = fields.next().unwrap_or_else(|| "defaults".to_string());
    let dump = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
    let pass = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
    Some(FstabEntry {
        spec,
        mountpoint,
        fstype,
        options,
        dump,
        pass,
    })
}

/// Decode `\NNN` octal escapes; anything else is kept as written.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes.get(i + 1..i + 4);
        let octal = digits.filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                let value = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
