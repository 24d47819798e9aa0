//! Reading a guest for a plan, shared by the network, consoles and tools fixups.
//!
//! A plan's `WriteFile::before` must be exactly what the engine reads back at apply time,
//! so files are read as bytes, never decoded. Guest entries are hostile: something that
//! is not a readable regular file of configuration size (a directory, a device node, a
//! symlink loop or a dangling link, a huge file) is reported as [`Entry::Unusable`], so
//! a fixup leaves it alone instead of failing the whole run. Only I/O errors and
//! filesystem corruption are errors.

use crate::guestfs::{FileKind, GuestFs, GuestFsError, GuestPath};
use crate::inspect::read::MAX_CONFIG_BYTES;

use super::{Change, FixupError};

/// What a guest path holds, as far as editing it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(in crate::fixup) enum Entry {
    /// Nothing is there (the parent directories may be missing too).
    Absent,
    /// A regular file (possibly through symlinks) and its bytes.
    File(Vec<u8>),
    /// Something ferry must not edit or replace, and why.
    Unusable(String),
}

/// Errors that say something about the entry, not about the filesystem: the entry is
/// unusable, the run goes on.
fn entry_error(e: &GuestFsError) -> bool {
    matches!(
        e,
        GuestFsError::NotADirectory { .. }
            | GuestFsError::IsADirectory { .. }
            | GuestFsError::NotAFile { .. }
            | GuestFsError::NotASymlink { .. }
            | GuestFsError::SymlinkLoop { .. }
            | GuestFsError::TooLarge { .. }
            | GuestFsError::InvalidPath { .. }
            | GuestFsError::Unsupported { .. }
    )
}

