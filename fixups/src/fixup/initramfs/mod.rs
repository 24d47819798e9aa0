//! The virtio drivers added to every bootable kernel's initramfs, without running guest
//! code.
//!
//! A guest from VMware or Xen often boots from an initramfs that holds only the drivers
//! of the old platform (initramfs-tools with `MODULES=dep`, a host-only dracut image), so
//! under KVM it cannot find its root disk. Rebuilding the image would mean running the
//! guest's `update-initramfs` or `dracut`; instead this fixup appends a second, plain
//! newc cpio archive to the existing image. The kernel unpacks concatenated archives in
//! order, later entries replacing earlier ones, so the appended one adds:
//!
//! - `virtio_pci`, `virtio_blk`, `virtio_scsi`, `virtio_net` and everything they need
//!   (their closure over the guest's `modules.dep`, less `modules.builtin`), copied
//!   byte for byte from the guest's `/lib/modules/VERSION` (`.ko`, `.ko.xz`, `.ko.zst`);
//! - the kmod indexes for the result: libkmod finds modules only through the binary
//!   `modules.*.bin` tries, so udev in the initramfs can load `virtio_pci` by PCI
//!   modalias, then `virtio_blk` and `virtio_net` by virtio modalias;
//! - for dracut, `etc/cmdline.d/90-ferry-virtio.conf` with `rd.driver.pre=` for each;
//! - the guest's `/etc/systemd/network/*.link` files, so that udev in the initramfs names
//!   NICs as the real root will (the network fixup pins names by MAC there);
//! - last, the stamp `etc/ferry-initramfs-fixup` listing what was added: a later run
//!   finds it in the image's tail and plans nothing for that image.
//!
//! The existing image is listed first ([`decompress`]: gzip, zstd, xz, and uncompressed
//! early archives). A kernel whose image already holds the drivers gets nothing; for the
//! others the indexes are rebuilt for exactly the modules the result holds ([`modules`],
//! [`kmod_index`]), as `depmod` would inside the image, so `modprobe` does not report
//! "not found" for devices whose driver was left out. An image that cannot be listed
//! (lz4, lzo, bzip2, corrupt) gets the guest's full indexes instead, which the plan says.
//! Paths in the archive follow the image's own symlinks (`lib -> usr/lib` in merged-/usr
//! images): an archive directory entry where the image has a symlink would replace it.
//!
//! For [`Target::Physical`] (V2P) the drivers are those of real machines' storage
//! controllers and NICs ([`modules::PHYSICAL_WANTED`]: AHCI, NVMe, SAS/RAID HBAs, USB
//! storage, Intel/Broadcom/Realtek NICs), the ones the guest kernel has as modules. Their
//! stamp ([`PHYSICAL_STAMP`]) and dracut configuration ([`PHYSICAL_DRACUT_CONF`]) have
//! names of their own, so a Physical run after a KVM run still adds its set, and a
//! second Physical run adds nothing. No `rd.driver.pre=` is written for them: udev loads
//! the one the machine has by modalias, and forcing two dozen drivers on every boot
//! would only slow it.
//!
//! So that the guest's own later rebuilds keep the drivers, the plan also lists them in
//! `/etc/initramfs-tools/modules` or `/etc/dracut.conf.d/90-ferry-virtio.conf`.
//!
//! Guest files are hostile: modules and index files over [`MAX_MODULE_FILE`] are refused
//! with an error naming them, paths from `modules.dep` must stay inside the modules
//! directory, and listing an image is bounded ([`decompress::MAX_UNPACKED`], names only).
//!
//! DESIGN NOTE: the cpio writer and lister, the image walk and the kmod index writer are
//! hand-written; each module says why.

pub mod cpio;
pub mod decompress;
pub mod kmod_index;
pub mod modules;

use std::collections::{BTreeMap, BTreeSet};

use super::{Change, FixupError, GuestContext, GuestFixup, Plan, Target};
use crate::guestfs::{FileKind, GuestFs, GuestFsError, GuestPath};
use crate::inspect::{InitramfsKind, Kernel};
use cpio::{CpioWriter, EntryKind};
use decompress::Listing;
use modules::{GuestIndexes, ModuleDb};

