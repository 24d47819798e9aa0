//! What a running move looks like from outside: progress samples taken from libvirt's job
//! statistics, and the events the runner hands its caller.

use serde::Serialize;
use virt::domain::JobStats;
use virt::sys;

/// One sample of a running migration job, from `virDomainGetJobStats` on the source.
/// Fields libvirt did not report are 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobProgress {
    pub elapsed_ms: u64,
    pub mem_total: u64,
    pub mem_processed: u64,
    pub mem_remaining: u64,
    /// Guest memory pages dirtied per second, as QEMU last measured it.
    pub dirty_rate_pages_s: u64,
    /// Bytes per page for `dirty_rate_pages_s`; 0 when libvirt did not say (then 4 KiB).
    pub mem_page_size: u64,
    /// Memory transfer rate, bytes per second.
    pub mem_bps: u64,
    /// Pre-copy pass over guest memory; 1 is the bulk pass.
    pub iteration: u64,
    pub disk_total: u64,
    pub disk_processed: u64,
    pub disk_remaining: u64,
    /// The move has switched to post-copy: the guest runs on the destination.
    pub postcopy: bool,
    /// CPU throttle percentage QEMU's auto-converge applies, once it applies one.
    pub auto_converge_throttle: Option<i32>,
}

impl JobProgress {
    /// Bytes the guest dirties per second.
    pub fn dirty_bps(&self) -> u64 {
        let page = if self.mem_page_size == 0 {
            4096
        } else {
            self.mem_page_size
        };
        self.dirty_rate_pages_s.saturating_mul(page)
    }
}

/// Whether a job-stats answer describes a job that is running now: before the job starts
/// and after it ends libvirt answers with type NONE and no fields.
pub(crate) fn job_active(stats: &JobStats) -> bool {
    let t = u32::try_from(stats.r#type).unwrap_or(u32::MAX);
    t == sys::VIR_DOMAIN_JOB_BOUNDED || t == sys::VIR_DOMAIN_JOB_UNBOUNDED
}

/// A progress sample from libvirt's statistics. `postcopy` comes from outside because
/// libvirt's statistics do not say it reliably (only post-copy page requests, once any
/// happened); the runner knows from the source domain's state and its own escalation.
pub(crate) fn progress_from_stats(stats: &JobStats, postcopy: bool) -> JobProgress {
    let n = |v: Option<u64>| v.unwrap_or(0);
    JobProgress {
        elapsed_ms: n(stats.time_elapsed),
        mem_total: n(stats.mem_total),
        mem_processed: n(stats.mem_processed),
        mem_remaining: n(stats.mem_remaining),
        dirty_rate_pages_s: n(stats.mem_dirty_rate),
        mem_page_size: n(stats.mem_page_size),
        mem_bps: n(stats.mem_bps),
        iteration: n(stats.mem_iteration),
        disk_total: n(stats.disk_total),
        disk_processed: n(stats.disk_processed),
        disk_remaining: n(stats.disk_remaining),
        postcopy: postcopy || stats.mem_postcopy_reqs.is_some_and(|r| r > 0),
        auto_converge_throttle: stats.auto_converge_throttle,
    }
}

/// Where the runner escalated a move that did not finish by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Escalation {
    /// Switched to post-copy: the guest now runs on the destination and pulls the rest.
    Postcopy,
    /// Paused the guest so its memory stops changing and the copy converges.
    Suspend,
    /// Cancelled the move; the guest stays on the source.
    Abort,
}

impl std::fmt::Display for Escalation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Escalation::Postcopy => "post-copy",
            Escalation::Suspend => "suspend",
            Escalation::Abort => "abort",
        })
    }
}

/// What the runner tells its caller while a move runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
// Adjacent tagging: an internally tagged enum cannot carry `Phase`'s bare string.
#[serde(tag = "event", content = "data", rename_all = "lowercase")]
pub enum MigrationEvent {
    Progress(JobProgress),
    Escalated {
        to: Escalation,
        why: String,
    },
    /// A step of the move, in words ("migration started", "collecting statistics").
    Phase(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_map_to_progress() {
        let stats = JobStats {
            r#type: i32::try_from(sys::VIR_DOMAIN_JOB_UNBOUNDED).expect("fits"),
            time_elapsed: Some(1500),
            mem_total: Some(1 << 30),
            mem_processed: Some(1 << 29),
            mem_remaining: Some(1 << 29),
            mem_dirty_rate: Some(1000),
            mem_page_size: Some(4096),
            mem_bps: Some(100 << 20),
            mem_iteration: Some(2),
            disk_total: Some(10),
            disk_processed: Some(4),
            disk_remaining: Some(6),
            auto_converge_throttle: Some(20),
            ..JobStats::default()
        };
        assert!(job_active(&stats));
        let p = progress_from_stats(&stats, false);
        assert_eq!(p.elapsed_ms, 1500);
        assert_eq!(p.mem_remaining, 1 << 29);
        assert_eq!(p.iteration, 2);
        assert_eq!(p.disk_remaining, 6);
        assert_eq!(p.dirty_bps(), 4_096_000);
        assert_eq!(p.auto_converge_throttle, Some(20));
        assert!(!p.postcopy);
        assert!(progress_from_stats(&stats, true).postcopy);
    }

    #[test]
    fn postcopy_page_requests_mean_postcopy() {
        let stats = JobStats {
            mem_postcopy_reqs: Some(3),
            ..JobStats::default()
        };
        assert!(progress_from_stats(&stats, false).postcopy);
    }

    #[test]
    fn no_job_is_inactive_and_zero() {
        let stats = JobStats::default();
        assert!(!job_active(&stats));
        let p = progress_from_stats(&stats, false);
        assert_eq!(p, JobProgress::default());
        assert_eq!(p.dirty_bps(), 0);
    }

    #[test]
    fn events_serialize_with_a_tag() {
        let e = MigrationEvent::Escalated {
            to: Escalation::Postcopy,
            why: "stalled".into(),
        };
        let json = serde_json::to_string(&e).expect("serializes");
        assert_eq!(
            json,
            r#"{"event":"escalated","data":{"to":"postcopy","why":"stalled"}}"#
        );
        let json = serde_json::to_string(&MigrationEvent::Phase("x".into())).expect("ok");
        assert_eq!(json, r#"{"event":"phase","data":"x"}"#);
        let json = serde_json::to_string(&MigrationEvent::Progress(JobProgress::default()))
            .expect("serializes");
        assert!(
            json.starts_with(r#"{"event":"progress","data":{"elapsed_ms":0"#),
            "{json}"
        );
    }
}
