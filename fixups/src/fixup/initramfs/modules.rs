//! The guest's module database for one kernel (`modules.dep`, `modules.builtin`), the
//! virtio closure, and the `modules.*` indexes restricted to the modules an initramfs
//! holds.
//!
//! Restricted indexes are what `depmod -b` run over the initramfs tree would write
//! (initramfs-tools and dracut both run it when they build an image): the same lines of
//! the guest's text files, kept for the modules present, and binary tries built from
//! them with depmod's priorities (a module's rank in `modules.dep` order). `modinfo` data
//! is not read from the modules themselves: the guest's text indexes already hold it,
//! and modules may be compressed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::kmod_index::{Index, IndexError};
use crate::fixup::Target;

/// The drivers a KVM guest needs to find its disks and NICs.
pub const KVM_WANTED: [&str; 4] = ["virtio_pci", "virtio_blk", "virtio_scsi", "virtio_net"];

/// The storage and NIC drivers of common real machines. A VM's initramfs (host-only
/// dracut, initramfs-tools `MODULES=dep`) holds only virtio ones, and which controller
/// the machine has is not known here, so all of them go in; the ones a guest kernel does
/// not have as modules are left out.
pub const PHYSICAL_WANTED: [&str; 24] = [
    // SATA/AHCI, legacy IDE-mode SATA, SCSI disks
    "ahci",
    "libahci",
    "sd_mod",
    "ata_piix",
    "ata_generic",
    // NVMe
    "nvme",
    "nvme_core",
    // SAS and RAID HBAs (LSI/Broadcom, HPE Smart Array)
    "mptsas",
    "megaraid_sas",
    "mpt3sas",
    "hpsa",
    // USB disks
    "xhci_pci",
    "usb_storage",
    "uas",
    // Intel, Broadcom and Realtek NICs, for network root and early networking
    "e1000",
    "e1000e",
    "igb",
    "ixgbe",
    "i40e",
    "ice",
    "bnx2",
    "bnx2x",
    "tg3",
    "r8169",
];

/// The drivers the initramfs of a guest bound for `target` must hold.
pub fn wanted(target: Target) -> &'static [&'static str] {
    match target {
        Target::Kvm => &KVM_WANTED,
        Target::Physical => &PHYSICAL_WANTED,
    }
}

/// Index files copied unchanged from the guest: about built-in modules, or the order
/// depmod sorts by (initramfs-tools copies it whole too).
pub const COPIED: [&str; 5] = [
    "modules.builtin",
    "modules.builtin.bin",
    "modules.builtin.alias.bin",
    "modules.builtin.modinfo",
    "modules.order",
];

/// Every index file a kernel may have, for copying the guest's full set.
pub const ALL_INDEXES: [&str; 14] = [
    "modules.dep",
    "modules.dep.bin",
    "modules.alias",
    "modules.alias.bin",
    "modules.symbols",
    "modules.symbols.bin",
    "modules.builtin",
    "modules.builtin.bin",
    "modules.builtin.alias.bin",
    "modules.builtin.modinfo",
    "modules.softdep",
    "modules.weakdep",
    "modules.devname",
    "modules.order",
];

/// One line of `modules.dep`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    /// `virtio_blk`: the file name up to its first `.`, `-` read as `_`, as kmod names it.
    pub name: String,
    /// `kernel/drivers/block/virtio_blk.ko.zst`, relative to the modules directory.
    pub path: String,
    /// Paths of the modules it needs, all of them (depmod writes the transitive set).
    pub deps: Vec<String>,
}

impl Module {
    /// The line as depmod writes it, without its newline: also the value `modules.dep.bin`
    /// keeps under the module's name.
    pub fn dep_line(&self) -> String {
        let mut line = format!("{}:", self.path);
        for dep in &self.deps {
            line.push(' ');
            line.push_str(dep);
        }
        line
    }
}

/// kmod's name of the module file at `path`.
pub fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = base.split('.').next().unwrap_or(base);
    stem.replace('-', "_")
}

/// Whether `name` (a file name in an image) is a kernel module.
pub fn is_module_file(name: &str) -> bool {
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// A relative path that stays inside the modules directory once joined to it: guest
/// text is not trusted to, and the kernel's cpio unpacker does not check.
pub fn valid_module_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() < 1024
        && is_module_file(path)
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
        && path.bytes().all(|b| b.is_ascii_graphic())
}

/// The parsed `modules.dep` of one kernel.
#[derive(Debug, Default)]
pub struct ModuleDb {
    /// In file order, which is depmod's module order.
    pub modules: Vec<Module>,
    by_name: HashMap<String, usize>,
    by_path: HashMap<String, usize>,
}

impl ModuleDb {
    /// Parse `modules.dep`. Lines that are not `path: dep…` with safe paths are skipped; a
    /// second line for the same module name is ignored.
    pub fn parse(text: &str) -> Self {
        let mut db = Self::default();
        for line in text.lines() {
            let Some((path, deps)) = line.split_once(':') else {
                continue;
            };
            let path = path.trim();
            let deps: Vec<String> = deps.split_whitespace().map(str::to_string).collect();
            if !valid_module_path(path) || !deps.iter().all(|d| valid_module_path(d)) {
                continue;
            }
            let name = module_name(path);
            if db.by_name.contains_key(&name) {
                continue;
            }
            let at = db.modules.len();
            db.by_name.insert(name.clone(), at);
            db.by_path.insert(path.to_string(), at);
            db.modules.push(Module {
                name,
                path: path.to_string(),
                deps,
            });
        }
        db
    }

