//! The copy onto the target: data extents are read from the source and written in place,
//! zero extents are zeroed on the target unless the target is known to read zero there.
//!
//! Not built on `converters::raw_sink::RawSink`: that sink stages regular files under a
//! temporary name and renames them over the target, which would replace (not write into)
//! an existing file, and it cannot tell "new sparse file" from "existing file with old
//! bytes" when deciding whether zero ranges need zeroing.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use converters::direct::{AlignedBuf, DirectFile};
use converters::source::ExtentIter;
use converters::DiskSource;
use rustix::fs::FallocateFlags;
use serde::Serialize;

use super::grow::{grow_last_partition, GrowReport};
use super::target::{check_target, TargetInfo, TargetKind};
use super::{V2pError, WriteOptions};

/// Data is read and written in chunks of this size: large enough for sequential device
/// throughput, small enough that Ctrl-C is noticed quickly.
const CHUNK: u64 = 4 << 20;
/// Zero detection inside data chunks works on blocks of this size: small enough to find
/// zero-filled areas, large enough not to fragment writes.
const ZERO_BLOCK: usize = 64 << 10;
/// Zero ranges are handed to fallocate in pieces of this size so cancel stays responsive.
const ZERO_PIECE: u64 = 1 << 30;

#[derive(Debug, Clone, Serialize)]
pub struct WriteReport {
    pub target: String,
    /// "block device" or "file".
    pub target_kind: &'static str,
    pub target_size: u64,
    pub source_size: u64,
    /// Source bytes written to the target.
    pub bytes_written: u64,
    /// Ranges zeroed/discarded on the target because the source is zero there and the
    /// target cannot be known to read zero.
    pub bytes_zeroed: u64,
    /// Ranges left alone because the target already reads zero there (holes of a new or
    /// extended file) and the source is zero.
    pub bytes_skipped: u64,
    pub grown: Option<GrowReport>,
    pub seconds: f64,
}

/// One unit of work: `[offset, offset+len)` is data (read and write) or zero.
#[derive(Debug, Clone, Copy)]
struct Task {
    offset: u64,
    len: u64,
    data: bool,
}

