//! `MemFs`: an in-memory [`GuestFs`] for unit tests of inspection and fixups.
//!
//! A map from resolved paths to nodes behind a mutex. The `add_*` helpers build a guest
//! tree quickly (creating parent directories, never following symlinks); the trait
//! methods then behave like a real backend, including symlink resolution, since that
//! lives in the trait's provided methods.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::{DirEntry, FileKind, GuestFs, GuestFsError, GuestPath, Metadata, Result};

#[derive(Clone, Debug)]
enum Body {
    File(Vec<u8>),
    Dir,
    Symlink(Vec<u8>),
    Other,
}

#[derive(Clone, Debug)]
struct Node {
    body: Body,
    mode: u32,
    uid: u32,
    gid: u32,
}

impl Node {
    fn new(body: Body, mode: u32) -> Self {
        Self {
            body,
            mode,
            uid: 0,
            gid: 0,
        }
    }

    fn metadata(&self) -> Metadata {
        let (kind, size) = match &self.body {
            Body::File(data) => (FileKind::File, data.len()),
            Body::Dir => (FileKind::Dir, 0),
            Body::Symlink(target) => (FileKind::Symlink, target.len()),
            Body::Other => (FileKind::Other, 0),
        };
        Metadata {
            kind,
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            size: u64::try_from(size).unwrap_or(u64::MAX),
        }
    }
}

/// An in-memory guest filesystem.
#[derive(Debug)]
pub struct MemFs {
    nodes: Mutex<BTreeMap<GuestPath, Node>>,
}

impl Default for MemFs {
    fn default() -> Self {
        Self::new()
    }
}

fn not_found(path: &GuestPath) -> GuestFsError {
    GuestFsError::NotFound {
        path: path.to_string(),
    }
}

