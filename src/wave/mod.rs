//! Bulk waves: an inventory of many VMs moved with bounded concurrency, resumable, with
//! progress and a report (`ferry wave`).
//!
//! ```text
//!  inventory.toml ──► load (ids, merged options) ──► skip VMs done in wave-state.json
//!        │
//!        ▼
//!  --parallel N workers, each: v2v::run(VM) with cores/N copy threads
//!        │  after each VM: record done/failed, rewrite wave-state.json atomically
//!        ▼
//!  wave-report.json (every VM: done, failed, skipped, interrupted, not run)
//! ```
//!
//! The output folder belongs to the wave while it runs: `wave.lock` (an advisory lock the
//! kernel drops when the process dies) keeps a second wave out, and the temporary files
//! a killed wave left there (`.*.ferry-tmp`) are removed when the next one starts.

pub mod inventory;
mod run;
pub mod state;

use std::io::Read;
use std::path::Path;

pub use inventory::{load, Inventory, InventoryError, WaveVm};
pub use run::{
    run, VmOutcome, VmStatus, WaveError, WaveOptions, WaveProgress, WaveReport, LOCK_FILE,
    REPORT_FILE,
};

/// Inventories and states larger than this are not what they claim to be.
const MAX_TEXT_BYTES: u64 = 16 << 20;

/// Reads a small text file whole, refusing one over [`MAX_TEXT_BYTES`] (a device or a
/// disk image named by mistake must not be read to its end).
pub(crate) fn read_small_text(path: &Path) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(MAX_TEXT_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_TEXT_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "larger than 16 MiB: not an inventory or a wave state",
        ));
    }
    Ok(text)
}
