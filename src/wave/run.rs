//! Running a wave: the VMs not done yet, `parallel` at a time, each through the whole
//! `ferry v2v` pipeline, the state recorded after each.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use super::inventory::{Inventory, WaveVm};
use super::state::{now_epoch, RecordStatus, StateError, VmRecord, WaveState};
use crate::v2v::{self, Progress, V2vError, V2vReport};

/// Name of the lock file inside the output folder.
pub const LOCK_FILE: &str = "wave.lock";
/// Name of the report written at the end of each run.
pub const REPORT_FILE: &str = "wave-report.json";

#[derive(Debug, Clone)]
pub struct WaveOptions {
    /// Receives every VM's disks, NAME.xml and NAME.report.json, and the wave's state,
    /// lock and report.
    pub out_dir: PathBuf,
    /// VMs moved at once.
    pub parallel: usize,
    /// Copy threads shared by the VMs running at once.
    pub jobs: usize,
    /// Plan every VM not done yet (description, disks, bytes); write nothing.
    pub dry_run: bool,
    pub cancel: Option<Arc<AtomicBool>>,
}

/// Why a wave could not run (a VM failing is not one: it is in the report).
#[derive(Debug, thiserror::Error)]
pub enum WaveError {
    #[error("{path}: cannot create the output folder: {source}")]
    OutDir {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: another ferry wave is running in this folder")]
    Busy { path: String },
    #[error("{path}: cannot lock: {source}")]
    Lock {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{path}: cannot write the wave report: {why}")]
    Report { path: String, why: String },
}

/// What a UI shows of a running wave.
pub trait WaveProgress: Sync {
    /// A VM starts; its stages report through the returned [`Progress`].
    fn vm_started(&self, vm: &WaveVm) -> Box<dyn Progress + '_>;
    fn vm_ended(&self, outcome: &VmOutcome);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VmStatus {
    /// Moved by this run.
    Done,
    /// Done by an earlier run: not touched.
    Skipped,
    /// Planned (`--dry-run`).
    Planned,
    Failed,
    /// Stopped by Ctrl-C; its partial output was removed. Runs again next time.
    Interrupted,
    /// Not started: the wave was interrupted first. Runs next time.
    NotRun,
}

/// One VM in the report.
#[derive(Debug, Clone, Serialize)]
pub struct VmOutcome {
    pub id: String,
    /// The domain name (known once the description was read).
    pub name: Option<String>,
    pub sources: Vec<String>,
    pub status: VmStatus,
    /// Guest bytes the move copies (planned, or copied when done).
    pub bytes_to_copy: u64,
    pub seconds: f64,
    /// `bad-input`, `output-failed`, `verify-failed`, `fixup-failed`, `libvirt`, … (the
    /// `ferry v2v` exit status this VM alone would have had).
    pub error_kind: Option<&'static str>,
    /// One line.
    pub error: Option<String>,
    /// `NAME.report.json`.
    pub report: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct WaveReport {
    pub inventory: String,
    pub out_dir: String,
    pub dry_run: bool,
    pub parallel: usize,
    /// In inventory order.
    pub vms: Vec<VmOutcome>,
    pub done: usize,
    pub skipped: usize,
    pub planned: usize,
    pub failed: usize,
    pub interrupted: usize,
    pub not_run: usize,
    /// Guest bytes copied by this run.
    pub bytes_copied: u64,
    /// Temporary files of an earlier, killed run removed at the start.
    pub stale_files_removed: usize,
    pub seconds: f64,
}

impl WaveReport {
    /// Every VM is done (now or before), or planned.
    pub fn complete(&self) -> bool {
        self.failed + self.interrupted + self.not_run == 0
    }
}

/// Runs (or, with `dry_run`, plans) every VM of `inventory` not done yet.
pub fn run(
    inventory: &Inventory,
    opts: &WaveOptions,
    progress: &dyn WaveProgress,
) -> Result<WaveReport, WaveError> {
    let started = Instant::now();
    let out = &opts.out_dir;
    let _lock = if opts.dry_run {
        None
    } else {
        std::fs::create_dir_all(out).map_err(|source| WaveError::OutDir {
            path: out.display().to_string(),
            source,
        })?;
        Some(lock(out)?)
    };
    let mut state = if out.is_dir() {
        WaveState::load(out)?
    } else {
        WaveState::default()
    };
    if state.inventory.is_empty() {
        state.inventory = inventory.path.display().to_string();
    }
    let stale_files_removed = if opts.dry_run {
        0
    } else {
        remove_stale_temporaries(out)
    };

    let mut outcomes: Vec<Option<VmOutcome>> = inventory
        .vms
        .iter()
        .map(|vm| {
            state
                .done_record(&vm.id, &shown(&vm.sources))
                .map(|r| skipped(vm, r))
        })
        .collect();
    let pending: Vec<usize> = (0..inventory.vms.len())
        .filter(|i| outcomes[*i].is_none())
        .collect();
    let workers = opts.parallel.clamp(1, pending.len().max(1));
    let jobs_per_vm = (opts.jobs / workers).max(1);

    // Names of VMs done before are taken: their outputs are in the folder.
    let names: HashMap<String, String> = state
        .vms
        .iter()
        .filter(|(_, r)| r.status == RecordStatus::Done)
        .filter_map(|(id, r)| r.name.clone().map(|n| (n, id.clone())))
        .collect();
    let shared = Shared {
        inventory,
        opts,
        progress,
        jobs_per_vm,
        pending: &pending,
        next: AtomicUsize::new(0),
        names: Mutex::new(names),
        state: Mutex::new(state),
        results: Mutex::new(Vec::new()),
        state_error: Mutex::new(None),
    };
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| shared.work());
        }
    });
    if let Some(e) = shared.state_error.into_inner().ok().flatten() {
        return Err(e.into());
    }
    for (i, outcome) in shared.results.into_inner().unwrap_or_default() {
        outcomes[i] = Some(outcome);
    }
    let vms: Vec<VmOutcome> = outcomes
        .into_iter()
        .zip(&inventory.vms)
        .map(|(o, vm)| o.unwrap_or_else(|| not_run(vm)))
        .collect();
    let count = |s: VmStatus| vms.iter().filter(|v| v.status == s).count();
    let report = WaveReport {
        inventory: inventory.path.display().to_string(),
        out_dir: out.display().to_string(),
        dry_run: opts.dry_run,
        parallel: workers,
        done: count(VmStatus::Done),
        skipped: count(VmStatus::Skipped),
        planned: count(VmStatus::Planned),
        failed: count(VmStatus::Failed),
        interrupted: count(VmStatus::Interrupted),
        not_run: count(VmStatus::NotRun),
        bytes_copied: vms
            .iter()
            .filter(|v| v.status == VmStatus::Done)
            .map(|v| v.bytes_to_copy)
            .sum(),
        stale_files_removed,
        seconds: started.elapsed().as_secs_f64(),
        vms,
    };
    if !opts.dry_run {
        write_report(out, &report)?;
    }
    Ok(report)
}

