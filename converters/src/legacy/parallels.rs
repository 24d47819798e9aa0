//! Parallels images (`WithoutFreeSpace` v1, `WithouFreSpacExt` v2), as qemu's
//! `block/parallels.c` reads them (docs/interop/parallels.txt describes the layout).
//!
//! ```text
//!   0 magic[16]  16 version u32 = 2  20 heads  24 cylinders  28 tracks (sectors per cluster)
//!   32 bat_entries u32  36 nb_sectors u64  44 inuse  48 data_off  52 flags  56 ext_off u64
//!   64 BAT[u32; bat_entries]: 0 = hole; v1: host sector; v2: host sector / tracks
//! ```
//!
//! The virtual size is `nb_sectors` (low 32 bits only for v1) sectors; clusters past the
//! BAT read as zero. A cluster that starts past the end of the file is refused; one cut
//! short by the end of the file reads as zeros past it (as qemu does). The format extension
//! is walked only to refuse feature flags and unknown features (dirty bitmaps are skipped);
//! its MD5 checksum is not verified. The header `flags` and `inuse` fields are ignored, as
//! qemu ignores them when reading.

use super::{
    check_range, extent_len, layer, read_table, to_usize, u32_le, u64_le, MAX_VIRTUAL_SIZE, SECTOR,
};
use crate::error::{Error, Result};
use crate::image_file::ImageFile;
use crate::source::{DiskSource, Extent, ExtentKind, LayerInfo};

const HEADER_SIZE: usize = 64;
const MAGIC_V1: &[u8; 16] = b"WithoutFreeSpace";
const MAGIC_V2: &[u8; 16] = b"WithouFreSpacExt";
const EXT_MAGIC: u64 = 0xAB23_4CEF_23DC_EA87;
const DIRTY_BITMAP_FEATURE: u64 = 0x2038_5FAE_252C_B34A;
/// Bytes of the format extension cluster walked at most.
const EXT_WINDOW: u64 = 1 << 20;

pub struct ParallelsSource {
    file: ImageFile,
    size: u64,
    cluster: u64,
    /// Host byte offset of each cluster, 0 for a hole.
    bat: Vec<u64>,
    v2: bool,
}

impl ParallelsSource {
    pub fn open(file: ImageFile) -> Result<Self> {
        let mut h = [0u8; HEADER_SIZE];
        file.read_exact_at(&mut h, 0, "parallels header")?;
        let bad = |why: String| Error::malformed(file.path(), why);
        let v2 = match h.get(..16) {
            Some(m) if m == MAGIC_V2 => true,
            Some(m) if m == MAGIC_V1 => false,
            _ => return Err(bad("not a parallels image (bad magic)".into())),
        };
        let version = u32_le(&h, 16);
        if version != 2 {
            return Err(Error::unsupported(
                file.path(),
                format!("parallels header version {version}"),
            ));
        }
        let tracks = u32_le(&h, 28);
        if tracks == 0 || tracks > i32::MAX as u32 / 513 {
            return Err(bad(format!(
                "sectors per cluster {tracks} is zero or too large"
            )));
        }
        let sectors = if v2 {
            u64_le(&h, 36)
        } else {
            u64_le(&h, 36) & 0xFFFF_FFFF
        };
        let size = sectors
            .checked_mul(SECTOR)
            .filter(|&s| s <= MAX_VIRTUAL_SIZE)
            .ok_or_else(|| bad(format!("virtual size of {sectors:#x} sectors is too large")))?;
        let cluster = u64::from(tracks) * SECTOR;
        let multiplier = if v2 { cluster } else { SECTOR };
        let entries = u64::from(u32_le(&h, 32));
        let bat = load_bat(&file, entries, multiplier)?;
        let ext_off = u64_le(&h, 56);
        if ext_off != 0 {
            check_extension(&file, ext_off, cluster)?;
        }
        Ok(ParallelsSource {
            file,
            size,
            cluster,
            bat,
            v2,
        })
    }

    /// Host offset of cluster `index`, `None` for a hole or past the BAT.
    fn host(&self, index: u64) -> Option<u64> {
        let e = *self.bat.get(to_usize(index))?;
        (e != 0).then_some(e)
    }

    /// Reads `buf.len()` bytes at host offset `at`, zeros past the end of the file.
    fn read_host(&self, buf: &mut [u8], at: u64) -> Result<()> {
        let n = self.file.read_at_most(buf, at, "parallels cluster")?;
        if let Some(rest) = buf.get_mut(n..) {
            rest.fill(0);
        }
        Ok(())
    }
}

