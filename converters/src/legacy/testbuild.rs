//! Test-time builders for Bochs growing redologs and cloop v2.0 images (qemu cannot create
//! either), plus a Parallels v2 → v1 rewrite of qemu-created images.
#![allow(clippy::unwrap_used)]

use std::io::Write;

/// A Bochs growing image held in memory: sector-granular writes, extents laid out in
/// reverse order of first write so that catalog entries differ from extent indices.
pub struct BochsBuilder {
    pub size: u64,
    pub extent: u32,
    pub bitmap: u32,
    pub v1: bool,
    pub data: Vec<u8>,
    written: Vec<bool>,
}

impl BochsBuilder {
    pub fn new(size: u64, extent: u32, bitmap: u32) -> Self {
        BochsBuilder {
            size,
            extent,
            bitmap,
            v1: false,
            data: vec![0; size as usize],
            written: vec![false; size.div_ceil(512) as usize],
        }
    }

    /// Writes whole sectors (offset and length multiples of 512).
    pub fn write(&mut self, offset: u64, bytes: &[u8]) {
        let o = offset as usize;
        self.data[o..o + bytes.len()].copy_from_slice(bytes);
        for s in o / 512..(o + bytes.len()).div_ceil(512) {
            self.written[s] = true;
        }
    }

    pub fn catalog_len(&self) -> u32 {
        self.size.div_ceil(u64::from(self.extent)) as u32
    }

    pub fn header(&self) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..22].copy_from_slice(b"Bochs Virtual HD Image");
        h[32..39].copy_from_slice(b"Redolog");
        h[48..55].copy_from_slice(b"Growing");
        let version: u32 = if self.v1 { 0x0001_0000 } else { 0x0002_0000 };
        h[64..68].copy_from_slice(&version.to_le_bytes());
        h[68..72].copy_from_slice(&512u32.to_le_bytes());
        h[72..76].copy_from_slice(&self.catalog_len().to_le_bytes());
        h[76..80].copy_from_slice(&self.bitmap.to_le_bytes());
        h[80..84].copy_from_slice(&self.extent.to_le_bytes());
        let at = if self.v1 { 84 } else { 88 };
        h[at..at + 8].copy_from_slice(&self.size.to_le_bytes());
        h
    }

    pub fn bytes(&self) -> Vec<u8> {
        let spe = self.extent as usize / 512;
        let bitmap_span = (self.bitmap as usize).div_ceil(512).max(1) * 512;
        let n = self.catalog_len() as usize;
        let used: Vec<usize> = (0..n)
            .filter(|&e| {
                self.written[e * spe..((e + 1) * spe).min(self.written.len())].contains(&true)
            })
            .collect();
        let mut catalog = vec![0xFFFF_FFFFu32; n];
        let mut out = self.header();
        let mut body = Vec::new();
        for (slot, &e) in used.iter().rev().enumerate() {
            catalog[e] = slot as u32;
            let mut bitmap = vec![0u8; bitmap_span];
            let mut data = vec![0u8; self.extent as usize];
            for s in 0..spe {
                let sector = e * spe + s;
                if sector < self.written.len() && self.written[sector] {
                    bitmap[s / 8] |= 1 << (s % 8);
                    data[s * 512..(s + 1) * 512]
                        .copy_from_slice(&self.data[sector * 512..(sector + 1) * 512]);
                }
            }
            body.extend_from_slice(&bitmap);
            body.extend_from_slice(&data);
        }
        for c in catalog {
            out.extend_from_slice(&c.to_le_bytes());
        }
        out.extend_from_slice(&body);
        out
    }
}

/// A cloop v2.0 image of `data` (zero-padded to whole blocks).
pub fn cloop_image(data: &[u8], block_size: u32) -> Vec<u8> {
    let bs = block_size as usize;
    let n = data.len().div_ceil(bs);
    let mut out = b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\nexit $?\n".to_vec();
    out.resize(128, 0);
    out.extend_from_slice(&block_size.to_be_bytes());
    out.extend_from_slice(&(n as u32).to_be_bytes());
    let mut blocks = Vec::new();
    let mut offsets = vec![(136 + (n + 1) * 8) as u64];
    for i in 0..n {
        let mut block = data[i * bs..((i + 1) * bs).min(data.len())].to_vec();
        block.resize(bs, 0);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&block).unwrap();
        blocks.extend_from_slice(&z.finish().unwrap());
        offsets.push(offsets[0] + blocks.len() as u64);
    }
    for o in offsets {
        out.extend_from_slice(&o.to_be_bytes());
    }
    out.extend_from_slice(&blocks);
    out
}

/// Rewrites a qemu-created Parallels v2 image as v1 (magic and BAT units).
pub fn parallels_v2_to_v1(image: &mut [u8]) {
    image[..16].copy_from_slice(b"WithoutFreeSpace");
    let tracks = u32::from_le_bytes(image[28..32].try_into().unwrap());
    let entries = u32::from_le_bytes(image[32..36].try_into().unwrap()) as usize;
    for i in 0..entries {
        let at = 64 + 4 * i;
        let e = u32::from_le_bytes(image[at..at + 4].try_into().unwrap());
        image[at..at + 4].copy_from_slice(&(e * tracks).to_le_bytes());
    }
}