/// What the workers share.
struct Shared<'a> {
    inventory: &'a Inventory,
    opts: &'a WaveOptions,
    progress: &'a dyn WaveProgress,
    jobs_per_vm: usize,
    /// Indices into the inventory of the VMs to run, in order.
    pending: &'a [usize],
    next: AtomicUsize,
    /// Domain name → id of the VM that has it. Two VMs of a wave that would take one
    /// name (two exports of a VM called "web01") must not write the same files.
    names: Mutex<HashMap<String, String>>,
    state: Mutex<WaveState>,
    results: Mutex<Vec<(usize, VmOutcome)>>,
    /// The first failure to record the state: the wave stops starting VMs, since a run
    /// it cannot record could not be resumed.
    state_error: Mutex<Option<StateError>>,
}

impl Shared<'_> {
    fn stopping(&self) -> bool {
        let cancelled = self
            .opts
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst));
        let broken = self.state_error.lock().map_or(true, |e| e.is_some());
        cancelled || broken
    }

    fn work(&self) {
        loop {
            if self.stopping() {
                return;
            }
            let Some(&index) = self.pending.get(self.next.fetch_add(1, Ordering::SeqCst)) else {
                return;
            };
            let vm = &self.inventory.vms[index];
            let outcome = self.move_vm(vm);
            if !self.opts.dry_run {
                self.record(vm, &outcome);
            }
            self.progress.vm_ended(&outcome);
            if let Ok(mut results) = self.results.lock() {
                results.push((index, outcome));
            }
        }
    }

    fn move_vm(&self, vm: &WaveVm) -> VmOutcome {
        let started = Instant::now();
        let mut opts = vm.v2v_options(&self.opts.out_dir, self.jobs_per_vm);
        opts.dry_run = self.opts.dry_run;
        opts.cancel.clone_from(&self.opts.cancel);
        let bar = self.progress.vm_started(vm);
        let result = v2v::prepare(&vm.sources).and_then(|prepared| {
            let name = v2v::domain_name(&prepared.resolved, &opts);
            self.claim(&name, &vm.id)?;
            v2v::run_prepared(prepared, &vm.sources, started, &opts, bar.as_ref())
        });
        drop(bar);
        let mut outcome = VmOutcome {
            id: vm.id.clone(),
            name: vm.name.clone(),
            sources: shown(&vm.sources),
            status: VmStatus::Done,
            bytes_to_copy: 0,
            seconds: started.elapsed().as_secs_f64(),
            error_kind: None,
            error: None,
            report: None,
        };
        match result {
            Ok(report) => {
                outcome.status = if self.opts.dry_run {
                    VmStatus::Planned
                } else {
                    VmStatus::Done
                };
                outcome.name = Some(report.name.clone());
                outcome.bytes_to_copy = report.bytes_to_copy;
                if !self.opts.dry_run {
                    outcome.report = Some(report_path(&self.opts.out_dir, &report));
                }
            }
            Err(e) => {
                outcome.status = match e {
                    V2vError::Interrupted(_) => VmStatus::Interrupted,
                    _ => VmStatus::Failed,
                };
                outcome.error_kind = Some(error_kind(&e));
                outcome.error = Some(e.to_string().replace('\n', " "));
            }
        }
        outcome
    }

    /// Gives `name` to the VM `id`, unless another VM of the wave has it.
    fn claim(&self, name: &str, id: &str) -> Result<(), V2vError> {
        let Ok(mut names) = self.names.lock() else {
            return Ok(());
        };
        match names.get(name) {
            Some(owner) if owner != id => Err(V2vError::Usage(format!(
                "the domain name '{name}' is taken by '{owner}' in this wave; give one of \
                 them another name"
            ))),
            _ => {
                names.insert(name.to_string(), id.to_string());
                Ok(())
            }
        }
    }

    /// Records a VM that ended (done or failed; an interrupted one is just not done).
    fn record(&self, vm: &WaveVm, outcome: &VmOutcome) {
        let status = match outcome.status {
            VmStatus::Done => RecordStatus::Done,
            VmStatus::Failed => RecordStatus::Failed,
            _ => return,
        };
        let record = VmRecord {
            status,
            name: outcome.name.clone(),
            sources: outcome.sources.clone(),
            report: outcome.report.clone(),
            bytes_copied: outcome.bytes_to_copy,
            seconds: outcome.seconds,
            error: outcome.error.clone(),
            ended_at: now_epoch(),
        };
        let saved = match self.state.lock() {
            Ok(mut state) => {
                state.vms.insert(vm.id.clone(), record);
                state.save(&self.opts.out_dir)
            }
            Err(_) => return,
        };
        if let Err(e) = saved {
            if let Ok(mut slot) = self.state_error.lock() {
                slot.get_or_insert(e);
            }
        }
    }
}

