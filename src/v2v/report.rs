//! What a move did, per stage, for the terminal, `--json` and `NAME.report.json`.

use serde::Serialize;

use converters::copy::CopyStats;
use converters::verify::VerifyReport;
use fixups::fixup::{FixupReport, Outcome};
use vmdesc::VmDescription;

use super::plan::PlannedDisk;
use crate::guest::FixedOverlay;

#[derive(Debug, Serialize)]
pub struct V2vReport {
    pub name: String,
    /// `vmx`, `ovf`, `ova`, `xen`, `libvirt` or `disks`.
    pub source_kind: &'static str,
    pub sources: Vec<String>,
    pub description: VmDescription,
    pub dry_run: bool,
    pub disks: Vec<DiskReport>,
    pub bytes_to_copy: u64,
    pub fixups: Option<FixupSummary>,
    pub guest_caps: GuestCaps,
    pub domain_xml_path: String,
    pub domain_xml: String,
    pub libvirt: Option<LibvirtReport>,
    /// `--migrate-to`: the preflight checks and the move.
    pub preflight: Vec<virtconn::migrate::Check>,
    pub migration: Option<virtconn::migrate::MigrationReport>,
    pub stages: Vec<StageTime>,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct DiskReport {
    #[serde(flatten)]
    pub plan: PlannedDisk,
    pub copy: Option<CopyStats>,
    pub verify: Option<VerifyReport>,
}

impl DiskReport {
    pub fn planned(plan: &PlannedDisk) -> Self {
        DiskReport {
            plan: plan.clone(),
            copy: None,
            verify: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct FixupSummary {
    /// The source disk that holds the root.
    pub disk: String,
    pub root: String,
    pub os: Option<String>,
    pub reports: Vec<FixupReport>,
    /// Guest bytes the fixups changed (whole overlay chunks).
    pub changed_bytes: u64,
}

impl FixupSummary {
    pub fn new(disk: String, fixed: &FixedOverlay) -> Self {
        FixupSummary {
            disk,
            root: fixed.root.clone(),
            os: fixed.os.clone(),
            reports: fixed.reports.clone(),
            changed_bytes: if fixed.changed() {
                fixed.overlay.dirty_bytes()
            } else {
                0
            },
        }
    }
}

/// What the guest can use on KVM, as the fixups found it.
#[derive(Debug, Clone, Serialize)]
pub struct GuestCaps {
    pub virtio: bool,
    pub reason: String,
}

impl GuestCaps {
    /// virtio needs the drivers in the initramfs; when the initramfs fixup found no kernel
    /// it could give them, the guest gets SATA and e1000, which every Linux boots from.
    pub fn from_fixups(fixups: Option<&FixupSummary>) -> Self {
        let Some(summary) = fixups else {
            return GuestCaps {
                virtio: true,
                reason: "no fixups run (--no-fixups): virtio assumed".into(),
            };
        };
        let initramfs = summary.reports.iter().find(|r| r.id == "initramfs");
        match initramfs {
            Some(r) if r.outcome == Outcome::Skipped && !already_has_virtio(r) => GuestCaps {
                virtio: false,
                reason: format!(
                    "virtio drivers could not be given to the guest ({}): SATA disks and e1000 NICs",
                    r.reason.as_deref().unwrap_or("initramfs fixup skipped")
                ),
            },
            _ => GuestCaps {
                virtio: true,
                reason: "virtio drivers present in the guest's initramfs".into(),
            },
        }
    }
}

/// A skipped initramfs fixup may mean the drivers are already there (built in, or in the
/// image); only "no kernel could be examined" means the guest lacks them.
fn already_has_virtio(r: &FixupReport) -> bool {
    let reason = r.reason.as_deref().unwrap_or("");
    !(reason.contains("no kernel")
        || reason.contains("no modules")
        || reason.contains("no initramfs")
        || reason.contains("is missing"))
}

#[derive(Debug, Serialize)]
pub struct LibvirtReport {
    pub uri: String,
    pub name: String,
    pub uuid: String,
    pub pool: Option<String>,
    pub started: bool,
    pub macs: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct StageTime {
    pub stage: &'static str,
    pub what: &'static str,
    pub seconds: f64,
}