/// Writes `source` onto `target` (see [`check_target`] for what is refused), then grows the
/// last partition when `opts.grow`. `progress` receives byte counts as they are done.
pub fn write_disk(
    source: &dyn DiskSource,
    target: &Path,
    opts: &WriteOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<WriteReport, V2pError> {
    let started = Instant::now();
    let source_size = source.size();
    let info = check_target(target, source_size, opts.force)?;
    refuse_source_as_target(source, &info)?;
    let shown = target.display().to_string();

    // Everything at or past `known_zero_from` already reads zero on the target: all of a
    // new file, the extension of a file shorter than the source.
    let known_zero_from = match info.kind {
        TargetKind::NewFile => 0,
        TargetKind::ExistingFile => info.size,
        TargetKind::BlockDevice => u64::MAX,
    };
    let tasks = plan(source)?;
    let target_size = match info.kind {
        TargetKind::BlockDevice => info.size,
        _ => info.size.max(source_size),
    };
    let mut report = WriteReport {
        target: shown.clone(),
        target_kind: info.kind.label(),
        target_size,
        source_size,
        bytes_written: 0,
        bytes_zeroed: 0,
        bytes_skipped: 0,
        grown: None,
        seconds: 0.0,
    };
    if opts.dry_run {
        // Counts from metadata only: data extents would be written (all-zero data is not
        // detected without reading it), zero extents zeroed or skipped.
        for t in &tasks {
            if t.data {
                report.bytes_written += t.len;
            } else {
                let (zeroed, skipped) = split_known_zero(t.offset, t.len, known_zero_from);
                report.bytes_zeroed += zeroed;
                report.bytes_skipped += skipped;
            }
        }
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }

    let file = open_target(&info, source_size)?;
    // Data bypasses the page cache where the target allows it: a disk-sized write would
    // otherwise push everything else out of it, and sync_all would then write it all.
    let writer = file
        .try_clone()
        .map(|f| DirectFile::open(&info.path, Arc::new(f)))
        .map_err(|e| V2pError::Io(format!("{shown}: cannot duplicate handle: {e}")))?;
    let target_io = Target {
        file: &file,
        writer: &writer,
        is_file: file.metadata().map(|m| m.is_file()).unwrap_or(false),
        shown: &shown,
    };
    let result = run_tasks(source, &target_io, &tasks, known_zero_from, opts, progress);
    let result = result.and_then(|counts| {
        file.sync_all()
            .map_err(|e| V2pError::Io(format!("{shown}: cannot sync: {e}")))?;
        Ok(counts)
    });
    let (written, zeroed, skipped) = match result {
        Ok(c) => c,
        Err(e) => {
            // A file this run created holds nothing else; leaving half a disk image behind
            // would only mislead. Existing targets are left as they are (partly written).
            if info.kind == TargetKind::NewFile {
                drop(file);
                let _ = std::fs::remove_file(target);
            }
            return Err(e);
        }
    };
    // The exclusive handle must be gone before e2fsck/resize2fs open the device.
    drop(file);
    report.bytes_written = written;
    report.bytes_zeroed = zeroed;
    report.bytes_skipped = skipped;
    if opts.grow {
        report.grown = grow_last_partition(
            target,
            info.kind == TargetKind::BlockDevice,
            source_size,
            target_size,
        )?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Writing an image onto one of its own files would destroy it while reading it.
fn refuse_source_as_target(source: &dyn DiskSource, info: &TargetInfo) -> Result<(), V2pError> {
    let Ok(tmeta) = std::fs::metadata(&info.path) else {
        return Ok(());
    };
    for layer in source.layers() {
        for f in &layer.files {
            let Ok(m) = std::fs::metadata(f) else {
                continue;
            };
            let same = if tmeta.file_type().is_file() {
                m.dev() == tmeta.dev() && m.ino() == tmeta.ino()
            } else {
                m.rdev() != 0 && m.rdev() == tmeta.rdev()
            };
            if same {
                return Err(V2pError::Refused(format!(
                    "{} is the source image file {}",
                    info.path.display(),
                    f.display()
                )));
            }
        }
    }
    Ok(())
}

/// Splits the source into data chunks and zero pieces, from its allocation map.
fn plan(source: &dyn DiskSource) -> Result<Vec<Task>, V2pError> {
    let mut tasks = Vec::new();
    for extent in ExtentIter::new(source, 0, source.size()) {
        let extent = extent.map_err(|e| V2pError::Source(e.to_string()))?;
        let data = extent.kind.is_data();
        let piece = if data { CHUNK } else { ZERO_PIECE };
        let mut pos = extent.offset;
        while pos < extent.end() {
            let len = piece.min(extent.end() - pos);
            tasks.push(Task {
                offset: pos,
                len,
                data,
            });
            pos += len;
        }
    }
    Ok(tasks)
}

/// (bytes that need zeroing, bytes already known zero) of a range.
fn split_known_zero(offset: u64, len: u64, known_zero_from: u64) -> (u64, u64) {
    let end = offset + len;
    let needs = known_zero_from.clamp(offset, end) - offset;
    (needs, len - needs)
}

/// Opens (or creates) the target for positional writes, sized for the source.
fn open_target(info: &TargetInfo, source_size: u64) -> Result<File, V2pError> {
    let shown = info.path.display();
    let mut oo = OpenOptions::new();
    oo.write(true);
    match info.kind {
        TargetKind::NewFile => {
            // create_new: if something appeared at the path since the check, do not clobber it.
            oo.create_new(true);
        }
        TargetKind::BlockDevice => {
            // O_EXCL on a block device is an exclusive open: the kernel refuses it (EBUSY)
            // while the device or a partition is mounted, or held by dm/md, closing the race
            // between check_target and the write.
            oo.custom_flags(rustix::fs::OFlags::EXCL.bits().cast_signed());
        }
        TargetKind::ExistingFile => {}
    }
    let file = oo.open(&info.path).map_err(|e| {
        if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) {
            V2pError::Refused(format!("{shown} is busy (mounted or in use)"))
        } else {
            V2pError::Io(format!("{shown}: cannot open for writing: {e}"))
        }
    })?;
    if info.kind != TargetKind::BlockDevice && info.size < source_size {
        // Sparse extension: the new tail reads zero without being written.
        file.set_len(source_size)
            .map_err(|e| V2pError::Io(format!("{shown}: cannot size to {source_size}: {e}")))?;
    }
    Ok(file)
}

/// Runs the tasks on `opts.jobs` threads; returns (written, zeroed, skipped).
fn run_tasks(
    source: &dyn DiskSource,
    target: &Target<'_>,
    tasks: &[Task],
    known_zero_from: u64,
    opts: &WriteOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(u64, u64, u64), V2pError> {
    let next = AtomicUsize::new(0);
    let written = AtomicU64::new(0);
    let zeroed = AtomicU64::new(0);
    let skipped = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let failure: Mutex<Option<V2pError>> = Mutex::new(None);
    let (file, is_file, shown) = (target.file, target.is_file, target.shown);
    let worker = || {
        let mut aligned = AlignedBuf::new(usize::try_from(CHUNK).unwrap_or(4 << 20));
        let buf = aligned.as_mut_slice();
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if opts
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
            {
                fail(
                    &stop,
                    &failure,
                    V2pError::Interrupted(format!("{shown} is only partly written")),
                );
                return;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(t) = tasks.get(i) else {
                return;
            };
            let outcome = if t.data {
                let len = usize::try_from(t.len).unwrap_or(buf.len()).min(buf.len());
                let chunk = &mut buf[..len];
                source
                    .read_exact_at(chunk, t.offset)
                    .map_err(|e| V2pError::Source(e.to_string()))
                    .and_then(|()| {
                        let (w, z, k) = write_chunk(target, chunk, t.offset, known_zero_from)?;
                        written.fetch_add(w, Ordering::Relaxed);
                        zeroed.fetch_add(z, Ordering::Relaxed);
                        skipped.fetch_add(k, Ordering::Relaxed);
                        Ok(())
                    })
            } else {
                let (need, known) = split_known_zero(t.offset, t.len, known_zero_from);
                zero_range(file, is_file, shown, t.offset, need).map(|()| {
                    zeroed.fetch_add(need, Ordering::Relaxed);
                    skipped.fetch_add(known, Ordering::Relaxed);
                })
            };
            match outcome {
                Ok(()) => progress(t.len),
                Err(e) => {
                    fail(&stop, &failure, e);
                    return;
                }
            }
        }
    };
    let jobs = opts.jobs.max(1);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(worker);
        }
    });
    let failure = failure
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match failure {
        Some(e) => Err(e),
        None => Ok((
            written.into_inner(),
            zeroed.into_inner(),
            skipped.into_inner(),
        )),
    }
}

