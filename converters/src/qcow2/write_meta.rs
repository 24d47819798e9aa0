//! The metadata `finish` writes after the data: where it goes (a fixed point, since the
//! refcount blocks must count themselves), the L2 and L1 tables, the refcounts, the header.

use super::*;

/// Metadata placement, in host clusters.
pub(super) struct Layout {
    pub(super) l2_start: u64,
    pub(super) l1_start: u64,
    pub(super) blocks_start: u64,
    pub(super) blocks: u64,
    pub(super) table_start: u64,
    pub(super) table: u64,
}

impl Qcow2Sink {
    /// Where every piece of metadata goes, in clusters.
    fn layout(&self, tables: u64) -> Layout {
        let cs = self.cluster_size();
        let data = self.next_free().div_ceil(cs);
        let l1 = (self.l1_entries * 8).div_ceil(cs);
        let per_block = cs / 2;
        let (mut blocks, mut table) = (0u64, 0u64);
        loop {
            let total = data + tables + l1 + blocks + table;
            let b = total.div_ceil(per_block);
            let t = (b * 8).div_ceil(cs);
            if (b, t) == (blocks, table) {
                break;
            }
            (blocks, table) = (b, t);
        }
        Layout {
            l2_start: data,
            l1_start: data + tables,
            blocks_start: data + tables + l1,
            blocks,
            table_start: data + tables + l1 + blocks,
            table,
        }
    }

    /// Appends the L2 tables, L1 table, refcount blocks and refcount table.
    pub(super) fn write_metadata(&mut self) -> Result<Layout> {
        let layout = self.write_tables()?;
        self.write_refcounts(&layout)?;
        self.flush_pending()?;
        Ok(layout)
    }

    /// Writes every L2 table (evicted ones in place, the others appended) and the L1
    /// table; returns where all metadata goes.
    fn write_tables(&mut self) -> Result<Layout> {
        let cs = self.cluster_size();
        self.pad_to(cs);
        let mut l1 = vec![0u64; usize::try_from(self.l1_entries).unwrap_or(0)];
        let mut fresh: Vec<(u64, Table)> = Vec::new();
        for (l1_index, table) in std::mem::take(&mut self.l2) {
            match self.placed.get(&l1_index) {
                Some(&host) => self.write_back(&be_bytes64(&table.entries), host)?,
                None if table.entries.iter().any(|e| *e != 0) => fresh.push((l1_index, table)),
                None => {}
            }
        }
        for (&l1_index, &host) in &self.placed {
            if let Some(e) = usize::try_from(l1_index).ok().and_then(|i| l1.get_mut(i)) {
                *e = host | COPIED;
            }
        }
        fresh.sort_unstable_by_key(|(i, _)| *i);
        let layout = self.layout(fresh.len() as u64);
        for (k, (l1_index, table)) in fresh.iter().enumerate() {
            self.append(&be_bytes64(&table.entries))?;
            if let Some(e) = usize::try_from(*l1_index).ok().and_then(|i| l1.get_mut(i)) {
                *e = ((layout.l2_start + k as u64) << self.cluster_bits) | COPIED;
            }
        }
        self.append(&be_bytes64(&l1))?;
        self.pad_to(cs);
        Ok(layout)
    }

    /// Appends the refcount blocks and table; every metadata cluster has refcount 1.
    fn write_refcounts(&mut self, layout: &Layout) -> Result<()> {
        let total = layout.table_start + layout.table;
        let first_meta = usize::try_from(layout.l2_start).unwrap_or(0);
        self.refcounts
            .resize(usize::try_from(total).unwrap_or(0), 0);
        for r in self.refcounts.iter_mut().skip(first_meta) {
            *r = 1;
        }
        let per_block = 1usize << (self.cluster_bits - 1);
        for b in 0..usize::try_from(layout.blocks).unwrap_or(0) {
            let end = ((b + 1) * per_block).min(self.refcounts.len());
            let mut block: Vec<u8> = self
                .refcounts
                .get(b * per_block..end)
                .unwrap_or_default()
                .iter()
                .flat_map(|r| r.to_be_bytes())
                .collect();
            block.resize(1usize << self.cluster_bits, 0);
            self.append(&block)?;
        }
        let table: Vec<u64> = (0..layout.blocks)
            .map(|b| (layout.blocks_start + b) << self.cluster_bits)
            .collect();
        self.append(&be_bytes64(&table))?;
        self.pad_to(self.cluster_size());
        if self.next_free() != total << self.cluster_bits {
            return Err(self.invalid("internal error: metadata layout mismatch".into()));
        }
        Ok(())
    }

    pub(super) fn header(&self, layout: &Layout) -> Header {
        let zstd = self.opts.compression == Some(Compression::Zstd);
        Header {
            version: 3,
            cluster_bits: self.cluster_bits,
            size: self.virtual_size,
            l1_size: u32::try_from(self.l1_entries).unwrap_or(0),
            l1_table_offset: if self.l1_entries > 0 {
                layout.l1_start << self.cluster_bits
            } else {
                0
            },
            refcount_table_offset: layout.table_start << self.cluster_bits,
            refcount_table_clusters: u32::try_from(layout.table).unwrap_or(u32::MAX),
            incompatible_features: if zstd { INCOMPAT_COMPRESSION } else { 0 },
            refcount_order: 4,
            header_length: V3_HEADER_LEN,
            compression_type: if zstd {
                COMPRESSION_ZSTD
            } else {
                COMPRESSION_ZLIB
            },
            ..Header::default()
        }
    }
}