/// Largest module or `modules.*` file copied into an archive (the largest real ones are
/// a few MiB).
pub const MAX_MODULE_FILE: u64 = 64 << 20;
/// Largest configuration file read (`/etc/initramfs-tools/modules`, a `.link` file).
const MAX_CONFIG_FILE: u64 = 1 << 20;
/// Most `.link` files packed.
const MAX_LINK_FILES: usize = 256;
/// Name of the stamp entry, found again in the image's tail by later runs.
pub const STAMP: &str = "etc/ferry-initramfs-fixup";
/// The stamp of a Physical run. It must not contain [`STAMP`] (nor the reverse): each
/// target finds only its own.
pub const PHYSICAL_STAMP: &str = "etc/ferry-physical-drivers-fixup";
/// How much of the image's end is searched for [`STAMP`]: the stamp is the archive's
/// last entry, before the trailer.
const STAMP_WINDOW: u64 = 64 << 10;
/// Archive path of the dracut command line snippet.
pub const DRACUT_CMDLINE: &str = "etc/cmdline.d/90-ferry-virtio.conf";
/// initramfs-tools' list of modules to include.
pub const INITRAMFS_TOOLS_MODULES: &str = "/etc/initramfs-tools/modules";
/// dracut configuration written for later rebuilds.
pub const DRACUT_CONF: &str = "/etc/dracut.conf.d/90-ferry-virtio.conf";
/// dracut configuration of a Physical run, beside a KVM run's.
pub const PHYSICAL_DRACUT_CONF: &str = "/etc/dracut.conf.d/90-ferry-physical.conf";
/// Where udev reads `.link` files, in the guest and in the image.
const NETWORK_DIR: &str = "etc/systemd/network";

pub struct Initramfs;

/// What differs between targets.
struct Flavor {
    target: Target,
    wanted: &'static [&'static str],
    stamp: &'static str,
    dracut_conf: &'static str,
    /// `virtio drivers for KVM`, for comments and notes.
    drivers: &'static str,
    platform: &'static str,
}

impl Flavor {
    fn of(target: Target) -> Self {
        let wanted = modules::wanted(target);
        match target {
            Target::Kvm => Flavor {
                target,
                wanted,
                stamp: STAMP,
                dracut_conf: DRACUT_CONF,
                drivers: "virtio drivers",
                platform: "KVM",
            },
            Target::Physical => Flavor {
                target,
                wanted,
                stamp: PHYSICAL_STAMP,
                dracut_conf: PHYSICAL_DRACUT_CONF,
                drivers: "storage and NIC drivers",
                platform: "bare metal",
            },
        }
    }
}

impl GuestFixup for Initramfs {
    fn id(&self) -> &'static str {
        "initramfs"
    }

    fn description(&self, target: Target) -> &'static str {
        match target {
            Target::Kvm => "virtio drivers added to every bootable kernel's initramfs",
            Target::Physical => {
                "storage and NIC drivers of real machines added to every bootable kernel's initramfs"
            }
        }
    }

    fn plan(&self, ctx: &GuestContext<'_>) -> Result<Plan, FixupError> {
        let bootable: Vec<&Kernel> = ctx
            .os
            .kernels
            .iter()
            .filter(|k| k.initramfs.is_some() && k.modules_dir)
            .collect();
        if bootable.is_empty() {
            return Ok(Plan::Skip(
                "no kernel has both an initramfs and a modules directory".to_string(),
            ));
        }
        let mut appends = Vec::new();
        let mut notes = Vec::new();
        // Drivers that are modules (not built in) for some kernel, and the generators of
        // the images that were looked at: what the guest's own rebuilds must keep.
        let mut loadable = BTreeSet::new();
        let mut kinds = BTreeSet::new();
        let mut examined = 0;
        let flavor = Flavor::of(ctx.target);
        for kernel in bootable {
            match plan_kernel(ctx.fs, kernel, &flavor)? {
                KernelPlan::NoModules(why) => notes.push(why),
                KernelPlan::Examined {
                    change,
                    note,
                    loadable: names,
                } => {
                    examined += 1;
                    loadable.extend(names);
                    if let Some(kind) = kernel.initramfs_kind {
                        kinds.insert(kind_key(kind));
                    }
                    appends.extend(change);
                    notes.extend(note);
                }
            }
        }
        if examined == 0 {
            return Ok(Plan::Skip(notes.join("; ")));
        }
        if !notes.is_empty() {
            for change in &mut appends {
                if let Change::AppendFile { summary, .. } = change {
                    summary.push_str("; ");
                    summary.push_str(&notes.join("; "));
                }
            }
        }
        let mut changes = appends;
        let loadable: Vec<&str> = flavor
            .wanted
            .iter()
            .copied()
            .filter(|w| loadable.contains(*w))
            .collect();
        if !loadable.is_empty() {
            if kinds.contains(&kind_key(InitramfsKind::InitramfsTools)) {
                changes.extend(initramfs_tools_edit(ctx.fs, &loadable, &flavor)?);
            }
            if kinds.contains(&kind_key(InitramfsKind::Dracut)) {
                changes.extend(dracut_edit(ctx.fs, &loadable, &flavor)?);
            }
        }
        Ok(Plan::Changes(changes))
    }
}

