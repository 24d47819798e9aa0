//! XFS test images built at test time by `mkfs.xfs -p PROTOFILE` (no mount, no loop
//! device), and `xfs_db -r` as the oracle for what the images hold.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crate::blockdev::FileRange;
use crate::guestfs::xfs::XfsFs;

/// Whether xfsprogs is here; a test without it skips locally and fails under CI.
pub fn tools_present() -> bool {
    crate::testutil::tools_present("xfsprogs", &["mkfs.xfs", "xfs_db"])
}

/// Owner and permission bits of a tree node (`setuid` and `setgid` included).
#[derive(Clone, Copy)]
pub struct Owner {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

pub const ROOT_DIR: Owner = Owner {
    mode: 0o755,
    uid: 0,
    gid: 0,
};
pub const ROOT_FILE: Owner = Owner {
    mode: 0o644,
    uid: 0,
    gid: 0,
};

enum Node {
    Dir(Owner, BTreeMap<String, Node>),
    File(Owner, Vec<u8>),
    Link(String),
    /// Protofile type letter (`p`, `c`, `b`) and its trailing tokens.
    Special(char, Owner, String),
}

/// A guest tree to build an image from; paths are `/`-separated, relative to the root.
#[derive(Default)]
pub struct Tree {
    root: BTreeMap<String, Node>,
}

impl Tree {
    pub fn new() -> Self {
        Self::default()
    }

    fn parent(&mut self, path: &str) -> (&mut BTreeMap<String, Node>, String) {
        let mut names: Vec<&str> = path.split('/').filter(|n| !n.is_empty()).collect();
        let last = names.pop().expect("a path with a name").to_string();
        let mut dir = &mut self.root;
        for name in names {
            let node = dir
                .entry(name.to_string())
                .or_insert_with(|| Node::Dir(ROOT_DIR, BTreeMap::new()));
            dir = match node {
                Node::Dir(_, children) => children,
                _ => panic!("{name} is not a directory"),
            };
        }
        (dir, last)
    }

    pub fn dir(&mut self, path: &str, owner: Owner) -> &mut Self {
        let (dir, name) = self.parent(path);
        match dir
            .entry(name)
            .or_insert_with(|| Node::Dir(owner, BTreeMap::new()))
        {
            Node::Dir(o, _) => *o = owner,
            _ => panic!("{path} exists"),
        }
        self
    }

    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.file_owned(path, ROOT_FILE, data)
    }

    pub fn file_owned(&mut self, path: &str, owner: Owner, data: &[u8]) -> &mut Self {
        let (dir, name) = self.parent(path);
        dir.insert(name, Node::File(owner, data.to_vec()));
        self
    }

    pub fn link(&mut self, path: &str, target: &str) -> &mut Self {
        let (dir, name) = self.parent(path);
        dir.insert(name, Node::Link(target.to_string()));
        self
    }

    pub fn special(&mut self, path: &str, kind: char, rest: &str) -> &mut Self {
        let (dir, name) = self.parent(path);
        dir.insert(name, Node::Special(kind, ROOT_FILE, rest.to_string()));
        self
    }
}

fn mode_token(kind: char, owner: Owner) -> String {
    let suid = if owner.mode & 0o4000 != 0 { 'u' } else { '-' };
    let sgid = if owner.mode & 0o2000 != 0 { 'g' } else { '-' };
    format!(
        "{kind}{suid}{sgid}{:03o} {} {}",
        owner.mode & 0o777,
        owner.uid,
        owner.gid
    )
}

/// Writes the protofile and the host files it copies from.
struct Proto {
    text: String,
    data_dir: PathBuf,
    /// Host files by contents, so that thousands of equal files share one.
    written: HashMap<Vec<u8>, PathBuf>,
    /// Guest path → host file, for byte-for-byte comparisons.
    sources: BTreeMap<String, PathBuf>,
}

