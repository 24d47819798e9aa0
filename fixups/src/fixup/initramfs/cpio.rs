//! The "newc" cpio format the Linux kernel unpacks an initramfs from: an archive writer,
//! and a listing parser fed bytes as they are decompressed.
//!
//! An entry is a 110-byte ASCII header (`070701` and thirteen 8-digit hex fields), the
//! NUL-terminated name padded to 4 bytes, then the data padded to 4 bytes; `TRAILER!!!`
//! ends an archive. The kernel unpacks several archives in a row, skipping zero bytes
//! between them, and later entries replace earlier ones.
//!
//! DESIGN NOTE: hand-written: the cpio crates read from a `Read` they own and stop at
//! the first trailer, while the listing here is pushed bytes by a decompressor, must go
//! on across concatenated archives the way the kernel does, and keeps only names (and
//! symlink targets) so that memory stays bounded whatever the guest's image holds. Both
//! sides are a few dozen lines.

use std::collections::{BTreeMap, BTreeSet};

/// Longest name the kernel accepts (`PATH_MAX`, NUL included).
pub const MAX_NAME: usize = 4096;
/// Name of the entry that ends an archive.
pub const TRAILER: &str = "TRAILER!!!";
/// Entries a listing keeps; a real initramfs has a few thousand.
pub const MAX_ENTRIES: usize = 1 << 20;
/// Name bytes a listing keeps.
pub const MAX_NAME_BYTES: usize = 128 << 20;
/// Longest symlink target kept (a longer one is listed without its target).
const MAX_LINK: u64 = 4096;

const HEADER_LEN: usize = 110;
const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;

/// Why an archive could not be written or listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpioError {
    #[error("{0:?}: not a valid archive path")]
    BadName(String),
    #[error("{0}: larger than a cpio entry can hold")]
    TooLarge(String),
    #[error("not a newc cpio archive at byte {0}")]
    BadMagic(u64),
    #[error("corrupt cpio header at byte {0}")]
    BadHeader(u64),
    #[error("archive ends inside an entry")]
    Truncated,
    #[error("more entries than ferry lists")]
    TooManyEntries,
}

/// A newc archive being built in memory, to be appended to a file.
pub struct CpioWriter {
    out: Vec<u8>,
    /// Where the archive proper starts in `out` (after the alignment padding).
    origin: usize,
    next_ino: u32,
    dirs: BTreeSet<String>,
}

impl CpioWriter {
    /// An archive to append to a file `start` bytes long: the kernel looks for an
    /// uncompressed archive only at a 4-byte-aligned offset, and skips the zero bytes that
    /// pad it there.
    pub fn new(start: u64) -> Self {
        let pad = usize::from((4 - (start % 4) as u8) % 4);
        Self {
            out: vec![0; pad],
            origin: pad,
            next_ino: 1,
            dirs: BTreeSet::new(),
        }
    }

    /// Add the regular file `path` (relative, `/`-separated), root-owned with `mode`, and
    /// a directory entry for each parent not added yet: the kernel does not create missing
    /// parents. Parents must not be symlinks in the image the archive lands on (the
    /// kernel replaces an entry whose type differs), so callers resolve paths first.
    pub fn file(&mut self, path: &str, data: &[u8], mode: u32) -> Result<(), CpioError> {
        check_name(path)?;
        let size = u32::try_from(data.len()).map_err(|_| CpioError::TooLarge(path.to_string()))?;
        let mut parent = String::new();
        let components: Vec<&str> = path.split('/').collect();
        for name in &components[..components.len() - 1] {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(name);
            if self.dirs.insert(parent.clone()) {
                self.entry(&parent, S_IFDIR | 0o755, 2, 0);
            }
        }
        self.entry(path, S_IFREG | (mode & 0o7777), 1, size);
        self.out.extend_from_slice(data);
        self.align();
        Ok(())
    }

    /// The archive, trailer included.
    pub fn finish(mut self) -> Vec<u8> {
        self.header(TRAILER, 0, 1, 0, 0);
        self.out
    }

    fn entry(&mut self, name: &str, mode: u32, nlink: u32, size: u32) {
        let ino = self.next_ino;
        self.next_ino = self.next_ino.wrapping_add(1);
        self.header(name, mode, nlink, size, ino);
    }

