//! Disks stored inside another file — an OVA is a tar whose members are the disks — opened
//! in place through an [`ImageFile`] window, so a 100 GiB appliance is never unpacked to a
//! temporary copy first.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::image_file::ImageFile;
use crate::probe::Format;
use crate::raw::RawSource;
use crate::source::DiskSource;

/// Opens the `len` bytes at `base` of `file` as a disk. `shown` names it in errors
/// (`web.ova/web-disk1.vmdk`). Without `format` the member is probed: single-file VMDK
/// or standalone qcow2; raw members must be named raw.
pub fn open_window(
    shown: &Path,
    file: Arc<File>,
    base: u64,
    len: u64,
    format: Option<Format>,
) -> Result<Box<dyn DiskSource>> {
    let window = ImageFile::window(shown, file, base, len);
    let format = match format {
        Some(f) => f,
        None => probe_window(&window)?,
    };
    match format {
        Format::Vmdk => crate::vmdk::open_embedded(window),
        Format::Qcow2 => {
            let (source, backing) = crate::qcow2::Qcow2Source::open_file(window)?;
            if backing.is_some() {
                return Err(Error::unsupported(
                    shown,
                    "a qcow2 with a backing file inside an archive",
                ));
            }
            Ok(Box::new(source))
        }
        Format::Raw => Ok(Box::new(RawSource::from_image_file(window))),
        other => Err(Error::unsupported(
            shown,
            format!("{} disks inside an archive", other.name()),
        )),
    }
}

fn probe_window(window: &ImageFile) -> Result<Format> {
    let mut head = [0u8; 8];
    let n = window.read_at_most(&mut head, 0, "header")?;
    match head.get(..n).unwrap_or_default() {
        h if h.starts_with(b"KDMV") => Ok(Format::Vmdk),
        h if h.starts_with(b"QFI\xfb") => Ok(Format::Qcow2),
        _ => Err(Error::UnknownFormat {
            path: window.path().to_path_buf(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn raw_member_reads_its_window_only() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let mut bytes = vec![0xAAu8; 512];
        bytes.extend(vec![0x55u8; 1024]);
        bytes.extend(vec![0xAAu8; 512]);
        f.write_all(&bytes).unwrap();
        let file = Arc::new(File::open(f.path()).unwrap());
        let disk =
            open_window(Path::new("x.ova/d.img"), file, 512, 1024, Some(Format::Raw)).unwrap();
        assert_eq!(disk.size(), 1024);
        let mut buf = vec![0u8; 1024];
        disk.read_exact_at(&mut buf, 0).unwrap();
        assert!(buf.iter().all(|&b| b == 0x55));
    }

    #[test]
    fn unknown_member_is_refused_by_name() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&[0u8; 4096]).unwrap();
        let file = Arc::new(File::open(f.path()).unwrap());
        let err = open_window(Path::new("x.ova/d.img"), file, 0, 4096, None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("x.ova/d.img"), "{err}");
    }
}
