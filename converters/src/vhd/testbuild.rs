//! Test-only builder of dynamic and differencing VHDs (qemu-img cannot create
//! differencing disks), with knobs to produce hostile images.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use super::footer::checksum;

pub const SECTOR: usize = 512;

#[derive(Clone)]
pub struct Block {
    /// One flag per sector: true = present in this layer.
    pub present: Vec<bool>,
    pub data: Vec<u8>,
}

#[derive(Clone)]
pub struct VhdBuilder {
    pub size: u64,
    pub block_size: u32,
    pub disk_type: u32,
    pub creator: [u8; 4],
    pub unique_id: [u8; 16],
    pub parent_id: [u8; 16],
    pub parent_name: String,
    /// (platform code, raw locator bytes)
    pub locators: Vec<([u8; 4], Vec<u8>)>,
    pub blocks: BTreeMap<u32, Block>,
    /// Overrides for hostile images.
    pub max_table_entries: Option<u32>,
    pub corrupt_header_checksum: bool,
    pub corrupt_footer_checksum: bool,
}

impl VhdBuilder {
    /// A disk sized by current_size ('win ' creator) with 2 MiB blocks... or `block_size`.
    pub fn new(size: u64, block_size: u32, disk_type: u32) -> Self {
        VhdBuilder {
            size,
            block_size,
            disk_type,
            creator: *b"win ",
            unique_id: [0x11; 16],
            parent_id: [0; 16],
            parent_name: String::new(),
            locators: Vec::new(),
            blocks: BTreeMap::new(),
            max_table_entries: None,
            corrupt_header_checksum: false,
            corrupt_footer_checksum: false,
        }
    }

    /// Sets sectors `[first, first + data.len()/512)` of the disk present with `data`.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        assert_eq!(offset % SECTOR as u64, 0);
        assert_eq!(data.len() % SECTOR, 0);
        let bs = self.block_size as usize;
        for (i, sector) in data.chunks(SECTOR).enumerate() {
            let pos = usize::try_from(offset).unwrap() + i * SECTOR;
            let block = u32::try_from(pos / bs).unwrap();
            let in_block = pos % bs;
            let b = self.blocks.entry(block).or_insert_with(|| Block {
                present: vec![false; bs / SECTOR],
                data: vec![0xEE; bs],
            });
            b.present[in_block / SECTOR] = true;
            b.data[in_block..in_block + SECTOR].copy_from_slice(sector);
        }
    }

    fn entries(&self) -> u32 {
        self.max_table_entries.unwrap_or_else(|| {
            u32::try_from(self.size.div_ceil(u64::from(self.block_size.max(512)))).unwrap()
        })
    }

    pub fn footer(&self) -> [u8; 512] {
        let mut f = [0u8; 512];
        f[..8].copy_from_slice(b"conectix");
        f[8..12].copy_from_slice(&2u32.to_be_bytes());
        f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        f[16..24].copy_from_slice(&512u64.to_be_bytes());
        f[28..32].copy_from_slice(&self.creator);
        f[36..40].copy_from_slice(b"Wi2k");
        f[40..48].copy_from_slice(&self.size.to_be_bytes());
        f[48..56].copy_from_slice(&self.size.to_be_bytes());
        // Geometry that does not match the size: the creator decides.
        f[56..58].copy_from_slice(&100u16.to_be_bytes());
        f[58] = 4;
        f[59] = 17;
        f[60..64].copy_from_slice(&self.disk_type.to_be_bytes());
        f[68..84].copy_from_slice(&self.unique_id);
        let mut sum = checksum(&f, 64);
        if self.corrupt_footer_checksum {
            sum ^= 1;
        }
        f[64..68].copy_from_slice(&sum.to_be_bytes());
        f
    }

    fn header(&self, bat_offset: u64, locs: &[(u64, usize)]) -> [u8; 1024] {
        let mut h = [0u8; 1024];
        h[..8].copy_from_slice(b"cxsparse");
        h[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        h[16..24].copy_from_slice(&bat_offset.to_be_bytes());
        h[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        h[28..32].copy_from_slice(&self.entries().to_be_bytes());
        h[32..36].copy_from_slice(&self.block_size.to_be_bytes());
        h[40..56].copy_from_slice(&self.parent_id);
        for (i, u) in self.parent_name.encode_utf16().take(255).enumerate() {
            h[64 + 2 * i..66 + 2 * i].copy_from_slice(&u.to_be_bytes());
        }
        for (i, ((code, _), (off, len))) in self.locators.iter().zip(locs).enumerate() {
            let e = 576 + 24 * i;
            h[e..e + 4].copy_from_slice(code);
            let space = u32::try_from(len.div_ceil(SECTOR) * SECTOR).unwrap();
            h[e + 4..e + 8].copy_from_slice(&space.to_be_bytes());
            h[e + 8..e + 12].copy_from_slice(&u32::try_from(*len).unwrap().to_be_bytes());
            h[e + 16..e + 24].copy_from_slice(&off.to_be_bytes());
        }
        let mut sum = checksum(&h, 36);
        if self.corrupt_header_checksum {
            sum ^= 1;
        }
        h[36..40].copy_from_slice(&sum.to_be_bytes());
        h
    }

    fn bitmap_size(&self) -> usize {
        (self.block_size as usize / SECTOR)
            .div_ceil(8)
            .div_ceil(SECTOR)
            * SECTOR
    }

    /// The whole image as bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let footer = self.footer();
        let mut out = footer.to_vec();
        out.resize(1536, 0);
        let bat_offset = 1536u64;
        let real_entries = self.size.div_ceil(u64::from(self.block_size.max(512)));
        let bat_len = (usize::try_from(real_entries).unwrap() * 4).div_ceil(SECTOR) * SECTOR;
        let mut bat = vec![0xFFu8; bat_len];
        out.resize(1536 + bat_len, 0);
        let mut locs = Vec::new();
        for (_, raw) in &self.locators {
            locs.push((out.len() as u64, raw.len()));
            out.extend_from_slice(raw);
            out.resize(out.len().div_ceil(SECTOR) * SECTOR, 0);
        }
        let bms = self.bitmap_size();
        for (&index, block) in &self.blocks {
            let sector = u32::try_from(out.len() / SECTOR).unwrap();
            let i = usize::try_from(index).unwrap() * 4;
            bat[i..i + 4].copy_from_slice(&sector.to_be_bytes());
            let mut bitmap = vec![0u8; bms];
            for (s, &p) in block.present.iter().enumerate() {
                if p {
                    bitmap[s / 8] |= 0x80 >> (s % 8);
                }
            }
            out.extend_from_slice(&bitmap);
            out.extend_from_slice(&block.data);
        }
        out[1536..1536 + bat_len].copy_from_slice(&bat);
        out[512..1536].copy_from_slice(&self.header(bat_offset, &locs));
        out.extend_from_slice(&footer);
        out
    }

    pub fn write_to(&self, path: &Path) {
        std::fs::write(path, self.bytes()).unwrap();
    }
}

pub fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}