    /// Position of the module called `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// `names` and everything they need, as positions in `modules.dep` order. A dep that
    /// has no line of its own is left out (depmod never writes one).
    pub fn closure(&self, names: &[usize]) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        let mut todo: Vec<usize> = names.to_vec();
        while let Some(at) = todo.pop() {
            if !out.insert(at) {
                continue;
            }
            for dep in &self.modules[at].deps {
                if let Some(&d) = self.by_path.get(dep) {
                    todo.push(d);
                }
            }
        }
        out
    }
}

/// Module names listed in `modules.builtin`.
pub fn parse_builtin(text: &str) -> HashSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(module_name)
        .collect()
}

/// depmod's `alias_normalize`: `-` read as `_` outside `[…]`; `None` on an unmatched
/// bracket.
pub fn normalize_alias(alias: &str) -> Option<String> {
    let mut out = String::with_capacity(alias.len());
    let mut chars = alias.chars();
    while let Some(c) = chars.next() {
        match c {
            '-' => out.push('_'),
            ']' => return None,
            '[' => {
                out.push('[');
                loop {
                    let c = chars.next()?;
                    out.push(c);
                    if c == ']' {
                        break;
                    }
                }
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// The guest's own text indexes a restricted set is cut from.
#[derive(Debug, Default)]
pub struct GuestIndexes {
    pub alias: Option<String>,
    pub symbols: Option<String>,
    pub devname: Option<String>,
    pub softdep: Option<String>,
    pub weakdep: Option<String>,
}

/// `modules.dep`, `modules.alias`, `modules.symbols`, `modules.devname`,
/// `modules.softdep`, `modules.weakdep` and the binary tries for the modules at
/// `present` (positions in `db`), by file name.
pub fn restricted_indexes(
    db: &ModuleDb,
    present: &BTreeSet<usize>,
    guest: &GuestIndexes,
) -> Result<BTreeMap<&'static str, Vec<u8>>, IndexError> {
    // depmod numbers the modules it indexes in modules.order order, which is the order
    // of modules.dep's lines; the numbers are the tries' priorities.
    let rank: HashMap<&str, u32> = present
        .iter()
        .zip(0u32..)
        .map(|(&at, rank)| (db.modules[at].name.as_str(), rank))
        .collect();
    let mut files = BTreeMap::new();

    let mut dep_text = String::new();
    let mut dep_bin = Index::new();
    for &at in present {
        let module = &db.modules[at];
        let line = module.dep_line();
        dep_bin.insert(
            module.name.as_bytes(),
            line.as_bytes(),
            rank.get(module.name.as_str()).copied().unwrap_or(0),
        );
        dep_text.push_str(&line);
        dep_text.push('\n');
    }
    files.insert("modules.dep", dep_text.into_bytes());
    files.insert("modules.dep.bin", dep_bin.write()?);

    if let Some(alias) = &guest.alias {
        let (text, bin) = alias_index(alias, &rank, true)?;
        files.insert("modules.alias", text);
        files.insert("modules.alias.bin", bin);
    }
    if let Some(symbols) = &guest.symbols {
        let (text, bin) = alias_index(symbols, &rank, false)?;
        files.insert("modules.symbols", text);
        files.insert("modules.symbols.bin", bin);
    }
    // devname lines start with the module; softdep and weakdep lines name it second.
    let kept = |text: &str, word: usize| {
        join_lines(text.lines().filter(|line| {
            line.starts_with('#')
                || line
                    .split_whitespace()
                    .nth(word)
                    .is_some_and(|m| rank.contains_key(m))
        }))
        .into_bytes()
    };
    for (name, text, word) in [
        ("modules.devname", &guest.devname, 0),
        ("modules.softdep", &guest.softdep, 1),
        ("modules.weakdep", &guest.weakdep, 1),
    ] {
        if let Some(text) = text {
            files.insert(name, kept(text, word));
        }
    }
    Ok(files)
}

/// The `alias PATTERN MODULE` lines of `text` whose module is ranked (comments kept),
/// and their trie: keyed by the pattern, normalized for `modules.alias` as depmod does
/// (not for `modules.symbols`).
fn alias_index(
    text: &str,
    rank: &HashMap<&str, u32>,
    normalize: bool,
) -> Result<(Vec<u8>, Vec<u8>), IndexError> {
    let mut kept = Vec::new();
    let mut index = Index::new();
    for line in text.lines() {
        if line.starts_with('#') {
            kept.push(line);
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let [kw, pattern, module] = words[..] else {
            continue;
        };
        let Some(&priority) = rank.get(module).filter(|_| kw == "alias") else {
            continue;
        };
        let key = if normalize {
            normalize_alias(pattern)
        } else {
            Some(pattern.to_string())
        };
        if let Some(key) = key {
            if index.insert(key.as_bytes(), module.as_bytes(), priority) {
                kept.push(line);
            }
        }
    }
    Ok((join_lines(kept.into_iter()).into_bytes(), index.write()?))
}

fn join_lines<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    out
}
