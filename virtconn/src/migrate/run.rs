//! Runs one move: starts the migration on a worker thread, watches it from the calling
//! thread and carries out the policy's escalations, then gathers libvirt's statistics
//! of the finished job.
//!
//! DESIGN: libvirt's migrate calls block until the move ends, so the watching has to
//! happen beside them. virt 0.4.3 marks `Connect` and `Domain` `Send + Sync` (libvirt's
//! handles are thread-safe, and its remote driver lets several calls share one
//! connection: `virsh migrate` itself polls job info on the connection it migrates
//! with), so both threads use the same handles, and the caller's `on_event`, which need
//! not be `Send`, only ever runs on the calling thread. A failed move is reported by
//! where it left the guest, because that is what the user must act on next.
//!
//! A cut link (packets dropped, no reset) blocks any call on the destination's
//! connection for as long as TCP retries — many minutes. So the destination is probed
//! from a thread of its own, and the watch counts its silence rather than waiting on it;
//! and once ferry has cancelled a move because the destination went silent, it stops
//! waiting for the migrate call (whose last step talks to the destination) as soon as
//! the source has ended the job, and reports where the guest is. Both threads are
//! detached, holding their own handles (clones are reference counts), so a call that
//! never returns cannot hold up the command; it ends with the process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;
use virt::domain::{Domain, JobStats, MigrateParameters};
use virt::error::Error as VirtError;
use virt::sys;

use super::ffi;
use super::flags::{is_peer_to_peer, migration_flags, migration_params};
use super::policy::{Decision, Policy};
use super::progress::{job_active, progress_from_stats, Escalation, JobProgress, MigrationEvent};
use super::request::{MigrateRequest, MoveKind};
use crate::classify::{conn_error, Subject};
use crate::error::ConnError;
use crate::{Connection, DomainState};

/// How often the job statistics are read while a move runs.
const POLL: Duration = Duration::from_millis(250);
/// How often the destination daemon is asked whether it is still there.
const DEST_PROBE: Duration = Duration::from_secs(1);
/// A destination that has not answered a probe for this long is gone (a cut link makes
/// calls hang rather than fail).
const DEST_SILENCE: Duration = Duration::from_secs(10);
/// After cancelling a move whose destination went silent, how long the migrate call may
/// take to notice once the source job has ended.
const ABANDON_AFTER: Duration = Duration::from_secs(5);

/// How a move went, for people and for `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationReport {
    pub domain: String,
    pub source_uri: String,
    pub dest_uri: String,
    pub kind: MoveKind,
    pub succeeded: bool,
    /// The job's own elapsed time when libvirt reported it, else measured here.
    pub total_ms: u64,
    /// How long the guest was stopped for the switch-over (libvirt's completed stats).
    pub downtime_ms: Option<u64>,
    pub bytes_transferred: Option<u64>,
    /// Pre-copy passes over guest memory.
    pub iterations: Option<u64>,
    pub postcopy_used: bool,
    pub auto_converge_throttle: Option<i32>,
    /// Each escalation and each failed attempt at one, in words, in order.
    pub escalations: Vec<String>,
    /// Whether the guest runs on the source afterwards; `None` when that could not be
    /// checked (the source daemon is gone, or the domain was never found).
    pub source_still_running: Option<bool>,
    pub error: Option<String>,
}

/// A move's report together with its error, for callers that want the report of a
/// failed move too (`migrate` returns only the error then).
#[derive(Debug)]
pub struct MigrationOutcome {
    pub report: MigrationReport,
    pub error: Option<ConnError>,
}

/// Moves `req.domain` from `src` to `dest` as `req` says, calling `on_event` on this
/// thread with progress about four times a second. Fails with a one-line error that
/// names both URIs and says whether the guest still runs on the source.
pub fn migrate(
    src: &Connection,
    dest: &Connection,
    req: &MigrateRequest,
    on_event: &mut dyn FnMut(&MigrationEvent),
) -> Result<MigrationReport, ConnError> {
    let outcome = migrate_with_report(src, dest, req, on_event);
    match outcome.error {
        Some(e) => Err(e),
        None => Ok(outcome.report),
    }
}

