//! Fixups: the edits that make a guest converted from VMware or Xen boot under KVM, or
//! (V2P, [`Target::Physical`]) a VM's disk boot on bare metal.
//!
//! Each fixup is a [`GuestFixup`]: an id, a *pure* [`GuestFixup::plan`] that reads the guest
//! through [`GuestFs`] and returns the [`Change`]s it would make (or why it does not apply),
//! and an [`GuestFixup::apply`] that makes them. Changes are data, so one engine
//! ([`apply`]) writes them, keeps a `*.ferry-orig` backup of every file it edits, and
//! renders them as diffs for `--dry-run` ([`diff`]).
//!
//! [`run_fixups`] runs the fixups in order: the guest is inspected afresh before each one,
//! so a later fixup sees what an earlier one did (the initramfs fixup packs the network
//! fixup's `.link` files). A fixup whose plan is empty reports "nothing to change": that is
//! how a second run changes nothing.
//!
//! Guest code is never run: every fixup reads and writes files only.

pub mod apply;
pub(crate) mod cmdline;
pub mod consoles;
pub mod devices;
pub mod diff;
pub(crate) mod guestio;
pub mod initramfs;
pub mod network;
pub mod tools;

use serde::Serialize;

use crate::guestfs::{GuestFs, GuestFsError, GuestPath};
use crate::inspect::{inspect_filesystem, GuestOs, InspectError};

/// Suffix of the backup ferry keeps of each file it edits, next to the file.
pub const BACKUP_SUFFIX: &str = ".ferry-orig";

/// What the guest is being fixed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// KVM with virtio-blk disks (`vda`, `vdb`, …) and virtio-net NICs.
    Kvm,
    /// Bare metal (V2P): real storage controllers and NICs, whose disk names and NIC
    /// order ferry cannot know in advance, a VGA console, and no hypervisor agents.
    Physical,
}

/// One partition of the disk being fixed, as the fixups need to know it: which number the
/// source guest's device names carry (`/dev/sda2` is partition 2 of the first disk) and
/// the UUID a device name can be replaced by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiskPartition {
    /// 1-based, as in `/dev/sda1`.
    pub number: u32,
    /// Filesystem or swap UUID, as `blkid` prints it.
    pub uuid: Option<String>,
    /// `ext4`, `swap`, `xfs`, `LVM2_member`, …
    pub kind: Option<String>,
}

/// A NIC the guest will have on the target, when the caller knows it (from a `.vmx`, an
/// `xl.cfg`, or `--mac` for a physical machine); without any, fixups use the MACs written
/// in the guest's own configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TargetNic {
    /// `00:50:56:8a:3c:01`, lower case.
    pub mac: String,
    /// The interface name this NIC must get (V2P `--mac NAME=MAC`); `None`: it is paired
    /// in order with the configured names no NIC claims by name.
    pub name: Option<String>,
}

/// Everything a fixup may look at.
pub struct GuestContext<'a> {
    /// The guest's root filesystem.
    pub fs: &'a dyn GuestFs,
    /// Inspection of `fs`, current (taken after the previous fixup applied).
    pub os: &'a GuestOs,
    /// Partitions of the guest's first disk (the one holding root), in number order.
    pub partitions: &'a [DiskPartition],
    pub nics: &'a [TargetNic],
    pub target: Target,
}

/// One edit of the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Create or replace a regular file. `before` is its current content (`None`: it does
    /// not exist); it is kept as `PATH.ferry-orig` unless a backup is there already.
    WriteFile {
        path: GuestPath,
        before: Option<Vec<u8>>,
        after: Vec<u8>,
    },
    /// Append `data` to a file that is `before_len` bytes long (an initramfs gets a cpio
    /// archive). The whole original is backed up first, as for `WriteFile`.
    AppendFile {
        path: GuestPath,
        before_len: u64,
        data: Vec<u8>,
        /// What the appended bytes are, for the plan (`cpio: virtio_blk.ko, …`).
        summary: String,
    },
    /// Create a symlink (a unit masked with `/dev/null`, a getty enabled). `path` must not
    /// exist.
    CreateSymlink { path: GuestPath, target: String },
    /// Remove a symlink (a unit's `*.wants/` entry). Its target is recorded in
    /// [`apply::SYMLINK_LOG`] so the change can be undone by hand.
    RemoveSymlink { path: GuestPath, target: String },
}

impl Change {
    /// The guest path this change edits.
    pub fn path(&self) -> &GuestPath {
        match self {
            Change::WriteFile { path, .. }
            | Change::AppendFile { path, .. }
            | Change::CreateSymlink { path, .. }
            | Change::RemoveSymlink { path, .. } => path,
        }
    }

    /// A word for reports: `edit`, `create`, `append`, `symlink`, `unlink`.
    pub fn action(&self) -> &'static str {
        match self {
            Change::WriteFile {
                before: Some(_), ..
            } => "edit",
            Change::WriteFile { before: None, .. } => "create",
            Change::AppendFile { .. } => "append",
            Change::CreateSymlink { .. } => "symlink",
            Change::RemoveSymlink { .. } => "unlink",
        }
    }
}

