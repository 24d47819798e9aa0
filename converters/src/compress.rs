//! Cluster compression as qcow2 stores it: raw deflate with a 4 KiB window (what qemu
//! writes with `inflateInit2(-12)`), or one zstd frame per cluster (compression type 1).
//!
//! flate2 runs on its `zlib-rs` backend because only a zlib-compatible backend lets us set
//! the window size that qemu's reader expects.

use flate2::{Compress, Decompress, FlushCompress, FlushDecompress, Status};
use serde::Serialize;

/// qemu's deflate window: 2^12 bytes.
const QEMU_DEFLATE_WINDOW_BITS: u8 = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Zlib,
    Zstd,
}

#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    #[error("deflate failed: {0}")]
    Deflate(String),
    #[error("inflate failed: {0}")]
    Inflate(String),
    #[error("zstd failed: {0}")]
    Zstd(String),
    #[error("compressed cluster decodes to {got:#x} bytes, expected {want:#x}")]
    ShortOutput { got: usize, want: usize },
}

impl Compression {
    /// Compresses one cluster into `out` (cleared first). Returns false when compression
    /// does not save at least one 512-byte sector, in which case the caller stores the
    /// cluster uncompressed, as qemu does.
    pub fn compress_cluster(
        self,
        input: &[u8],
        level: Option<i32>,
        out: &mut Vec<u8>,
    ) -> Result<bool, CompressError> {
        out.clear();
        let limit = input.len().saturating_sub(512);
        match self {
            Compression::Zlib => deflate_into(input, level, out, limit),
            Compression::Zstd => zstd_into(input, level, out, limit),
        }
    }

    /// Decompresses exactly `out.len()` bytes from `input`, which may carry trailing bytes
    /// (qcow2 stores compressed lengths rounded to sectors).
    pub fn decompress_cluster(self, input: &[u8], out: &mut [u8]) -> Result<(), CompressError> {
        match self {
            Compression::Zlib => inflate_exact(input, out),
            Compression::Zstd => unzstd_exact(input, out),
        }
    }
}

fn deflate_into(
    input: &[u8],
    level: Option<i32>,
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<bool, CompressError> {
    let level = u32::try_from(level.unwrap_or(6).clamp(0, 9)).unwrap_or(6);
    let mut c = Compress::new_with_window_bits(
        flate2::Compression::new(level),
        false,
        QEMU_DEFLATE_WINDOW_BITS,
    );
    out.reserve(limit + 64);
    let status = c
        .compress_vec(input, out, FlushCompress::Finish)
        .map_err(|e| CompressError::Deflate(e.to_string()))?;
    // Not finishing within `limit + 64` bytes of room means it would not have saved space.
    Ok(status == Status::StreamEnd && out.len() <= limit)
}

fn zstd_into(
    input: &[u8],
    level: Option<i32>,
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<bool, CompressError> {
    let level = level.unwrap_or(zstd::DEFAULT_COMPRESSION_LEVEL);
    out.resize(zstd::zstd_safe::compress_bound(input.len()), 0);
    let n = zstd::bulk::compress_to_buffer(input, out, level)
        .map_err(|e| CompressError::Zstd(e.to_string()))?;
    out.truncate(n);
    Ok(n <= limit)
}

fn inflate_exact(input: &[u8], out: &mut [u8]) -> Result<(), CompressError> {
    let mut d = Decompress::new_with_window_bits(false, 15);
    let status = d
        .decompress(input, out, FlushDecompress::Finish)
        .map_err(|e| CompressError::Inflate(e.to_string()))?;
    let got = usize::try_from(d.total_out()).unwrap_or(usize::MAX);
    if got != out.len() && status != Status::StreamEnd || got != out.len() {
        return Err(CompressError::ShortOutput {
            got,
            want: out.len(),
        });
    }
    Ok(())
}

fn unzstd_exact(input: &[u8], out: &mut [u8]) -> Result<(), CompressError> {
    use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};
    let mut decoder = Decoder::new().map_err(|e| CompressError::Zstd(e.to_string()))?;
    let mut inb = InBuffer::around(input);
    let want = out.len();
    let mut outb = OutBuffer::around(out);
    // Stops once the cluster is full: trailing sector padding is never decoded.
    while outb.pos() < want && inb.pos() < input.len() {
        let before = (inb.pos(), outb.pos());
        let hint = decoder
            .run(&mut inb, &mut outb)
            .map_err(|e| CompressError::Zstd(e.to_string()))?;
        if hint == 0 || before == (inb.pos(), outb.pos()) {
            break;
        }
    }
    if outb.pos() != want {
        return Err(CompressError::ShortOutput {
            got: outb.pos(),
            want,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..65536u32).map(|i| (i / 7 % 13) as u8).collect()
    }

    #[test]
    fn zlib_round_trip_with_sector_padding() {
        let input = sample();
        let mut out = Vec::new();
        assert!(Compression::Zlib
            .compress_cluster(&input, None, &mut out)
            .unwrap());
        out.resize(out.len().div_ceil(512) * 512, 0xAA);
        let mut back = vec![0u8; input.len()];
        Compression::Zlib
            .decompress_cluster(&out, &mut back)
            .unwrap();
        assert_eq!(back, input);
    }

    #[test]
    fn zstd_round_trip_with_sector_padding() {
        let input = sample();
        let mut out = Vec::new();
        assert!(Compression::Zstd
            .compress_cluster(&input, None, &mut out)
            .unwrap());
        out.resize(out.len().div_ceil(512) * 512, 0);
        let mut back = vec![0u8; input.len()];
        Compression::Zstd
            .decompress_cluster(&out, &mut back)
            .unwrap();
        assert_eq!(back, input);
    }

    #[test]
    fn incompressible_cluster_is_refused() {
        let mut x = 0x1234_5678_u32;
        let input: Vec<u8> = (0..65536)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let mut out = Vec::new();
        assert!(!Compression::Zlib
            .compress_cluster(&input, None, &mut out)
            .unwrap());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut back = vec![0u8; 4096];
        assert!(Compression::Zlib
            .decompress_cluster(&[0xff; 64], &mut back)
            .is_err());
        assert!(Compression::Zstd
            .decompress_cluster(&[0xff; 64], &mut back)
            .is_err());
    }
}
