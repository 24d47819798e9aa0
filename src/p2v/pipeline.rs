//! `ferry p2v`: the machine's hardware inventory becomes the VM description, each disk is
//! read whole or through its used-blocks view, and the `ferry v2v` pipeline does the rest
//! (fixups, conversion, verification, domain XML, define/start).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use converters::{DiskSource, Format, OpenOptions};

use super::inventory::{inventory, Inventory, SysRoot};
use super::used::{used_map, UsedMap, UsedOnly};
use crate::v2v::source::{DiskLocation, Resolved};
use crate::v2v::{run_prepared, Prepared, Progress, V2vError, V2vOptions, V2vReport};

pub struct P2vOptions {
    pub disks: Vec<PathBuf>,
    pub name: Option<String>,
    /// Copy only what the filesystems use (partition tables, ext2/3/4 bitmaps).
    pub used_only: bool,
    /// Where the machine's `/proc` and `/sys` are (`/` except in tests).
    pub root: PathBuf,
    pub v2v: V2vOptions,
}

#[derive(Debug, Serialize)]
pub struct P2vReport {
    pub inventory: Inventory,
    /// Per disk, what the used-blocks map decided (with `--used-only`).
    pub used: Vec<UsedSummary>,
    pub warnings: Vec<String>,
    pub v2v: V2vReport,
}

#[derive(Debug, Serialize)]
pub struct UsedSummary {
    pub disk: String,
    pub disk_size: u64,
    pub used_bytes: u64,
    pub regions: Vec<super::used::UsedRegion>,
}

impl UsedSummary {
    fn new(disk: &std::path::Path, map: &UsedMap) -> Self {
        UsedSummary {
            disk: disk.display().to_string(),
            disk_size: map.disk_size,
            used_bytes: map.used_bytes,
            regions: map.regions.clone(),
        }
    }
}

pub fn run(opts: &P2vOptions, progress: &dyn Progress) -> Result<P2vReport, V2vError> {
    let started = Instant::now();
    if opts.disks.is_empty() {
        return Err(V2vError::Usage("name at least one --disk".into()));
    }
    let inv = inventory(&SysRoot::new(&opts.root), &opts.disks, opts.name.as_deref())
        .map_err(|e| V2vError::BadInput(e.to_string()))?;
    let mut inv = inv;
    // The running system's os-release is the live system's (or, for dumps, this host's),
    // not the imaged guest's; inspection of the disks names the guest's OS.
    inv.description.os_hint = None;
    let mut warnings = Vec::new();
    if opts
        .disks
        .iter()
        .all(|d| std::fs::metadata(d).is_ok_and(|m| m.is_file()))
    {
        // Raw dumps imaged elsewhere: this host's CPUs, memory and NICs are not theirs.
        let defaults = vmdesc::VmDescription::from_disks(&opts.disks);
        let d = &mut inv.description;
        d.vcpus = defaults.vcpus;
        d.topology = None;
        d.memory_bytes = defaults.memory_bytes;
        d.firmware = vmdesc::Firmware::Bios;
        d.nics.clear();
        inv.nics.clear();
        let note = format!(
            "every disk is a file (raw dumps): the machine's hardware is unknown here; {} vCPUs, {} MiB, BIOS and no NICs assumed",
            d.vcpus,
            d.memory_bytes >> 20
        );
        d.warnings.push(note.clone());
        warnings.push(note);
    }
    let mut used = Vec::new();
    let mut opened: Vec<Arc<dyn DiskSource>> = Vec::new();
    for disk in &opts.disks {
        if let Some(mount) = super::mounted::mounted_part_of(disk) {
            warnings.push(format!(
                "{}: {mount} is mounted: the image may be inconsistent; boot a live system for a consistent copy",
                disk.display()
            ));
        }
        let raw: Arc<dyn DiskSource> = Arc::from(
            converters::open(disk, Some(Format::Raw), &OpenOptions::default())
                .map_err(|e| V2vError::BadInput(e.to_string()))?,
        );
        if opts.used_only {
            let map = used_map(raw.as_ref())
                .map_err(|e| V2vError::BadInput(format!("{}: {e}", disk.display())))?;
            used.push(UsedSummary::new(disk, &map));
            opened.push(Arc::new(UsedOnly::new(raw, map)));
        } else {
            opened.push(raw);
        }
    }
    let resolved = Resolved {
        description: inv.description.clone(),
        kind: "physical",
        disks: opts
            .disks
            .iter()
            .map(|d| DiskLocation::File {
                path: d.clone(),
                format: Some(Format::Raw),
                named_by: None,
            })
            .collect(),
    };
    let v2v = run_prepared(
        Prepared { resolved, opened },
        &opts.disks,
        started,
        &opts.v2v,
        progress,
    )?;
    Ok(P2vReport {
        inventory: inv,
        used,
        warnings,
        v2v,
    })
}
