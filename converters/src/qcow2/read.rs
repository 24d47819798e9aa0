//! The qcow2 reader: header validation, the L1 table, and L2 lookups by positional reads.
//!
//! Only the L1 table is held in memory (it is capped at 32 MiB like qemu's). L2 tables are
//! not cached: each `extent_at`/`read_exact_at` preads just the slice of entries it needs,
//! which the page cache makes cheap and which keeps the source lock-free for the many
//! workers that share it. Refcounts and snapshots are never read: they do not change what
//! the active image contains.

use std::path::Path;

use super::entry::{CompressedDescriptor, COMPRESSED, OFFSET_MASK, ZERO};
use super::header::{Extensions, Header, COMPRESSION_ZSTD, INCOMPAT_DATA_FILE, MAX_BACKING_NAME};
use crate::compress::Compression;
use crate::error::{Error, Result};
use crate::image_file::ImageFile;
use crate::source::{DiskSource, Extent, ExtentKind, LayerInfo};

/// At most this many L2 tables' worth of guest space is described by one `extent_at`.
const MAX_TABLES_PER_EXTENT: u64 = 32;

/// A backing file reference as the image records it (untrusted data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackingRef {
    pub name: Vec<u8>,
    pub format: Option<String>,
}

/// One qcow2 file, without its backing file.
pub struct Qcow2Source {
    file: ImageFile,
    version: u32,
    size: u64,
    cluster_bits: u32,
    l2_bits: u32,
    extended_l2: bool,
    compression: Compression,
    /// The active L1 table, only the entries that map the virtual size.
    l1: Vec<u64>,
}

/// What one piece of the guest disk maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    Unallocated,
    Zero,
    /// Host offset of the piece's first byte.
    Data(u64),
    /// The whole cluster starting at guest offset `cluster` is compressed.
    Compressed {
        desc: CompressedDescriptor,
        cluster: u64,
    },
}

impl Piece {
    fn kind(self) -> ExtentKind {
        match self {
            Piece::Unallocated => ExtentKind::Unallocated,
            Piece::Zero => ExtentKind::Zero,
            Piece::Data(_) | Piece::Compressed { .. } => ExtentKind::Data,
        }
    }
}

/// Receives `(guest offset, length, piece)`; returns false to stop the walk.
type Visit<'a> = dyn FnMut(u64, u64, Piece) -> Result<bool> + 'a;

impl Qcow2Source {
    /// Opens and validates `path`; returns the source and its backing reference, if any.
    pub fn open(path: &Path) -> Result<(Qcow2Source, Option<BackingRef>)> {
        Self::open_file(ImageFile::open(path)?)
    }

    /// Opens a qcow2 held in an already open window (an OVA member).
    pub fn open_file(file: ImageFile) -> Result<(Qcow2Source, Option<BackingRef>)> {
        let path = file.path().to_path_buf();
        let path = path.as_path();
        let mut head = [0u8; 112];
        let n = file.read_at_most(&mut head, 0, "qcow2 header")?;
        let header = Header::parse(path, &head[..n])?;
        header.validate(path)?;
        let cluster_size = header.cluster_size();
        let cluster0_len = usize::try_from(cluster_size.min(file.len())).unwrap_or(0);
        let cluster0 = file.read_vec(0, cluster0_len, "header cluster")?;
        let ext_end = match header.backing_file_offset {
            0 => cluster_size,
            off => off.min(cluster_size),
        };
        let ext = Extensions::parse(
            path,
            &cluster0,
            header.header_length as usize,
            usize::try_from(ext_end).unwrap_or(usize::MAX),
        )?;
        check_features(path, &header, &ext)?;
        let backing = backing_ref(path, &header, &cluster0, ext.backing_format)?;
        let l1 = read_l1(&file, &header)?;
        let source = Qcow2Source {
            file,
            version: header.version,
            // qemu sees whole sectors only.
            size: header.size & !511,
            cluster_bits: header.cluster_bits,
            l2_bits: header.l2_bits(),
            extended_l2: header.extended_l2(),
            compression: if header.compression_type == COMPRESSION_ZSTD {
                Compression::Zstd
            } else {
                Compression::Zlib
            },
            l1,
        };
        Ok((source, backing))
    }

