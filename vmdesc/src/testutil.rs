//! Scaffolding shared by the readers' tests: finding the shared corpus, walking it and
//! reading its MANIFEST. Tests skip (with a note) rather than fail when the corpus is
//! not checked out next to the workspace.

use std::path::{Path, PathBuf};

/// The shared corpus, or `None` (after saying so) when it is absent.
pub(crate) fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    if dir.join("MANIFEST.tsv").is_file() {
        Some(dir)
    } else {
        eprintln!("corpus absent at {}: skipped", dir.display());
        None
    }
}

/// A corpus file by its MANIFEST path, or `None` when the corpus or the file is absent.
pub(crate) fn corpus_file(rel: &str) -> Option<PathBuf> {
    let path = corpus()?.join(rel);
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("{rel} absent: skipped");
        None
    }
}

/// Every file under `dir`, recursively, in a stable order.
pub(crate) fn all_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// Every file under `dir` whose extension is `ext`, in any case.
pub(crate) fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    all_files(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case(ext)))
        .collect()
}

/// One MANIFEST.tsv row, the columns the tests use.
pub(crate) struct ManifestRow {
    /// Relative to the corpus root.
    pub path: String,
    /// `vmx`, `ovf`, `ova`, `xl-cfg`, `disk-image`, …
    pub kind: String,
}

pub(crate) fn manifest_rows(corpus: &Path) -> Vec<ManifestRow> {
    let text = std::fs::read_to_string(corpus.join("MANIFEST.tsv"))
        .unwrap_or_else(|e| panic!("MANIFEST.tsv: {e}"));
    text.lines()
        .skip(1)
        .filter_map(|row| {
            let mut cols = row.split('\t');
            let path = cols.next()?.to_string();
            let kind = cols.nth(2)?.to_string();
            Some(ManifestRow { path, kind })
        })
        .collect()
}

pub(crate) fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}