/// Loads the BAT as host byte offsets; an entry at or past the end of the file is an error.
fn load_bat(file: &ImageFile, entries: u64, multiplier: u64) -> Result<Vec<u64>> {
    let mut bat = read_table(file, HEADER_SIZE as u64, entries, 4, false, "parallels bat")?;
    for (i, e) in bat.iter_mut().enumerate() {
        *e *= multiplier;
        if *e != 0 && *e >= file.len() {
            return Err(Error::malformed(
                file.path(),
                format!(
                    "bat entry {i} points to {e:#x}, past the end of the file at {:#x}",
                    file.len()
                ),
            ));
        }
    }
    Ok(bat)
}

/// Walks the format extension at sector `ext_off`: refuses feature flags, unknown features
/// and a bad magic, skips dirty bitmaps.
fn check_extension(file: &ImageFile, ext_off: u64, cluster: u64) -> Result<()> {
    let bad = |why: String| Error::malformed(file.path(), why);
    let start = ext_off
        .checked_mul(SECTOR)
        .filter(|&s| s < file.len())
        .ok_or_else(|| {
            bad(format!(
                "format extension at sector {ext_off:#x} is past the end of the file"
            ))
        })?;
    let mut ext = vec![0u8; to_usize(cluster.min(EXT_WINDOW))];
    let n = file.read_at_most(&mut ext, start, "parallels format extension")?;
    ext.truncate(n);
    ext.resize(to_usize(cluster.min(EXT_WINDOW)), 0);
    if u64_le(&ext, 0) != EXT_MAGIC {
        return Err(bad(format!(
            "bad parallels format extension magic at {start:#x}"
        )));
    }
    let mut pos = 24usize;
    loop {
        let Some(fh) = ext.get(pos..pos + 24) else {
            return Err(Error::unsupported(
                file.path(),
                format!("parallels format extension feature list past {pos:#x} bytes"),
            ));
        };
        let (magic, flags, data_size) = (u64_le(fh, 0), u64_le(fh, 8), u64::from(u32_le(fh, 16)));
        if flags != 0 {
            return Err(Error::unsupported(
                file.path(),
                format!("parallels format extension feature flags {flags:#x}"),
            ));
        }
        match magic {
            0 => return Ok(()),
            DIRTY_BITMAP_FEATURE => {}
            m => {
                return Err(Error::unsupported(
                    file.path(),
                    format!("parallels format extension feature {m:#x}"),
                ))
            }
        }
        let next = (pos as u64 + 24 + data_size).next_multiple_of(8);
        if next > cluster {
            return Err(bad(format!(
                "parallels format extension feature at {pos:#x} overruns its cluster"
            )));
        }
        pos = to_usize(next);
    }
}

impl DiskSource for ParallelsSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(&self.file, offset, buf.len(), self.size)?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let (index, in_cl) = (pos / self.cluster, pos % self.cluster);
            let Some(host) = self.host(index) else {
                let n = to_usize(self.cluster - in_cl).min(buf.len() - done);
                buf[done..done + n].fill(0);
                done += n;
                continue;
            };
            // Extend over following clusters that are contiguous in the file.
            let mut run = self.cluster - in_cl;
            let mut next = index + 1;
            while done as u64 + run < buf.len() as u64
                && self.host(next) == Some(host + (next - index) * self.cluster)
            {
                run += self.cluster;
                next += 1;
            }
            let n = to_usize(run).min(buf.len() - done);
            self.read_host(&mut buf[done..done + n], host + in_cl)?;
            done += n;
        }
        Ok(())
    }

    fn extent_at(&self, offset: u64, max_len: u64) -> Result<Extent> {
        let end = offset + extent_len(&self.file, offset, max_len, self.size)?;
        let index = offset / self.cluster;
        let allocated = self.host(index).is_some();
        let mut next = index + 1;
        while next * self.cluster < end && self.host(next).is_some() == allocated {
            if !allocated && next >= self.bat.len() as u64 {
                next = end.div_ceil(self.cluster);
                break;
            }
            next += 1;
        }
        let kind = if allocated {
            ExtentKind::Data
        } else {
            ExtentKind::Unallocated
        };
        Ok(Extent {
            offset,
            len: (next * self.cluster).min(end) - offset,
            kind,
        })
    }

    fn layers(&self) -> Vec<LayerInfo> {
        layer(
            &self.file,
            "parallels",
            if self.v2 { "v2" } else { "v1" },
            self.size,
        )
    }
}