    fn cluster_size(&self) -> u64 {
        1u64 << self.cluster_bits
    }

    fn malformed(&self, msg: String) -> Error {
        Error::malformed(self.file.path(), msg)
    }

    /// Visits the pieces of `[offset, offset + len)` in order, one L2 table at a time.
    fn walk(&self, offset: u64, len: u64, visit: &mut Visit<'_>) -> Result<()> {
        let end = offset + len;
        let table_shift = self.cluster_bits + self.l2_bits;
        let mut pos = offset;
        while pos < end {
            let l1_index = pos >> table_shift;
            let table_end = ((l1_index + 1) << table_shift).min(end);
            let l1_entry = usize::try_from(l1_index)
                .ok()
                .and_then(|i| self.l1.get(i).copied())
                .ok_or_else(|| self.malformed(format!("no l1 entry for offset {pos:#x}")))?;
            let l2_offset = l1_entry & OFFSET_MASK;
            let go_on = if l2_offset == 0 {
                visit(pos, table_end - pos, Piece::Unallocated)?
            } else if l2_offset & (self.cluster_size() - 1) != 0 {
                return Err(self.malformed(format!(
                    "l2 table offset {l2_offset:#x} is not cluster aligned (l1 index {l1_index:#x})"
                )));
            } else {
                self.walk_table(l2_offset, pos, table_end, visit)?
            };
            if !go_on {
                return Ok(());
            }
            pos = table_end;
        }
        Ok(())
    }