/// The open target as the workers write to it.
struct Target<'a> {
    /// For zeroing (fallocate) and the final sync.
    file: &'a File,
    /// For data.
    writer: &'a DirectFile,
    is_file: bool,
    shown: &'a str,
}

/// Writes one chunk of source data at `offset`, in runs of all-zero and not-all-zero
/// blocks of [`ZERO_BLOCK`]: runs of zeros are zeroed on the target (or skipped where it
/// already reads zero), so zero-filled areas of allocated images stay sparse on new files.
/// Returns (written, zeroed, skipped).
fn write_chunk(
    target: &Target<'_>,
    chunk: &[u8],
    offset: u64,
    known_zero_from: u64,
) -> Result<(u64, u64, u64), V2pError> {
    let (mut written, mut zeroed, mut skipped) = (0, 0, 0);
    let mut blocks = chunk.chunks(ZERO_BLOCK).peekable();
    let mut pos = offset;
    while let Some(first) = blocks.next() {
        let zero = converters::copy::is_zero(first);
        let mut len = first.len();
        while let Some(b) = blocks.next_if(|b| converters::copy::is_zero(b) == zero) {
            len += b.len();
        }
        let start = usize::try_from(pos - offset).unwrap_or(0);
        let run = &chunk[start..start + len];
        if zero {
            let (need, known) = split_known_zero(pos, len as u64, known_zero_from);
            zero_range(target.file, target.is_file, target.shown, pos, need)?;
            zeroed += need;
            skipped += known;
        } else {
            converters::sink::WriteAt::write_all_at(target.writer, run, pos).map_err(|e| {
                V2pError::Io(format!("{}: cannot write at {pos:#x}: {e}", target.shown))
            })?;
            written += len as u64;
        }
        pos += len as u64;
    }
    Ok((written, zeroed, skipped))
}

