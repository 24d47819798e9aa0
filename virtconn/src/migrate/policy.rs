//! When to push a live move that does not finish by itself. Pure: it sees progress samples
//! and the time and returns decisions; the runner carries them out.
//!
//! Pre-copy copies guest memory in passes; each pass re-sends what the guest dirtied
//! during the previous one. It converges when the dirty set shrinks pass after pass. It
//! does not when the guest dirties memory at least as fast as the link carries it: then
//! the remaining memory stops shrinking and more passes only waste time. Three
//! consecutive such passes are the signal (one or two happen in any busy guest).
//! Post-copy always ends (the destination pulls each missing page once), so it is the
//! escalation of choice when the user allowed it. Without it, and without auto-converge
//! (which lets QEMU throttle the guest on its own), only the timeout ends a stuck move.

use std::time::Duration;

use super::progress::{Escalation, JobProgress};
use super::request::{MigrateRequest, TimeoutAction};

/// Passes in a row without progress after which pre-copy is "not converging".
pub const STALLED_PASSES: u32 = 3;

/// A pass is progress only when its remaining memory is at least 1/10 below the best
/// pass so far. Sampled at 250 ms, "remaining" jitters by several percent between passes
/// of a guest that is not converging (measured under TCG, 20 MiB/s link, guest dirtying
/// ~20 MB/s: 46, 52, 48, 50, 50, 52 MiB); with a strict "less than last time" that noise
/// kept resetting the count, and post-copy came only after 12 passes and 36 s.
const PROGRESS_DIVISOR: u64 = 10;

/// One thing the runner should do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub to: Escalation,
    pub why: String,
    /// Taken because the timeout passed; if it cannot be carried out, the move must not
    /// run on unbounded, so the runner aborts instead.
    pub on_timeout: bool,
}

#[derive(Debug)]
pub(crate) struct Policy {
    postcopy_allowed: bool,
    timeout: Option<Duration>,
    timeout_action: TimeoutAction,
    /// Number of the last pass judged, and the least remaining memory seen at a pass.
    last_pass: Option<(u64, u64)>,
    stalled: u32,
    postcopy_requested: bool,
    timed_out: bool,
}

impl Policy {
    pub fn new(req: &MigrateRequest) -> Policy {
        Policy {
            postcopy_allowed: req.postcopy,
            timeout: req.timeout_s.map(Duration::from_secs),
            timeout_action: req.timeout_action,
            last_pass: None,
            stalled: 0,
            postcopy_requested: false,
            timed_out: false,
        }
    }

    /// Consecutive passes seen without progress so far.
    #[cfg(test)]
    pub fn stalled_passes(&self) -> u32 {
        self.stalled
    }

    /// Looks at the latest sample (`None` when libvirt gave none this time) taken
    /// `elapsed` after the move started, and says what to do, if anything.
    pub fn observe(&mut self, sample: Option<&JobProgress>, elapsed: Duration) -> Option<Decision> {
        let postcopy = self.postcopy_requested || sample.is_some_and(|s| s.postcopy);
        // In post-copy the guest already runs on the destination with part of its
        // memory; aborting would lose it and pausing would not help. It ends by itself.
        if postcopy {
            return None;
        }
        if let Some(s) = sample {
            self.count_pass(s);
        }
        if let Some(limit) = self.timeout {
            if !self.timed_out && elapsed >= limit {
                self.timed_out = true;
                return Some(self.on_timeout(limit));
            }
        }
        if self.stalled >= STALLED_PASSES && self.postcopy_allowed && !self.timed_out {
            self.postcopy_requested = true;
            return Some(Decision {
                to: Escalation::Postcopy,
                why: format!(
                    "pre-copy is not converging: {} passes in a row without progress",
                    self.stalled
                ),
                on_timeout: false,
            });
        }
        None
    }

    fn on_timeout(&mut self, limit: Duration) -> Decision {
        let secs = limit.as_secs();
        let (to, why) = match self.timeout_action {
            TimeoutAction::Abort => (Escalation::Abort, format!("timed out after {secs} s")),
            TimeoutAction::Postcopy if self.postcopy_allowed => {
                self.postcopy_requested = true;
                (Escalation::Postcopy, format!("timed out after {secs} s"))
            }
            // Starting post-copy needs VIR_MIGRATE_POSTCOPY from the start of the move.
            TimeoutAction::Postcopy => (
                Escalation::Abort,
                format!("timed out after {secs} s and post-copy was not enabled"),
            ),
            TimeoutAction::Suspend => (Escalation::Suspend, format!("timed out after {secs} s")),
        };
        Decision {
            to,
            why,
            on_timeout: true,
        }
    }

