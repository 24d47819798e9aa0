//! Bootable Debian test guests, built at test time, and a QEMU boot check.
//!
//! Issue 3 (guest fixups) is proven by booting converted guests. The guests are built here
//! following `../shared/guest-images.md`: a Debian bookworm tree from `debootstrap` (cached),
//! configured by plain file edits as a VMware or Xen machine would be, put into an ext4
//! image with `mkfs.ext4 -d` and a raw MBR disk with BIOS GRUB made by `grub-mkimage` —
//! never a loop mount. The only chroot is the VMware flavour's initramfs rebuild (that is
//! building the fixture, not ferry touching a guest), inside `unshare -m`.
//!
//! Everything slow is cached under `target/guest-cache/` behind a file lock, so parallel
//! tests (and parallel test runs) build each piece once: the debootstrap tree as
//! `base-<BASE_RECIPE>/`, each disk as `<flavour>-<mac>-<RECIPE>.raw`. Bump the version
//! whose output changed; the old cache entry is then ignored (delete it by hand).

// The API serves issue 3's fixup tests too; not every item is used by every test yet.
#![allow(dead_code, unused_imports)]

mod boot;
mod build;
mod configure;
mod disk;

pub use boot::{boot, BootHw, BootOutcome, DiskBus, Nic, MARKER};
pub use build::{build, Flavour, Guest, GuestSpec};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

/// Version of the debootstrap tree (package list, mirror handling).
pub const BASE_RECIPE: &str = "v2";
/// Version of the disks made from it (configuration, initramfs, disk layout).
pub const RECIPE: &str = "v3";

/// Host tools the builder and the boot check shell out to.
const TOOLS: &[&str] = &[
    "debootstrap",
    "unshare",
    "chroot",
    "flock",
    "mkfs.ext4",
    "sfdisk",
    "grub-mkimage",
    "dd",
    "qemu-img",
    "qemu-system-x86_64",
];

/// Where GRUB's BIOS images and modules live on a Debian host (package grub-pc-bin).
pub const GRUB_I386_PC: &str = "/usr/lib/grub/i386-pc";

/// True when every tool is installed; otherwise skips locally and fails under `CI`
/// (see `util::have_tool`).
pub fn tools_present() -> bool {
    let tools = TOOLS.iter().all(|t| crate::util::have_tool(t));
    let grub = Path::new(GRUB_I386_PC).join("boot.img").exists();
    if tools && !grub {
        assert!(
            std::env::var_os("CI").is_none(),
            "grub-pc-bin is required in CI but not installed"
        );
        eprintln!("skipping: grub-pc-bin is not installed");
    }
    tools && grub
}

/// `target/guest-cache`, created on first use.
pub fn cache_dir() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR has a parent");
    let dir = target.join("guest-cache");
    std::fs::create_dir_all(&dir).expect("create guest cache");
    dir
}

/// An exclusive `flock(2)` on a file, held by a `flock(1)` child until dropped. The child
/// waits on our pipe, so the lock is also released if this process dies: no stale locks.
pub struct CacheLock {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl CacheLock {
    pub fn acquire(path: &Path) -> Self {
        let mut child = Command::new("flock")
            .arg("-x")
            .arg(path)
            .args(["-c", "echo locked; exec cat >/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run flock");
        let stdout = child.stdout.take().expect("flock stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read flock");
        assert_eq!(line.trim(), "locked", "flock {} failed", path.display());
        let stdin = child.stdin.take();
        Self { child, stdin }
    }
}

impl Drop for CacheLock {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// The URI of the Debian mirror apt is configured with for bookworm (deb822 `.sources` or
/// one-line `.list`), so debootstrap fetches only from the package registry already in use.
pub fn debian_mirror() -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir("/etc/apt/sources.list.d")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files.push(PathBuf::from("/etc/apt/sources.list"));
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let name = file.to_string_lossy();
        let found = if name.ends_with(".sources") {
            deb822_mirror(&text)
        } else if name.ends_with(".list") {
            one_line_mirror(&text)
        } else {
            None
        };
        if let Some(uri) = found {
            return uri;
        }
    }
    panic!("no Debian bookworm entry in apt's sources")
}

fn deb822_mirror(text: &str) -> Option<String> {
    text.split("\n\n").find_map(|stanza| {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
        };
        let suites = field("Suites:")?;
        let types = field("Types:")?;
        (types.split_whitespace().any(|t| t == "deb")
            && suites.split_whitespace().any(|s| s == "bookworm"))
        .then(|| field("URIs:"))?
        .and_then(|u| u.split_whitespace().next().map(str::to_owned))
    })
}

fn one_line_mirror(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        // Drop the `[option=value ...]` block, which may contain spaces.
        let l = match (l.find('['), l.find(']')) {
            (Some(a), Some(b)) if a < b => format!("{}{}", &l[..a], &l[b + 1..]),
            _ => l.to_owned(),
        };
        let words: Vec<&str> = l.split_whitespace().collect();
        (words.len() >= 3 && words[0] == "deb" && words[2] == "bookworm")
            .then(|| words[1].to_owned())
    })
}

#[test]
fn mirror_comes_from_apt_sources() {
    let text = "Types: deb\nURIs: http://m.example/debian\nSuites: bookworm bookworm-updates\n\n\
                Types: deb\nURIs: http://m.example/sec\nSuites: bookworm-security\n";
    assert_eq!(
        deb822_mirror(text).as_deref(),
        Some("http://m.example/debian")
    );
    let list = "deb [signed-by=/k.gpg] http://m.example/d bookworm main\n";
    assert_eq!(one_line_mirror(list).as_deref(), Some("http://m.example/d"));
}
