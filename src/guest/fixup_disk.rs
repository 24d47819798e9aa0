//! Fixing a whole disk: find the guest's root, run the fixups on an [`Overlay`], commit.
//!
//! The source is opened read-only and every fixup writes into the overlay; only when all
//! of them succeeded is the overlay committed — written back in place into a raw disk, or
//! merged with the image into a new qcow2 renamed over the old one. A dry run runs the same
//! fixups on the overlay and drops it, so the diffs it reports are exactly what a real run
//! writes. Used by `ferry fixup`, `ferry demo` and later `ferry v2v`.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use converters::copy::{copy_disk, CopyOptions};
use converters::qcow2::{Qcow2Sink, Qcow2WriteOptions};
use converters::verify::verify;
use converters::DiskSource;
use fixups::fixup::{run_fixups, DiskPartition, FixupReport, Outcome, Target, TargetNic};
use fixups::guestfs::ext4::Access;

use super::{commit_in_place, find_guests_on, DiskGuests, OpenedTree, Overlay};

/// How the overlay reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Commit {
    /// Dry run, or nothing changed: dropped.
    None,
    /// Changed chunks written back into the raw file or block device.
    InPlace,
    /// The qcow2 rewritten with the changes and renamed over the original.
    Qcow2Rewrite,
}

/// What a fixup run did, for reports and `--json`.
#[derive(Debug, Serialize)]
pub struct FixupRun {
    pub disk: String,
    pub format: String,
    pub target: Target,
    pub dry_run: bool,
    /// Where the root filesystem is (`partition 1`, `LV vg0/root (partition 2)`).
    pub root: String,
    pub os: Option<String>,
    pub fixups: Vec<FixupReport>,
    pub commit: Commit,
    /// Guest bytes changed (whole 64 KiB chunks).
    pub changed_bytes: u64,
    pub seconds: f64,
}

/// Why a disk could not be fixed; the disk is unchanged unless the variant says otherwise.
#[derive(Debug, thiserror::Error)]
pub enum FixupDiskError {
    /// Unreadable disk, unsupported format, no Linux root.
    #[error("{0}")]
    BadInput(String),
    /// A fixup failed; nothing was written.
    #[error("{0}")]
    FixupFailed(String),
    /// Writing the result failed (a raw disk may be partly written).
    #[error("{0}")]
    WriteFailed(String),
    #[error("{0}")]
    Interrupted(String),
}

/// How to fix.
pub struct FixupOptions<'a> {
    pub target: Target,
    pub dry_run: bool,
    /// NICs the guest will have (MACs), when known.
    pub nics: Vec<TargetNic>,
    /// Set by a Ctrl-C handler to stop a qcow2 rewrite.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Called with guest bytes done during a qcow2 rewrite.
    pub progress: &'a (dyn Fn(u64) + Sync),
}

