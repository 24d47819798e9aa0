//! Bounded, forgiving reads of guest configuration for inspection.
//!
//! Guest files are hostile input: a configuration file is read only up to
//! [`MAX_CONFIG_BYTES`], a directory contributes at most [`MAX_DIR_ENTRIES`] names, and one
//! inspection reads at most [`MAX_TOTAL_BYTES`] in all. Text is decoded lossily, so
//! non-UTF-8 bytes never stop inspection.
//!
//! Error policy: a missing file (or a missing parent directory) is simply absent. A file
//! that cannot be read as configuration (a directory, a device node, a symlink loop, too
//! large, an invalid name) is skipped with a warning. Anything else, notably I/O errors
//! and filesystem corruption, is returned as an [`InspectError`].

use std::cell::{Cell, RefCell};

use super::InspectError;
use crate::guestfs::{DirEntry, FileKind, GuestFs, GuestFsError, GuestPath};

/// Largest configuration file read: real ones are a few KiB.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Most entries taken from one directory (after sorting by name).
pub const MAX_DIR_ENTRIES: usize = 256;
/// Most bytes of configuration read by one inspection.
pub const MAX_TOTAL_BYTES: u64 = 64 << 20;

/// Names of editor, package manager and ferry backups: never live configuration.
const BACKUP_SUFFIXES: &[&str] = &[
    ".ferry-orig",
    "~",
    ".bak",
    ".orig",
    ".old",
    ".dpkg-old",
    ".dpkg-dist",
    ".dpkg-new",
    ".rpmsave",
    ".rpmnew",
    ".rpmorig",
];

/// A guest filesystem seen through the inspection error policy, collecting warnings.
pub struct Reader<'a> {
    fs: &'a dyn GuestFs,
    read_bytes: Cell<u64>,
    warnings: RefCell<Vec<String>>,
}

impl<'a> Reader<'a> {
    pub fn new(fs: &'a dyn GuestFs) -> Self {
        Self {
            fs,
            read_bytes: Cell::new(0),
            warnings: RefCell::new(Vec::new()),
        }
    }

    /// The warnings collected so far, in order.
    pub fn into_warnings(self) -> Vec<String> {
        self.warnings.into_inner()
    }

    pub fn warn(&self, message: String) {
        self.warnings.borrow_mut().push(message);
    }