fn report_path(out_dir: &Path, report: &V2vReport) -> String {
    out_dir
        .join(format!("{}.report.json", report.name))
        .display()
        .to_string()
}

fn shown(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

fn skipped(vm: &WaveVm, record: &VmRecord) -> VmOutcome {
    VmOutcome {
        id: vm.id.clone(),
        name: record.name.clone(),
        sources: shown(&vm.sources),
        status: VmStatus::Skipped,
        bytes_to_copy: record.bytes_copied,
        seconds: 0.0,
        error_kind: None,
        error: None,
        report: record.report.clone(),
    }
}

fn not_run(vm: &WaveVm) -> VmOutcome {
    VmOutcome {
        id: vm.id.clone(),
        name: vm.name.clone(),
        sources: shown(&vm.sources),
        status: VmStatus::NotRun,
        bytes_to_copy: 0,
        seconds: 0.0,
        error_kind: None,
        error: None,
        report: None,
    }
}

/// The kind of a VM's failure, named as `ferry v2v`'s exit statuses are documented.
fn error_kind(e: &V2vError) -> &'static str {
    match e {
        V2vError::Usage(_) => "usage",
        V2vError::BadInput(_) => "bad-input",
        V2vError::OutputFailed(_) => "output-failed",
        V2vError::VerifyFailed(_) => "verify-failed",
        V2vError::FixupFailed(_) => "fixup-failed",
        V2vError::Libvirt(_) => "libvirt",
        V2vError::Interrupted(_) => "interrupted",
        V2vError::PreflightFailed(_) => "preflight-failed",
        V2vError::MigrationFailed(_) => "migration-failed",
    }
}

