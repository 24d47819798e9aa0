//! `GuestPath`: an absolute path inside the guest filesystem.
//!
//! A guest path is bytes (Linux file names need not be UTF-8), always absolute, with no
//! empty or `.` components. `..` components are kept: whether `a/b/..` is `a` depends on
//! whether `b` is a symlink, so only the resolver in [`super::resolve`] may apply them, and
//! it never climbs above the guest root. There is deliberately no conversion to a host
//! `std::path::Path`: a guest path is never joined onto a host path, so nothing a guest
//! stores (a symlink, a name) can make ferry touch a host file.

use std::fmt;

use super::GuestFsError;

/// Longest path accepted, as Linux's `PATH_MAX`.
pub const PATH_MAX: usize = 4096;
/// Longest file name accepted, as ext4's `EXT4_NAME_LEN`.
pub const NAME_MAX: usize = 255;

/// A normalized absolute path inside the guest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct GuestPath {
    components: Vec<Vec<u8>>,
}

impl GuestPath {
    /// The guest root, `/`.
    pub fn root() -> Self {
        Self::default()
    }

    /// Parse an absolute guest path such as `/etc/fstab`; `//` and `.` are dropped.
    pub fn new(path: impl AsRef<[u8]>) -> Result<Self, GuestFsError> {
        let bytes = path.as_ref();
        let invalid = |reason| GuestFsError::InvalidPath {
            path: String::from_utf8_lossy(bytes).into_owned(),
            reason,
        };
        if bytes.first() != Some(&b'/') {
            return Err(invalid("not absolute"));
        }
        if bytes.len() > PATH_MAX {
            return Err(invalid("longer than PATH_MAX"));
        }
        if bytes.contains(&0) {
            return Err(invalid("contains a NUL byte"));
        }
        let mut out = Self::root();
        for name in bytes.split(|&b| b == b'/') {
            if name.is_empty() || name == b"." {
                continue;
            }
            if name.len() > NAME_MAX {
                return Err(invalid("a component is longer than NAME_MAX"));
            }
            out.components.push(name.to_vec());
        }
        Ok(out)
    }

    /// This path with one more component; `name` must be a single file name.
    pub fn join(&self, name: &[u8]) -> Result<Self, GuestFsError> {
        let bad = name.is_empty()
            || name.len() > NAME_MAX
            || name.contains(&b'/')
            || name.contains(&0)
            || name == b"."
            || name == b"..";
        if bad {
            return Err(GuestFsError::InvalidPath {
                path: format!("{self}/{}", String::from_utf8_lossy(name)),
                reason: "not a single file name",
            });
        }
        let mut out = self.clone();
        out.components.push(name.to_vec());
        Ok(out)
    }

    /// The components, outermost first; empty for the root.
    pub fn components(&self) -> impl ExactSizeIterator<Item = &[u8]> + DoubleEndedIterator {
        self.components.iter().map(Vec::as_slice)
    }

    /// The last component, `None` for the root.
    pub fn file_name(&self) -> Option<&[u8]> {
        self.components.last().map(Vec::as_slice)
    }

    /// The containing directory, `None` for the root.
    pub fn parent(&self) -> Option<Self> {
        let (_, rest) = self.components.split_last()?;
        Some(Self {
            components: rest.to_vec(),
        })
    }

    /// Whether this is `/`.
    pub fn is_root(&self) -> bool {
        self.components.is_empty()
    }

    /// The path as bytes, `/a/b`.
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.components.is_empty() {
            return b"/".to_vec();
        }
        let mut out = Vec::new();
        for name in &self.components {
            out.push(b'/');
            out.extend_from_slice(name);
        }
        out
    }

    /// The path as UTF-8, `None` when a component is not UTF-8.
    pub fn to_str(&self) -> Option<String> {
        String::from_utf8(self.to_bytes()).ok()
    }

    /// Append `suffix` to the last component (`/etc/fstab` → `/etc/fstab.ferry-orig`).
    pub fn with_suffix(&self, suffix: &str) -> Result<Self, GuestFsError> {
        let (parent, name) = match (self.parent(), self.file_name()) {
            (Some(parent), Some(name)) => (parent, name),
            _ => {
                return Err(GuestFsError::InvalidPath {
                    path: self.to_string(),
                    reason: "the root has no name to extend",
                })
            }
        };
        let mut new_name = name.to_vec();
        new_name.extend_from_slice(suffix.as_bytes());
        parent.join(&new_name)
    }

    pub(crate) fn push_raw(&mut self, name: Vec<u8>) {
        self.components.push(name);
    }

    pub(crate) fn pop(&mut self) {
        self.components.pop();
    }
}

impl fmt::Display for GuestPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

impl fmt::Debug for GuestPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GuestPath({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_slashes_and_dots() {
        let p = GuestPath::new("//etc/./default//grub/").unwrap();
        assert_eq!(p.to_string(), "/etc/default/grub");
        assert_eq!(p.file_name(), Some(&b"grub"[..]));
        assert_eq!(p.parent().unwrap().to_string(), "/etc/default");
        assert_eq!(GuestPath::new("/").unwrap(), GuestPath::root());
        assert!(GuestPath::root().parent().is_none());
    }

    #[test]
    fn keeps_dotdot_for_the_resolver() {
        let p = GuestPath::new("/a/../b").unwrap();
        assert_eq!(p.components().count(), 3);
    }

    #[test]
    fn rejects_bad_paths() {
        assert!(GuestPath::new("etc/fstab").is_err());
        assert!(GuestPath::new("").is_err());
        assert!(GuestPath::new("/a\0b").is_err());
        assert!(GuestPath::new(vec![b'a'; 300]).is_err());
        let long = format!("/{}", "a".repeat(256));
        assert!(GuestPath::new(long).is_err());
        let root = GuestPath::root();
        assert!(root.join(b"..").is_err());
        assert!(root.join(b"a/b").is_err());
        assert!(root.with_suffix(".x").is_err());
    }

    #[test]
    fn suffix_for_backups() {
        let p = GuestPath::new("/etc/fstab").unwrap();
        assert_eq!(
            p.with_suffix(".ferry-orig").unwrap().to_string(),
            "/etc/fstab.ferry-orig"
        );
    }
}