/// `InitramfsKind` is not `Ord`; a small key stands in for it in sets.
fn kind_key(kind: InitramfsKind) -> u8 {
    match kind {
        InitramfsKind::InitramfsTools => 0,
        InitramfsKind::Dracut => 1,
        InitramfsKind::Unknown => 2,
    }
}

/// What one kernel needs.
enum KernelPlan {
    /// Its modules directory has no `modules.dep`: nothing can be resolved.
    NoModules(String),
    Examined {
        /// The archive to append, `None` when the image needs nothing.
        change: Option<Change>,
        /// Why nothing is appended, for the report.
        note: Option<String>,
        /// Which of the wanted drivers are modules for this kernel.
        loadable: Vec<&'static str>,
    },
}

fn plan_kernel(
    fs: &dyn GuestFs,
    kernel: &Kernel,
    flavor: &Flavor,
) -> Result<KernelPlan, FixupError> {
    let version = &kernel.version;
    let Some(image) = &kernel.initramfs else {
        return Ok(KernelPlan::NoModules(format!("{version}: no initramfs")));
    };
    let image = GuestPath::new(image)?;
    let Some(moddir) = modules_dir(fs, version)? else {
        return Ok(KernelPlan::NoModules(format!(
            "{version}: no modules directory"
        )));
    };
    let dep_path = moddir.join(b"modules.dep")?;
    if !is_file(fs, &dep_path)? {
        return Ok(KernelPlan::NoModules(format!(
            "{version}: skipped, {dep_path} is missing"
        )));
    }
    let db = ModuleDb::parse(&text(&read_capped(fs, &dep_path)?));
    let builtin = match read_optional(fs, &moddir.join(b"modules.builtin")?)? {
        Some(data) => modules::parse_builtin(&text(&data)),
        None => Default::default(),
    };
    // Wanted drivers this kernel does not have are left out without a word: no kernel
    // has every driver of PHYSICAL_WANTED.
    let wanted: Vec<usize> = flavor.wanted.iter().filter_map(|w| db.find(w)).collect();
    let loadable: Vec<&'static str> = flavor
        .wanted
        .iter()
        .copied()
        .filter(|w| db.find(w).is_some() && !builtin.contains(*w))
        .collect();
    let examined = |change, note: String| KernelPlan::Examined {
        change,
        note: Some(note),
        loadable: loadable.clone(),
    };
    if wanted.is_empty() {
        let missing: Vec<&str> = flavor
            .wanted
            .iter()
            .copied()
            .filter(|w| !builtin.contains(*w))
            .collect();
        let note = if missing.is_empty() {
            format!("{version}: {} are built into the kernel", flavor.drivers)
        } else {
            format!(
                "{version}: {} neither modules nor built in",
                missing.join(", ")
            )
        };
        return Ok(examined(None, note));
    }

    let meta = fs.metadata(&image)?;
    if meta.kind != FileKind::File {
        return Ok(examined(None, format!("{version}: {image} is not a file")));
    }
    if has_stamp(fs, &image, meta.size, flavor.stamp)? {
        return Ok(KernelPlan::Examined {
            change: None,
            note: None,
            loadable,
        });
    }

    let needed = db.closure(&wanted);
    let listing = decompress::list_image(fs, &image, meta.size)?;
    // Where the guest's kmod finds this kernel's modules (`usr/lib/modules/V` on a
    // merged-/usr guest), then through the image's own symlinks.
    let guest_dir = relative(&fs.resolve(&moddir)?);
    let (entries, unlisted) = match listing {
        Listing::Listed(entries) => (Some(entries), None),
        Listing::Unlisted(why) => (None, Some(why)),
    };
    let place = |path: &str| match &entries {
        Some(entries) => resolve_in_image(entries, path),
        None => path.to_string(),
    };
    let image_dir = place(&guest_dir);
    let present: BTreeSet<usize> = match &entries {
        Some(entries) => modules_in_image(entries, &image_dir, &db),
        None => BTreeSet::new(),
    };
    let added: Vec<usize> = needed.difference(&present).copied().collect();
    if added.is_empty() {
        return Ok(examined(
            None,
            format!("{version}: {image} already has the {}", flavor.drivers),
        ));
    }

    let mut archive = CpioWriter::new(meta.size);
    let add = |archive: &mut CpioWriter, path: &str, data: &[u8]| {
        archive
            .file(path, data, 0o644)
            .map_err(|e| FixupError::Conflict {
                path: image.to_string(),
                why: e.to_string(),
            })
    };
    for &at in &added {
        let module = &db.modules[at];
        let data = read_capped(fs, &guest_child(&moddir, &module.path)?)?;
        add(&mut archive, &format!("{image_dir}/{}", module.path), &data)?;
    }

    let index_mode = match &unlisted {
        None => {
            let result: BTreeSet<usize> = present.union(&needed).copied().collect();
            let read_text = |name: &str| -> Result<Option<String>, FixupError> {
                Ok(read_optional(fs, &moddir.join(name.as_bytes())?)?.map(|d| text(&d)))
            };
            let guest = GuestIndexes {
                alias: read_text("modules.alias")?,
                symbols: read_text("modules.symbols")?,
                devname: read_text("modules.devname")?,
                softdep: read_text("modules.softdep")?,
                weakdep: read_text("modules.weakdep")?,
            };
            let files = modules::restricted_indexes(&db, &result, &guest).map_err(|e| {
                FixupError::Conflict {
                    path: dep_path.to_string(),
                    why: e.to_string(),
                }
            })?;
            let mut all: BTreeMap<&str, Vec<u8>> = files;
            for name in modules::COPIED {
                if let Some(data) = read_optional(fs, &moddir.join(name.as_bytes())?)? {
                    all.insert(name, data);
                }
            }
            for (name, data) in &all {
                add(&mut archive, &format!("{image_dir}/{name}"), data)?;
            }
            format!(
                "indexes rebuilt for the {} modules the image will hold",
                result.len()
            )
        }
        Some(why) => {
            for name in modules::ALL_INDEXES {
                if let Some(data) = read_optional(fs, &moddir.join(name.as_bytes())?)? {
                    add(&mut archive, &format!("{image_dir}/{name}"), &data)?;
                }
            }
            format!("the guest's full module indexes (image not listed: {why})")
        }
    };

    let mut extras = Vec::new();
    if kernel.initramfs_kind == Some(InitramfsKind::Dracut)
        && !loadable.is_empty()
        && flavor.target == Target::Kvm
    {
        let line: Vec<String> = loadable
            .iter()
            .map(|m| format!("rd.driver.pre={m}"))
            .collect();
        add(
            &mut archive,
            &place(DRACUT_CMDLINE),
            format!("{}\n", line.join(" ")).as_bytes(),
        )?;
        extras.push("dracut rd.driver.pre".to_string());
    }
    let links = link_files(fs)?;
    for (name, data) in &links {
        add(&mut archive, &place(&format!("{NETWORK_DIR}/{name}")), data)?;
    }
    if !links.is_empty() {
        extras.push(format!("{} .link file(s)", links.len()));
    }

    let names: Vec<&str> = added
        .iter()
        .map(|&at| db.modules[at].name.as_str())
        .collect();
    let stamp = format!(
        "# Appended by ferry so that this image boots under {}.\nmodules: {}\n",
        flavor.platform,
        names.join(" ")
    );
    add(&mut archive, &place(flavor.stamp), stamp.as_bytes())?;

    let mut summary = format!(
        "cpio for {version} adding {}; {index_mode}",
        names.join(", ")
    );
    for extra in extras {
        summary.push_str("; ");
        summary.push_str(&extra);
    }
    Ok(KernelPlan::Examined {
        change: Some(Change::AppendFile {
            path: image,
            before_len: meta.size,
            data: archive.finish(),
            summary,
        }),
        note: None,
        loadable,
    })
}

