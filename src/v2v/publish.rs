//! Small outputs written whole under a temporary name and renamed, and the guard that
//! removes a failed run's outputs.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it into place.
pub fn write_staged(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".ferry-")
        .suffix(".ferry-tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Files a run has published; removed again on drop unless the run completed.
#[derive(Default)]
pub struct Written {
    paths: Vec<PathBuf>,
    kept: bool,
}

impl Written {
    pub fn add(&mut self, path: &Path) {
        self.paths.push(path.to_path_buf());
    }

    pub fn keep(&mut self) {
        self.kept = true;
    }
}

impl Drop for Written {
    fn drop(&mut self) {
        if !self.kept {
            for p in &self.paths {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.xml");
        {
            let mut w = Written::default();
            write_staged(&a, b"<domain/>").unwrap();
            w.add(&a);
        }
        assert!(!a.exists());
        let mut w = Written::default();
        write_staged(&a, b"<domain/>").unwrap();
        w.add(&a);
        w.keep();
        drop(w);
        assert_eq!(std::fs::read(&a).unwrap(), b"<domain/>");
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1);
    }
}
