//! The resume state of a wave: which VMs are done, kept in `OUT/wave-state.json`.
//!
//! The state is rewritten after every VM that ends, to a temporary name and renamed over
//! the old one, so a wave killed at any moment leaves either the previous state or the
//! next, never half a file. A VM is recorded only when it ends: one that was running
//! when the wave died is simply not done, and runs again. Only `done` VMs are skipped on
//! a rerun; failed ones are retried.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Name of the state file inside the wave's output folder.
pub const STATE_FILE: &str = "wave-state.json";

/// What became of one VM in the last run that reached it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VmRecord {
    /// `done` or `failed`.
    pub status: RecordStatus,
    /// The domain name the move used (known once its description was read).
    pub name: Option<String>,
    /// The sources it was moved from, as the wave named them: a VM of the same id from
    /// other sources (another inventory run into the same folder) is not this one.
    #[serde(default)]
    pub sources: Vec<String>,
    /// `NAME.report.json` of a done VM.
    pub report: Option<String>,
    /// Guest bytes copied.
    pub bytes_copied: u64,
    pub seconds: f64,
    /// The one-line error of a failed VM.
    pub error: Option<String>,
    /// When it ended, seconds since the Unix epoch.
    pub ended_at: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RecordStatus {
    Done,
    Failed,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct WaveState {
    /// The inventory the state belongs to, as given the first time.
    pub inventory: String,
    /// By VM id.
    pub vms: BTreeMap<String, VmRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: cannot read the wave state: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: the wave state is damaged ({why}); move it away to start the wave afresh")]
    Damaged { path: String, why: String },
    #[error("{path}: cannot write the wave state: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

pub fn state_path(out_dir: &Path) -> PathBuf {
    out_dir.join(STATE_FILE)
}

impl WaveState {
    /// The state in `out_dir`, empty when the wave never ran there.
    pub fn load(out_dir: &Path) -> Result<WaveState, StateError> {
        let path = state_path(out_dir);
        let shown = path.display().to_string();
        let text = match crate::wave::read_small_text(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(WaveState::default()),
            Err(source) => {
                return Err(StateError::Read {
                    path: shown,
                    source,
                })
            }
        };
        serde_json::from_str(&text).map_err(|e| StateError::Damaged {
            path: shown,
            why: e.to_string(),
        })
    }

    /// Writes the state atomically (temporary file, fsync, rename).
    pub fn save(&self, out_dir: &Path) -> Result<(), StateError> {
        let path = state_path(out_dir);
        let err = |source| StateError::Write {
            path: path.display().to_string(),
            source,
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| err(std::io::Error::other(e)))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".wave-state.")
            .suffix(".ferry-tmp")
            .tempfile_in(out_dir)
            .map_err(err)?;
        std::io::Write::write_all(&mut tmp, &json).map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(&path).map_err(|e| err(e.error))?;
        Ok(())
    }

    /// The record of VM `id` when it is done, from these `sources`.
    pub fn done_record(&self, id: &str, sources: &[String]) -> Option<&VmRecord> {
        self.vms.get(id).filter(|r| {
            r.status == RecordStatus::Done && (r.sources.is_empty() || r.sources == sources)
        })
    }
}

/// Seconds since the Unix epoch, for records.
pub fn now_epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: RecordStatus) -> VmRecord {
        VmRecord {
            status,
            name: Some("web01".into()),
            sources: vec!["web01.vmx".into()],
            report: Some("/out/web01.report.json".into()),
            bytes_copied: 42,
            seconds: 1.5,
            error: None,
            ended_at: 1,
        }
    }

    #[test]
    fn round_trips_and_only_done_counts() {
        let dir = tempfile::tempdir().unwrap();
        assert!(WaveState::load(dir.path()).unwrap().vms.is_empty());
        let mut state = WaveState {
            inventory: "wave.toml".into(),
            ..WaveState::default()
        };
        state.vms.insert("web01".into(), record(RecordStatus::Done));
        state
            .vms
            .insert("db01".into(), record(RecordStatus::Failed));
        state.save(dir.path()).unwrap();
        let back = WaveState::load(dir.path()).unwrap();
        assert_eq!(back.vms, state.vms);
        let web = ["web01.vmx".to_string()];
        assert!(back.done_record("web01", &web).is_some());
        assert!(back.done_record("db01", &web).is_none());
        assert!(back.done_record("new", &web).is_none());
        // The same id moved from other sources is another VM.
        assert!(back
            .done_record("web01", &["other/web01.vmx".into()])
            .is_none());
        // No temporary file is left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [STATE_FILE]);
    }

    #[test]
    fn a_damaged_state_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(state_path(dir.path()), "{\"vms\": [").unwrap();
        let err = WaveState::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("wave-state.json: the wave state is damaged"),
            "{err}"
        );
        assert!(err.contains("move it away"), "{err}");
    }
}
