//! LVM2 physical volumes: find the logical volumes on a PV and map linear ones (also
//! split into several segments) to byte ranges of the PV, readable and writable.
//!
//! Format: LVM2's on-disk layout (libvslvm's "Logical Volume Manager (LVM) format"): a
//! `LABELONE` label in one of the first four sectors, the PV header after it (PV UUID,
//! data areas, metadata areas), and VG metadata text in a metadata area ring.
//!
//! DESIGN NOTE: the label, metadata-area headers and VG text (with their CRCs) are read
//! by `lamlvm` 0.1, which checks every checksum and falls back to the second metadata
//! copy. Its LV reader is a stateful read-only `Read + Seek`, and fixups must write into
//! a root LV, so the LV → PV mapping is ours: [`LvRange`] is a positional, writable
//! [`BlockDevice`] that splits accesses at segment boundaries. `pe_start` (the first data
//! area, which `lamlvm` keeps private) is read from the PV header here.
//!
//! Not supported (the LV is listed with the reason, never mapped): striped, mirrored,
//! RAID, thin and snapshot LVs, and segments on another PV of the VG (one PV at a time).

mod header;

use std::sync::Arc;

use crate::blockdev::BlockDevice;

pub use header::pe_start;

/// Why a PV could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LvmError {
    #[error("cannot read the LVM2 PV")]
    Io(#[source] std::io::Error),
    #[error("invalid LVM2 PV: {0}")]
    Invalid(String),
}

/// One contiguous run of an LV on the PV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Byte offset inside the LV.
    pub lv_offset: u64,
    /// Byte offset on the PV.
    pub pv_offset: u64,
    pub len: u64,
}

/// A logical volume: mapped to PV segments, or the reason it is not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogicalVolume {
    pub name: String,
    pub id: String,
    pub mapping: Result<Vec<Segment>, String>,
}

/// What a PV holds: its VG and the LVs (of that VG) whose data is on it.
#[derive(Clone, Debug)]
pub struct PhysicalVolume {
    pub vg_name: String,
    pub pv_name: String,
    /// Bytes.
    pub extent_size: u64,
    pub volumes: Vec<LogicalVolume>,
}

/// Whether a `LABELONE` LVM2 label is in one of the first four sectors of `dev`.
pub fn has_label(dev: &dyn BlockDevice) -> std::io::Result<bool> {
    Ok(header::find_label(dev)?.is_some())
}

/// Read the PV on `dev`; `Ok(None)` when it carries no LVM2 label.
pub fn open(dev: &dyn BlockDevice) -> Result<Option<PhysicalVolume>, LvmError> {
    if !has_label(dev).map_err(LvmError::Io)? {
        return Ok(None);
    }
    let lvm = lamlvm::Lvm2::open(header::Cursor::new(dev))
        .map_err(|e| LvmError::Invalid(e.to_string()))?;
    let pe_start = header::pe_start(dev)?;
    let extent_size = lvm.extent_size();
    if extent_size == 0 {
        return Err(LvmError::Invalid("extent size 0".to_string()));
    }
    let volumes = lvm
        .lvs()
        .map(|lv| LogicalVolume {
            name: lv.name().to_string(),
            id: lv.id().to_string(),
            mapping: map_lv(
                lv.raw_metadata(),
                lvm.pv_name(),
                pe_start,
                extent_size,
                dev.size(),
            ),
        })
        .collect();
    Ok(Some(PhysicalVolume {
        vg_name: lvm.vg_name().to_string(),
        pv_name: lvm.pv_name().to_string(),
        extent_size,
        volumes,
    }))
}