/// `/lib/modules/VERSION`, else `/usr/lib/modules/VERSION`.
fn modules_dir(fs: &dyn GuestFs, version: &str) -> Result<Option<GuestPath>, FixupError> {
    for base in ["/lib/modules", "/usr/lib/modules"] {
        let dir = GuestPath::new(base)?.join(version.as_bytes())?;
        if fs.exists(&dir)? && fs.metadata(&dir)?.kind == FileKind::Dir {
            return Ok(Some(dir));
        }
    }
    Ok(None)
}

/// `dir` joined with the relative `path` (checked by [`modules::valid_module_path`]).
fn guest_child(dir: &GuestPath, path: &str) -> Result<GuestPath, FixupError> {
    let mut out = dir.clone();
    for name in path.split('/') {
        out = out.join(name.as_bytes())?;
    }
    Ok(out)
}

/// A guest path as an archive path: no leading `/`.
fn relative(path: &GuestPath) -> String {
    path.to_string().trim_start_matches('/').to_string()
}

fn is_file(fs: &dyn GuestFs, path: &GuestPath) -> Result<bool, FixupError> {
    Ok(fs.exists(path)? && fs.metadata(path)?.kind == FileKind::File)
}

/// The file at `path`, refused past [`MAX_MODULE_FILE`].
fn read_capped(fs: &dyn GuestFs, path: &GuestPath) -> Result<Vec<u8>, FixupError> {
    read_limited(fs, path, MAX_MODULE_FILE)
}