/// Takes the wave's lock in `out`; held until the returned file is dropped or the
/// process dies.
fn lock(out: &Path) -> Result<File, WaveError> {
    let path = out.join(LOCK_FILE);
    let shown = path.display().to_string();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| WaveError::Lock {
            path: shown.clone(),
            source,
        })?;
    // flock(2) rather than `File::try_lock`, which needs a newer Rust than the MSRV.
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(WaveError::Busy {
            path: out.display().to_string(),
        }),
        Err(e) => Err(WaveError::Lock {
            path: shown,
            source: e.into(),
        }),
    }
}

/// Removes the temporary files (`.*.ferry-tmp`) a killed run left in `out`. Safe because
/// the wave holds the folder's lock; returns how many there were.
fn remove_stale_temporaries(out: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(out) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with('.') && name.ends_with(".ferry-tmp")
        })
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

fn write_report(out: &Path, report: &WaveReport) -> Result<(), WaveError> {
    let path = out.join(REPORT_FILE);
    let err = |why: String| WaveError::Report {
        path: path.display().to_string(),
        why,
    };
    let json = serde_json::to_vec_pretty(report).map_err(|e| err(e.to_string()))?;
    crate::v2v::write_staged(&path, &json).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_folder_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path()).unwrap();
        let err = lock(dir.path()).unwrap_err();
        assert!(matches!(err, WaveError::Busy { .. }), "{err}");
        assert!(err.to_string().contains("another ferry wave is running"));
        drop(first);
        lock(dir.path()).unwrap();
    }

    #[test]
    fn stale_temporaries_go_and_everything_else_stays() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            ".web01-disk1.qcow2.Ab12Cd.ferry-tmp",
            ".wave-state.x.ferry-tmp",
            "web01-disk1.qcow2",
            "notes.ferry-tmp",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join(".dir.ferry-tmp")).unwrap();
        assert_eq!(remove_stale_temporaries(dir.path()), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [".dir.ferry-tmp", "notes.ferry-tmp", "web01-disk1.qcow2"]
        );
    }
}