/// Records the first failure and tells the other workers to stop.
fn fail(stop: &AtomicBool, failure: &Mutex<Option<V2pError>>, e: V2pError) {
    stop.store(true, Ordering::Relaxed);
    let mut slot = failure
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if slot.is_none() {
        *slot = Some(e);
    }
}

/// Makes `[offset, offset+len)` of the target read zero. Files get their range punched
/// (stays sparse, frees the old blocks); devices get ZERO_RANGE, which the kernel turns
/// into WRITE ZEROES / discard-with-zeroing. Either falls back to writing zero buffers
/// when the filesystem or device cannot do it (EOPNOTSUPP, misaligned ranges).
fn zero_range(
    file: &File,
    is_file: bool,
    shown: &str,
    offset: u64,
    len: u64,
) -> Result<(), V2pError> {
    if len == 0 {
        return Ok(());
    }
    let flags = if is_file {
        FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE
    } else {
        FallocateFlags::ZERO_RANGE | FallocateFlags::KEEP_SIZE
    };
    if rustix::fs::fallocate(file, flags, offset, len).is_ok() {
        return Ok(());
    }
    if is_file
        && rustix::fs::fallocate(
            file,
            FallocateFlags::ZERO_RANGE | FallocateFlags::KEEP_SIZE,
            offset,
            len,
        )
        .is_ok()
    {
        return Ok(());
    }
    let zeros = vec![0u8; 1 << 20];
    let end = offset + len;
    let mut pos = offset;
    while pos < end {
        let n = usize::try_from((end - pos).min(zeros.len() as u64)).unwrap_or(zeros.len());
        file.write_all_at(&zeros[..n], pos)
            .map_err(|e| V2pError::Io(format!("{shown}: cannot zero at {pos:#x}: {e}")))?;
        pos += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use converters::{Extent, ExtentKind, LayerInfo};
    use std::sync::Arc;

    /// An in-memory disk with an explicit allocation map.
    struct MemSource {
        bytes: Vec<u8>,
        extents: Vec<Extent>,
    }

    impl DiskSource for MemSource {
        fn size(&self) -> u64 {
            self.bytes.len() as u64
        }
        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> converters::Result<()> {
            let o = offset as usize;
            buf.copy_from_slice(&self.bytes[o..o + buf.len()]);
            Ok(())
        }
        fn extent_at(&self, offset: u64, max_len: u64) -> converters::Result<Extent> {
            let e = self
                .extents
                .iter()
                .find(|e| e.offset <= offset && offset < e.end())
                .unwrap();
            Ok(Extent {
                offset,
                len: (e.end() - offset).min(max_len),
                kind: e.kind,
            })
        }
        fn layers(&self) -> Vec<LayerInfo> {
            Vec::new()
        }
    }

    const MIB: u64 = 1 << 20;

    /// 1 MiB data, 2 MiB zero, 2 MiB unallocated, 1 MiB all-zero data, 5 MiB data, then a
    /// 12 KiB unallocated tail (exercises an odd end and chunks that cross extents).
    fn sample() -> MemSource {
        let size = 11 * MIB + 12 * 1024;
        let mut bytes = vec![0u8; size as usize];
        let mut x = 0x1234_5678u32;
        let mut fill = |r: std::ops::Range<u64>, bytes: &mut Vec<u8>| {
            for b in &mut bytes[r.start as usize..r.end as usize] {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                *b = (x >> 16) as u8 | 1;
            }
        };
        fill(0..MIB, &mut bytes);
        fill(6 * MIB..11 * MIB, &mut bytes);
        let ext = |offset: u64, len: u64, kind| Extent { offset, len, kind };
        MemSource {
            bytes,
            extents: vec![
                ext(0, MIB, ExtentKind::Data),
                ext(MIB, 2 * MIB, ExtentKind::Zero),
                ext(3 * MIB, 2 * MIB, ExtentKind::Unallocated),
                ext(5 * MIB, MIB, ExtentKind::Data),
                ext(6 * MIB, 5 * MIB, ExtentKind::Data),
                ext(11 * MIB, 12 * 1024, ExtentKind::Unallocated),
            ],
        }
    }

    fn opts() -> WriteOptions {
        WriteOptions {
            jobs: 2,
            ..WriteOptions::default()
        }
    }

    #[test]
    fn new_file_gets_data_and_holes() {
        let src = sample();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.raw");
        let done = AtomicU64::new(0);
        let r = write_disk(&src, &path, &opts(), &|n| {
            done.fetch_add(n, Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), src.bytes);
        assert_eq!(r.target_kind, "file");
        assert_eq!(r.bytes_written, 6 * MIB);
        assert_eq!(r.bytes_zeroed, 0);
        assert_eq!(r.bytes_skipped, src.size() - 6 * MIB);
        assert_eq!(done.load(Ordering::Relaxed), src.size());
        // The zero ranges stayed holes (tmpfs and every Linux disk filesystem do sparse).
        let blocks = std::fs::metadata(&path).unwrap().blocks() * 512;
        assert!(blocks < 7 * MIB, "allocated {blocks}");
    }

    #[test]
    fn existing_ff_file_is_zeroed_where_source_is_zero() {
        for jobs in [1, 3] {
            let src = sample();
            let f = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(f.path(), vec![0xFFu8; src.bytes.len()]).unwrap();
            let o = WriteOptions { jobs, ..opts() };
            let r = write_disk(&src, f.path(), &o, &|_| {}).unwrap();
            assert_eq!(std::fs::read(f.path()).unwrap(), src.bytes);
            assert_eq!(r.bytes_written, 6 * MIB);
            assert_eq!(r.bytes_zeroed, src.size() - 6 * MIB);
            assert_eq!(r.bytes_skipped, 0);
        }
    }

    #[test]
    fn shorter_existing_file_is_extended() {
        let src = sample();
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), vec![0xFFu8; (2 * MIB) as usize]).unwrap();
        let r = write_disk(&src, f.path(), &opts(), &|_| {}).unwrap();
        assert_eq!(std::fs::read(f.path()).unwrap(), src.bytes);
        // Only the 1 MiB of zero extent inside the old 2 MiB needed zeroing.
        assert_eq!(r.bytes_zeroed, MIB);
        assert_eq!(r.target_size, src.size());
    }

    #[test]
    fn larger_existing_file_keeps_its_size_and_tail() {
        let src = sample();
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), vec![0xFFu8; (16 * MIB) as usize]).unwrap();
        let r = write_disk(&src, f.path(), &opts(), &|_| {}).unwrap();
        let got = std::fs::read(f.path()).unwrap();
        assert_eq!(got.len() as u64, 16 * MIB);
        assert_eq!(&got[..src.bytes.len()], &src.bytes[..]);
        assert!(got[src.bytes.len()..].iter().all(|&b| b == 0xFF));
        assert_eq!(r.target_size, 16 * MIB);
    }

    #[test]
    fn dry_run_writes_nothing() {
        let src = sample();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.raw");
        let o = WriteOptions {
            dry_run: true,
            ..opts()
        };
        let r = write_disk(&src, &path, &o, &|_| {}).unwrap();
        assert!(!path.exists());
        // Without reading, the all-zero data extent counts as written.
        assert_eq!(r.bytes_written, 7 * MIB);
        assert_eq!(r.bytes_skipped, src.size() - 7 * MIB);
    }

    #[test]
    fn cancel_interrupts_and_removes_a_new_file() {
        let src = sample();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.raw");
        let o = WriteOptions {
            cancel: Some(Arc::new(AtomicBool::new(true))),
            ..opts()
        };
        let err = write_disk(&src, &path, &o, &|_| {}).unwrap_err();
        assert!(matches!(err, V2pError::Interrupted(_)), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn partition_table_refused_before_writing() {
        let src = sample();
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut old = vec![0xFFu8; src.bytes.len()];
        old[510] = 0x55;
        old[511] = 0xAA;
        std::fs::write(f.path(), &old).unwrap();
        let err = write_disk(&src, f.path(), &opts(), &|_| {}).unwrap_err();
        assert!(matches!(err, V2pError::Refused(_)));
        assert_eq!(std::fs::read(f.path()).unwrap(), old);
        let o = WriteOptions {
            force: true,
            ..opts()
        };
        write_disk(&src, f.path(), &o, &|_| {}).unwrap();
        assert_eq!(std::fs::read(f.path()).unwrap(), src.bytes);
    }

    #[test]
    fn source_file_refused_as_target() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), vec![7u8; 1 << 20]).unwrap();
        let src = converters::raw::RawSource::open(f.path()).unwrap();
        let err = write_disk(&src, f.path(), &opts(), &|_| {}).unwrap_err();
        assert!(
            matches!(err, V2pError::Refused(ref m) if m.contains("source")),
            "{err}"
        );
    }
}

