//! kmod's binary index format (`modules.dep.bin`, `modules.alias.bin`, …), written.
//!
//! libkmod looks modules up only through these tries; there is no text fallback for
//! `modules.dep`. The format, as kmod's `depmod` writes it: a 12-byte header (magic,
//! version, offset of the root node), then the nodes of a radix trie written children
//! first. Each node is `[prefix NUL] [first last child-offset×(last-first+1)]
//! [count (priority value NUL)×count]`; which parts are present is told by flag bits in
//! the offset that points at the node. Integers are big-endian `u32`. Keys and values are
//! 7-bit ASCII without NUL.
//!
//! Built the same way as depmod's `index_insert` (the trie of a key set is unique, and
//! values under one key are kept in depmod's order: by priority, a newer value before
//! older ones of equal priority), so the bytes equal depmod's for the same entries.
//!
//! DESIGN NOTE: hand-written: no crate writes kmod indexes, and running the guest's
//! `depmod` would run guest code.

use std::collections::BTreeMap;

/// `0xB007F457`: "BOOTFAST".
pub const MAGIC: u32 = 0xB007_F457;
/// Format 2.1, the only one libkmod reads.
pub const VERSION: u32 = 0x0002_0001;
const NODE_PREFIX: u32 = 0x8000_0000;
const NODE_VALUES: u32 = 0x4000_0000;
const NODE_CHILDS: u32 = 0x2000_0000;
/// Offsets share their `u32` with the flags: an index is at most 256 MiB.
const NODE_MASK: u32 = 0x0FFF_FFFF;
/// Characters a trie node can branch on (7-bit ASCII).
const CHILD_MAX: u8 = 128;

/// Why an index could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("index larger than the 256 MiB the format can address")]
    TooLarge,
}

#[derive(Default)]
struct Node {
    prefix: Vec<u8>,
    children: BTreeMap<u8, Node>,
    /// `(priority, value)`, in the order depmod writes them.
    values: Vec<(u32, Vec<u8>)>,
}

/// An index being built.
#[derive(Default)]
pub struct Index {
    root: Node,
}

/// Whether `s` can be a key or value: depmod refuses anything else.
pub fn valid_string(s: &[u8]) -> bool {
    s.iter().all(|&c| c != 0 && c < CHILD_MAX)
}

impl Index {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `value` under `key`. Returns `false` (and adds nothing) when either holds a
    /// byte the format cannot store: guest text is not trusted to be ASCII.
    pub fn insert(&mut self, key: &[u8], value: &[u8], priority: u32) -> bool {
        if !valid_string(key) || !valid_string(value) {
            return false;
        }
        let mut node = &mut self.root;
        let mut i = 0;
        loop {
            let rest = &key[i..];
            let common = node
                .prefix
                .iter()
                .zip(rest)
                .take_while(|(a, b)| a == b)
                .count();
            if common < node.prefix.len() {
                // Split: this node keeps prefix[..common]; a new child at prefix[common]
                // takes the rest of the prefix with the node's children and values.
                let tail = node.prefix.split_off(common);
                let ch = tail[0];
                let child = Node {
                    prefix: tail[1..].to_vec(),
                    children: std::mem::take(&mut node.children),
                    values: std::mem::take(&mut node.values),
                };
                node.children.insert(ch, child);
            }
            i += common;
            let Some(&ch) = key.get(i) else {
                add_value(&mut node.values, value, priority);
                return true;
            };
            match node.children.entry(ch) {
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(Node {
                        prefix: key[i + 1..].to_vec(),
                        children: BTreeMap::new(),
                        values: vec![(priority, value.to_vec())],
                    });
                    return true;
                }
                std::collections::btree_map::Entry::Occupied(slot) => {
                    node = slot.into_mut();
                    i += 1;
                }
            }
        }
    }

    /// The index file.
    pub fn write(&self) -> Result<Vec<u8>, IndexError> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_be_bytes());
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        let root = write_nodes(&self.root, &mut out)?;
        out[8..12].copy_from_slice(&root.to_be_bytes());
        Ok(out)
    }
}

/// depmod's `index_add_value`: before the first value of equal or higher priority.
fn add_value(values: &mut Vec<(u32, Vec<u8>)>, value: &[u8], priority: u32) {
    let at = values
        .iter()
        .position(|(p, _)| *p >= priority)
        .unwrap_or(values.len());
    values.insert(at, (priority, value.to_vec()));
}

/// One node on the explicit stack of the post-order walk: guest keys can be long, and
/// recursion depth would follow them.
struct Frame<'a> {
    node: &'a Node,
    children: Vec<(u8, &'a Node)>,
    next: usize,
    offsets: Vec<(u8, u32)>,
}

