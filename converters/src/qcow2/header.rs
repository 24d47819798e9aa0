//! The qcow2 header and header extensions (qemu `docs/interop/qcow2.txt`), shared by the
//! reader (parse + validate) and the writer (serialise).
//!
//! Byte layout of the fixed header (big endian):
//!
//! ```text
//!   0 magic "QFI\xfb"        4 version (2|3)          8 backing_file_offset   16 backing_file_size
//!  20 cluster_bits          24 size (bytes)          32 crypt_method         36 l1_size (entries)
//!  40 l1_table_offset       48 refcount_table_offset 56 refcount_table_clusters
//!  60 nb_snapshots          64 snapshots_offset      -- v3 only below --
//!  72 incompatible_features 80 compatible_features   88 autoclear_features
//!  96 refcount_order       100 header_length        104 compression_type (if header_length > 104)
//! ```

use std::path::Path;

use crate::error::{Error, Result};

pub const MAGIC: [u8; 4] = *b"QFI\xfb";
/// Length of a version 2 header (fixed).
pub const V2_HEADER_LEN: u32 = 72;
/// Smallest version 3 header.
pub const V3_MIN_HEADER_LEN: u32 = 104;
/// Version 3 header including the compression type byte, padded to 8.
pub const V3_HEADER_LEN: u32 = 112;
pub const MIN_CLUSTER_BITS: u32 = 9;
pub const MAX_CLUSTER_BITS: u32 = 21;
/// qemu's `QCOW_MAX_L1_SIZE`: larger L1 tables are refused (and never allocated).
pub const MAX_L1_BYTES: u64 = 32 << 20;
/// Largest virtual size accepted, far above anything real, so sizes never overflow.
pub const MAX_VIRTUAL_SIZE: u64 = 1 << 60;
/// qemu refuses backing file names longer than this.
pub const MAX_BACKING_NAME: u32 = 1023;

/// Incompatible feature bits.
pub const INCOMPAT_DIRTY: u64 = 1 << 0;
pub const INCOMPAT_CORRUPT: u64 = 1 << 1;
pub const INCOMPAT_DATA_FILE: u64 = 1 << 2;
pub const INCOMPAT_COMPRESSION: u64 = 1 << 3;
pub const INCOMPAT_EXTL2: u64 = 1 << 4;
const INCOMPAT_KNOWN: u64 =
    INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;

/// Header extension types.
pub const EXT_END: u32 = 0;
pub const EXT_BACKING_FORMAT: u32 = 0xE279_2ACA;
pub const EXT_FEATURE_TABLE: u32 = 0x6803_F857;
pub const EXT_DATA_FILE: u32 = 0x4441_5441;

pub const COMPRESSION_ZLIB: u8 = 0;
pub const COMPRESSION_ZSTD: u8 = 1;

/// The fixed header fields, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub backing_file_offset: u64,
    pub backing_file_size: u32,
    pub cluster_bits: u32,
    pub size: u64,
    pub crypt_method: u32,
    pub l1_size: u32,
    pub l1_table_offset: u64,
    pub refcount_table_offset: u64,
    pub refcount_table_clusters: u32,
    pub nb_snapshots: u32,
    pub snapshots_offset: u64,
    pub incompatible_features: u64,
    pub compatible_features: u64,
    pub autoclear_features: u64,
    pub refcount_order: u32,
    pub header_length: u32,
    pub compression_type: u8,
}

fn be32(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = buf.get(at..at + 4) {
        b.copy_from_slice(s);
    }
    u32::from_be_bytes(b)
}

fn be64(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = buf.get(at..at + 8) {
        b.copy_from_slice(s);
    }
    u64::from_be_bytes(b)
}

