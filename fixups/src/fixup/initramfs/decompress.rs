//! The names in an existing initramfs image, read without unpacking it to disk.
//!
//! An image is what the kernel's `unpack_to_rootfs` takes: uncompressed newc archives
//! (an early-microcode one often comes first) and compressed streams, one after the
//! other, with zero bytes between. Each piece is read here in the same order from the
//! guest file, decompressed as a stream, and fed to [`CpioLister`], which keeps names and
//! symlink targets only: memory stays at a few buffers plus the names, whatever the size
//! of the image. gzip, zstd and xz are read; lz4, lzo, bzip2 and lzma are reported as not
//! listable, and so is anything corrupt, so that the caller can fall back.
//!
//! DESIGN NOTE: the walk is hand-written: no crate reads an initramfs as the kernel
//! does, raw archives and compressed streams in a row. Decompression is the crates'
//! (`flate2`, `zstd`, and the pure-Rust `xz4rust`, which says how much input a stream
//! used so that what follows it can be read).

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};

use super::cpio::{CpioError, CpioLister, EntryKind};
use crate::guestfs::{GuestFs, GuestFsError, GuestPath};

/// Bytes read from the guest file at once.
const READ_CHUNK: usize = 1 << 20;
/// Most decompressed bytes read from one image: real ones are a few hundred MiB.
pub const MAX_UNPACKED: u64 = 4 << 30;
/// Largest xz dictionary accepted (`xz -9` uses 64 MiB; initramfs tools use less).
const MAX_XZ_DICT: usize = 64 << 20;
/// Bytes moved from a decompressor to the listing at once.
const UNPACK_CHUNK: usize = 256 << 10;

/// What is in an image.
#[derive(Debug)]
pub enum Listing {
    /// Every entry, by normalized name, as the kernel would leave them.
    Listed(BTreeMap<Vec<u8>, EntryKind>),
    /// Why the image could not be listed (`lz4-compressed`, `corrupt gzip stream`).
    Unlisted(String),
}

/// List the initramfs `path` (`size` bytes). Only errors reading the guest fail; an
/// image ferry cannot read is [`Listing::Unlisted`].
pub fn list_image(fs: &dyn GuestFs, path: &GuestPath, size: u64) -> Result<Listing, GuestFsError> {
    let mut reader = GuestReader::new(fs, path, size);
    let result = list(&mut reader);
    if let Some(e) = reader.error.take() {
        return Err(e);
    }
    Ok(match result {
        Ok(entries) => Listing::Listed(entries),
        Err(why) => Listing::Unlisted(why),
    })
}

fn list(reader: &mut GuestReader<'_>) -> Result<BTreeMap<Vec<u8>, EntryKind>, String> {
    let mut lister = CpioLister::new();
    let mut unpacked = 0u64;
    loop {
        let offset = reader.offset();
        let head = reader.peek(6).map_err(|e| e.to_string())?;
        let Some(&first) = head.first() else {
            break;
        };
        if first == 0 {
            let zeros = head.iter().take_while(|&&b| b == 0).count();
            reader.consume(zeros);
            continue;
        }
        if first == b'0' && offset.is_multiple_of(4) {
            lister.start_stream(offset).map_err(cpio_error)?;
            loop {
                let buf = reader.fill_buf().map_err(|e| e.to_string())?;
                if buf.is_empty() {
                    break;
                }
                let used = lister.feed(buf, true).map_err(cpio_error)?;
                reader.consume(used);
                if lister.take_archive_end() {
                    break;
                }
            }
            lister.finish_stream().map_err(cpio_error)?;
            continue;
        }
        lister.start_stream(0).map_err(cpio_error)?;
        let mut sink = Sink {
            lister: &mut lister,
            unpacked: &mut unpacked,
        };
        match compression(head) {
            Some("gzip") => {
                let mut decoder = flate2::bufread::GzDecoder::new(&mut *reader);
                sink.drain(&mut decoder, "gzip")?;
            }
            Some("zstd") => {
                let decoder = zstd::stream::read::Decoder::with_buffer(&mut *reader)
                    .map_err(|e| format!("zstd: {e}"))?;
                sink.drain(&mut decoder.single_frame(), "zstd")?;
            }
            Some("xz") => unxz(reader, &mut sink)?,
            Some(other) => return Err(format!("{other}-compressed data at byte {offset}")),
            None => return Err(format!("unknown data at byte {offset}")),
        }
        lister.finish_stream().map_err(cpio_error)?;
    }
    Ok(lister.into_entries())
}

fn cpio_error(e: CpioError) -> String {
    format!("cpio: {e}")
}