/// What `path` holds: its bytes when it is a regular file of at most
/// [`MAX_CONFIG_BYTES`].
pub(in crate::fixup) fn entry(fs: &dyn GuestFs, path: &GuestPath) -> Result<Entry, FixupError> {
    match fs.symlink_metadata(path) {
        Ok(_) => {}
        Err(e) if e.is_not_found() => return Ok(Entry::Absent),
        Err(e) if entry_error(&e) => return Ok(Entry::Unusable(e.to_string())),
        Err(e) => return Err(e.into()),
    }
    let meta = match fs.metadata(path) {
        Ok(meta) => meta,
        // The entry exists but does not resolve: a dangling symlink. Writing through it
        // would create a file wherever it points.
        Err(e) if e.is_not_found() || entry_error(&e) => {
            return Ok(Entry::Unusable(format!(
                "{path}: dangling or looping symlink"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if meta.kind != FileKind::File {
        return Ok(Entry::Unusable(format!("{path}: not a regular file")));
    }
    if meta.size > MAX_CONFIG_BYTES {
        return Ok(Entry::Unusable(format!(
            "{path}: {} bytes is too large for a configuration file",
            meta.size
        )));
    }
    match fs.read_file(path) {
        Ok(data) => Ok(Entry::File(data)),
        Err(e) if entry_error(&e) => Ok(Entry::Unusable(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// The bytes of the regular file `path`, `None` when it is absent or unusable.
pub(in crate::fixup) fn read_config(
    fs: &dyn GuestFs,
    path: &GuestPath,
) -> Result<Option<Vec<u8>>, FixupError> {
    Ok(match entry(fs, path)? {
        Entry::File(data) => Some(data),
        Entry::Absent | Entry::Unusable(_) => None,
    })
}

/// The kind of the entry `path` itself (a final symlink not followed), `None` when
/// absent or unreachable.
pub(in crate::fixup) fn lstat_kind(
    fs: &dyn GuestFs,
    path: &GuestPath,
) -> Result<Option<FileKind>, FixupError> {
    match fs.symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta.kind)),
        Err(e) if e.is_not_found() || entry_error(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The kind of what `path` names once symlinks are followed, `None` when absent,
/// dangling or unreachable.
pub(in crate::fixup) fn stat_kind(
    fs: &dyn GuestFs,
    path: &GuestPath,
) -> Result<Option<FileKind>, FixupError> {
    match fs.metadata(path) {
        Ok(meta) => Ok(Some(meta.kind)),
        Err(e) if e.is_not_found() || entry_error(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The target of the symlink `path`, `None` when it is not a readable symlink.
pub(in crate::fixup) fn link_target(
    fs: &dyn GuestFs,
    path: &GuestPath,
) -> Result<Option<Vec<u8>>, FixupError> {
    if lstat_kind(fs, path)? != Some(FileKind::Symlink) {
        return Ok(None);
    }
    match fs.read_link(path) {
        Ok(target) => Ok(Some(target)),
        Err(e) if e.is_not_found() || entry_error(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The guest path `path` names with every symlink followed, `None` when it names nothing.
pub(in crate::fixup) fn resolved(
    fs: &dyn GuestFs,
    path: &GuestPath,
) -> Result<Option<GuestPath>, FixupError> {
    match fs.resolve(path) {
        Ok(p) => Ok(Some(p)),
        Err(e) if e.is_not_found() || entry_error(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A [`GuestPath`] from a literal.
pub(in crate::fixup) fn gpath(path: &str) -> Result<GuestPath, FixupError> {
    Ok(GuestPath::new(path)?)
}

/// The `WriteFile` that turns `before` into `after`, `None` when they are equal.
pub(in crate::fixup) fn write_change(
    path: &GuestPath,
    before: Option<Vec<u8>>,
    after: Vec<u8>,
) -> Option<Change> {
    if before.as_deref() == Some(after.as_slice()) {
        return None;
    }
    Some(Change::WriteFile {
        path: path.clone(),
        before,
        after,
    })
}

/// Lines of `data` with their line ends, so that unchanged lines are copied back exactly
/// (CRLF, a missing final newline and non-UTF-8 bytes included).
pub(in crate::fixup) fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split_inclusive(|&b| b == b'\n')
}

/// A line without its line end (`\n` or `\r\n`), and that end.
pub(in crate::fixup) fn split_eol(line: &[u8]) -> (&[u8], &[u8]) {
    let body_len = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))
        .map_or(line.len(), <[u8]>::len);
    line.split_at(body_len)
}

/// Whether a line is blank or a `#` comment.
pub(in crate::fixup) fn is_comment_or_blank(line: &[u8]) -> bool {
    match line.iter().find(|b| !b.is_ascii_whitespace()) {
        None => true,
        Some(&b) => b == b'#',
    }
}

/// The prefix ferry puts before a line it disables, so it is found (and restored) by
/// grepping for it.
pub(in crate::fixup) const DISABLED_PREFIX: &[u8] = b"# ferry: ";

/// `line` commented out with [`DISABLED_PREFIX`], its bytes otherwise kept.
pub(in crate::fixup) fn disable_line(line: &[u8]) -> Vec<u8> {
    let mut out = DISABLED_PREFIX.to_vec();
    out.extend_from_slice(line);
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
pub(in crate::fixup) mod testing {
    //! Helpers of the fixups' unit tests: plan on a `MemFs` guest, apply, plan again.

    use super::super::{apply, Change, GuestContext, GuestFixup, Plan, Target, TargetNic};
    use crate::guestfs::memfs::MemFs;
    use crate::guestfs::{GuestFs, GuestPath};
    use crate::inspect::inspect_filesystem;

    pub fn p(s: &str) -> GuestPath {
        GuestPath::new(s).unwrap()
    }

    /// The plan of `fixup` on `fs` for KVM, inspected afresh as `run_fixups` does.
    pub fn plan(fixup: &dyn GuestFixup, fs: &MemFs, nics: &[&str]) -> Plan {
        plan_for(fixup, fs, nics, Target::Kvm)
    }

    /// [`plan`] for `target`.
    pub fn plan_for(fixup: &dyn GuestFixup, fs: &MemFs, nics: &[&str], target: Target) -> Plan {
        with_context(fs, nics, target, |ctx| fixup.plan(ctx).unwrap())
    }

    /// The notes of `fixup` on `fs` for `target`.
    pub fn notes_for(
        fixup: &dyn GuestFixup,
        fs: &MemFs,
        nics: &[&str],
        target: Target,
    ) -> Vec<String> {
        with_context(fs, nics, target, |ctx| fixup.notes(ctx).unwrap())
    }

    fn with_context<R>(
        fs: &MemFs,
        nics: &[&str],
        target: Target,
        f: impl FnOnce(&GuestContext<'_>) -> R,
    ) -> R {
        let os = inspect_filesystem(fs).unwrap().expect("an OS root");
        let nics: Vec<TargetNic> = nics
            .iter()
            .map(|m| match m.split_once('=') {
                Some((name, mac)) => TargetNic {
                    mac: mac.to_string(),
                    name: Some(name.to_string()),
                },
                None => TargetNic {
                    mac: (*m).to_string(),
                    name: None,
                },
            })
            .collect();
        let ctx = GuestContext {
            fs,
            os: &os,
            partitions: &[],
            nics: &nics,
            target,
        };
        f(&ctx)
    }

    /// The changes of a plan that must have some.
    pub fn changes(plan: Plan) -> Vec<Change> {
        match plan {
            Plan::Changes(c) if !c.is_empty() => c,
            other => panic!("expected changes, got {other:?}"),
        }
    }

    /// Plan, apply, and check that a second plan on the fixed guest changes nothing.
    /// Returns the changes made.
    pub fn fix(fixup: &dyn GuestFixup, fs: &MemFs, nics: &[&str]) -> Vec<Change> {
        fix_for(fixup, fs, nics, Target::Kvm)
    }

    /// [`fix`] for `target`.
    pub fn fix_for(
        fixup: &dyn GuestFixup,
        fs: &MemFs,
        nics: &[&str],
        target: Target,
    ) -> Vec<Change> {
        let first = changes(plan_for(fixup, fs, nics, target));
        apply::apply_changes(fs, &first).unwrap();
        match plan_for(fixup, fs, nics, target) {
            Plan::Changes(again) => assert!(again.is_empty(), "second run plans {again:#?}"),
            Plan::Skip(_) => {}
        }
        first
    }

    /// The text of a guest file.
    pub fn text(fs: &MemFs, path: &str) -> String {
        String::from_utf8(fs.read_file(&p(path)).unwrap()).unwrap()
    }

    /// The change at `path`.
    pub fn change_at<'a>(changes: &'a [Change], path: &str) -> &'a Change {
        changes
            .iter()
            .find(|c| c.path().to_string() == path)
            .unwrap_or_else(|| panic!("no change at {path} in {changes:#?}"))
    }
}