impl Header {
    /// Decodes the fixed fields from the start of the file. Only decodes: call
    /// [`Header::validate`] before trusting any of them.
    pub fn parse(path: &Path, buf: &[u8]) -> Result<Header> {
        if buf.len() < V2_HEADER_LEN as usize {
            return Err(Error::malformed(
                path,
                "truncated: qcow2 header is shorter than 72 bytes",
            ));
        }
        if buf[..4] != MAGIC {
            return Err(Error::malformed(path, "not a qcow2 image (bad magic)"));
        }
        let mut h = Header {
            version: be32(buf, 4),
            backing_file_offset: be64(buf, 8),
            backing_file_size: be32(buf, 16),
            cluster_bits: be32(buf, 20),
            size: be64(buf, 24),
            crypt_method: be32(buf, 32),
            l1_size: be32(buf, 36),
            l1_table_offset: be64(buf, 40),
            refcount_table_offset: be64(buf, 48),
            refcount_table_clusters: be32(buf, 56),
            nb_snapshots: be32(buf, 60),
            snapshots_offset: be64(buf, 64),
            refcount_order: 4,
            header_length: V2_HEADER_LEN,
            ..Header::default()
        };
        if h.version >= 3 {
            if buf.len() < V3_MIN_HEADER_LEN as usize {
                return Err(Error::malformed(
                    path,
                    "truncated: qcow2 v3 header is shorter than 104 bytes",
                ));
            }
            h.incompatible_features = be64(buf, 72);
            h.compatible_features = be64(buf, 80);
            h.autoclear_features = be64(buf, 88);
            h.refcount_order = be32(buf, 96);
            h.header_length = be32(buf, 100);
            if h.header_length > V3_MIN_HEADER_LEN {
                h.compression_type = buf.get(104).copied().unwrap_or(0);
            }
        }
        Ok(h)
    }

    /// Checks every field the reader relies on; the errors follow qemu's refusals.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |m: String| Err(Error::malformed(path, m));
        if self.version != 2 && self.version != 3 {
            return Err(Error::unsupported(
                path,
                format!("qcow version {}", self.version),
            ));
        }
        if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&self.cluster_bits) {
            return bad(format!(
                "cluster_bits {} is outside 9..=21",
                self.cluster_bits
            ));
        }
        if self.version == 3 {
            self.validate_v3(path)?;
        }
        if self.crypt_method != 0 {
            return Err(Error::unsupported(
                path,
                format!("encrypted qcow2 (crypt_method {})", self.crypt_method),
            ));
        }
        if self.size > MAX_VIRTUAL_SIZE {
            return bad(format!("virtual size {:#x} is absurdly large", self.size));
        }
        self.validate_l1(path)
    }

    fn validate_v3(&self, path: &Path) -> Result<()> {
        let bad = |m: String| Err(Error::malformed(path, m));
        if self.header_length < V3_MIN_HEADER_LEN || !self.header_length.is_multiple_of(8) {
            return bad(format!(
                "header_length {:#x} is invalid",
                self.header_length
            ));
        }
        if u64::from(self.header_length) > self.cluster_size() {
            return bad(format!(
                "header_length {:#x} exceeds the cluster size",
                self.header_length
            ));
        }
        if self.refcount_order > 6 {
            return bad(format!("refcount_order {} exceeds 6", self.refcount_order));
        }
        match self.compression_type {
            COMPRESSION_ZLIB => {}
            COMPRESSION_ZSTD if self.incompatible_features & INCOMPAT_COMPRESSION != 0 => {}
            COMPRESSION_ZSTD => {
                return bad("compression type zstd without the compression type feature bit".into())
            }
            t => return Err(Error::unsupported(path, format!("compression type {t}"))),
        }
        if self.incompatible_features & INCOMPAT_EXTL2 != 0 && self.cluster_bits < 14 {
            return bad("extended L2 entries need clusters of at least 16 KiB".into());
        }
        Ok(())
    }

    fn validate_l1(&self, path: &Path) -> Result<()> {
        let bad = |m: String| Err(Error::malformed(path, m));
        if u64::from(self.l1_size) * 8 > MAX_L1_BYTES {
            return bad(format!(
                "l1 table of {:#x} entries is too large",
                self.l1_size
            ));
        }
        let needed = self.l1_entries_needed();
        if needed > u64::from(self.l1_size) {
            return bad(format!(
                "l1 table of {:#x} entries is too small for virtual size {:#x}",
                self.l1_size, self.size
            ));
        }
        if self.l1_size > 0 && self.l1_table_offset & (self.cluster_size() - 1) != 0 {
            return bad(format!(
                "l1 table offset {:#x} is not cluster aligned",
                self.l1_table_offset
            ));
        }
        Ok(())
    }

    /// Incompatible feature bits ferry does not know (the caller names them).
    pub fn unknown_incompatible(&self) -> u64 {
        self.incompatible_features & !INCOMPAT_KNOWN
    }

    pub fn cluster_size(&self) -> u64 {
        1u64 << self.cluster_bits.min(63)
    }

    pub fn extended_l2(&self) -> bool {
        self.incompatible_features & INCOMPAT_EXTL2 != 0
    }

    /// log2 of the number of entries in one L2 table.
    pub fn l2_bits(&self) -> u32 {
        l2_bits(self.cluster_bits, self.extended_l2())
    }

    /// L1 entries needed to map the virtual size (qemu's `size_to_l1`).
    pub fn l1_entries_needed(&self) -> u64 {
        l1_entries_for(self.size, self.cluster_bits, self.extended_l2())
    }

    /// Serialises the fixed header (`header_length` bytes; v3 only).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(self.header_length as usize);
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&self.version.to_be_bytes());
        b.extend_from_slice(&self.backing_file_offset.to_be_bytes());
        b.extend_from_slice(&self.backing_file_size.to_be_bytes());
        b.extend_from_slice(&self.cluster_bits.to_be_bytes());
        b.extend_from_slice(&self.size.to_be_bytes());
        b.extend_from_slice(&self.crypt_method.to_be_bytes());
        b.extend_from_slice(&self.l1_size.to_be_bytes());
        b.extend_from_slice(&self.l1_table_offset.to_be_bytes());
        b.extend_from_slice(&self.refcount_table_offset.to_be_bytes());
        b.extend_from_slice(&self.refcount_table_clusters.to_be_bytes());
        b.extend_from_slice(&self.nb_snapshots.to_be_bytes());
        b.extend_from_slice(&self.snapshots_offset.to_be_bytes());
        b.extend_from_slice(&self.incompatible_features.to_be_bytes());
        b.extend_from_slice(&self.compatible_features.to_be_bytes());
        b.extend_from_slice(&self.autoclear_features.to_be_bytes());
        b.extend_from_slice(&self.refcount_order.to_be_bytes());
        b.extend_from_slice(&self.header_length.to_be_bytes());
        b.push(self.compression_type);
        b.resize(self.header_length as usize, 0);
        b
    }
}