    /// Visits `[pos, end)` (inside one L2 table) from the slice of the table it needs.
    fn walk_table(
        &self,
        l2_offset: u64,
        pos: u64,
        end: u64,
        visit: &mut Visit<'_>,
    ) -> Result<bool> {
        let cb = self.cluster_bits;
        let mask = (1u64 << self.l2_bits) - 1;
        let entry_len: usize = if self.extended_l2 { 16 } else { 8 };
        let first = (pos >> cb) & mask;
        let count = ((end - 1) >> cb) - (pos >> cb) + 1;
        let bytes = usize::try_from(count).unwrap_or(usize::MAX) * entry_len;
        let table = self
            .file
            .read_vec(l2_offset + first * entry_len as u64, bytes, "l2 table")?;
        for (k, raw) in table.chunks_exact(entry_len).enumerate() {
            let cluster = ((pos >> cb) + k as u64) << cb;
            let lo = cluster.max(pos);
            let hi = (cluster + self.cluster_size()).min(end);
            let word = be64(raw, 0);
            let bitmap = if self.extended_l2 { be64(raw, 8) } else { 0 };
            if !self.visit_cluster(cluster, lo, hi, word, bitmap, visit)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Classifies `[lo, hi)` of the guest cluster at `cluster` from its L2 entry.
    fn visit_cluster(
        &self,
        cluster: u64,
        lo: u64,
        hi: u64,
        word: u64,
        bitmap: u64,
        visit: &mut Visit<'_>,
    ) -> Result<bool> {
        if word & COMPRESSED != 0 {
            let desc = CompressedDescriptor::decode(word, self.cluster_bits);
            return visit(lo, hi - lo, Piece::Compressed { desc, cluster });
        }
        let host = word & OFFSET_MASK;
        if host & (self.cluster_size() - 1) != 0 {
            return Err(self.malformed(format!(
                "cluster offset {host:#x} for guest offset {cluster:#x} is not cluster aligned"
            )));
        }
        if self.extended_l2 {
            return self.visit_subclusters(cluster, lo, hi, host, bitmap, visit);
        }
        let piece = if word & ZERO != 0 {
            Piece::Zero
        } else if host == 0 {
            Piece::Unallocated
        } else {
            Piece::Data(host + (lo - cluster))
        };
        visit(lo, hi - lo, piece)
    }

    /// Extended L2 entries: 32 subclusters, each allocated, zero or unallocated.
    fn visit_subclusters(
        &self,
        cluster: u64,
        lo: u64,
        hi: u64,
        host: u64,
        bitmap: u64,
        visit: &mut Visit<'_>,
    ) -> Result<bool> {
        let alloc = bitmap & 0xffff_ffff;
        let zero = bitmap >> 32;
        if alloc & zero != 0 || (host == 0 && alloc != 0) {
            return Err(self.malformed(format!(
                "invalid subcluster bitmap {bitmap:#x} for guest offset {cluster:#x}"
            )));
        }
        let sc_bits = self.cluster_bits - 5;
        let status = |j: u64| match (zero >> j & 1, alloc >> j & 1) {
            (1, _) => ExtentKind::Zero,
            (_, 1) => ExtentKind::Data,
            _ => ExtentKind::Unallocated,
        };
        let mut start = lo;
        while start < hi {
            let j = (start - cluster) >> sc_bits;
            let kind = status(j);
            let mut stop = (cluster + ((j + 1) << sc_bits)).min(hi);
            while stop < hi && status((stop - cluster) >> sc_bits) == kind {
                stop = (stop + (1u64 << sc_bits)).min(hi);
            }
            let piece = match kind {
                ExtentKind::Zero => Piece::Zero,
                ExtentKind::Data => Piece::Data(host + (start - cluster)),
                ExtentKind::Unallocated => Piece::Unallocated,
            };
            if !visit(start, stop - start, piece)? {
                return Ok(false);
            }
            start = stop;
        }
        Ok(true)
    }

    /// Reads one physically contiguous run. A last cluster cut short by the end of the
    /// file reads as zeros past it (qemu does the same); a cluster wholly past it is an error.
    fn read_run(&self, buf: &mut [u8], host: u64) -> Result<()> {
        let n = self.file.read_at_most(buf, host, "data cluster")?;
        if n == buf.len() {
            return Ok(());
        }
        let last_cluster = (host + buf.len() as u64 - 1) & !(self.cluster_size() - 1);
        if last_cluster >= self.file.len() {
            return Err(self.malformed(format!(
                "truncated: data cluster at {last_cluster:#x} lies past the end of the file ({:#x})",
                self.file.len()
            )));
        }
        buf[n..].fill(0);
        Ok(())
    }

    /// Decompresses the cluster at guest `cluster` and copies out the part at `guest`.
    fn read_compressed(
        &self,
        out: &mut [u8],
        guest: u64,
        desc: CompressedDescriptor,
        cluster: u64,
    ) -> Result<()> {
        if desc.offset >= self.file.len() {
            return Err(self.malformed(format!(
                "truncated: compressed cluster at {:#x} lies past the end of the file",
                desc.offset
            )));
        }
        let mut packed = vec![0u8; usize::try_from(desc.len()).unwrap_or(0)];
        let n = self
            .file
            .read_at_most(&mut packed, desc.offset, "compressed cluster")?;
        let mut plain = vec![0u8; usize::try_from(self.cluster_size()).unwrap_or(0)];
        self.compression
            .decompress_cluster(&packed[..n], &mut plain)
            .map_err(|e| {
                self.malformed(format!(
                    "compressed cluster at {:#x} (guest offset {cluster:#x}): {e}",
                    desc.offset
                ))
            })?;
        let at = usize::try_from(guest - cluster).unwrap_or(0);
        let src = plain
            .get(at..at + out.len())
            .ok_or_else(|| self.malformed(format!("bad compressed read at {guest:#x}")))?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn check_request(&self, offset: u64, len: u64) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(Error::invalid_request(
                self.file.path(),
                format!("read of {len:#x} bytes at {offset:#x} is past the end of the disk"),
            )),
        }
    }
}

/// A pending run of physically contiguous data: (position in the buffer, host offset, len).
type Run = Option<(usize, u64, usize)>;

impl DiskSource for Qcow2Source {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.check_request(offset, buf.len() as u64)?;
        let mut run: Run = None;
        let flush = |buf: &mut [u8], run: &mut Run| -> Result<()> {
            if let Some((at, host, len)) = run.take() {
                self.read_run(&mut buf[at..at + len], host)?;
            }
            Ok(())
        };
        self.walk(offset, buf.len() as u64, &mut |guest, len, piece| {
            let at = usize::try_from(guest - offset).unwrap_or(0);
            let n = usize::try_from(len).unwrap_or(0);
            if let Piece::Data(host) = piece {
                match run {
                    Some((r_at, r_host, ref mut r_len))
                        if r_at + *r_len == at && r_host + *r_len as u64 == host =>
                    {
                        *r_len += n;
                    }
                    _ => {
                        flush(buf, &mut run)?;
                        run = Some((at, host, n));
                    }
                }
                return Ok(true);
            }
            flush(buf, &mut run)?;
            let out = &mut buf[at..at + n];
            match piece {
                Piece::Compressed { desc, cluster } => {
                    self.read_compressed(out, guest, desc, cluster)?
                }
                _ => out.fill(0),
            }
            Ok(true)
        })?;
        flush(buf, &mut run)
    }