/// Block-device paths, run by hand against a scratch device whose contents are destroyed:
/// `FERRY_V2P_TEST_DEVICE=/dev/loop0 cargo test --release --lib v2p -- --ignored`
/// (e.g. after `losetup -f --show scratch.img` on a 64 MiB file).
#[cfg(test)]
mod device_tests {
    use super::*;
    use std::process::Command;

    fn device() -> Option<std::path::PathBuf> {
        std::env::var_os("FERRY_V2P_TEST_DEVICE").map(Into::into)
    }

    #[test]
    #[ignore = "needs FERRY_V2P_TEST_DEVICE, a scratch block device"]
    fn block_device_write_grow_and_mount_refusal() {
        let Some(dev) = device() else { return };
        let dev_size = converters::raw::device_size(&File::open(&dev).unwrap()).unwrap();
        // Old contents everywhere, no partition table.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&dev)
            .unwrap()
            .write_all_at(&vec![0xFFu8; dev_size as usize], 0)
            .unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&dev)
            .unwrap()
            .write_all_at(&[0u8; 2], 510)
            .unwrap();

        let dir = tempfile::tempdir().unwrap();
        let src_path = crate::v2p::grow::tests::mbr_ext4_image(dir.path());
        let src = converters::raw::RawSource::open(&src_path).unwrap();
        let opts = WriteOptions {
            grow: true,
            jobs: 2,
            ..WriteOptions::default()
        };
        let r = write_disk(&src, &dev, &opts, &|_| {}).unwrap();
        assert_eq!(r.target_kind, "block device");
        assert!(r.bytes_zeroed > 0);
        let g = r.grown.unwrap();
        assert!(g.filesystem_grown, "{}", g.note);
        assert_eq!(g.new_size, dev_size - (1 << 20));
        let spec = format!("{}?offset={}", dev.display(), 1 << 20);
        let fsck = Command::new("e2fsck")
            .args(["-fn", &spec])
            .output()
            .unwrap();
        assert!(fsck.status.success(), "{fsck:?}");
        // Bytes of the source outside the partition table and the filesystem's first
        // block group are as written: compare the whole source range except sector 0.
        let mut got = vec![0u8; src.size() as usize];
        File::open(&dev)
            .unwrap()
            .read_exact_at(&mut got, 0)
            .unwrap();
        assert_eq!(
            &got[512..1 << 20],
            &std::fs::read(&src_path).unwrap()[512..1 << 20]
        );

        // Now it has a partition table: refused without force.
        let again = write_disk(&src, &dev, &WriteOptions::default(), &|_| {});
        assert!(matches!(again, Err(V2pError::Refused(_))));

        // A mounted whole-device filesystem is refused even with force.
        let out = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&dev)
            .output()
            .unwrap();
        assert!(out.status.success());
        let mnt = tempfile::tempdir().unwrap();
        let m = Command::new("mount")
            .arg(&dev)
            .arg(mnt.path())
            .output()
            .unwrap();
        if m.status.success() {
            let force = WriteOptions {
                force: true,
                ..WriteOptions::default()
            };
            let err = write_disk(&src, &dev, &force, &|_| {}).unwrap_err();
            let _ = Command::new("umount").arg(mnt.path()).output();
            assert!(
                matches!(err, V2pError::Refused(ref m) if m.contains("mounted")),
                "{err}"
            );
        } else {
            eprintln!("mount unavailable, mount refusal not exercised: {m:?}");
        }
    }
}
