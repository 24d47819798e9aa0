//! `ferry fixup DISK`: make a converted Linux guest boot under KVM, in place, without
//! booting it and without a helper VM.
//!
//! The disk is opened read-only and every fixup writes into an [`Overlay`]; only when all
//! of them succeeded is the overlay committed — written back in place into a raw disk, or
//! merged with the image into a new qcow2 renamed over the old one. `--dry-run` runs the
//! same fixups on the overlay and drops it, so the diffs it prints are exactly what a real
//! run writes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use converters::copy::{copy_disk, CopyOptions};
use converters::qcow2::{Qcow2Sink, Qcow2WriteOptions};
use converters::DiskSource;
use fixups::fixup::{run_fixups, DiskPartition, FixupReport, Outcome, Target};
use fixups::guestfs::ext4::{Access, Ext4Fs};

use super::units::human;
use super::{print_json, progress, CliResult, Exit, Failure, FixupArgs, TargetArg};
use crate::guest::{commit_in_place, find_guests_on, Overlay};

/// How the overlay reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Commit {
    /// `--dry-run`: dropped.
    None,
    /// Changed chunks written back into the raw file or block device.
    InPlace,
    /// The qcow2 rewritten with the changes and renamed over the original.
    Qcow2Rewrite,
}

#[derive(Debug, Serialize)]
struct FixupRun {
    disk: String,
    format: String,
    target: Target,
    dry_run: bool,
    /// Where the root filesystem is (`partition 1`, `LV vg0/root (partition 2)`).
    root: String,
    os: Option<String>,
    fixups: Vec<FixupReport>,
    commit: Commit,
    /// Guest bytes changed (whole 64 KiB chunks).
    changed_bytes: u64,
    seconds: f64,
}