    fn extent_at(&self, offset: u64, max_len: u64) -> Result<Extent> {
        let len = crate::source::extent_len(self.file.path(), offset, max_len, self.size)?;
        // Bounded metadata work per call: a long run comes back in pieces, never by reading
        // every L2 table of a huge disk in one call.
        let len = len.min(MAX_TABLES_PER_EXTENT << (self.cluster_bits + self.l2_bits));
        let mut found: Option<Extent> = None;
        self.walk(offset, len, &mut |guest, n, piece| {
            let kind = piece.kind();
            match found {
                None => {
                    found = Some(Extent {
                        offset: guest,
                        len: n,
                        kind,
                    })
                }
                Some(ref mut e) if e.kind == kind => e.len += n,
                Some(_) => return Ok(false),
            }
            Ok(true)
        })?;
        found.ok_or_else(|| self.malformed(format!("no mapping for offset {offset:#x}")))
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let path = self.file.path().to_path_buf();
        vec![LayerInfo {
            path: path.clone(),
            format: "qcow2".into(),
            subformat: Some(format!("v{}", self.version)),
            virtual_size: self.size,
            files: vec![path],
        }]
    }
}

fn be64(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = buf.get(at..at + 8) {
        b.copy_from_slice(s);
    }
    u64::from_be_bytes(b)
}

/// Refuses features that change what the data means and that ferry does not implement.
fn check_features(path: &Path, header: &Header, ext: &Extensions) -> Result<()> {
    let unknown = header.unknown_incompatible();
    if unknown != 0 {
        let bit = u8::try_from(unknown.trailing_zeros()).unwrap_or(63);
        return Err(Error::unsupported(path, ext.incompatible_name(bit)));
    }
    if header.incompatible_features & INCOMPAT_DATA_FILE != 0 || ext.external_data_file.is_some() {
        let name = ext.external_data_file.as_deref().unwrap_or("");
        return Err(Error::unsupported(
            path,
            format!("external data file '{name}'"),
        ));
    }
    Ok(())
}

/// The backing file name stored in the first cluster, if any.
fn backing_ref(
    path: &Path,
    header: &Header,
    cluster0: &[u8],
    format: Option<String>,
) -> Result<Option<BackingRef>> {
    let (off, len) = (header.backing_file_offset, header.backing_file_size);
    if off == 0 || len == 0 {
        return Ok(None);
    }
    if len > MAX_BACKING_NAME || off.saturating_add(u64::from(len)) > header.cluster_size() {
        return Err(Error::malformed(
            path,
            format!("backing file name at {off:#x} is too long"),
        ));
    }
    let start = usize::try_from(off).unwrap_or(usize::MAX);
    let name = cluster0
        .get(start..start.saturating_add(len as usize))
        .ok_or_else(|| Error::malformed(path, "truncated: backing file name is cut short"))?;
    Ok(Some(BackingRef {
        name: name.to_vec(),
        format,
    }))
}

/// Reads the L1 entries that map the virtual size (validate() capped their number).
fn read_l1(file: &ImageFile, header: &Header) -> Result<Vec<u64>> {
    let entries = usize::try_from(header.l1_entries_needed()).unwrap_or(0);
    if entries == 0 {
        return Ok(Vec::new());
    }
    let raw = file.read_vec(header.l1_table_offset, entries * 8, "l1 table")?;
    Ok(raw.chunks_exact(8).map(|c| be64(c, 0)).collect())
}