/// The compression whose magic `head` starts with, as the kernel's `decompress_method`.
fn compression(head: &[u8]) -> Option<&'static str> {
    const MAGICS: [(&[u8], &str); 8] = [
        (&[0x1f, 0x8b], "gzip"),
        (&[0x1f, 0x9e], "gzip"),
        (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0], "xz"),
        (b"BZh", "bzip2"),
        (&[0x5d, 0, 0], "lzma"),
        (&[0x89, b'L', b'Z', b'O'], "lzo"),
        (&[0x02, 0x21, 0x4c, 0x18], "lz4"),
    ];
    MAGICS
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|&(_, name)| name)
}

/// Where decompressed bytes go: the listing, counted against [`MAX_UNPACKED`].
struct Sink<'a> {
    lister: &'a mut CpioLister,
    unpacked: &'a mut u64,
}

impl Sink<'_> {
    fn push(&mut self, data: &[u8]) -> Result<(), String> {
        *self.unpacked += data.len() as u64;
        if *self.unpacked > MAX_UNPACKED {
            return Err(format!(
                "more than {} GiB once decompressed",
                MAX_UNPACKED >> 30
            ));
        }
        self.lister.feed(data, false).map_err(cpio_error)?;
        Ok(())
    }

    fn drain(&mut self, decoder: &mut impl Read, what: &str) -> Result<(), String> {
        let mut buf = vec![0u8; UNPACK_CHUNK];
        loop {
            let n = match decoder.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("{what}: {e}")),
            };
            self.push(&buf[..n])?;
        }
    }
}

/// One xz stream: xz4rust is a push decoder that says how much input it used, so the
/// bytes after the stream stay in `reader`.
fn unxz(reader: &mut GuestReader<'_>, sink: &mut Sink<'_>) -> Result<(), String> {
    let mut decoder = xz4rust::XzDecoder::in_heap_with_alloc_dict_size(4096, MAX_XZ_DICT);
    let mut out = vec![0u8; UNPACK_CHUNK];
    let mut stalled = 0;
    loop {
        // A whole chunk at once: the decoder refuses input too short to make progress.
        let input = reader.peek(READ_CHUNK / 2).map_err(|e| e.to_string())?;
        let at_end = input.is_empty();
        let result = decoder
            .decode(input, &mut out)
            .map_err(|e| format!("xz: {e:?}"))?;
        reader.consume(result.input_consumed());
        sink.push(&out[..result.output_produced()])?;
        if result.is_end_of_stream() {
            return Ok(());
        }
        if result.made_progress() {
            stalled = 0;
        } else {
            stalled += 1;
            if at_end || stalled > 2 {
                return Err("xz: truncated stream".to_string());
            }
        }
    }
}

/// A guest file as a `BufRead`, read in [`READ_CHUNK`] pieces, that knows its offset.
/// A guest read error is kept aside (and reported as such) rather than turned into a
/// decompression failure.
struct GuestReader<'a> {
    fs: &'a dyn GuestFs,
    path: &'a GuestPath,
    size: u64,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    error: Option<GuestFsError>,
}

impl<'a> GuestReader<'a> {
    fn new(fs: &'a dyn GuestFs, path: &'a GuestPath, size: u64) -> Self {
        Self {
            fs,
            path,
            size,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            buf_offset: 0,
            error: None,
        }
    }

    fn offset(&self) -> u64 {
        self.buf_offset + self.start as u64
    }

    /// At least `n` buffered bytes (fewer only at the end of the file).
    fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        let n = n.min(self.buf.len());
        if self.end - self.start < n {
            self.buf.copy_within(self.start..self.end, 0);
            self.buf_offset += self.start as u64;
            self.end -= self.start;
            self.start = 0;
            while self.end < n {
                let at = self.buf_offset + self.end as u64;
                if at >= self.size {
                    break;
                }
                let got = match self.fs.read_at(self.path, at, &mut self.buf[self.end..]) {
                    Ok(got) => got,
                    Err(e) => {
                        self.error = Some(e);
                        return Err(io::Error::other("guest read failed"));
                    }
                };
                if got == 0 {
                    break;
                }
                // The file may have grown since its size was taken; read only what was.
                let room = usize::try_from(self.size - at).unwrap_or(usize::MAX);
                self.end += got.min(room);
            }
        }
        Ok(&self.buf[self.start..self.end])
    }
}

impl Read for GuestReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let buf = self.fill_buf()?;
        let n = buf.len().min(out.len());
        out[..n].copy_from_slice(&buf[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for GuestReader<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.peek(1)
    }

    fn consume(&mut self, amt: usize) {
        self.start = (self.start + amt).min(self.end);
    }
}
