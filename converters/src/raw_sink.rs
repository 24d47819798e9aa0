//! Raw output: a sparse regular file (written under a temporary name and renamed by
//! `finish`) or a block device (written in place; zero ranges zeroed with
//! `fallocate(ZERO_RANGE)`, which Linux turns into `BLKZEROOUT`/discard on devices).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::FallocateFlags;
use tempfile::NamedTempFile;

use crate::compress::Compression;
use crate::direct::DirectFile;
use crate::error::{Error, Result};
use crate::sink::{DiskSink, Placement, SinkSummary};

/// Zero detection and writes work in 4 KiB units, the page and filesystem block size.
const RAW_GRANULARITY: u64 = 4096;

enum Target {
    /// A regular file being built under a temporary name.
    Staged(NamedTempFile),
    /// A block device, written in place.
    Device(File),
}

pub struct RawSink {
    path: PathBuf,
    target: Target,
    /// Where workers write data: the output, bypassing the page cache where it can.
    writer: Arc<DirectFile>,
    shared_path: Arc<Path>,
    virtual_size: u64,
    stored_bytes: u64,
}

impl RawSink {
    pub fn create(path: &Path, virtual_size: u64) -> Result<Self> {
        let is_device = std::fs::metadata(path)
            .map(|m| !m.is_file() && !m.is_dir())
            .unwrap_or(false);
        let target = if is_device {
            let dev = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| Error::io(path, "cannot open device for writing", e))?;
            let dev_size =
                crate::raw::device_size(&dev).map_err(|e| Error::io(path, "cannot size", e))?;
            if dev_size < virtual_size {
                return Err(Error::invalid_request(
                    path,
                    format!("device holds {dev_size:#x} bytes, the disk needs {virtual_size:#x}"),
                ));
            }
            Target::Device(dev)
        } else {
            let staged = staged_file(path)?;
            staged
                .as_file()
                .set_len(virtual_size)
                .map_err(|e| Error::io(path, "cannot size output", e))?;
            Target::Staged(staged)
        };
        let (handle, open_path) = match &target {
            Target::Staged(t) => (t.as_file(), t.path()),
            Target::Device(f) => (f, path),
        };
        let writer = handle
            .try_clone()
            .map_err(|e| Error::io(path, "cannot duplicate output handle", e))?;
        let writer = Arc::new(DirectFile::open(open_path, Arc::new(writer)));
        Ok(RawSink {
            path: path.to_path_buf(),
            target,
            writer,
            shared_path: Arc::from(path),
            virtual_size,
            stored_bytes: 0,
        })
    }
}

/// A temporary file next to `path`, so the final rename stays on one filesystem.
pub fn staged_file(path: &Path) -> Result<NamedTempFile> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".ferry-tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io(path, "cannot create temporary output", e))
}

/// Syncs a staged file and moves it under its final name.
pub fn publish_staged(staged: NamedTempFile, path: &Path) -> Result<()> {
    staged
        .as_file()
        .sync_all()
        .map_err(|e| Error::io(path, "cannot sync output", e))?;
    staged
        .persist(path)
        .map_err(|e| Error::io(path, "cannot rename output into place", e.error))?;
    Ok(())
}

impl DiskSink for RawSink {
    fn granularity(&self) -> u64 {
        RAW_GRANULARITY
    }

    fn compression(&self) -> Option<Compression> {
        None
    }

    fn place_data(&mut self, offset: u64, len: u64) -> Result<Placement> {
        let end = offset.checked_add(len);
        if end.is_none_or(|e| e > self.virtual_size) {
            return Err(Error::invalid_request(
                &self.path,
                format!("write at {offset:#x} runs past the end of the disk"),
            ));
        }
        self.stored_bytes += len;
        Ok(Placement {
            target: self.writer.clone(),
            host_offset: offset,
            path: self.shared_path.clone(),
        })
    }

    fn write_compressed_cluster(&mut self, _compressed: &[u8], offset: u64) -> Result<()> {
        Err(Error::invalid_request(
            &self.path,
            format!("raw output cannot store a compressed cluster (at {offset:#x})"),
        ))
    }

    fn write_zeroes(&mut self, offset: u64, len: u64) -> Result<()> {
        // A fresh sparse file already reads zero; only devices may hold old data.
        let Target::Device(dev) = &self.target else {
            return Ok(());
        };
        match rustix::fs::fallocate(dev, FallocateFlags::ZERO_RANGE, offset, len) {
            Ok(()) => Ok(()),
            Err(_) => write_zero_buffers(dev, &self.path, offset, len),
        }
    }

    fn finish(self: Box<Self>) -> Result<SinkSummary> {
        let RawSink {
            path,
            target,
            virtual_size,
            stored_bytes,
            ..
        } = *self;
        match target {
            Target::Staged(staged) => publish_staged(staged, &path)?,
            Target::Device(dev) => dev
                .sync_all()
                .map_err(|e| Error::io(&path, "cannot sync device", e))?,
        }
        Ok(SinkSummary {
            file_size: virtual_size,
            stored_bytes,
            compressed_clusters: 0,
        })
    }
}

/// Fallback for devices that cannot zero a range by themselves.
fn write_zero_buffers(dev: &File, path: &Path, offset: u64, len: u64) -> Result<()> {
    let zeros = vec![0u8; 1 << 20];
    let mut pos = offset;
    let end = offset + len;
    while pos < end {
        let n = usize::try_from((end - pos).min(zeros.len() as u64)).unwrap_or(zeros.len());
        dev.write_all_at(&zeros[..n], pos)
            .map_err(|e| Error::io(path, format!("cannot zero at {pos:#x}"), e))?;
        pos += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_appears_only_after_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.raw");
        let mut sink = Box::new(RawSink::create(&path, 1 << 20).unwrap());
        sink.write_all_at(&[7u8; 4096], 8192).unwrap();
        assert!(!path.exists());
        sink.finish().unwrap();
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data.len(), 1 << 20);
        assert_eq!(&data[8192..12288], &[7u8; 4096][..]);
    }

    #[test]
    fn dropped_sink_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.raw");
        let sink = RawSink::create(&path, 1 << 20).unwrap();
        drop(sink);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