pub fn run(args: &FixupArgs) -> CliResult {
    let started = Instant::now();
    let bad = |msg: String| Failure::new(Exit::BadInput, anyhow::anyhow!(msg));
    let disk = &args.disk;
    let source: Arc<dyn DiskSource> = Arc::from(args.source.open(disk)?);
    let layers = source.layers();
    let format = layers.first().map_or("unknown", |l| l.format.as_str());
    let commit = match (args.dry_run, format, layers.len()) {
        (true, _, _) => Commit::None,
        (false, "raw", 1) => Commit::InPlace,
        (false, "qcow2", 1) => Commit::Qcow2Rewrite,
        (false, "qcow2", _) => {
            return Err(bad(format!(
                "{}: qcow2 with a backing file: ferry fixup writes a standalone disk; \
                 flatten it first (ferry convert --follow-backing)",
                disk.display()
            )))
        }
        (false, other, _) => {
            return Err(bad(format!(
                "{}: ferry fixup writes raw and qcow2 disks, this is {other}; convert it \
                 first (ferry convert), or look with --dry-run",
                disk.display()
            )))
        }
    };
    let format = format.to_string();
    let overlay = Arc::new(
        Overlay::new(source.clone(), &scratch_dir(disk))
            .map_err(|e| Failure::new(Exit::OutputFailed, anyhow::anyhow!("overlay: {e}")))?,
    );
    let guests = find_guests_on(overlay.as_ref(), overlay.clone())
        .map_err(|e| bad(format!("{}: {e}", disk.display())))?;
    let Some(root) = guests.root.map(|i| &guests.filesystems[i]) else {
        return Err(bad(format!(
            "{}: no Linux root filesystem found (`ferry inspect {}` shows what is there)",
            disk.display(),
            disk.display()
        )));
    };
    let device = root
        .device
        .clone()
        .ok_or_else(|| bad(format!("{}: root filesystem cannot be reopened", disk.display())))?;
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
    let fs = Ext4Fs::open(device.0, Access::ReadWrite)
        .map_err(|e| bad(format!("{}: {}: {e}", disk.display(), root.location)))?;
    let target = match args.target {
        TargetArg::Kvm => Target::Kvm,
    };
    let reports = run_fixups(&fs, &partitions, &[], target, true).map_err(|e| {
        Failure::new(
            Exit::FixupFailed,
            anyhow::anyhow!(
                "{}: {}: {e}; the disk was not changed",
                disk.display(),
                root.location
            ),
        )
    })?;
    fs.close().map_err(|e| {
        Failure::new(
            Exit::FixupFailed,
            anyhow::anyhow!("{}: closing the root filesystem: {e}; the disk was not changed", disk.display()),
        )
    })?;
    let any_change = reports.iter().any(|r| r.outcome == Outcome::Applied);
    let commit = if any_change { commit } else { Commit::None };
    match commit {
        Commit::None => {}
        Commit::InPlace => {
            commit_in_place(&overlay, disk).map_err(|e| {
                Failure::new(
                    Exit::OutputFailed,
                    anyhow::anyhow!("{}: writing the fixed blocks: {e}", disk.display()),
                )
            })?;
        }
        Commit::Qcow2Rewrite => rewrite_qcow2(disk, &overlay, args.json)?,
    }
    let run = FixupRun {
        disk: disk.display().to_string(),
        format,
        target,
        dry_run: args.dry_run,
        root: root.location.clone(),
        os: root
            .os
            .as_ref()
            .map(|o| o.os.pretty_name.clone().unwrap_or_else(|| o.os.id.clone())),
        changed_bytes: if any_change { overlay.dirty_bytes() } else { 0 },
        fixups: reports,
        commit,
        seconds: started.elapsed().as_secs_f64(),
    };
    if args.json {
        return print_json(&run);
    }
    print_run(&run);
    Ok(())
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

/// Writes image + overlay as a new qcow2 beside `disk` and renames it over `disk`, keeping
/// the original's permissions and, when allowed, its owner (libvirt's `qemu` user).
fn rewrite_qcow2(disk: &Path, overlay: &Overlay, quiet: bool) -> CliResult {
    use std::os::unix::fs::MetadataExt;
    let out = |e: anyhow::Error| Failure::new(Exit::OutputFailed, e);
    let meta = std::fs::metadata(disk).map_err(|e| out(e.into()))?;
    let opts = Qcow2WriteOptions {
        cluster_size: qcow2_cluster_size(disk).unwrap_or(65536),
        ..Qcow2WriteOptions::default()
    };
    let size = DiskSource::size(overlay);
    let sink = Qcow2Sink::create(disk, size, opts).map_err(|e| out(e.into()))?;
    let bar = progress::bytes_bar(size, "rewrite", quiet);
    let cancel = super::interrupted();
    let copy = CopyOptions {
        cancel: Some(cancel.clone()),
        ..CopyOptions::default()
    };
    copy_disk(overlay, Box::new(sink), &copy, &|n| bar.inc(n)).map_err(|e| {
        if cancel.load(std::sync::atomic::Ordering::SeqCst) {
            Failure::new(
                Exit::Interrupted,
                anyhow::anyhow!("interrupted; {} was not changed", disk.display()),
            )
        } else {
            Failure::classify(e, Exit::OutputFailed)
        }
    })?;
    bar.finish_and_clear();
    std::fs::set_permissions(disk, meta.permissions()).map_err(|e| out(e.into()))?;
    // Only root may give a file away; as another user the new image is simply ours.
    let _ = std::os::unix::fs::chown(disk, Some(meta.uid()), Some(meta.gid()));
    Ok(())
}

fn print_run(run: &FixupRun) {
    let os = run.os.as_deref().unwrap_or("unknown OS");
    println!(
        "disk:    {} ({}), root on {} — {os}",
        run.disk, run.format, run.root
    );
    for r in &run.fixups {
        let (word, detail) = match r.outcome {
            Outcome::Applied if run.dry_run => ("would fix", String::new()),
            Outcome::Applied => ("fixed", String::new()),
            Outcome::Skipped => ("skipped", r.reason.clone().unwrap_or_default()),
        };
        println!("  {:<10} {word:<9} {}", r.id, if detail.is_empty() { r.description } else { &detail });
        for c in &r.changes {
            println!("      {} {}", c.action, c.path);
            if run.dry_run {
                for line in c.diff.lines() {
                    println!("        {line}");
                }
            }
        }
    }
    let verdict = match run.commit {
        Commit::None if run.dry_run => "nothing written (--dry-run)".to_string(),
        Commit::None => "nothing to change; the disk was not written".to_string(),
        Commit::InPlace => format!("{} of guest blocks written in place", human(run.changed_bytes)),
        Commit::Qcow2Rewrite => format!(
            "qcow2 rewritten with {} of changed guest blocks",
            human(run.changed_bytes)
        ),
    };
    println!("result:  {verdict}; {:.2} s", run.seconds);
}