    fn header(&mut self, name: &str, mode: u32, nlink: u32, size: u32, ino: u32) {
        // check_name bounds names to MAX_NAME, so this fits.
        let namesize = u32::try_from(name.len() + 1).unwrap_or(u32::MAX);
        let fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, namesize, 0];
        self.out.extend_from_slice(b"070701");
        for field in fields {
            self.out
                .extend_from_slice(format!("{field:08X}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.align();
    }

    fn align(&mut self) {
        while !(self.out.len() - self.origin).is_multiple_of(4) {
            self.out.push(0);
        }
    }
}

/// A relative path the kernel will unpack where it says: no empty, `.` or `..`
/// component, no NUL, not too long.
fn check_name(path: &str) -> Result<(), CpioError> {
    let bad = path.is_empty()
        || path.len() >= MAX_NAME
        || path.contains('\0')
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(CpioError::BadName(path.to_string()));
    }
    Ok(())
}

/// What a listed entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// With its target, when it was short enough to keep.
    Symlink(Option<Vec<u8>>),
    Other,
}

#[derive(Clone, Copy, Debug)]
struct Header {
    mode: u32,
    filesize: u64,
    namesize: usize,
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Between archives: zero bytes, then a header at an aligned offset.
    Between,
    /// Collecting the 110 header bytes.
    Header,
    /// Collecting the name.
    Name(Header),
    /// Collecting a symlink's target.
    Link(Header),
    /// Skipping data, then aligning and going on with `After`.
    Skip(u64, After),
    /// Skipping to the next 4-byte boundary, then `then`.
    Align(After),
}

#[derive(Clone, Copy, Debug)]
enum After {
    Data(Header),
    NextEntry,
    Between,
}

/// Names (and symlink targets) of the entries of concatenated newc archives, later
/// entries replacing earlier ones as when the kernel unpacks them. Fed bytes in pieces of
/// any size.
pub struct CpioLister {
    state: State,
    /// Offset in the current stream: alignment is relative to its start.
    pos: u64,
    pending: Vec<u8>,
    name: Vec<u8>,
    entries: BTreeMap<Vec<u8>, EntryKind>,
    name_bytes: usize,
    /// Set when a trailer has just been read.
    archive_ended: bool,
}

impl Default for CpioLister {
    fn default() -> Self {
        Self::new()
    }
}

impl CpioLister {
    pub fn new() -> Self {
        Self {
            state: State::Between,
            pos: 0,
            pending: Vec::new(),
            name: Vec::new(),
            entries: BTreeMap::new(),
            name_bytes: 0,
            archive_ended: false,
        }
    }

    /// Start a new stream (a decompressed member, or raw bytes at `offset` of the file):
    /// alignment is counted from `offset`.
    pub fn start_stream(&mut self, offset: u64) -> Result<(), CpioError> {
        self.finish_stream()?;
        self.pos = offset;
        Ok(())
    }

    /// Whether the stream fed so far ends between archives, as a complete one does.
    pub fn finish_stream(&mut self) -> Result<(), CpioError> {
        self.settle()?;
        match self.state {
            State::Between => Ok(()),
            _ => Err(CpioError::Truncated),
        }
    }

    /// Take the steps that need no more bytes: a stream may end right after a trailer
    /// whose padding is already in place.
    fn settle(&mut self) -> Result<(), CpioError> {
        loop {
            match self.state {
                State::Skip(0, after) => self.state = State::Align(after),
                State::Align(after) if self.pos.is_multiple_of(4) => self.after_align(after)?,
                State::Link(header) if header.filesize == 0 => {
                    self.record(EntryKind::Symlink(Some(Vec::new())))?;
                    self.state = State::Align(After::NextEntry);
                }
                _ => return Ok(()),
            }
        }
    }

    /// Whether a trailer was read since the last call.
    pub fn take_archive_end(&mut self) -> bool {
        std::mem::take(&mut self.archive_ended)
    }

    /// Entries by name (no leading `/` or `./`).
    pub fn entries(&self) -> &BTreeMap<Vec<u8>, EntryKind> {
        &self.entries
    }

    pub fn into_entries(self) -> BTreeMap<Vec<u8>, EntryKind> {
        self.entries
    }

    /// Feed bytes; returns how many were used, which is fewer than given only when
    /// `stop_at_trailer` is set and a trailer was reached (the rest belongs to whatever
    /// follows the archive in the file).
    pub fn feed(&mut self, mut input: &[u8], stop_at_trailer: bool) -> Result<usize, CpioError> {
        let total = input.len();
        while !input.is_empty() {
            if stop_at_trailer && self.archive_ended {
                break;
            }
            let used = self.step(input)?;
            input = &input[used..];
            self.pos += used as u64;
        }
        Ok(total - input.len())
    }