/// log2 of the entries per L2 table: a cluster of 8-byte (or 16-byte extended) entries.
pub fn l2_bits(cluster_bits: u32, extended: bool) -> u32 {
    cluster_bits - if extended { 4 } else { 3 }
}

/// L1 entries needed to map `size` bytes.
pub fn l1_entries_for(size: u64, cluster_bits: u32, extended: bool) -> u64 {
    let shift = cluster_bits + l2_bits(cluster_bits, extended);
    size.div_ceil(1u64 << shift)
}

/// What the header extensions say, as far as the reader cares.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Extensions {
    pub backing_format: Option<String>,
    pub external_data_file: Option<String>,
    /// (type, bit, name) from the feature name table, for error messages.
    pub feature_names: Vec<(u8, u8, String)>,
}

impl Extensions {
    /// Walks the extensions in `cluster0` (the first cluster, possibly cut short at the end
    /// of the file) from `start` up to `end` (the backing file name, or the cluster end).
    pub fn parse(path: &Path, cluster0: &[u8], start: usize, end: usize) -> Result<Extensions> {
        let mut ext = Extensions::default();
        let end = end.min(cluster0.len());
        let mut at = start;
        while at < end {
            let Some(hdr) = cluster0.get(at..at + 8) else {
                return Err(Error::malformed(
                    path,
                    format!("truncated header extension at {at:#x}"),
                ));
            };
            let (kind, len) = (be32(hdr, 0), be32(hdr, 4) as usize);
            at += 8;
            let Some(data) = cluster0.get(at..at + len).filter(|_| at + len <= end) else {
                return Err(Error::malformed(
                    path,
                    format!("header extension {kind:#x} at {:#x} is too large", at - 8),
                ));
            };
            match kind {
                EXT_END => break,
                EXT_BACKING_FORMAT => ext.backing_format = Some(lossy(data)),
                EXT_DATA_FILE => ext.external_data_file = Some(lossy(data)),
                EXT_FEATURE_TABLE => ext.feature_names = parse_feature_table(data),
                _ => {}
            }
            at += len.div_ceil(8) * 8;
        }
        Ok(ext)
    }

    /// Human name of an incompatible feature bit, from the image's own table if it has one.
    pub fn incompatible_name(&self, bit: u8) -> String {
        self.feature_names
            .iter()
            .find(|(t, b, _)| *t == 0 && *b == bit)
            .map(|(_, _, n)| format!("incompatible feature '{n}' (bit {bit})"))
            .unwrap_or_else(|| format!("incompatible feature bit {bit}"))
    }
}

fn lossy(data: &[u8]) -> String {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

fn parse_feature_table(data: &[u8]) -> Vec<(u8, u8, String)> {
    data.chunks_exact(48)
        .map(|e| (e[0], e[1], lossy(&e[2..])))
        .collect()
}