/// Fixes the Linux guest on `disk`, opened as `source` (its top layer must be raw or qcow2
/// without backing file unless `dry_run`).
pub fn fixup_disk(
    disk: &Path,
    source: Arc<dyn DiskSource>,
    opts: &FixupOptions<'_>,
) -> Result<FixupRun, FixupDiskError> {
    let started = Instant::now();
    let name = disk.display();
    let bad = |msg: String| FixupDiskError::BadInput(msg);
    let layers = source.layers();
    let format = layers.first().map_or("unknown", |l| l.format.as_str());
    let commit = match (opts.dry_run, format, layers.len()) {
        (true, _, _) => Commit::None,
        (false, "raw", 1) => Commit::InPlace,
        (false, "qcow2", 1) => Commit::Qcow2Rewrite,
        (false, "qcow2", _) => {
            return Err(bad(format!(
                "{name}: qcow2 with a backing file: ferry fixup writes a standalone disk; \
                 flatten it first (ferry convert --follow-backing)"
            )))
        }
        (false, other, _) => {
            return Err(bad(format!(
                "{name}: ferry fixup writes raw and qcow2 disks, this is {other}; convert it \
                 first (ferry convert), or look with --dry-run"
            )))
        }
    };
    let format = format.to_string();
    let fixed = fix_in_overlay(disk, source, &scratch_dir(disk), opts)?;
    let any_change = fixed.changed();
    let FixedOverlay {
        overlay,
        reports,
        root: root_location,
        os,
    } = fixed;
    let commit = if any_change { commit } else { Commit::None };
    match commit {
        Commit::None => {}
        Commit::InPlace => {
            commit_in_place(&overlay, disk).map_err(|e| {
                FixupDiskError::WriteFailed(format!("{name}: writing the fixed blocks: {e}"))
            })?;
        }
        Commit::Qcow2Rewrite => rewrite_qcow2(disk, &overlay, opts)?,
    }
    Ok(FixupRun {
        disk: name.to_string(),
        format,
        target: opts.target,
        dry_run: opts.dry_run,
        root: root_location,
        os,
        changed_bytes: if any_change { overlay.dirty_bytes() } else { 0 },
        fixups: reports,
        commit,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A guest fixed in an overlay over its unchanged source: what `ferry v2v` copies from, so
/// the fixed guest is written once, and what [`fixup_disk`] commits.
pub struct FixedOverlay {
    pub overlay: Arc<Overlay>,
    pub reports: Vec<FixupReport>,
    /// Where the root filesystem is (`partition 1`).
    pub root: String,
    pub os: Option<String>,
}

impl FixedOverlay {
    pub fn changed(&self) -> bool {
        self.reports.iter().any(|r| r.outcome == Outcome::Applied)
    }
}

/// Finds the Linux root on `source` and runs every fixup into an overlay whose scratch
/// file lives in `scratch`; the source is never written. With `opts.dry_run` on a
/// filesystem ferry cannot write (xfs), the fixups are only planned.
pub fn fix_in_overlay(
    disk: &Path,
    source: Arc<dyn DiskSource>,
    scratch: &Path,
    opts: &FixupOptions<'_>,
) -> Result<FixedOverlay, FixupDiskError> {
    let name = disk.display();
    let bad = |msg: String| FixupDiskError::BadInput(msg);
    let overlay = Arc::new(
        Overlay::new(source.clone(), scratch)
            .map_err(|e| FixupDiskError::WriteFailed(format!("{name}: overlay: {e}")))?,
    );
    let guests = find_guests_on(overlay.as_ref(), overlay.clone())
        .map_err(|e| bad(format!("{name}: {e}")))?;
    let Some(root) = guests.root.map(|i| &guests.filesystems[i]) else {
        return Err(bad(format!(
            "{name}: no Linux root filesystem found (`ferry inspect {name}` shows what is there)"
        )));
    };
    let partitions: Vec<DiskPartition> = guests
        .filesystems
        .iter()
        .filter_map(|f| {
            Some(DiskPartition {
                number: f.partition?,
                uuid: f.uuid.clone(),
                kind: f.filesystem.map(|k| k.name().to_string()),
            })
        })
        .collect();
    let failed = |what: String| {
        FixupDiskError::FixupFailed(format!(
            "{name}: {}: {what}; the disk was not changed",
            root.location
        ))
    };
    let root_index = guests.root.unwrap_or_default();
    let tree = OpenedTree::open(
        &guests.filesystems,
        root_index,
        &guests.mounts,
        Access::ReadWrite,
    )
    .map_err(|e| bad(format!("{name}: {e}")))?;
    // A read-only backend (xfs) can still show the plan: each fixup planned on the
    // unmodified guest.
    let apply = tree.is_writable();
    if !apply && !opts.dry_run {
        return Err(bad(format!(
            "{name}: {}: the root filesystem (or /boot) is {}, which ferry reads but does \
             not write (ext2/3/4 only); `ferry fixup --dry-run` shows what the guest needs",
            root.location,
            read_only_kind(&guests)
        )));
    }
    let reports = tree
        .with_fs(|fs| run_fixups(fs, &partitions, &opts.nics, opts.target, apply))
        .map_err(|e| failed(e.to_string()))?;
    tree.close()
        .map_err(|e| failed(format!("closing the filesystems: {e}")))?;
    Ok(FixedOverlay {
        overlay,
        reports,
        root: root.location.clone(),
        os: root
            .os
            .as_ref()
            .map(|o| o.os.pretty_name.clone().unwrap_or_else(|| o.os.id.clone())),
    })
}

/// The kind of the first filesystem of the guest's tree that ferry cannot write.
fn read_only_kind(guests: &DiskGuests) -> &'static str {
    let tree = guests
        .root
        .into_iter()
        .chain(guests.mounts.iter().map(|m| m.filesystem));
    tree.filter_map(|i| guests.filesystems[i].filesystem)
        .find(|k| {
            !matches!(
                k,
                crate::layout::Filesystem::Ext2
                    | crate::layout::Filesystem::Ext3
                    | crate::layout::Filesystem::Ext4
            )
        })
        .map_or("not writable", |k| k.name())
}

/// Where the overlay's temporary file goes: next to an image file (same filesystem, room
/// for it), the system temp dir for a block device.
fn scratch_dir(disk: &Path) -> PathBuf {
    let is_file = std::fs::metadata(disk).is_ok_and(|m| m.is_file());
    match disk.parent() {
        Some(parent) if is_file && !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ if is_file => PathBuf::from("."),
        _ => std::env::temp_dir(),
    }
}

/// qcow2 `cluster_bits` (header offset 20), to keep the image's cluster size.
fn qcow2_cluster_size(disk: &Path) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(disk).ok()?;
    let mut bits = [0u8; 4];
    file.read_exact_at(&mut bits, 20).ok()?;
    let bits = u32::from_be_bytes(bits);
    (9..=21).contains(&bits).then(|| 1u64 << bits)
}

/// Writes image + overlay as a new qcow2 beside `disk`, proves it equal to the overlay,
/// and only then renames it over `disk`, keeping the original's permissions and, when
/// allowed, its owner (libvirt's `qemu` user).
fn rewrite_qcow2(
    disk: &Path,
    overlay: &Overlay,
    opts: &FixupOptions<'_>,
) -> Result<(), FixupDiskError> {
    use std::os::unix::fs::MetadataExt;
    let name = disk.display();
    let write_failed = |e: String| FixupDiskError::WriteFailed(format!("{name}: {e}"));
    let meta = std::fs::metadata(disk).map_err(|e| write_failed(e.to_string()))?;
    let write_opts = Qcow2WriteOptions {
        cluster_size: qcow2_cluster_size(disk).unwrap_or(65536),
        ..Qcow2WriteOptions::default()
    };
    // The sink writes under its own temporary name and renames to `staged` when done; the
    // guard removes `staged` on every way out until it replaces `disk`.
    let mut staged = Staged(staged_path(disk));
    let size = DiskSource::size(overlay);
    let sink =
        Qcow2Sink::create(&staged.0, size, write_opts).map_err(|e| write_failed(e.to_string()))?;
    let copy = CopyOptions {
        cancel: opts.cancel.clone(),
        ..CopyOptions::default()
    };
    copy_disk(overlay, Box::new(sink), &copy, opts.progress).map_err(|e| {
        let cancelled = opts
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst));
        if cancelled {
            FixupDiskError::Interrupted(format!("interrupted; {name} was not changed"))
        } else {
            write_failed(format!("{e}; the disk was not changed"))
        }
    })?;
    let written = converters::open(
        &staged.0,
        Some(converters::Format::Qcow2),
        &converters::OpenOptions::default(),
    )
    .map_err(|e| write_failed(format!("{e}; the disk was not changed")))?;
    verify(overlay, written.as_ref(), copy.jobs).map_err(|e| {
        write_failed(format!(
            "the rewritten image differs from the fixed guest ({e}); the disk was not changed"
        ))
    })?;
    std::fs::set_permissions(&staged.0, meta.permissions())
        .map_err(|e| write_failed(e.to_string()))?;
    // Only root may give a file away; as another user the new image is simply ours.
    let _ = std::os::unix::fs::chown(&staged.0, Some(meta.uid()), Some(meta.gid()));
    std::fs::rename(&staged.0, disk).map_err(|e| write_failed(e.to_string()))?;
    staged.0 = PathBuf::new();
    Ok(())
}

/// `DIR/.NAME.ferry-fixup`: beside the disk, so the rename stays on one filesystem.
fn staged_path(disk: &Path) -> PathBuf {
    let name = disk
        .file_name()
        .map_or_else(|| "disk".into(), |n| n.to_string_lossy().into_owned());
    disk.with_file_name(format!(".{name}.ferry-fixup"))
}

/// Removes the staged image unless it was renamed into place.
struct Staged(PathBuf);

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}