/// What a fixup's plan says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// The fixup does not apply to this guest, and why (no initramfs-tools or dracut, …).
    Skip(String),
    /// The changes to make; empty when the guest needs none (already fixed).
    Changes(Vec<Change>),
}

/// Why a fixup could not be planned or applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixupError {
    #[error(transparent)]
    Guest(#[from] GuestFsError),
    #[error(transparent)]
    Inspect(#[from] InspectError),
    /// The guest changed between plan and apply, or a plan cannot be applied as made.
    #[error("{path}: {why}")]
    Conflict { path: String, why: String },
    /// The filesystem holds no Linux root ferry recognises.
    #[error("no Linux root filesystem found (no /etc/os-release and no /etc/fstab)")]
    NoOs,
}

/// One fixup.
pub trait GuestFixup: Send + Sync {
    /// Stable short name used in reports and `--json` (`devices`, `initramfs`, …).
    fn id(&self) -> &'static str;
    /// One line saying what it does for `target`.
    fn description(&self, target: Target) -> &'static str;
    /// The changes this guest needs. Pure: reads the guest, writes nothing.
    fn plan(&self, ctx: &GuestContext<'_>) -> Result<Plan, FixupError>;
    /// Make the planned changes, keeping backups.
    fn apply(&self, ctx: &GuestContext<'_>, changes: &[Change]) -> Result<(), FixupError> {
        apply::apply_changes(ctx.fs, changes)
    }
    /// What the plan leaves alone that the user should know about (a device name kept
    /// because it has no UUID). Pure, like [`GuestFixup::plan`].
    fn notes(&self, _ctx: &GuestContext<'_>) -> Result<Vec<String>, FixupError> {
        Ok(Vec::new())
    }
}

/// Every fixup for `target`, in the order they run. The initramfs fixup is last so that
/// it packs the files the others wrote (`.link` files naming NICs).
pub fn fixups_for(target: Target) -> Vec<Box<dyn GuestFixup>> {
    match target {
        // The same edits, each branching on the target where they differ.
        Target::Kvm | Target::Physical => vec![
            Box::new(devices::DeviceNames),
            Box::new(consoles::Consoles),
            Box::new(network::Network),
            Box::new(tools::ForeignTools),
            Box::new(initramfs::Initramfs),
        ],
    }
}

/// Whether a fixup was applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Changes were made (or, with `apply == false`, would be made).
    Applied,
    /// Nothing to do: the fixup does not apply, or the guest is already fixed.
    Skipped,
}

/// One changed path in a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChangeReport {
    pub action: &'static str,
    pub path: String,
    /// Unified diff for text files, a summary for the rest.
    pub diff: String,
}

/// What one fixup did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FixupReport {
    pub id: &'static str,
    pub description: &'static str,
    pub outcome: Outcome,
    /// Why it was skipped.
    pub reason: Option<String>,
    pub changes: Vec<ChangeReport>,
    /// What was left alone and why ([`GuestFixup::notes`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Plans every fixup for `target` on the root filesystem `fs` and, when `apply` is set,
/// applies each before planning the next. Stops at the first error: a fixup that fails
/// midway leaves its own changes partly made, which is why callers work on an overlay and
/// commit only a run that succeeded.
pub fn run_fixups(
    fs: &dyn GuestFs,
    partitions: &[DiskPartition],
    nics: &[TargetNic],
    target: Target,
    apply: bool,
) -> Result<Vec<FixupReport>, FixupError> {
    let mut reports = Vec::new();
    for fixup in fixups_for(target) {
        let os = inspect_filesystem(fs)?.ok_or(FixupError::NoOs)?;
        let ctx = GuestContext {
            fs,
            os: &os,
            partitions,
            nics,
            target,
        };
        let notes = fixup.notes(&ctx)?;
        let mut report = match fixup.plan(&ctx)? {
            Plan::Skip(reason) => skipped(fixup.as_ref(), target, reason),
            Plan::Changes(changes) if changes.is_empty() => {
                // Callers print the reason of a skipped fixup: the notes go there too.
                let mut reason = "nothing to change".to_string();
                for note in &notes {
                    reason.push_str("; ");
                    reason.push_str(note);
                }
                skipped(fixup.as_ref(), target, reason)
            }
            Plan::Changes(changes) => {
                if apply {
                    fixup.apply(&ctx, &changes)?;
                }
                FixupReport {
                    id: fixup.id(),
                    description: fixup.description(target),
                    outcome: Outcome::Applied,
                    reason: None,
                    changes: changes.iter().map(diff::report).collect(),
                    notes: Vec::new(),
                }
            }
        };
        report.notes = notes;
        reports.push(report);
    }
    if apply {
        fs.flush()?;
    }
    Ok(reports)
}

fn skipped(fixup: &dyn GuestFixup, target: Target, reason: String) -> FixupReport {
    FixupReport {
        id: fixup.id(),
        description: fixup.description(target),
        outcome: Outcome::Skipped,
        reason: Some(reason),
        changes: Vec::new(),
        notes: Vec::new(),
    }
}

/// `path` + [`BACKUP_SUFFIX`].
pub fn backup_path(path: &GuestPath) -> Result<GuestPath, GuestFsError> {
    path.with_suffix(BACKUP_SUFFIX)
}

#[cfg(test)]
mod tests;