/// As [`migrate`], but a failed move still yields its report (with `succeeded` false).
pub fn migrate_with_report(
    src: &Connection,
    dest: &Connection,
    req: &MigrateRequest,
    on_event: &mut dyn FnMut(&MigrationEvent),
) -> MigrationOutcome {
    let started = Instant::now();
    let mut run = Run {
        src,
        dest,
        req,
        report: MigrationReport {
            domain: req.domain.clone(),
            source_uri: src.uri().to_string(),
            dest_uri: dest.uri().to_string(),
            kind: req.kind,
            succeeded: false,
            total_ms: 0,
            downtime_ms: None,
            bytes_transferred: None,
            iterations: None,
            postcopy_used: false,
            auto_converge_throttle: None,
            escalations: Vec::new(),
            source_still_running: None,
            error: None,
        },
        postcopy_started: false,
        aborted_because: None,
    };
    let result = run.execute(started, on_event);
    let mut report = run.report;
    if report.total_ms == 0 {
        report.total_ms = millis(started.elapsed());
    }
    match result {
        Ok(()) => {
            report.succeeded = true;
            MigrationOutcome {
                report,
                error: None,
            }
        }
        Err(e) => {
            report.error = Some(e.to_string());
            MigrationOutcome {
                report,
                error: Some(e),
            }
        }
    }
}

/// The domain's state on the source after a failed move, `None` when it cannot be read
/// (no such domain any more, or the daemon is gone).
pub fn source_state_after_failure(src: &Connection, name: &str) -> Option<DomainState> {
    src.state(name).ok()
}

/// The state of one move while it runs.
struct Run<'a> {
    src: &'a Connection,
    dest: &'a Connection,
    req: &'a MigrateRequest,
    report: MigrationReport,
    postcopy_started: bool,
    /// Why ferry cancelled the move itself, for the error message.
    aborted_because: Option<String>,
}

