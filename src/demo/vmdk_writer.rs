//! A minimal VMDK writer (hosted monolithicSparse, version 1, embedded descriptor), used to
//! make the demo's sample VMware disk without needing qemu-img. Follows VMware's "Virtual
//! Disk Format 1.1"; writes only grains that hold non-zero bytes.
//!
//! ```text
//!  sector 0      SparseExtentHeader ("KDMV")
//!  sector 1..21  text descriptor
//!  sector 21..   grain directory, then every grain table (512 entries each)
//!  overhead..    64 KiB grains, in guest order, only the non-zero ones
//! ```

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

const SECTOR: u64 = 512;
const GRAIN_SECTORS: u64 = 128;
const GTES_PER_GT: u64 = 512;
const DESCRIPTOR_OFFSET: u64 = 1;
const DESCRIPTOR_SECTORS: u64 = 20;

/// Writes `raw` (a raw disk image) as a monolithicSparse VMDK at `out`.
pub fn write_monolithic_sparse(raw: &Path, out: &Path) -> io::Result<()> {
    let mut input = File::open(raw)?;
    let size = input.metadata()?.len();
    let capacity = size.div_ceil(SECTOR);
    let grains = capacity.div_ceil(GRAIN_SECTORS);
    let gts = grains.div_ceil(GTES_PER_GT);
    let gd_offset = DESCRIPTOR_OFFSET + DESCRIPTOR_SECTORS;
    let gd_sectors = (gts * 4).div_ceil(SECTOR);
    let gt_sectors = GTES_PER_GT * 4 / SECTOR;
    let first_gt = gd_offset + gd_sectors;
    let overhead = (first_gt + gts * gt_sectors).next_multiple_of(GRAIN_SECTORS);

    let mut grain_tables =
        vec![0u32; usize::try_from(gts * GTES_PER_GT).map_err(io::Error::other)?];
    let mut grains_data = Vec::new();
    let mut next_sector = overhead;
    let mut buf = vec![0u8; usize::try_from(GRAIN_SECTORS * SECTOR).map_err(io::Error::other)?];
    for (index, entry) in grain_tables
        .iter_mut()
        .enumerate()
        .take(usize::try_from(grains).map_err(io::Error::other)?)
    {
        buf.fill(0);
        read_full(&mut input, &mut buf)?;
        if buf.iter().all(|&b| b == 0) {
            continue;
        }
        *entry = u32::try_from(next_sector).map_err(io::Error::other)?;
        grains_data.push((index, buf.clone()));
        next_sector += GRAIN_SECTORS;
    }

    let mut f = File::create(out)?;
    f.write_all(&header(capacity, gd_offset, overhead))?;
    let mut descriptor = descriptor_text(capacity, out).into_bytes();
    descriptor.resize(
        usize::try_from(DESCRIPTOR_SECTORS * SECTOR).map_err(io::Error::other)?,
        0,
    );
    f.write_all(&descriptor)?;
    let mut gd = Vec::new();
    for i in 0..gts {
        let gt_sector = u32::try_from(first_gt + i * gt_sectors).map_err(io::Error::other)?;
        gd.extend_from_slice(&gt_sector.to_le_bytes());
    }
    gd.resize(
        usize::try_from(gd_sectors * SECTOR).map_err(io::Error::other)?,
        0,
    );
    f.write_all(&gd)?;
    let gt_bytes: Vec<u8> = grain_tables.iter().flat_map(|e| e.to_le_bytes()).collect();
    f.write_all(&gt_bytes)?;
    let written = (first_gt + gts * gt_sectors) * SECTOR;
    f.write_all(&vec![
        0u8;
        usize::try_from(overhead * SECTOR - written)
            .map_err(io::Error::other)?
    ])?;
    for (_, grain) in grains_data {
        f.write_all(&grain)?;
    }
    f.sync_all()
}

fn read_full(input: &mut File, buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = input.read(&mut buf[done..])?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(())
}

fn header(capacity: u64, gd_offset: u64, overhead: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[0..4].copy_from_slice(b"KDMV");
    h[4..8].copy_from_slice(&1u32.to_le_bytes());
    // Bit 0: the newline-detection characters below are valid.
    h[8..12].copy_from_slice(&1u32.to_le_bytes());
    h[12..20].copy_from_slice(&capacity.to_le_bytes());
    h[20..28].copy_from_slice(&GRAIN_SECTORS.to_le_bytes());
    h[28..36].copy_from_slice(&DESCRIPTOR_OFFSET.to_le_bytes());
    h[36..44].copy_from_slice(&DESCRIPTOR_SECTORS.to_le_bytes());
    h[44..48].copy_from_slice(&u32::try_from(GTES_PER_GT).unwrap_or(512).to_le_bytes());
    h[56..64].copy_from_slice(&gd_offset.to_le_bytes());
    h[64..72].copy_from_slice(&overhead.to_le_bytes());
    h[73..77].copy_from_slice(b"\n \r\n");
    h
}

fn descriptor_text(capacity: u64, out: &Path) -> String {
    let name = out
        .file_name()
        .map_or_else(|| "disk.vmdk".into(), |n| n.to_string_lossy().into_owned());
    let cylinders = (capacity / (16 * 63)).clamp(1, 16383);
    format!(
        "# Disk DescriptorFile\nversion=1\nCID=5eed0001\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\n\n\
         # Extent description\nRW {capacity} SPARSE \"{name}\"\n\n\
         # The Disk Data Base\n#DDB\n\n\
         ddb.virtualHWVersion = \"4\"\nddb.geometry.cylinders = \"{cylinders}\"\n\
         ddb.geometry.heads = \"16\"\nddb.geometry.sectors = \"63\"\nddb.adapterType = \"lsilogic\"\n"
    )
}