/// Byte segments of `lv`, which must be linear, whole on this PV and start at extent 0
/// without gaps.
fn map_lv(
    lv: &lamlvm::metadata::LVDesc,
    pv_name: &str,
    pe_start: u64,
    extent_size: u64,
    pv_size: u64,
) -> Result<Vec<Segment>, String> {
    let mut segs: Vec<_> = lv.segments.0.values().collect();
    segs.sort_by_key(|s| s.start_extent);
    let overflow = || "segment extents overflow".to_string();
    let mut out = Vec::with_capacity(segs.len());
    let mut next_extent = 0u64;
    for seg in segs {
        if seg.r#type != "striped" || seg.stripe_count != Some(1) {
            return Err(format!("segment type {} is not linear", seg.r#type));
        }
        let (pv, pv_extent) = seg.stripes.as_ref().ok_or("segment without stripes")?;
        if pv != pv_name {
            return Err(format!("a segment is on {pv}, another PV of the VG"));
        }
        if seg.start_extent != next_extent {
            return Err("segments leave a gap".to_string());
        }
        let len = seg
            .extent_count
            .checked_mul(extent_size)
            .ok_or_else(overflow)?;
        let pv_offset = pv_extent
            .checked_mul(extent_size)
            .and_then(|b| b.checked_add(pe_start))
            .ok_or_else(overflow)?;
        if pv_offset.checked_add(len).is_none_or(|end| end > pv_size) {
            return Err("a segment runs past the end of the PV".to_string());
        }
        let lv_offset = next_extent.checked_mul(extent_size).ok_or_else(overflow)?;
        out.push(Segment {
            lv_offset,
            pv_offset,
            len,
        });
        next_extent = next_extent
            .checked_add(seg.extent_count)
            .ok_or_else(overflow)?;
    }
    Ok(out)
}

/// A mapped logical volume as a byte range of its PV.
pub struct LvRange {
    pv: Arc<dyn BlockDevice>,
    segments: Vec<Segment>,
    size: u64,
}

impl LvRange {
    /// The LV `lv` on `pv`; fails when the LV is not mapped.
    pub fn new(pv: Arc<dyn BlockDevice>, lv: &LogicalVolume) -> Result<Self, LvmError> {
        let segments = lv
            .mapping
            .clone()
            .map_err(|why| LvmError::Invalid(format!("LV {}: {why}", lv.name)))?;
        let size = segments
            .last()
            .map_or(0, |s| s.lv_offset.saturating_add(s.len));
        Ok(Self { pv, segments, size })
    }

    /// Run `f(pv_offset, start, end)` for each piece of `[off, off+len)` with `start..end`
    /// the matching slice of the caller's buffer.
    fn each_piece(
        &self,
        off: u64,
        len: usize,
        mut f: impl FnMut(u64, usize, usize) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let len64 = u64::try_from(len).map_err(|_| past_end(off))?;
        let end = off.checked_add(len64).ok_or_else(|| past_end(off))?;
        if end > self.size {
            return Err(past_end(off));
        }
        let mut pos = off;
        while pos < end {
            let seg = self
                .segments
                .iter()
                .find(|s| s.lv_offset <= pos && pos - s.lv_offset < s.len)
                .ok_or_else(|| past_end(pos))?;
            let in_seg = pos - seg.lv_offset;
            let take = (seg.len - in_seg).min(end - pos);
            let start = usize::try_from(pos - off).map_err(|_| past_end(pos))?;
            let stop = usize::try_from(pos - off + take).map_err(|_| past_end(pos))?;
            f(seg.pv_offset + in_seg, start, stop)?;
            pos += take;
        }
        Ok(())
    }
}

fn past_end(off: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!("LV access at {off:#x} passes its end"),
    )
}

impl BlockDevice for LvRange {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<()> {
        let len = buf.len();
        self.each_piece(off, len, |at, a, b| self.pv.read_at(&mut buf[a..b], at))
    }

    fn write_at(&self, buf: &[u8], off: u64) -> std::io::Result<()> {
        self.each_piece(off, buf.len(), |at, a, b| self.pv.write_at(&buf[a..b], at))
    }

    fn flush(&self) -> std::io::Result<()> {
        self.pv.flush()
    }

    fn is_writable(&self) -> bool {
        self.pv.is_writable()
    }
}

#[cfg(test)]
mod tests;