impl Run<'_> {
    fn execute(
        &mut self,
        started: Instant,
        on_event: &mut dyn FnMut(&MigrationEvent),
    ) -> Result<(), ConnError> {
        let req = self.req;
        let dom = lookup(self.src, &req.domain)?;
        check_strings(self.src, req)?;
        // There is no migration parameter for the downtime limit, only this domain call.
        // libvirt keeps it for the next move of a running guest (and restores it after),
        // so it is set just before starting; an offline move has no switch-over at all.
        if let (MoveKind::Live, Some(ms)) = (req.kind, req.max_downtime_ms) {
            dom.migrate_set_max_downtime(ms, 0).map_err(|e| {
                let err = conn_error(
                    self.src.uri(),
                    "set the maximum downtime",
                    Subject::Domain(&req.domain),
                    &e,
                );
                self.note_source_state(err)
            })?;
        }
        let flags = migration_flags(req);
        let params = migration_params(req);
        on_event(&MigrationEvent::Phase(format!(
            "migrating '{}' from {} to {}",
            req.domain,
            self.src.uri(),
            self.dest.uri()
        )));

        let result = self.watch(&dom, flags, params, started, on_event);
        let result = match result {
            Err(WatchError::Abandoned) => return Err(self.abandoned_error()),
            Err(WatchError::Virt(e)) => Err(e),
            Ok(()) => Ok(()),
        };
        match result {
            Ok(()) => {
                on_event(&MigrationEvent::Phase(
                    "collecting completed-job statistics".into(),
                ));
                self.collect_completed(&dom);
                self.report.source_still_running = self.source_running().0;
                Ok(())
            }
            Err(e) => Err(self.migrate_error(&e)),
        }
    }

    /// Starts the move on a worker thread and polls it from this one until it ends.
    fn watch(
        &mut self,
        dom: &Domain,
        flags: u32,
        params: MigrateParameters,
        started: Instant,
        on_event: &mut dyn FnMut(&MigrationEvent),
    ) -> Result<(), WatchError> {
        let req = self.req;
        let mut policy = Policy::new(req);
        let mut job_seen = false;
        let mut dest_gone = false;
        // Whether ferry cancelled the move because the destination went silent, and
        // since when the source job has been seen gone after that.
        let mut cancelled_for_silence = false;
        let mut job_gone_since: Option<Instant> = None;
        let (tx, rx) = mpsc::channel();
        let target = if is_peer_to_peer(req) {
            Target::PeerToPeer(req.dest_uri.clone())
        } else {
            Target::Direct(self.dest.conn.clone())
        };
        let worker_dom = dom.clone();
        thread::spawn(move || {
            let r = start_migration(&worker_dom, &target, params, flags);
            // The receiver is gone when ferry stopped waiting; nothing to tell.
            let _ = tx.send(r);
        });
        let probe = DestProbe::start(self.dest.conn.clone());
        loop {
            match rx.recv_timeout(POLL) {
                Ok(r) => return r.map_err(WatchError::Virt),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(WatchError::Virt(VirtError::last_error()));
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            let sample = self.sample(dom);
            if let Some(p) = &sample {
                if !job_seen {
                    job_seen = true;
                    on_event(&MigrationEvent::Phase("migration job running".into()));
                }
                self.report.auto_converge_throttle = p
                    .auto_converge_throttle
                    .or(self.report.auto_converge_throttle);
                self.report.iterations = Some(p.iteration).filter(|&i| i > 0);
                on_event(&MigrationEvent::Progress(p.clone()));
            }
            if cancelled_for_silence {
                // The source ended the job; the migrate call now waits on the silent
                // destination for its last step. The guest's fate is decided: stop.
                let since = *job_gone_since.get_or_insert_with(Instant::now);
                if sample.is_some() {
                    job_gone_since = None;
                } else if since.elapsed() >= ABANDON_AFTER {
                    return Err(WatchError::Abandoned);
                }
                continue;
            }
            if let Some(d) = policy.observe(sample.as_ref(), started.elapsed()) {
                self.escalate(dom, d, &mut policy, on_event);
            }
            // QEMU streams memory straight to the destination QEMU, so a destination
            // daemon that died (or became unreachable) is only noticed at the final
            // handshake — possibly after an endless pre-copy. Before post-copy the
            // guest is still whole on the source: cancel and keep it there.
            if !dest_gone && !self.postcopy_started {
                if let Some(why) = probe.gone(self.dest.uri()) {
                    dest_gone = true;
                    let decision = Decision {
                        to: Escalation::Abort,
                        why,
                        on_timeout: false,
                    };
                    self.escalate(dom, decision, &mut policy, on_event);
                    // Even when the cancel lost a race with the job ending, the last
                    // step of the migrate call talks to the silent destination.
                    cancelled_for_silence = true;
                }
            }
        }
    }

    /// The current job statistics as progress, `None` when there is no job (not yet
    /// started, already over) or libvirt would not say; polling errors are not fatal,
    /// the move's own result is what counts.
    fn sample(&self, dom: &Domain) -> Option<JobProgress> {
        let stats = dom.get_job_stats(0).ok()?;
        if !job_active(&stats) {
            return None;
        }
        // The source domain is paused with reason "post-copy" once the guest runs on
        // the destination; this also catches post-copy started by someone else.
        let postcopy = self.postcopy_started
            || (self.req.postcopy
                && matches!(
                    dom.get_state(),
                    Ok((sys::VIR_DOMAIN_PAUSED, r)) if reason_is(r, sys::VIR_DOMAIN_PAUSED_POSTCOPY)
                ));
        Some(progress_from_stats(&stats, postcopy))
    }

    fn escalate(
        &mut self,
        dom: &Domain,
        d: Decision,
        policy: &mut Policy,
        on_event: &mut dyn FnMut(&MigrationEvent),
    ) {
        self.report.escalations.push(format!("{}: {}", d.to, d.why));
        on_event(&MigrationEvent::Escalated {
            to: d.to,
            why: d.why.clone(),
        });
        let done = match d.to {
            Escalation::Postcopy => ffi::start_postcopy(dom).map(|()| {
                self.postcopy_started = true;
                self.report.postcopy_used = true;
            }),
            Escalation::Suspend => dom.suspend().map(drop),
            Escalation::Abort => ffi::abort_job(dom).map(|()| {
                self.aborted_because = Some(d.why.clone());
            }),
        };
        let Err(e) = done else { return };
        // Often a race with the move finishing by itself; the move's result tells.
        let failed = format!("{} failed: {}", d.to, crate::error::one_line(e.message()));
        self.report.escalations.push(failed.clone());
        on_event(&MigrationEvent::Phase(failed));
        match (d.to, d.on_timeout) {
            (Escalation::Postcopy, false) => policy.postcopy_refused(),
            // The timeout's action did not happen: cancel rather than run on unbounded.
            (Escalation::Postcopy | Escalation::Suspend, true) => {
                let why = format!("{}, and {} could not be started", d.why, d.to);
                self.escalate(
                    dom,
                    Decision {
                        to: Escalation::Abort,
                        why,
                        on_timeout: false,
                    },
                    policy,
                    on_event,
                );
            }
            _ => {}
        }
    }

    /// Downtime, bytes, passes and time from libvirt's statistics of the finished job.
    /// The destination keeps them for the incoming job; the source keeps them for the
    /// outgoing one only while its domain still exists (not after UNDEFINE_SOURCE, nor
    /// for a transient guest). KEEP_COMPLETED leaves them for `virsh domjobinfo`.
    /// Measured with libvirt 11.3 and QEMU 10: after a pre-copy move both sides return
    /// the same full figures (downtime, data_processed, mem_iteration, time_elapsed; the
    /// source's elapsed time is a few ms longer, as it includes the confirm step); after a
    /// post-copy move the destination returned no completed job at all (type NONE), so
    /// the report then lacks downtime and bytes unless the source still has them.
    fn collect_completed(&mut self, src_dom: &Domain) {
        let flags = sys::VIR_DOMAIN_JOB_STATS_COMPLETED | sys::VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED;
        let on_dest = lookup(self.dest, &self.req.domain)
            .ok()
            .and_then(|d| d.get_job_stats(flags).ok());
        let on_src = src_dom.get_job_stats(flags).ok();
        let stats: Vec<JobStats> = [on_dest, on_src].into_iter().flatten().collect();
        fill_from_completed(&mut self.report, &stats);
    }

    /// Whether the guest runs on the source, and that fact in words for an error.
    fn source_running(&self) -> (Option<bool>, String) {
        let name = &self.req.domain;
        let state = lookup(self.src, name).and_then(|d| {
            d.get_state().map_err(|e| {
                conn_error(
                    self.src.uri(),
                    "query domain state",
                    Subject::Domain(name),
                    &e,
                )
            })
        });
        match state {
            Ok((sys::VIR_DOMAIN_RUNNING, r))
                if reason_is(r, sys::VIR_DOMAIN_RUNNING_POSTCOPY_FAILED) =>
            {
                (
                    Some(true),
                    "post-copy failed and the guest's memory is split between the hosts; \
                 recover it with 'virsh migrate --postcopy-resume'"
                        .into(),
                )
            }
            Ok((sys::VIR_DOMAIN_RUNNING, _)) => (
                Some(true),
                "the guest is still running on the source".into(),
            ),
            Ok((sys::VIR_DOMAIN_PAUSED, r))
                if reason_is(r, sys::VIR_DOMAIN_PAUSED_POSTCOPY_FAILED) =>
            {
                (
                    Some(false),
                    "post-copy failed and the guest's memory is split between the hosts; \
                 recover it with 'virsh migrate --postcopy-resume'"
                        .into(),
                )
            }
            Ok((sys::VIR_DOMAIN_PAUSED, _)) => (
                Some(false),
                "the guest is paused on the source; 'virsh resume' continues it there".into(),
            ),
            Ok((sys::VIR_DOMAIN_SHUTOFF, _)) => {
                (Some(false), "the guest is shut off on the source".into())
            }
            Ok(_) => (
                Some(false),
                "the guest is on the source but not running".into(),
            ),
            Err(ConnError::NoSuchDomain { .. }) => {
                (Some(false), "the source no longer has the guest".into())
            }
            Err(_) => (None, "could not check the guest on the source".into()),
        }
    }

    /// A failure before the move started still says where the guest is.
    fn note_source_state(&mut self, err: ConnError) -> ConnError {
        let (running, words) = self.source_running();
        self.report.source_still_running = running;
        append_detail(err, &words)
    }

    /// The failure of a move ferry stopped waiting for: cancelled because the destination
    /// went silent, the source job over, the migrate call still blocked on the
    /// destination.
    fn abandoned_error(&mut self) -> ConnError {
        let why = self
            .aborted_because
            .clone()
            .unwrap_or_else(|| "the destination stopped answering".into());
        let (running, words) = self.source_running();
        self.report.source_still_running = running;
        ConnError::Libvirt {
            uri: self.src.uri().to_string(),
            op: "migrate domain",
            detail: format!(
                "'{}' to {}: ferry cancelled the move ({why}); the source ended the job; {words}",
                self.req.domain,
                self.dest.uri()
            ),
        }
    }

    /// The move's own failure as one line naming both URIs, blamed on the daemon that
    /// is gone when the class is "no daemon" (the source daemon forwards the
    /// destination's connection errors in peer-to-peer moves, and they look alike).
    fn migrate_error(&mut self, e: &VirtError) -> ConnError {
        let name = &self.req.domain;
        let mut err = conn_error(self.src.uri(), "migrate domain", Subject::Domain(name), e);
        if let ConnError::NoDaemon { uri, .. } = &mut err {
            if self.src.conn.is_alive().unwrap_or(false) {
                self.dest.uri().clone_into(uri);
            }
        }
        let target = if is_peer_to_peer(self.req) {
            &self.req.dest_uri
        } else {
            self.dest.uri()
        };
        let mut context = match &err {
            ConnError::Libvirt { .. } => format!("'{name}' to {target}:"),
            _ => format!(
                "while migrating '{name}' from {} to {target}:",
                self.src.uri()
            ),
        };
        if let Some(why) = &self.aborted_because {
            context = format!("{context} ferry cancelled the move ({why}):");
        }
        let (running, words) = self.source_running();
        self.report.source_still_running = running;
        prefix_and_append_detail(err, &context, &words)
    }
}