impl Proto {
    fn dir(&mut self, guest: &str, children: &BTreeMap<String, Node>) {
        for (name, node) in children {
            let path = format!("{guest}/{name}");
            match node {
                Node::Dir(owner, grandchildren) => {
                    writeln!(self.text, "{name} {}", mode_token('d', *owner)).unwrap();
                    self.dir(&path, grandchildren);
                    self.text.push_str("$\n");
                }
                Node::File(owner, data) => {
                    let host = self.host_file(data);
                    writeln!(
                        self.text,
                        "{name} {} {}",
                        mode_token('-', *owner),
                        host.display()
                    )
                    .unwrap();
                    self.sources.insert(path, host);
                }
                Node::Link(target) => {
                    writeln!(self.text, "{name} l--777 0 0 {target}").unwrap();
                }
                Node::Special(kind, owner, rest) => {
                    writeln!(self.text, "{name} {} {rest}", mode_token(*kind, *owner)).unwrap();
                }
            }
        }
    }

    fn host_file(&mut self, data: &[u8]) -> PathBuf {
        if let Some(path) = self.written.get(data) {
            return path.clone();
        }
        let path = self.data_dir.join(self.written.len().to_string());
        fs::write(&path, data).unwrap();
        self.written.insert(data.to_vec(), path.clone());
        path
    }
}

/// An XFS image in a temporary folder; the filesystem is `len` bytes at `offset`.
pub struct Image {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
    sources: BTreeMap<String, PathBuf>,
}

impl Image {
    pub fn open(&self) -> XfsFs {
        self.try_open().unwrap()
    }

    pub fn try_open(&self) -> Result<XfsFs, crate::guestfs::xfs::XfsOpenError> {
        let file = fs::File::open(&self.path).unwrap();
        let range = FileRange::new(file, self.offset, self.len, false).unwrap();
        XfsFs::open(Arc::new(range))
    }

    /// The host file the guest file `path` (`/etc/fstab`) was copied from, read back.
    pub fn host(&self, path: &str) -> Vec<u8> {
        let source = self
            .sources
            .get(path)
            .unwrap_or_else(|| panic!("{path} was not copied from a host file"));
        fs::read(source).unwrap()
    }

    /// `xfs_db -r` with `commands`, stdout (the image must start at offset 0).
    pub fn xfs_db(&self, commands: &[&str]) -> String {
        assert_eq!(self.offset, 0);
        let mut cmd = Command::new("xfs_db");
        cmd.arg("-r");
        for c in commands {
            cmd.args(["-c", c]);
        }
        let out = cmd.arg(&self.path).output().unwrap();
        assert!(out.status.success(), "xfs_db {commands:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// One field of the inode at `path`, as `xfs_db` prints it (`core.format`).
    pub fn inode_field(&self, path: &str, field: &str) -> String {
        let out = self.xfs_db(&[&format!("path {path}"), &format!("print {field}")]);
        out.trim()
            .strip_prefix(&format!("{field} = "))
            .unwrap_or_else(|| panic!("xfs_db printed {out:?}"))
            .to_string()
    }

    /// Byte offset of the inode at `path` in the image.
    pub fn inode_byte(&self, path: &str) -> u64 {
        let out = self.xfs_db(&[&format!("path {path}"), "inode"]);
        let ino = out.trim().rsplit(' ').next().unwrap().to_string();
        let out = self.xfs_db(&[&format!("convert inode {ino} byte")]);
        let hex = out.split_whitespace().next().unwrap();
        u64::from_str_radix(hex.trim_start_matches("0x"), 16).unwrap()
    }

    /// Extents of the data fork of `path`, from `xfs_db bmap`.
    pub fn extent_count(&self, path: &str) -> usize {
        self.xfs_db(&[&format!("path {path}"), "bmap"])
            .lines()
            .filter(|l| l.starts_with("data offset"))
            .count()
    }
}

/// Size of every image: xfsprogs 6.x refuses filesystems under 300 MiB (and logs under
/// 64 MiB). The image file is sparse, so this costs little disk.
pub const IMAGE_MIB: u64 = 320;

/// Build an XFS image from `tree` with `mkfs.xfs -p`; `extra` are more `mkfs.xfs` options
/// (`-m crc=0`, `-b size=1024`).
pub fn build(tree: &Tree, extra: &[&str]) -> Image {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    fs::create_dir(&data_dir).unwrap();
    let mut proto = Proto {
        text: format!("ferry-test\n0 0\n{}\n", mode_token('d', ROOT_DIR)),
        data_dir,
        written: HashMap::new(),
        sources: BTreeMap::new(),
    };
    proto.dir("", &tree.root);
    proto.text.push_str("$\n");
    let proto_path = dir.path().join("proto");
    fs::write(&proto_path, &proto.text).unwrap();
    let path = dir.path().join("fs.img");
    fs::File::create(&path)
        .unwrap()
        .set_len(IMAGE_MIB << 20)
        .unwrap();
    let out = Command::new("mkfs.xfs")
        .args(["-q", "-f", "-L", "guest"])
        .args(extra)
        .arg("-p")
        .arg(&proto_path)
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "mkfs.xfs: {out:?}");
    let len = fs::metadata(&path).unwrap().len();
    Image {
        dir,
        path,
        offset: 0,
        len,
        sources: proto.sources,
    }
}

/// Copy `src` into `dst` at `offset`, leaving runs of zeros as holes (images are mostly
/// empty, and memory holds one chunk at a time).
fn copy_sparse(src: &Path, dst: &fs::File, offset: u64) {
    let src = fs::File::open(src).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    loop {
        let n = src.read_at(&mut buf, at).unwrap();
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            dst.write_all_at(&buf[..n], offset + at).unwrap();
        }
        at += u64::try_from(n).unwrap();
    }
}

