//! Path resolution inside the guest, as Linux's `path_lookupat` does it but rooted at the
//! guest's `/` as if under `chroot`.
//!
//! The walk keeps a stack of components still to visit. Each existing component is
//! `lstat`ed through [`GuestFs::raw_metadata`]; a symlink's target is pushed onto the stack
//! (an absolute target first resets the walk to the guest root). `..` pops one component
//! of the resolved prefix and never goes above the root. The walk ends after
//! [`MAX_SYMLINKS`] symlinks with [`GuestFsError::SymlinkLoop`], and symlink targets are
//! bounded by [`PATH_MAX`], so hostile links cannot make it loop or grow without bound.

use super::path::{NAME_MAX, PATH_MAX};
use super::{FileKind, GuestFs, GuestFsError, GuestPath, Metadata, Result, MAX_SYMLINKS};

/// Where a walk ended.
#[derive(Debug)]
pub struct Walked {
    /// The resolved path: no symlink in it but possibly the last component (when not
    /// followed), no `.` or `..`.
    pub path: GuestPath,
    /// `lstat` of the last component, `None` when it does not exist (its parent does).
    pub metadata: Option<Metadata>,
}

impl Walked {
    /// The metadata, or [`GuestFsError::NotFound`] naming `asked`.
    pub fn existing(&self, asked: &GuestPath) -> Result<Metadata> {
        self.metadata.ok_or_else(|| GuestFsError::NotFound {
            path: asked.to_string(),
        })
    }
}

/// Resolve `path` inside the guest; `follow_last` says whether a final symlink is followed.
///
/// A missing last component is not an error (`metadata` is `None`); a missing or
/// non-directory intermediate one is.
pub fn walk<F: GuestFs + ?Sized>(fs: &F, path: &GuestPath, follow_last: bool) -> Result<Walked> {
    let mut todo: Vec<Vec<u8>> = path.components().rev().map(<[u8]>::to_vec).collect();
    let mut current = GuestPath::root();
    let mut current_meta: Option<Metadata> = None;
    let mut links = 0u32;
    while let Some(name) = todo.pop() {
        let is_last = todo.is_empty();
        if name == b".." {
            current.pop();
            current_meta = None;
            continue;
        }
        let mut next = current.clone();
        next.push_raw(name);
        let meta = match fs.raw_metadata(&next) {
            Ok(meta) => meta,
            Err(GuestFsError::NotFound { .. }) if is_last => {
                return Ok(Walked {
                    path: next,
                    metadata: None,
                })
            }
            Err(e) => return Err(e),
        };
        if meta.kind == FileKind::Symlink && (follow_last || !is_last) {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(GuestFsError::SymlinkLoop {
                    path: path.to_string(),
                });
            }
            let target = fs.raw_read_link(&next)?;
            push_target(&mut todo, &mut current, &target, &next)?;
            current_meta = None;
            continue;
        }
        if !is_last && meta.kind != FileKind::Dir {
            return Err(GuestFsError::NotADirectory {
                path: next.to_string(),
            });
        }
        current = next;
        current_meta = Some(meta);
    }
    // Ended on the root, a `..`, or a symlink whose target ended so: stat what we reached.
    let metadata = match current_meta {
        Some(meta) => meta,
        None => fs.raw_metadata(&current)?,
    };
    Ok(Walked {
        path: current,
        metadata: Some(metadata),
    })
}

/// Queue the components of symlink `link`'s `target` to be walked next.
fn push_target(
    todo: &mut Vec<Vec<u8>>,
    current: &mut GuestPath,
    target: &[u8],
    link: &GuestPath,
) -> Result<()> {
    let corrupt = |what: &str| GuestFsError::Corrupt {
        path: link.to_string(),
        what: what.to_string(),
    };
    if target.is_empty() {
        return Err(GuestFsError::NotFound {
            path: link.to_string(),
        });
    }
    if target.len() > PATH_MAX || target.contains(&0) {
        return Err(corrupt(
            "symlink target longer than PATH_MAX or holding a NUL",
        ));
    }
    if target.first() == Some(&b'/') {
        *current = GuestPath::root();
    }
    for name in target.rsplit(|&b| b == b'/') {
        if name.is_empty() || name == b"." {
            continue;
        }
        if name.len() > NAME_MAX {
            return Err(corrupt("symlink target has a name longer than NAME_MAX"));
        }
        todo.push(name.to_vec());
    }
    // Bound the stack whatever the links contain: 40 links of PATH_MAX bytes at most.
    let pending: usize = todo.iter().map(|n| n.len().saturating_add(1)).sum();
    if pending > PATH_MAX.saturating_mul(MAX_SYMLINKS as usize + 1) {
        return Err(corrupt("symlink expansion too long"));
    }
    Ok(())
}