/// How the worker reaches the destination.
enum Target {
    /// The source daemon connects to the destination itself, by this URI.
    PeerToPeer(String),
    /// This client drives both daemons.
    Direct(virt::connect::Connect),
}

fn start_migration(
    dom: &Domain,
    target: &Target,
    params: MigrateParameters,
    flags: u32,
) -> Result<(), VirtError> {
    match target {
        Target::PeerToPeer(uri) => dom.migrate_to_uri3(Some(uri), params, flags),
        // The returned destination handle is not needed.
        Target::Direct(dest) => dom.migrate3(dest, params, flags).map(drop),
    }
}

/// Why watching a move ended without the move's own result.
enum WatchError {
    Virt(VirtError),
    /// The destination went silent, ferry cancelled the move, the source ended the job,
    /// and the migrate call is still waiting on the destination.
    Abandoned,
}

/// What the destination probe thread last learnt.
#[derive(Default)]
struct ProbeState {
    last_answer: Option<Instant>,
    error: Option<String>,
}

/// Asks the destination daemon for its version every [`DEST_PROBE`] on a detached
/// thread, so a hanging call never blocks the watch; stops when dropped.
struct DestProbe {
    state: Arc<Mutex<ProbeState>>,
    started: Instant,
    stop: Arc<AtomicBool>,
}