impl<'a> Frame<'a> {
    fn new(node: &'a Node) -> Self {
        Self {
            node,
            children: node.children.iter().map(|(&c, n)| (c, n)).collect(),
            next: 0,
            offsets: Vec::new(),
        }
    }
}

/// Write the trie under `root` children first, as depmod does; the root's tagged offset.
fn write_nodes(root: &Node, out: &mut Vec<u8>) -> Result<u32, IndexError> {
    let mut stack = vec![Frame::new(root)];
    loop {
        let Some(top) = stack.last_mut() else {
            return Err(IndexError::TooLarge);
        };
        if let Some(&(_, child)) = top.children.get(top.next) {
            stack.push(Frame::new(child));
            continue;
        }
        let Some(frame) = stack.pop() else {
            return Err(IndexError::TooLarge);
        };
        let offset = write_node(frame.node, &frame.offsets, out)?;
        match stack.last_mut() {
            Some(parent) => {
                let ch = parent.children[parent.next].0;
                parent.offsets.push((ch, offset));
                parent.next += 1;
            }
            None => return Ok(offset),
        }
    }
}

fn write_node(node: &Node, children: &[(u8, u32)], out: &mut Vec<u8>) -> Result<u32, IndexError> {
    let mut offset = u32::try_from(out.len()).map_err(|_| IndexError::TooLarge)?;
    if offset > NODE_MASK {
        return Err(IndexError::TooLarge);
    }
    if !node.prefix.is_empty() {
        out.extend_from_slice(&node.prefix);
        out.push(0);
        offset |= NODE_PREFIX;
    }
    if let (Some(&(first, _)), Some(&(last, _))) = (children.first(), children.last()) {
        out.push(first);
        out.push(last);
        let mut slots = vec![0u32; usize::from(last - first) + 1];
        for &(ch, child) in children {
            slots[usize::from(ch - first)] = child;
        }
        for slot in slots {
            out.extend_from_slice(&slot.to_be_bytes());
        }
        offset |= NODE_CHILDS;
    }
    if !node.values.is_empty() {
        let count = u32::try_from(node.values.len()).map_err(|_| IndexError::TooLarge)?;
        out.extend_from_slice(&count.to_be_bytes());
        for (priority, value) in &node.values {
            out.extend_from_slice(&priority.to_be_bytes());
            out.extend_from_slice(value);
            out.push(0);
        }
        offset |= NODE_VALUES;
    }
    if out.len() > NODE_MASK as usize {
        return Err(IndexError::TooLarge);
    }
    Ok(offset)
}

/// Exact lookup in an index file, as libkmod's `index_search`: the values under `key`
/// with their priorities; garbage gives `None`, never a panic. Tests read indexes back
/// with it.
#[cfg(test)]
pub fn lookup(index: &[u8], key: &[u8]) -> Option<Vec<(u32, Vec<u8>)>> {
    let u32_at = |at: usize| -> Option<u32> {
        let b = index.get(at..at.checked_add(4)?)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    if u32_at(0)? != MAGIC || u32_at(4)? != VERSION {
        return None;
    }
    let mut tagged = u32_at(8)?;
    let mut i = 0;
    // Each step either consumes a key byte or ends: at most key.len() + 1 nodes.
    for _ in 0..=key.len() {
        let mut at = usize::try_from(tagged & NODE_MASK).ok()?;
        if tagged & NODE_PREFIX != 0 {
            let len = index.get(at..)?.iter().position(|&c| c == 0)?;
            let prefix = &index[at..at + len];
            if !key[i..].starts_with(prefix) {
                return Some(Vec::new());
            }
            i += len;
            at += len + 1;
        }
        let (first, last) = if tagged & NODE_CHILDS != 0 {
            let first = *index.get(at)?;
            let last = *index.get(at + 1)?;
            at += 2;
            (first, last)
        } else {
            (CHILD_MAX, 0)
        };
        let children_at = at;
        if first <= last {
            at += (usize::from(last - first) + 1) * 4;
        }
        if i == key.len() {
            if tagged & NODE_VALUES == 0 {
                return Some(Vec::new());
            }
            let count = u32_at(at)?;
            at += 4;
            let mut values = Vec::new();
            for _ in 0..count.min(1 << 16) {
                let priority = u32_at(at)?;
                at += 4;
                let len = index.get(at..)?.iter().position(|&c| c == 0)?;
                values.push((priority, index[at..at + len].to_vec()));
                at += len + 1;
            }
            return Some(values);
        }
        let ch = key[i];
        if ch < first || ch > last {
            return Some(Vec::new());
        }
        tagged = u32_at(children_at + usize::from(ch - first) * 4)?;
        if tagged == 0 {
            return Some(Vec::new());
        }
        i += 1;
    }
    None
}