    /// Handle the start of `input` (never empty); the bytes used.
    fn step(&mut self, input: &[u8]) -> Result<usize, CpioError> {
        match self.state {
            State::Between => {
                let zeros = input.iter().take_while(|&&b| b == 0).count();
                if zeros == 0 {
                    if !self.pos.is_multiple_of(4) {
                        return Err(CpioError::BadMagic(self.pos));
                    }
                    self.state = State::Header;
                }
                Ok(zeros)
            }
            State::Header => {
                let used = self.collect(input, HEADER_LEN);
                if self.pending.len() == HEADER_LEN {
                    let at = self.pos + used as u64 - HEADER_LEN as u64;
                    let header = parse_header(&self.pending, at)?;
                    self.pending.clear();
                    self.state = State::Name(header);
                }
                Ok(used)
            }
            State::Name(header) => {
                let used = self.collect(input, header.namesize);
                if self.pending.len() == header.namesize {
                    let mut name = std::mem::take(&mut self.pending);
                    if name.pop() != Some(0) {
                        return Err(CpioError::BadHeader(self.pos));
                    }
                    self.name = name;
                    self.state = State::Align(After::Data(header));
                }
                Ok(used)
            }
            State::Link(header) => {
                let len = usize::try_from(header.filesize).unwrap_or(usize::MAX);
                let used = self.collect(input, len);
                if self.pending.len() == len {
                    let target = std::mem::take(&mut self.pending);
                    self.record(EntryKind::Symlink(Some(target)))?;
                    self.state = State::Align(After::NextEntry);
                }
                Ok(used)
            }
            State::Skip(left, after) => {
                let used = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                let left = left - used as u64;
                self.state = if left == 0 {
                    State::Align(after)
                } else {
                    State::Skip(left, after)
                };
                Ok(used)
            }
            State::Align(after) => {
                let pad = usize::from((4 - (self.pos % 4) as u8) % 4);
                let used = pad.min(input.len());
                if used == pad {
                    self.after_align(after)?;
                }
                Ok(used)
            }
        }
    }

    fn after_align(&mut self, after: After) -> Result<(), CpioError> {
        match after {
            After::Between => self.state = State::Between,
            After::NextEntry => self.state = State::Header,
            After::Data(header) => {
                if self.name == TRAILER.as_bytes() {
                    self.archive_ended = true;
                    self.name.clear();
                    // The kernel skips a trailer's data (none in practice) too.
                    self.state = State::Skip(header.filesize, After::Between);
                    return Ok(());
                }
                let kind = match header.mode & S_IFMT {
                    S_IFREG => EntryKind::File,
                    S_IFDIR => EntryKind::Dir,
                    S_IFLNK if header.filesize <= MAX_LINK => {
                        self.state = State::Link(header);
                        return Ok(());
                    }
                    S_IFLNK => EntryKind::Symlink(None),
                    _ => EntryKind::Other,
                };
                self.record(kind)?;
                self.state = State::Skip(header.filesize, After::NextEntry);
            }
        }
        Ok(())
    }

    /// Append to `pending` until it holds `want` bytes; the bytes used.
    fn collect(&mut self, input: &[u8], want: usize) -> usize {
        let used = want.saturating_sub(self.pending.len()).min(input.len());
        self.pending.extend_from_slice(&input[..used]);
        used
    }

    fn record(&mut self, kind: EntryKind) -> Result<(), CpioError> {
        let name = normalize(&std::mem::take(&mut self.name));
        if name.is_empty() {
            return Ok(());
        }
        self.name_bytes += name.len();
        if self.entries.len() >= MAX_ENTRIES || self.name_bytes > MAX_NAME_BYTES {
            return Err(CpioError::TooManyEntries);
        }
        self.entries.insert(name, kind);
        Ok(())
    }
}

/// `./usr//lib/` → `usr/lib`: the names cpio and the kernel treat alike.
fn normalize(name: &[u8]) -> Vec<u8> {
    let parts: Vec<&[u8]> = name
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    parts.join(&b'/')
}

fn parse_header(raw: &[u8], at: u64) -> Result<Header, CpioError> {
    if &raw[..6] != b"070701" && &raw[..6] != b"070702" {
        return Err(CpioError::BadMagic(at));
    }
    let field = |i: usize| -> Result<u32, CpioError> {
        let start = 6 + i * 8;
        let text =
            std::str::from_utf8(&raw[start..start + 8]).map_err(|_| CpioError::BadHeader(at))?;
        u32::from_str_radix(text, 16).map_err(|_| CpioError::BadHeader(at))
    };
    let mode = field(1)?;
    let filesize = u64::from(field(6)?);
    let namesize = usize::try_from(field(11)?).map_err(|_| CpioError::BadHeader(at))?;
    if namesize == 0 || namesize > MAX_NAME {
        return Err(CpioError::BadHeader(at));
    }
    Ok(Header {
        mode,
        filesize,
        namesize,
    })
}