/// The file at `path`, refused (naming it) past `limit` bytes.
fn read_limited(fs: &dyn GuestFs, path: &GuestPath, limit: u64) -> Result<Vec<u8>, FixupError> {
    let size = fs.metadata(path)?.size;
    if size > limit {
        return Err(GuestFsError::TooLarge {
            path: path.to_string(),
            size,
            limit,
        }
        .into());
    }
    Ok(fs.read_file(path)?)
}

/// [`read_capped`], `None` when there is no regular file at `path`.
fn read_optional(fs: &dyn GuestFs, path: &GuestPath) -> Result<Option<Vec<u8>>, FixupError> {
    if !is_file(fs, path)? {
        return Ok(None);
    }
    read_capped(fs, path).map(Some)
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// Whether the last [`STAMP_WINDOW`] bytes of the image name the entry `stamp`.
fn has_stamp(
    fs: &dyn GuestFs,
    image: &GuestPath,
    size: u64,
    stamp: &str,
) -> Result<bool, FixupError> {
    let start = size.saturating_sub(STAMP_WINDOW);
    let mut tail = vec![0u8; usize::try_from(size - start).unwrap_or(0)];
    let mut filled = 0;
    while filled < tail.len() {
        let n = fs.read_at(image, start + filled as u64, &mut tail[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    tail.truncate(filled);
    let needle = stamp.as_bytes();
    Ok(tail.windows(needle.len()).any(|w| w == needle))
}

/// Modules (positions in `db`) whose files the image holds under `dir`.
fn modules_in_image(
    entries: &BTreeMap<Vec<u8>, EntryKind>,
    dir: &str,
    db: &ModuleDb,
) -> BTreeSet<usize> {
    let prefix = format!("{dir}/");
    entries
        .range(prefix.as_bytes().to_vec()..)
        .take_while(|(name, _)| name.starts_with(prefix.as_bytes()))
        .filter(|(_, kind)| **kind == EntryKind::File)
        .filter_map(|(name, _)| {
            let name = std::str::from_utf8(name).ok()?;
            modules::is_module_file(name)
                .then(|| db.find(&modules::module_name(name)))
                .flatten()
        })
        .collect()
}

/// `path` with the image's symlinks followed, as the kernel would when unpacking an
/// entry there. A target that leaves nothing (a link to `/`) or a loop keeps `path`.
fn resolve_in_image(entries: &BTreeMap<Vec<u8>, EntryKind>, path: &str) -> String {
    let mut done: Vec<String> = Vec::new();
    let mut todo: Vec<String> = path.split('/').rev().map(str::to_string).collect();
    let mut hops = 0;
    while let Some(name) = todo.pop() {
        match name.as_str() {
            "" | "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => done.push(name),
        }
        let key = done.join("/");
        if let Some(EntryKind::Symlink(Some(target))) = entries.get(key.as_bytes()) {
            hops += 1;
            if hops > crate::guestfs::MAX_SYMLINKS {
                return path.to_string();
            }
            done.pop();
            let target = String::from_utf8_lossy(target);
            if target.starts_with('/') {
                done.clear();
            }
            todo.extend(target.split('/').rev().map(str::to_string));
        }
    }
    if done.is_empty() {
        return path.to_string();
    }
    done.join("/")
}

/// The regular `*.link` files of the guest's `/etc/systemd/network`, by name.
fn link_files(fs: &dyn GuestFs) -> Result<Vec<(String, Vec<u8>)>, FixupError> {
    let dir = GuestPath::new(format!("/{NETWORK_DIR}"))?;
    if !fs.exists(&dir)? || fs.metadata(&dir)?.kind != FileKind::Dir {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in fs.read_dir(&dir)? {
        if entry.kind != FileKind::File || out.len() >= MAX_LINK_FILES {
            continue;
        }
        let Ok(name) = String::from_utf8(entry.name.clone()) else {
            continue;
        };
        if !name.ends_with(".link") || name.starts_with('.') {
            continue;
        }
        let path = dir.join(&entry.name)?;
        let size = fs.metadata(&path)?.size;
        if size > MAX_CONFIG_FILE {
            return Err(GuestFsError::TooLarge {
                path: path.to_string(),
                size,
                limit: MAX_CONFIG_FILE,
            }
            .into());
        }
        out.push((name, fs.read_file(&path)?));
    }
    Ok(out)
}

/// Missing names appended to `/etc/initramfs-tools/modules`.
fn initramfs_tools_edit(
    fs: &dyn GuestFs,
    names: &[&str],
    flavor: &Flavor,
) -> Result<Option<Change>, FixupError> {
    let path = GuestPath::new(INITRAMFS_TOOLS_MODULES)?;
    let before = read_config(fs, &path)?;
    let current = before.as_deref().map(text).unwrap_or_default();
    let listed: BTreeSet<String> = current
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .map(|m| m.replace('-', "_"))
        .collect();
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|m| !listed.contains(*m))
        .collect();
    if missing.is_empty() {
        return Ok(None);
    }
    let mut after = before.clone().unwrap_or_default();
    if !after.is_empty() && !after.ends_with(b"\n") {
        after.push(b'\n');
    }
    after.extend_from_slice(
        format!(
            "# {} for {}, added by ferry\n",
            flavor.drivers, flavor.platform
        )
        .as_bytes(),
    );
    for name in missing {
        after.extend_from_slice(name.as_bytes());
        after.push(b'\n');
    }
    Ok(Some(Change::WriteFile {
        path,
        before,
        after,
    }))
}

/// The target's dracut configuration file ([`DRACUT_CONF`], [`PHYSICAL_DRACUT_CONF`])
/// with `add_drivers+=`.
fn dracut_edit(
    fs: &dyn GuestFs,
    names: &[&str],
    flavor: &Flavor,
) -> Result<Option<Change>, FixupError> {
    let path = GuestPath::new(flavor.dracut_conf)?;
    let after = format!(
        "# {} for {}, added by ferry\nadd_drivers+=\" {} \"\n",
        flavor.drivers,
        flavor.platform,
        names.join(" ")
    )
    .into_bytes();
    let before = read_config(fs, &path)?;
    if before.as_deref() == Some(after.as_slice()) {
        return Ok(None);
    }
    Ok(Some(Change::WriteFile {
        path,
        before,
        after,
    }))
}

/// A configuration file, `None` when absent, refused past [`MAX_CONFIG_FILE`].
fn read_config(fs: &dyn GuestFs, path: &GuestPath) -> Result<Option<Vec<u8>>, FixupError> {
    if !fs.exists(path)? {
        return Ok(None);
    }
    read_limited(fs, path, MAX_CONFIG_FILE).map(Some)
}

#[cfg(test)]
mod tests;
