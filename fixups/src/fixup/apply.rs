//! The one engine that writes [`Change`]s into a guest, with backups and conflict checks.
//!
//! Every change is checked against what its plan saw (a file's content, a length, a
//! symlink's target) before it is made, so a plan applied to a guest that changed since is
//! refused instead of clobbering. Backups are written once: a second run finds the
//! original's backup in place and leaves it, so `*.ferry-orig` always holds the guest as it
//! was before ferry first touched it.

use crate::guestfs::{FileKind, GuestFs, GuestPath};

use super::{backup_path, Change, FixupError};

/// Where removed symlinks are recorded (`PATH -> TARGET`, one per line): a symlink has no
/// content to back up, and a `foo.service.ferry-orig` link inside a `*.wants/` directory
/// would itself be read by systemd.
pub const SYMLINK_LOG: &str = "/var/lib/ferry/removed-symlinks";

/// Mode of directories the fixups create (`/etc/systemd/network`, `/var/lib/ferry`).
const DIR_MODE: u32 = 0o755;

/// Makes `changes` in order; stops at the first that cannot be made.
pub fn apply_changes(fs: &dyn GuestFs, changes: &[Change]) -> Result<(), FixupError> {
    for change in changes {
        apply_one(fs, change)?;
    }
    Ok(())
}

fn apply_one(fs: &dyn GuestFs, change: &Change) -> Result<(), FixupError> {
    match change {
        Change::WriteFile {
            path,
            before,
            after,
        } => {
            let current = read_if_file(fs, path)?;
            if &current != before {
                return Err(conflict(path, "changed since the plan was made"));
            }
            if let Some(original) = before {
                let real = fs.resolve(path)?;
                let backup = backup_path(&real)?;
                if !fs.exists(&backup)? {
                    fs.write_file(&backup, original)?;
                }
            } else if let Some(parent) = path.parent() {
                create_dir_all(fs, &parent)?;
            }
            fs.write_file(path, after)?;
        }
        Change::AppendFile {
            path,
            before_len,
            data,
            ..
        } => {
            let meta = fs.metadata(path)?;
            if meta.kind != FileKind::File || meta.size != *before_len {
                return Err(conflict(path, "changed since the plan was made"));
            }
            let real = fs.resolve(path)?;
            let backup = backup_path(&real)?;
            if !fs.exists(&backup)? {
                fs.copy_file(&real, &backup)?;
            }
            fs.append_file(&real, data)?;
        }
        Change::CreateSymlink { path, target } => {
            if let Some(parent) = path.parent() {
                create_dir_all(fs, &parent)?;
            }
            fs.symlink(path, target.as_bytes())?;
        }
        Change::RemoveSymlink { path, target } => {
            let current = fs.read_link(path)?;
            if current != target.as_bytes() {
                return Err(conflict(
                    path,
                    "symlink target changed since the plan was made",
                ));
            }
            let log = GuestPath::new(SYMLINK_LOG)?;
            if let Some(parent) = log.parent() {
                create_dir_all(fs, &parent)?;
            }
            let mut text = read_if_file(fs, &log)?.unwrap_or_default();
            text.extend_from_slice(format!("{path} -> {target}\n").as_bytes());
            fs.write_file(&log, &text)?;
            fs.remove(path)?;
        }
    }
    Ok(())
}

/// The content of the file `path` names, `None` when nothing is there.
pub fn read_if_file(fs: &dyn GuestFs, path: &GuestPath) -> Result<Option<Vec<u8>>, FixupError> {
    if !fs.exists(path)? {
        return Ok(None);
    }
    Ok(Some(fs.read_file(path)?))
}

/// `mkdir -p` inside the guest.
pub fn create_dir_all(fs: &dyn GuestFs, dir: &GuestPath) -> Result<(), FixupError> {
    let mut at = GuestPath::root();
    for name in dir.components() {
        at = at.join(name)?;
        if !fs.exists(&at)? {
            fs.create_dir(&at, DIR_MODE)?;
        }
    }
    Ok(())
}

fn conflict(path: &GuestPath, why: &str) -> FixupError {
    FixupError::Conflict {
        path: path.to_string(),
        why: why.to_string(),
    }
}