    /// A pass counts as stalled when its remaining memory is not clearly below the best
    /// pass so far, or the guest dirties memory at least as fast as it is sent. Only a
    /// new pass number is judged: within a pass "remaining" falls as pages go out, which
    /// says nothing about convergence. The bulk pass (1) is skipped, as it sends all of
    /// memory; the first later pass seen sets the baseline.
    fn count_pass(&mut self, s: &JobProgress) {
        if s.iteration < 2 || s.mem_total == 0 {
            return; // no re-sending pass running (yet): nothing to judge
        }
        if self.last_pass.is_some_and(|(iter, _)| s.iteration <= iter) {
            return;
        }
        if let Some((_, best)) = self.last_pass {
            let shrinking = s.mem_remaining < best - best / PROGRESS_DIVISOR;
            let outpaced = s.mem_bps > 0 && s.dirty_bps() >= s.mem_bps;
            if shrinking && !outpaced {
                self.stalled = 0;
            } else {
                self.stalled += 1;
            }
        }
        let best = self
            .last_pass
            .map_or(s.mem_remaining, |(_, b)| b.min(s.mem_remaining));
        self.last_pass = Some((s.iteration, best));
    }

    /// The runner could not start post-copy that the policy asked for outside a
    /// timeout; the move goes on in pre-copy and the timeout still applies.
    pub fn postcopy_refused(&mut self) {
        self.postcopy_requested = false;
        // Do not retry on every poll: wait for a fresh run of stalled passes.
        self.stalled = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn req() -> MigrateRequest {
        MigrateRequest::new("vm", "qemu:///system", "qemu+tcp://d/system")
    }

    /// A pre-copy sample: pass `iteration` with `remaining_mib` left.
    fn pass(iteration: u64, remaining_mib: u64) -> JobProgress {
        JobProgress {
            mem_total: 1024 * MIB,
            mem_remaining: remaining_mib * MIB,
            iteration,
            mem_bps: 100 * MIB,
            dirty_rate_pages_s: 1000, // ~4 MB/s: well below the link
            mem_page_size: 4096,
            ..JobProgress::default()
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Feeds samples one second apart; returns every decision with its sample index.
    fn run(policy: &mut Policy, samples: &[JobProgress]) -> Vec<(usize, Decision)> {
        samples
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                policy
                    .observe(Some(s), secs(u64::try_from(i).expect("small")))
                    .map(|d| (i, d))
            })
            .collect()
    }

    #[test]
    fn converging_move_is_left_alone() {
        let mut r = req();
        r.postcopy = true;
        let mut p = Policy::new(&r);
        let samples = [
            pass(1, 900),
            pass(1, 500),
            pass(1, 100),
            pass(2, 60),
            pass(3, 20),
            pass(4, 5),
            pass(5, 1),
        ];
        assert!(run(&mut p, &samples).is_empty());
        assert_eq!(p.stalled_passes(), 0);
    }

    #[test]
    fn samples_within_one_pass_are_not_judged() {
        let mut r = req();
        r.postcopy = true;
        let mut p = Policy::new(&r);
        // Remaining memory rises and falls inside pass 2; only the new pass counts.
        let samples = [pass(1, 500), pass(2, 300), pass(2, 400), pass(2, 500)];
        assert!(run(&mut p, &samples).is_empty());
        assert_eq!(p.stalled_passes(), 0);
    }

    #[test]
    fn not_converging_escalates_to_postcopy_when_allowed() {
        let mut r = req();
        r.postcopy = true;
        let mut p = Policy::new(&r);
        let samples = [
            pass(1, 300),
            pass(2, 200),
            pass(3, 210), // stalled 1
            pass(4, 210), // stalled 2
            pass(5, 250), // stalled 3 → post-copy
            pass(6, 260),
            pass(7, 270),
        ];
        let d = run(&mut p, &samples);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].0, 4);
        assert_eq!(d[0].1.to, Escalation::Postcopy);
        assert!(!d[0].1.on_timeout);
        assert!(d[0].1.why.contains("not converging"), "{}", d[0].1.why);
    }

    #[test]
    fn dirtying_faster_than_the_link_counts_as_stalled() {
        let mut r = req();
        r.postcopy = true;
        let mut p = Policy::new(&r);
        let hot = |i, rem| JobProgress {
            dirty_rate_pages_s: 30_000, // ~123 MB/s against a 100 MiB/s link
            ..pass(i, rem)
        };
        // Remaining memory shrinks clearly each pass, but the guest outruns the link.
        let samples = [
            hot(1, 500),
            hot(2, 400),
            hot(3, 300),
            hot(4, 200),
            hot(5, 100),
        ];
        let d = run(&mut p, &samples);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!((d[0].0, d[0].1.to), (4, Escalation::Postcopy));
    }

    #[test]
    fn jitter_of_a_stuck_move_does_not_reset_the_count() {
        // Pass-start samples measured on a guest that never converged; dirty rate just
        // below the link, so only the remaining memory tells.
        let mut r = req();
        r.postcopy = true;
        let mut p = Policy::new(&r);
        let measured = [(7, 46), (8, 52), (9, 48), (10, 50), (11, 50), (12, 52)];
        let samples: Vec<_> = measured
            .iter()
            .map(|&(i, mib)| JobProgress {
                dirty_rate_pages_s: 5000,
                mem_bps: 21_000_000,
                ..pass(i, mib)
            })
            .collect();
        let d = run(&mut p, &samples);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!((d[0].0, d[0].1.to), (3, Escalation::Postcopy));
    }

    #[test]
    fn small_shrinks_are_not_progress() {
        let mut r = req();
        r.postcopy = true;
        let mut p = Policy::new(&r);
        // 2 % less each pass: converging too slowly to matter.
        let samples = [pass(2, 100), pass(3, 98), pass(4, 96), pass(5, 94)];
        let d = run(&mut p, &samples);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!((d[0].0, d[0].1.to), (3, Escalation::Postcopy));
    }

    #[test]
    fn a_good_pass_resets_the_count() {
        let mut r = req();
        r.postcopy = true;
        let mut p = Policy::new(&r);
        let samples = [
            pass(1, 300),
            pass(2, 200),
            pass(3, 200),
            pass(4, 200),
            pass(5, 100), // progress: count back to 0
            pass(6, 100),
            pass(7, 100),
        ];
        assert!(run(&mut p, &samples).is_empty());
        assert_eq!(p.stalled_passes(), 2);
    }

    #[test]
    fn not_converging_without_postcopy_waits() {
        for auto_converge in [false, true] {
            let mut r = req();
            r.auto_converge = auto_converge;
            let mut p = Policy::new(&r);
            let samples: Vec<_> = (1..20).map(|i| pass(i, 200)).collect();
            assert!(run(&mut p, &samples).is_empty());
            assert!(p.stalled_passes() >= STALLED_PASSES);
        }
    }

    #[test]
    fn timeout_aborts_by_default() {
        let mut r = req();
        r.timeout_s = Some(5);
        let mut p = Policy::new(&r);
        let samples: Vec<_> = (1..10).map(|i| pass(i, 200)).collect();
        let d = run(&mut p, &samples);
        assert_eq!(d.len(), 1, "once only: {d:?}");
        assert_eq!(d[0].0, 5);
        assert_eq!(d[0].1.to, Escalation::Abort);
        assert!(d[0].1.on_timeout);
        assert_eq!(d[0].1.why, "timed out after 5 s");
    }

    #[test]
    fn timeout_applies_without_any_sample() {
        let mut r = req();
        r.timeout_s = Some(2);
        r.timeout_action = TimeoutAction::Suspend;
        let mut p = Policy::new(&r);
        assert_eq!(p.observe(None, secs(1)), None);
        let d = p.observe(None, secs(2)).expect("decides");
        assert_eq!(d.to, Escalation::Suspend);
        assert_eq!(p.observe(None, secs(3)), None, "only once");
    }

    #[test]
    fn timeout_postcopy_needs_postcopy_enabled() {
        let mut r = req();
        r.timeout_s = Some(1);
        r.timeout_action = TimeoutAction::Postcopy;
        let d = Policy::new(&r).observe(None, secs(1)).expect("decides");
        assert_eq!(d.to, Escalation::Abort);
        assert!(d.why.contains("post-copy was not enabled"), "{}", d.why);

        r.postcopy = true;
        let mut p = Policy::new(&r);
        let d = p.observe(Some(&pass(1, 500)), secs(1)).expect("decides");
        assert_eq!((d.to, d.on_timeout), (Escalation::Postcopy, true));
        // Asked for: no second post-copy even when passes then stall.
        let later: Vec<_> = (2..10).map(|i| pass(i, 500)).collect();
        assert!(run(&mut p, &later).is_empty());
    }

    #[test]
    fn nothing_happens_once_in_postcopy() {
        let mut r = req();
        r.postcopy = true;
        r.timeout_s = Some(1);
        let mut p = Policy::new(&r);
        let pc = JobProgress {
            postcopy: true,
            ..pass(3, 500)
        };
        assert_eq!(p.observe(Some(&pc), secs(100)), None);
    }

    #[test]
    fn refused_postcopy_can_be_retried_after_new_stalls() {
        let mut r = req();
        r.postcopy = true;
        let mut p = Policy::new(&r);
        let stalled: Vec<_> = (1..=5).map(|i| pass(i, 200)).collect();
        assert_eq!(run(&mut p, &stalled).len(), 1);
        p.postcopy_refused();
        assert_eq!(p.observe(Some(&pass(6, 200)), secs(6)), None);
        assert_eq!(p.observe(Some(&pass(7, 200)), secs(7)), None);
        let d = p.observe(Some(&pass(8, 200)), secs(8)).expect("retries");
        assert_eq!(d.to, Escalation::Postcopy);
    }

    #[test]
    fn stalls_before_the_timeout_do_not_preempt_it() {
        // Not converging without post-copy: nothing until the timeout, then its action.
        let mut r = req();
        r.timeout_s = Some(8);
        r.timeout_action = TimeoutAction::Suspend;
        let mut p = Policy::new(&r);
        let samples: Vec<_> = (1..12).map(|i| pass(i, 200)).collect();
        let d = run(&mut p, &samples);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!((d[0].0, d[0].1.to), (8, Escalation::Suspend));
    }
}