    /// Sort an error into absent (`Ok(None)`), skipped with a warning, or fatal.
    fn tolerate<T>(&self, result: Result<T, GuestFsError>) -> Result<Option<T>, InspectError> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(GuestFsError::NotFound { .. } | GuestFsError::NotADirectory { .. }) => Ok(None),
            Err(
                e @ (GuestFsError::IsADirectory { .. }
                | GuestFsError::NotAFile { .. }
                | GuestFsError::NotASymlink { .. }
                | GuestFsError::SymlinkLoop { .. }
                | GuestFsError::TooLarge { .. }
                | GuestFsError::InvalidPath { .. }
                | GuestFsError::Unsupported { .. }),
            ) => {
                self.warn(format!("skipped {e}"));
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The text of the file `path` names (symlinks followed), `None` when absent or skipped.
    pub fn text(&self, path: &GuestPath) -> Result<Option<String>, InspectError> {
        if self.read_bytes.get() >= MAX_TOTAL_BYTES {
            self.warn(format!(
                "skipped {path}: inspection already read {MAX_TOTAL_BYTES} bytes"
            ));
            return Ok(None);
        }
        let data = self.tolerate(
            self.fs
                .resolve(path)
                .and_then(|resolved| self.fs.raw_read(&resolved, MAX_CONFIG_BYTES)),
        )?;
        Ok(data.map(|bytes| {
            let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
            self.read_bytes
                .set(self.read_bytes.get().saturating_add(len));
            String::from_utf8_lossy(&bytes).into_owned()
        }))
    }

    /// [`Self::text`] of a path written as a literal.
    pub fn text_at(&self, path: &str) -> Result<Option<String>, InspectError> {
        self.text(&GuestPath::new(path)?)
    }

    /// The kind of what `path` names once symlinks are followed, `None` when absent.
    pub fn kind(&self, path: &GuestPath) -> Result<Option<FileKind>, InspectError> {
        Ok(self.tolerate(self.fs.metadata(path))?.map(|m| m.kind))
    }

    /// Whether `path` (a literal) names anything, symlinks followed.
    pub fn exists(&self, path: &str) -> Result<bool, InspectError> {
        Ok(self.kind(&GuestPath::new(path)?)?.is_some())
    }

    /// Whether `path` (a literal) names a directory, symlinks followed.
    pub fn is_dir(&self, path: &str) -> Result<bool, InspectError> {
        Ok(self.kind(&GuestPath::new(path)?)? == Some(FileKind::Dir))
    }

    /// Whether `path` (a literal) names a regular file, symlinks followed.
    pub fn is_file(&self, path: &str) -> Result<bool, InspectError> {
        Ok(self.kind(&GuestPath::new(path)?)? == Some(FileKind::File))
    }

    /// The guest path `path` names with every symlink followed, `None` when absent.
    pub fn resolve(&self, path: &str) -> Result<Option<GuestPath>, InspectError> {
        self.tolerate(self.fs.resolve(&GuestPath::new(path)?))
    }

    /// Whether the entry itself exists, a final symlink not followed (a dangling link does).
    pub fn lexists(&self, path: &GuestPath) -> Result<bool, InspectError> {
        Ok(self.tolerate(self.fs.symlink_metadata(path))?.is_some())
    }

    /// Entries of the directory `dir`, sorted, at most [`MAX_DIR_ENTRIES`]; empty when
    /// absent. Backup files (`*.ferry-orig`, `*~`, `*.rpmsave`, …) are left out.
    pub fn list(&self, dir: &str) -> Result<Vec<(GuestPath, DirEntry)>, InspectError> {
        let dir = GuestPath::new(dir)?;
        let Some(mut entries) = self.tolerate(self.fs.read_dir(&dir))? else {
            return Ok(Vec::new());
        };
        entries.retain(|e| !is_backup(&e.name));
        if entries.len() > MAX_DIR_ENTRIES {
            self.warn(format!(
                "{dir}: only the first {MAX_DIR_ENTRIES} of {} entries inspected",
                entries.len()
            ));
            entries.truncate(MAX_DIR_ENTRIES);
        }
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            if let Some(path) = self.tolerate(dir.join(&entry.name))? {
                out.push((path, entry));
            }
        }
        Ok(out)
    }

    /// The entries of `dir` whose names end with `suffix` (any name when empty) and start
    /// with `prefix`, as paths.
    pub fn list_matching(
        &self,
        dir: &str,
        prefix: &str,
        suffix: &str,
    ) -> Result<Vec<GuestPath>, InspectError> {
        Ok(self
            .list(dir)?
            .into_iter()
            .filter(|(_, e)| e.name.starts_with(prefix.as_bytes()))
            .filter(|(_, e)| e.name.ends_with(suffix.as_bytes()))
            .map(|(path, _)| path)
            .collect())
    }
}

fn is_backup(name: &[u8]) -> bool {
    BACKUP_SUFFIXES.iter().any(|s| name.ends_with(s.as_bytes()))
}

/// The file name of `path` as (lossy) text.
pub fn file_name(path: &GuestPath) -> String {
    String::from_utf8_lossy(path.file_name().unwrap_or_default()).into_owned()
}

/// Lines of `text` with surrounding blanks removed, without blank and `#` comment lines.
pub fn config_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Remove one pair of matching surrounding quotes (`"…"` or `'…'`).
pub fn unquote(value: &str) -> &str {
    let value = value.trim();
    for q in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(q) && value.ends_with(q) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

/// A MAC address as lowercase `aa:bb:cc:dd:ee:ff`, from `:`/`-` separated hex or
/// NetworkManager's old `0;17;34;51;68;85` decimal list; `None` when it is not one.
pub fn normalize_mac(raw: &str) -> Option<String> {
    let raw = unquote(raw);
    let octets: Option<Vec<u8>> = if raw.contains(';') {
        let parts = raw.trim_end_matches(';').split(';');
        parts.map(|p| p.trim().parse::<u8>().ok()).collect()
    } else {
        let parts = raw.split([':', '-']);
        parts
            .map(|p| {
                let ok = (1..=2).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_hexdigit());
                ok.then(|| u8::from_str_radix(p, 16).ok()).flatten()
            })
            .collect()
    };
    let octets = octets?;
    if octets.len() != 6 {
        return None;
    }
    let hex: Vec<String> = octets.iter().map(|b| format!("{b:02x}")).collect();
    Some(hex.join(":"))
}