/// Place `image` as the only MBR partition at 1 MiB of a raw disk (type 0x83).
pub fn into_mbr_disk(image: Image) -> Image {
    const START: u64 = 1 << 20;
    let path = image.path.with_file_name("disk.raw");
    let disk = fs::File::create(&path).unwrap();
    disk.set_len(START + image.len + START).unwrap();
    let mut mbr = [0u8; 512];
    let entry = &mut mbr[446..462];
    entry[4] = 0x83;
    entry[8..12].copy_from_slice(&u32::try_from(START / 512).unwrap().to_le_bytes());
    entry[12..16].copy_from_slice(&u32::try_from(image.len / 512).unwrap().to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    disk.write_all_at(&mbr, 0).unwrap();
    copy_sparse(&image.path, &disk, START);
    Image {
        path,
        offset: START,
        ..image
    }
}

/// A copy of the image file beside it, named `name`, to damage.
pub fn variant(image: &Image, name: &str) -> PathBuf {
    let path = image.dir.path().join(name);
    let file = fs::File::create(&path).unwrap();
    file.set_len(fs::metadata(&image.path).unwrap().len())
        .unwrap();
    copy_sparse(&image.path, &file, 0);
    path
}

/// Overwrite bytes of `path` at `offset`; returns the bytes that were there.
pub fn patch(path: &Path, offset: u64, bytes: &[u8]) -> Vec<u8> {
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut old = vec![0u8; bytes.len()];
    file.read_exact_at(&mut old, offset).unwrap();
    file.write_all_at(bytes, offset).unwrap();
    old
}

/// Whether two files hold the same bytes, compared a chunk at a time.
pub fn same_contents(a: &Path, b: &Path) -> bool {
    let (fa, fb) = (fs::File::open(a).unwrap(), fs::File::open(b).unwrap());
    if fa.metadata().unwrap().len() != fb.metadata().unwrap().len() {
        return false;
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut at = 0u64;
    loop {
        let n = fa.read_at(&mut ba, at).unwrap();
        if n == 0 {
            return true;
        }
        fb.read_exact_at(&mut bb[..n], at).unwrap();
        if ba[..n] != bb[..n] {
            return false;
        }
        at += u64::try_from(n).unwrap();
    }
}

/// Deterministic bytes that do not repeat within a block, so misplaced blocks show.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let i = u32::try_from(i).unwrap();
            (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0] ^ seed
        })
        .collect()
}
