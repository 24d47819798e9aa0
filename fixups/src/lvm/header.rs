//! The LVM2 PV label and header, as far as `lamlvm` does not expose them: where the label
//! is, and where the first data area (`pe_start`) begins.
//!
//! ```text
//! sector 0..3   label:  "LABELONE" | sector u64 | crc u32 | header offset u32 | "LVM2 001"
//! label+offset  header: PV UUID [32] | device size u64 |
//!                       data areas (offset u64, size u64)* (0,0) | metadata areas ... (0,0)
//! ```
//! `lamlvm` checks the label's CRC when it opens the PV, before this is used.

use embedded_io::{ErrorKind, ErrorType, Read, Seek, SeekFrom};

use super::LvmError;
use crate::blockdev::BlockDevice;

const SECTOR: usize = 512;
const LABEL_SECTORS: u64 = 4;
/// Offset of the data-area list inside the PV header (after UUID and device size).
const DATA_AREAS_AT: usize = 40;

/// The first of the first four sectors holding an LVM2 label, with its bytes.
pub(super) fn find_label(dev: &dyn BlockDevice) -> std::io::Result<Option<(u64, [u8; SECTOR])>> {
    for sector in 0..LABEL_SECTORS {
        let mut buf = [0u8; SECTOR];
        let at = sector * 512;
        if at.saturating_add(512) > dev.size() {
            break;
        }
        dev.read_at(&mut buf, at)?;
        let sector_field = buf.get(8..16).and_then(|b| <[u8; 8]>::try_from(b).ok());
        let is_label = buf.starts_with(b"LABELONE")
            && buf.get(24..32) == Some(&b"LVM2 001"[..])
            && sector_field.map(u64::from_le_bytes) == Some(sector);
        if is_label {
            return Ok(Some((sector, buf)));
        }
    }
    Ok(None)
}

/// Byte offset on the PV of the first physical extent (the first data area).
pub fn pe_start(dev: &dyn BlockDevice) -> Result<u64, LvmError> {
    let invalid = |why: &str| LvmError::Invalid(why.to_string());
    let (_, label) = find_label(dev)
        .map_err(LvmError::Io)?
        .ok_or_else(|| invalid("no LVM2 label"))?;
    let offset = label
        .get(20..24)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| invalid("short label"))?;
    let at = usize::try_from(offset)
        .ok()
        .and_then(|o| o.checked_add(DATA_AREAS_AT))
        .ok_or_else(|| invalid("PV header offset overflows"))?;
    let first = label
        .get(at..at.saturating_add(8))
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| invalid("PV header lies outside the label sector"))?;
    if first == 0 || first >= dev.size() {
        return Err(invalid("PV has no data area inside the device"));
    }
    Ok(first)
}

/// A `Read + Seek` cursor over a [`BlockDevice`], for `lamlvm`.
pub(super) struct Cursor<'a> {
    dev: &'a dyn BlockDevice,
    pos: u64,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(dev: &'a dyn BlockDevice) -> Self {
        Self { dev, pos: 0 }
    }
}

impl ErrorType for Cursor<'_> {
    type Error = ErrorKind;
}

impl Read for Cursor<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let left = self.dev.size().saturating_sub(self.pos);
        let n = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
        self.dev
            .read_at(&mut buf[..n], self.pos)
            .map_err(|_| ErrorKind::Other)?;
        self.pos = self.pos.saturating_add(u64::try_from(n).unwrap_or(0));
        Ok(n)
    }
}

impl Seek for Cursor<'_> {
    fn seek(&mut self, to: SeekFrom) -> Result<u64, ErrorKind> {
        let base = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.dev.size().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = base.ok_or(ErrorKind::InvalidInput)?;
        Ok(self.pos)
    }
}
