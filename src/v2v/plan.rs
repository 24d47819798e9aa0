//! What a move will do, known before anything is written: the domain name, each disk's
//! source, size, bytes to copy and output path. `--dry-run` prints exactly this.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use converters::DiskSource;

use super::source::Resolved;
use super::{V2vError, V2vOptions};

#[derive(Debug, Clone, Serialize)]
pub struct PlannedDisk {
    /// The source disk as the user would name it (`web.ova/web-disk1.vmdk`).
    pub source: String,
    /// `vmdk (streamOptimized)`, `raw`, …
    pub source_format: String,
    pub virtual_size: u64,
    /// Bytes the source's allocation map calls data: what the copy reads.
    pub allocated_bytes: u64,
    pub output: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub name: String,
    pub disks: Vec<PlannedDisk>,
    pub bytes_to_copy: u64,
}

/// The domain name a move of `resolved` takes: `--name`, else the source VM's name, made
/// safe for libvirt and file names.
pub fn domain_name(resolved: &Resolved, opts: &V2vOptions) -> String {
    domain::sanitize_name(opts.name.as_deref().unwrap_or(&resolved.description.name))
}

/// Plans the move; `disk_dir` is `--out` or the storage pool's folder.
pub fn plan(
    resolved: &Resolved,
    opened: &[Arc<dyn DiskSource>],
    opts: &V2vOptions,
    disk_dir: &Path,
) -> Result<Plan, V2vError> {
    let name = domain_name(resolved, opts);
    let mut disks = Vec::new();
    for (i, (loc, disk)) in resolved.disks.iter().zip(opened).enumerate() {
        let allocated = converters::source::allocated_bytes(disk.as_ref())
            .map_err(|e| V2vError::BadInput(e.to_string()))?;
        let top = disk.layers().into_iter().next();
        let source_format = match top {
            Some(l) => match l.subformat {
                Some(sub) => format!("{} ({sub})", l.format),
                None => l.format,
            },
            None => "unknown".into(),
        };
        disks.push(PlannedDisk {
            source: loc.shown().display().to_string(),
            source_format,
            virtual_size: disk.size(),
            allocated_bytes: allocated,
            output: disk_dir.join(format!(
                "{name}-disk{}.{}",
                i + 1,
                opts.output_format.name()
            )),
        });
    }
    let bytes_to_copy = disks.iter().map(|d| d.allocated_bytes).sum();
    Ok(Plan {
        name,
        disks,
        bytes_to_copy,
    })
}

impl Plan {
    /// A second run must not replace a first run's guest.
    pub fn refuse_existing_outputs(&self, out_dir: &Path) -> Result<(), V2vError> {
        let xml = out_dir.join(format!("{}.xml", self.name));
        let report = out_dir.join(format!("{}.report.json", self.name));
        let paths = self
            .disks
            .iter()
            .map(|d| d.output.clone())
            .chain([xml, report]);
        for p in paths {
            if p.exists() {
                return Err(V2vError::OutputFailed(format!(
                    "{}: already exists; ferry never overwrites an earlier result (remove it or pass --name)",
                    p.display()
                )));
            }
        }
        Ok(())
    }
}
