//! cloop v2.0 compressed images (Knoppix `create_compressed_fs`), as qemu's `block/cloop.c`
//! reads them.
//!
//! ```text
//!   0   "#!/bin/sh\n#V2.0 Format\n..." shell preamble (128 bytes)
//!   128 block_size u32 BE   132 n_blocks u32 BE   136 offsets[u64 BE; n_blocks + 1]
//!   block i = zlib (RFC 1950) stream in [offsets[i], offsets[i + 1]), inflating to exactly
//!   block_size bytes
//! ```
//!
//! qemu's caps apply: the block size is a non-zero multiple of 512 of at most 64 MiB,
//! offsets never decrease and no compressed block exceeds 128 MiB; in addition the offsets
//! table is capped at 64 MiB and the last offset must lie inside the file. Every block is
//! `Data`. Reads covering a whole block inflate straight into the caller's buffer; partial
//! reads go through a small cache of recently inflated blocks.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use flate2::{Decompress, FlushDecompress, Status};

use super::{check_range, extent_len, layer, read_table, to_usize};
use crate::error::{Error, Result};
use crate::image_file::ImageFile;
use crate::source::{DiskSource, Extent, ExtentKind, LayerInfo};

const PREAMBLE: &[u8] = b"#!/bin/sh\n#V2.0 Format";
const MAX_BLOCK_SIZE: u32 = 64 << 20;
const MAX_COMPRESSED: u64 = 2 * MAX_BLOCK_SIZE as u64;
/// Inflated blocks kept for partial reads, in bytes (always at least one block).
const CACHE_BYTES: usize = 8 << 20;

pub struct CloopSource {
    file: ImageFile,
    block_size: u64,
    offsets: Vec<u64>,
    cache: Mutex<VecDeque<(u64, Arc<Vec<u8>>)>>,
}

impl CloopSource {
    pub fn open(file: ImageFile) -> Result<Self> {
        let mut h = [0u8; 136];
        file.read_exact_at(&mut h, 0, "cloop header")?;
        let bad = |why: String| Error::malformed(file.path(), why);
        if !h.starts_with(PREAMBLE) {
            return Err(bad(
                "not a cloop v2.0 image (no \"#V2.0 Format\" preamble)".into()
            ));
        }
        let block_size = u32::from_be_bytes([h[128], h[129], h[130], h[131]]);
        if block_size == 0 || block_size % 512 != 0 || block_size > MAX_BLOCK_SIZE {
            return Err(bad(format!(
                "block size {block_size:#x} is not a non-zero multiple of 512 up to {MAX_BLOCK_SIZE:#x}"
            )));
        }
        let n_blocks = u32::from_be_bytes([h[132], h[133], h[134], h[135]]);
        let offsets = read_table(
            &file,
            136,
            u64::from(n_blocks) + 1,
            8,
            true,
            "cloop offsets table",
        )?;
        check_offsets(&file, &offsets)?;
        Ok(CloopSource {
            file,
            block_size: u64::from(block_size),
            offsets,
            cache: Mutex::new(VecDeque::new()),
        })
    }

    fn blocks(&self) -> u64 {
        self.offsets.len().saturating_sub(1) as u64
    }

    /// Inflates block `index` into `out` (exactly one block long).
    fn inflate(&self, index: u64, out: &mut [u8]) -> Result<()> {
        let i = to_usize(index);
        let (start, end) = match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&s), Some(&e)) => (s, e),
            _ => {
                return Err(Error::invalid_request(
                    self.file.path(),
                    format!("cloop block {index} does not exist"),
                ))
            }
        };
        let input = self
            .file
            .read_vec(start, to_usize(end - start), "cloop compressed block")?;
        let mut z = Decompress::new(true);
        let status = z.decompress(&input, out, FlushDecompress::Finish);
        match status {
            Ok(Status::StreamEnd) if z.total_out() == out.len() as u64 => Ok(()),
            _ => Err(Error::malformed(
                self.file.path(),
                format!(
                    "cloop block {index} at {start:#x} does not inflate to {:#x} bytes",
                    self.block_size
                ),
            )),
        }
    }

    /// Block `index` inflated, from the cache or freshly.
    fn cached(&self, index: u64) -> Result<Arc<Vec<u8>>> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, b)) = cache.iter().find(|(i, _)| *i == index) {
            return Ok(Arc::clone(b));
        }
        drop(cache);
        let mut block = vec![0u8; to_usize(self.block_size)];
        self.inflate(index, &mut block)?;
        let block = Arc::new(block);
        cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let keep = (CACHE_BYTES / block.len().max(1)).max(1);
        while cache.len() >= keep {
            cache.pop_front();
        }
        cache.push_back((index, Arc::clone(&block)));
        Ok(block)
    }
}

/// Offsets must not decrease, blocks stay under qemu's cap and the end lies in the file.
fn check_offsets(file: &ImageFile, offsets: &[u64]) -> Result<()> {
    for (i, pair) in offsets.windows(2).enumerate() {
        let (a, b) = (pair[0], pair[1]);
        if b < a || b - a > MAX_COMPRESSED {
            return Err(Error::malformed(
                file.path(),
                format!(
                    "cloop offset {} ({b:#x}) is below the previous one or too far from it",
                    i + 1
                ),
            ));
        }
    }
    let last = offsets.last().copied().unwrap_or(0);
    if last > file.len() {
        return Err(Error::malformed(
            file.path(),
            format!(
                "cloop blocks end at {last:#x}, past the end of the file at {:#x}",
                file.len()
            ),
        ));
    }
    Ok(())
}

impl DiskSource for CloopSource {
    fn size(&self) -> u64 {
        self.blocks() * self.block_size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(&self.file, offset, buf.len(), self.size())?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let (index, in_block) = (pos / self.block_size, to_usize(pos % self.block_size));
            let n = (to_usize(self.block_size) - in_block).min(buf.len() - done);
            let chunk = &mut buf[done..done + n];
            if n as u64 == self.block_size {
                self.inflate(index, chunk)?;
            } else {
                let block = self.cached(index)?;
                chunk.copy_from_slice(&block[in_block..in_block + n]);
            }
            done += n;
        }
        Ok(())
    }

    fn extent_at(&self, offset: u64, max_len: u64) -> Result<Extent> {
        let len = extent_len(&self.file, offset, max_len, self.size())?;
        Ok(Extent {
            offset,
            len,
            kind: ExtentKind::Data,
        })
    }

    fn layers(&self) -> Vec<LayerInfo> {
        layer(&self.file, "cloop", "v2.0", self.size())
    }
}