impl DestProbe {
    fn start(conn: virt::connect::Connect) -> DestProbe {
        let state = Arc::new(Mutex::new(ProbeState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_state, thread_stop) = (state.clone(), stop.clone());
        thread::spawn(move || {
            while !thread_stop.load(Ordering::SeqCst) {
                let answer = conn.get_lib_version();
                let Ok(mut s) = thread_state.lock() else {
                    return;
                };
                match answer {
                    Ok(_) => s.last_answer = Some(Instant::now()),
                    Err(e) => {
                        s.error = Some(crate::error::one_line(e.message()));
                        return;
                    }
                }
                drop(s);
                thread::sleep(DEST_PROBE);
            }
        });
        DestProbe {
            state,
            started: Instant::now(),
            stop,
        }
    }

    /// Why the destination counts as gone: an error, or silence for [`DEST_SILENCE`].
    fn gone(&self, uri: &str) -> Option<String> {
        let s = self.state.lock().ok()?;
        if let Some(e) = &s.error {
            return Some(format!(
                "the destination daemon at {uri} stopped answering ({e})"
            ));
        }
        let silent_for = s.last_answer.unwrap_or(self.started).elapsed();
        (silent_for >= DEST_SILENCE).then(|| {
            format!(
                "the destination daemon at {uri} stopped answering (no reply for {} s: \
                 the link to it is down or it hangs)",
                silent_for.as_secs()
            )
        })
    }
}

impl Drop for DestProbe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Fills the report from completed-job statistics, the first source that has a figure
/// winning (the destination is listed first).
fn fill_from_completed(report: &mut MigrationReport, stats: &[JobStats]) {
    let first = |f: &dyn Fn(&JobStats) -> Option<u64>| stats.iter().find_map(f);
    let bytes = |s: &JobStats| {
        s.data_processed
            .or(match (s.mem_processed, s.disk_processed) {
                (None, None) => None,
                (m, d) => Some(m.unwrap_or(0).saturating_add(d.unwrap_or(0))),
            })
    };
    report.downtime_ms = first(&|s| s.downtime);
    report.bytes_transferred = first(&bytes);
    if let Some(i) = first(&|s| s.mem_iteration.filter(|&i| i > 0)) {
        report.iterations = Some(i);
    }
    if let Some(t) = first(&|s| s.time_elapsed.filter(|&t| t > 0)) {
        report.total_ms = t;
    }
    if let Some(t) = stats.iter().find_map(|s| s.auto_converge_throttle) {
        report.auto_converge_throttle = Some(t);
    }
}

fn reason_is(reason: i32, want: u32) -> bool {
    u32::try_from(reason).is_ok_and(|r| r == want)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Looks the domain up by name, `NoSuchDomain` when it is not there.
fn lookup(conn: &Connection, name: &str) -> Result<Domain, ConnError> {
    if name.contains('\0') {
        return Err(ConnError::NoSuchDomain {
            uri: conn.uri().to_string(),
            name: name.escape_default().to_string(),
        });
    }
    Domain::lookup_by_name(&conn.conn, name)
        .map_err(|e| conn_error(conn.uri(), "look up domain", Subject::Domain(name), &e))
}

/// The virt crate panics on strings with interior NULs; refuse them as errors instead.
fn check_strings(src: &Connection, req: &MigrateRequest) -> Result<(), ConnError> {
    let bad = [
        ("destination URI", Some(req.dest_uri.as_str())),
        ("migration URI", req.migrate_uri.as_deref()),
    ]
    .into_iter()
    .find(|(_, s)| s.is_some_and(|s| s.contains('\0')));
    match bad {
        Some((what, _)) => Err(ConnError::Libvirt {
            uri: src.uri().to_string(),
            op: "migrate domain",
            detail: format!("the {what} contains a NUL byte"),
        }),
        None => Ok(()),
    }
}

fn append_detail(err: ConnError, words: &str) -> ConnError {
    prefix_and_append_detail(err, "", words)
}

/// Adds context before and the guest's whereabouts after the libvirt detail, in the
/// variants that carry one; the others already say all there is.
fn prefix_and_append_detail(err: ConnError, prefix: &str, suffix: &str) -> ConnError {
    let join = |detail: String| {
        let mut s = String::new();
        if !prefix.is_empty() {
            s.push_str(prefix);
            s.push(' ');
        }
        s.push_str(&detail);
        if !suffix.is_empty() {
            s.push_str("; ");
            s.push_str(suffix);
        }
        s
    };
    match err {
        ConnError::NoDaemon { uri, detail } => ConnError::NoDaemon {
            uri,
            detail: join(detail),
        },
        ConnError::PermissionDenied { uri, detail } => ConnError::PermissionDenied {
            uri,
            detail: join(detail),
        },
        ConnError::Libvirt { uri, op, detail } => ConnError::Libvirt {
            uri,
            op,
            detail: join(detail),
        },
        ConnError::BadXml { detail } => ConnError::BadXml {
            detail: join(detail),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    //! Against libvirt's test driver (no daemon). It refuses migration and job calls,
    //! which is exactly what the failure path needs: a prompt, clean, one-line error
    //! and the guest reported as still running. Real moves are in the e2e tests.

    use super::*;

    const TEST_URI: &str = "test:///default";

    /// Defines and starts a domain of this test's own (the driver's state is shared by
    /// every connection in the process, and tests run in parallel).
    fn running_domain(c: &Connection, name: &str) {
        let xml = format!(
            "<domain type='test'><name>{name}</name><memory unit='MiB'>64</memory>\
             <os><type>hvm</type></os></domain>"
        );
        c.define(&xml).expect("defines");
        c.start(name).expect("starts");
    }

    fn cleanup(c: &Connection, name: &str) {
        let _ = c.destroy(name);
        let _ = c.undefine(name);
    }

    fn run_failing(req: &MigrateRequest) -> (MigrationOutcome, Vec<MigrationEvent>, Duration) {
        let src = Connection::open(TEST_URI).expect("opens");
        let dest = Connection::open(TEST_URI).expect("opens");
        let mut events = Vec::new();
        let t = Instant::now();
        let outcome = migrate_with_report(&src, &dest, req, &mut |e| events.push(e.clone()));
        (outcome, events, t.elapsed())
    }

    #[test]
    fn refused_migration_fails_cleanly_and_guest_stays() {
        let c = Connection::open(TEST_URI).expect("opens");
        running_domain(&c, "mig-refused");
        for p2p in [false, true] {
            let mut req = MigrateRequest::new("mig-refused", TEST_URI, TEST_URI);
            req.p2p = p2p;
            req.timeout_s = Some(30);
            let (outcome, events, took) = run_failing(&req);
            assert!(took < Duration::from_secs(10), "took {took:?}");
            let err = outcome.error.expect("the test driver refuses migration");
            let msg = err.to_string();
            assert!(!msg.contains('\n'), "{msg}");
            assert!(msg.contains(TEST_URI), "{msg}");
            assert!(msg.contains("'mig-refused'"), "{msg}");
            assert!(
                msg.contains("the guest is still running on the source"),
                "{msg}"
            );
            let r = &outcome.report;
            assert!(!r.succeeded);
            assert_eq!(r.error.as_deref(), Some(msg.as_str()));
            assert_eq!(r.source_still_running, Some(true));
            assert!(r.escalations.is_empty() && !r.postcopy_used);
            assert_eq!(r.domain, "mig-refused");
            assert!(
                matches!(events.first(), Some(MigrationEvent::Phase(p)) if p.starts_with("migrating"))
            );
            let json = serde_json::to_string(r).expect("serializes");
            assert!(json.contains(r#""succeeded":false"#), "{json}");
        }
        assert_eq!(
            source_state_after_failure(&c, "mig-refused"),
            Some(DomainState::Running)
        );
        cleanup(&c, "mig-refused");
    }

    #[test]
    fn migrate_returns_the_error() {
        let c = Connection::open(TEST_URI).expect("opens");
        running_domain(&c, "mig-err");
        let req = MigrateRequest::new("mig-err", TEST_URI, TEST_URI);
        let err = migrate(&c, &c, &req, &mut |_| {}).expect_err("refused");
        assert!(
            err.to_string().contains("still running on the source"),
            "{err}"
        );
        cleanup(&c, "mig-err");
    }

    #[test]
    fn refused_downtime_setting_still_says_where_the_guest_is() {
        let c = Connection::open(TEST_URI).expect("opens");
        running_domain(&c, "mig-downtime");
        let mut req = MigrateRequest::new("mig-downtime", TEST_URI, TEST_URI);
        req.max_downtime_ms = Some(300);
        let (outcome, _, _) = run_failing(&req);
        let msg = outcome.error.expect("refused").to_string();
        assert!(msg.contains("maximum downtime"), "{msg}");
        assert!(
            msg.contains("still running on the source") && !msg.contains('\n'),
            "{msg}"
        );
        cleanup(&c, "mig-downtime");
    }

    #[test]
    fn shut_off_guest_is_reported_as_not_running() {
        let c = Connection::open(TEST_URI).expect("opens");
        running_domain(&c, "mig-off");
        c.destroy("mig-off").expect("stops");
        let mut req = MigrateRequest::new("mig-off", TEST_URI, TEST_URI);
        req.kind = MoveKind::Offline;
        let (outcome, _, _) = run_failing(&req);
        let msg = outcome.error.expect("refused").to_string();
        assert!(msg.contains("shut off on the source"), "{msg}");
        assert_eq!(outcome.report.source_still_running, Some(false));
        cleanup(&c, "mig-off");
    }

    #[test]
    fn missing_domain_is_no_such_domain() {
        let req = MigrateRequest::new("mig-nonexistent", TEST_URI, TEST_URI);
        let (outcome, events, _) = run_failing(&req);
        let err = outcome.error.expect("fails");
        assert!(matches!(err, ConnError::NoSuchDomain { .. }), "{err}");
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(outcome.report.source_still_running, None);
    }

    #[test]
    fn nul_in_uris_is_an_error_not_a_panic() {
        let c = Connection::open(TEST_URI).expect("opens");
        running_domain(&c, "mig-nul");
        let mut req = MigrateRequest::new("mig-nul", TEST_URI, TEST_URI);
        req.migrate_uri = Some("tcp://a\0b".into());
        let err = migrate(&c, &c, &req, &mut |_| {}).expect_err("refused");
        assert!(err.to_string().contains("NUL"), "{err}");
        let req = MigrateRequest::new("mig\0nul", TEST_URI, TEST_URI);
        let err = migrate(&c, &c, &req, &mut |_| {}).expect_err("refused");
        assert!(matches!(err, ConnError::NoSuchDomain { .. }), "{err}");
        cleanup(&c, "mig-nul");
    }

    #[test]
    fn completed_stats_prefer_the_first_source() {
        let mut r = MigrationOutcome {
            report: MigrationReport {
                domain: "vm".into(),
                source_uri: "a".into(),
                dest_uri: "b".into(),
                kind: MoveKind::Live,
                succeeded: true,
                total_ms: 0,
                downtime_ms: None,
                bytes_transferred: None,
                iterations: Some(2),
                postcopy_used: false,
                auto_converge_throttle: None,
                escalations: vec![],
                source_still_running: None,
                error: None,
            },
            error: None,
        }
        .report;
        let dest = JobStats {
            downtime: Some(40),
            time_elapsed: Some(900),
            ..JobStats::default()
        };
        let src = JobStats {
            downtime: Some(30),
            mem_processed: Some(1000),
            disk_processed: Some(24),
            mem_iteration: Some(3),
            time_elapsed: Some(800),
            auto_converge_throttle: Some(20),
            ..JobStats::default()
        };
        fill_from_completed(&mut r, &[dest, src]);
        assert_eq!(r.downtime_ms, Some(40));
        assert_eq!(r.total_ms, 900);
        assert_eq!(r.bytes_transferred, Some(1024));
        assert_eq!(r.iterations, Some(3));
        assert_eq!(r.auto_converge_throttle, Some(20));

        let with_data = JobStats {
            data_processed: Some(5),
            mem_processed: Some(1000),
            ..JobStats::default()
        };
        fill_from_completed(&mut r, &[with_data]);
        assert_eq!(r.bytes_transferred, Some(5), "data_processed wins");
        assert_eq!(r.iterations, Some(3), "kept when not reported");
    }

    #[test]
    fn context_goes_around_the_detail() {
        let e = ConnError::Libvirt {
            uri: "qemu:///system".into(),
            op: "migrate domain",
            detail: "boom".into(),
        };
        let e = prefix_and_append_detail(e, "'vm' to qemu+tcp://d/system:", "still here");
        assert_eq!(
            e.to_string(),
            "libvirt at qemu:///system failed to migrate domain: \
             'vm' to qemu+tcp://d/system: boom; still here"
        );
        let e = ConnError::NoSuchDomain {
            uri: "u".into(),
            name: "n".into(),
        };
        assert_eq!(
            append_detail(e, "x").to_string(),
            "no domain named 'n' at u"
        );
    }
}