impl MemFs {
    /// An empty filesystem: only `/`.
    pub fn new() -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert(GuestPath::root(), Node::new(Body::Dir, 0o755));
        Self {
            nodes: Mutex::new(nodes),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<GuestPath, Node>> {
        // A panic elsewhere cannot leave the map half-updated: every change is one insert
        // or remove, so a poisoned lock still holds a consistent tree.
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add a regular file (mode 0644), creating missing parent directories.
    pub fn add_file(&self, path: &str, data: impl AsRef<[u8]>) -> Result<()> {
        self.add(path, Node::new(Body::File(data.as_ref().to_vec()), 0o644))
    }

    /// Add a directory (mode 0755) and its missing parents.
    pub fn add_dir(&self, path: &str) -> Result<()> {
        self.add(path, Node::new(Body::Dir, 0o755))
    }

    /// Add a symlink to `target`, stored as given.
    pub fn add_symlink(&self, path: &str, target: impl AsRef<[u8]>) -> Result<()> {
        self.add(
            path,
            Node::new(Body::Symlink(target.as_ref().to_vec()), 0o777),
        )
    }

    /// Add a device node, FIFO or socket.
    pub fn add_special(&self, path: &str) -> Result<()> {
        self.add(path, Node::new(Body::Other, 0o600))
    }

    /// Set mode and owner of an existing entry.
    pub fn set_owner(&self, path: &str, mode: u32, uid: u32, gid: u32) -> Result<()> {
        let path = GuestPath::new(path)?;
        let mut nodes = self.lock();
        let node = nodes.get_mut(&path).ok_or_else(|| not_found(&path))?;
        node.mode = mode;
        node.uid = uid;
        node.gid = gid;
        Ok(())
    }

    fn add(&self, path: &str, node: Node) -> Result<()> {
        let path = GuestPath::new(path)?;
        let mut nodes = self.lock();
        let mut dir = GuestPath::root();
        let parent = path.parent().unwrap_or_default();
        for name in parent.components() {
            dir = dir.join(name)?;
            nodes
                .entry(dir.clone())
                .or_insert_with(|| Node::new(Body::Dir, 0o755));
        }
        nodes.insert(path, node);
        Ok(())
    }

    /// The parent of `path` must exist and be a directory; `path` must not exist.
    fn check_new(nodes: &BTreeMap<GuestPath, Node>, path: &GuestPath) -> Result<()> {
        let parent = path.parent().ok_or_else(|| GuestFsError::AlreadyExists {
            path: path.to_string(),
        })?;
        match nodes.get(&parent).map(|n| &n.body) {
            Some(Body::Dir) => {}
            Some(_) => {
                return Err(GuestFsError::NotADirectory {
                    path: parent.to_string(),
                })
            }
            None => return Err(not_found(&parent)),
        }
        if nodes.contains_key(path) {
            return Err(GuestFsError::AlreadyExists {
                path: path.to_string(),
            });
        }
        Ok(())
    }

    fn has_children(nodes: &BTreeMap<GuestPath, Node>, dir: &GuestPath) -> bool {
        nodes.keys().any(|k| k.parent().as_ref() == Some(dir))
    }
}

impl GuestFs for MemFs {
    fn raw_metadata(&self, path: &GuestPath) -> Result<Metadata> {
        self.lock()
            .get(path)
            .map(Node::metadata)
            .ok_or_else(|| not_found(path))
    }

    fn raw_read_link(&self, path: &GuestPath) -> Result<Vec<u8>> {
        match self.lock().get(path).map(|n| &n.body) {
            Some(Body::Symlink(target)) => Ok(target.clone()),
            Some(_) => Err(GuestFsError::NotASymlink {
                path: path.to_string(),
            }),
            None => Err(not_found(path)),
        }
    }

    fn raw_read(&self, path: &GuestPath, limit: u64) -> Result<Vec<u8>> {
        match self.lock().get(path).map(|n| &n.body) {
            Some(Body::File(data)) => {
                let size = u64::try_from(data.len()).unwrap_or(u64::MAX);
                if size > limit {
                    return Err(GuestFsError::TooLarge {
                        path: path.to_string(),
                        size,
                        limit,
                    });
                }
                Ok(data.clone())
            }
            Some(Body::Dir) => Err(GuestFsError::IsADirectory {
                path: path.to_string(),
            }),
            Some(_) => Err(GuestFsError::NotAFile {
                path: path.to_string(),
            }),
            None => Err(not_found(path)),
        }
    }

    fn raw_read_dir(&self, path: &GuestPath) -> Result<Vec<DirEntry>> {
        let nodes = self.lock();
        match nodes.get(path).map(|n| &n.body) {
            Some(Body::Dir) => {}
            Some(_) => {
                return Err(GuestFsError::NotADirectory {
                    path: path.to_string(),
                })
            }
            None => return Err(not_found(path)),
        }
        let entries = nodes
            .iter()
            .filter(|(k, _)| k.parent().as_ref() == Some(path))
            .filter_map(|(k, node)| {
                let name = k.file_name()?.to_vec();
                Some(DirEntry {
                    name,
                    kind: node.metadata().kind,
                })
            })
            .collect();
        Ok(entries)
    }

    fn raw_write(&self, path: &GuestPath, data: &[u8]) -> Result<()> {
        let mut nodes = self.lock();
        let node = nodes.get_mut(path).ok_or_else(|| not_found(path))?;
        match &mut node.body {
            Body::File(contents) => {
                *contents = data.to_vec();
                Ok(())
            }
            _ => Err(GuestFsError::NotAFile {
                path: path.to_string(),
            }),
        }
    }

    fn raw_create_file(&self, path: &GuestPath, mode: u32) -> Result<()> {
        let mut nodes = self.lock();
        Self::check_new(&nodes, path)?;
        nodes.insert(
            path.clone(),
            Node::new(Body::File(Vec::new()), mode & 0o7777),
        );
        Ok(())
    }

    fn raw_create_dir(&self, path: &GuestPath, mode: u32) -> Result<()> {
        let mut nodes = self.lock();
        Self::check_new(&nodes, path)?;
        nodes.insert(path.clone(), Node::new(Body::Dir, mode & 0o7777));
        Ok(())
    }

    fn raw_rename(&self, from: &GuestPath, to: &GuestPath) -> Result<()> {
        let mut nodes = self.lock();
        let node = nodes.get(from).cloned().ok_or_else(|| not_found(from))?;
        if matches!(node.body, Body::Dir) {
            return Err(GuestFsError::Unsupported {
                path: from.to_string(),
                what: "renaming a directory in MemFs".to_string(),
            });
        }
        if let Some(existing) = nodes.get(to) {
            if matches!(existing.body, Body::Dir) {
                return Err(GuestFsError::IsADirectory {
                    path: to.to_string(),
                });
            }
            nodes.remove(to);
        }
        Self::check_new(&nodes, to)?;
        nodes.remove(from);
        nodes.insert(to.clone(), node);
        Ok(())
    }

    fn raw_remove(&self, path: &GuestPath) -> Result<()> {
        let mut nodes = self.lock();
        if path.is_root() || Self::has_children(&nodes, path) {
            return Err(GuestFsError::DirectoryNotEmpty {
                path: path.to_string(),
            });
        }
        nodes
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    fn raw_read_at(&self, path: &GuestPath, offset: u64, buf: &mut [u8]) -> Result<usize> {
        match self.lock().get(path).map(|n| &n.body) {
            Some(Body::File(data)) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                let n = buf.len().min(data.len() - start);
                buf[..n].copy_from_slice(&data[start..start + n]);
                Ok(n)
            }
            Some(_) => Err(GuestFsError::NotAFile {
                path: path.to_string(),
            }),
            None => Err(not_found(path)),
        }
    }

    fn raw_write_at(&self, path: &GuestPath, offset: u64, data: &[u8]) -> Result<()> {
        let mut nodes = self.lock();
        let node = nodes.get_mut(path).ok_or_else(|| not_found(path))?;
        let Body::File(contents) = &mut node.body else {
            return Err(GuestFsError::NotAFile {
                path: path.to_string(),
            });
        };
        let start = usize::try_from(offset).map_err(|_| GuestFsError::NoSpace {
            path: path.to_string(),
        })?;
        let end = start.saturating_add(data.len());
        if contents.len() < end {
            contents.resize(end, 0);
        }
        contents[start..end].copy_from_slice(data);
        Ok(())
    }

    fn raw_symlink(&self, path: &GuestPath, target: &[u8]) -> Result<()> {
        let mut nodes = self.lock();
        Self::check_new(&nodes, path)?;
        nodes.insert(
            path.clone(),
            Node::new(Body::Symlink(target.to_vec()), 0o777),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
