//! `ferry wave INVENTORY --out DIR`: many VMs, a few at a time, resumable; the runner is
//! [`crate::wave`].

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::units::human;
use super::{print_json, CliResult, Exit, Failure, WaveArgs};
use crate::v2v::{Progress, V2vOptions};
use crate::wave::{self, VmOutcome, VmStatus, WaveError, WaveOptions, WaveReport, WaveVm};

pub fn run(args: &WaveArgs) -> CliResult {
    let inventory = wave::load(&args.inventory).map_err(|e| Failure::new(Exit::BadInput, e))?;
    let opts = WaveOptions {
        out_dir: args.out.clone(),
        parallel: usize::from(args.parallel),
        jobs: args
            .jobs
            .unwrap_or_else(|| V2vOptions::default().jobs)
            .max(1),
        dry_run: args.dry_run,
        cancel: Some(super::interrupted()),
    };
    let ui = Ui::new(args.json, inventory.vms.len());
    let report = wave::run(&inventory, &opts, &ui).map_err(|e| {
        let exit = match e {
            WaveError::State(
                wave::state::StateError::Damaged { .. } | wave::state::StateError::Read { .. },
            ) => Exit::BadInput,
            _ => Exit::OutputFailed,
        };
        Failure::new(exit, e)
    })?;
    ui.finish();
    if args.json {
        print_json(&report)?;
    } else {
        print_report(&report);
    }
    if report.interrupted + report.not_run > 0 {
        return Err(Failure::new(
            Exit::Interrupted,
            anyhow::anyhow!(
                "{}: wave interrupted; run it again to resume",
                args.inventory.display()
            ),
        ));
    }
    if report.failed > 0 {
        let (inv, failed, all) = (args.inventory.display(), report.failed, report.vms.len());
        let message = if args.dry_run {
            format!("{inv}: {failed} of {all} VMs cannot move (the plan above says why)")
        } else {
            format!(
                "{inv}: {failed} of {all} VMs failed (see {}); run the wave again to retry them",
                args.out.join(wave::REPORT_FILE).display()
            )
        };
        return Err(Failure::new(Exit::WaveIncomplete, anyhow::anyhow!(message)));
    }
    Ok(())
}

/// On a terminal (and without `--json`), the overall bar, one bar per running VM, and a
/// line above them for each VM that ends; elsewhere only the final report speaks.
struct Ui {
    multi: MultiProgress,
    overall: ProgressBar,
    lines: bool,
    /// Keeps lines of VMs ending at once from interleaving.
    printing: Mutex<()>,
}

impl Ui {
    fn new(json: bool, vms: usize) -> Ui {
        let hidden = json || !std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        });
        let overall = multi.add(ProgressBar::new(vms as u64));
        overall.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} VMs {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        overall.set_prefix("wave");
        Ui {
            multi,
            overall,
            lines: !hidden,
            printing: Mutex::new(()),
        }
    }

    fn finish(&self) {
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}

impl wave::WaveProgress for Ui {
    fn vm_started(&self, vm: &WaveVm) -> Box<dyn Progress + '_> {
        let bar = self.multi.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} {msg:<8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(short(&vm.id, 12));
        Box::new(VmBar { bar })
    }

    fn vm_ended(&self, outcome: &VmOutcome) {
        self.overall.inc(1);
        if !self.lines {
            return;
        }
        let _guard = self.printing.lock();
        self.multi
            .suspend(|| eprintln!("{}", outcome_line(outcome)));
    }
}

/// One running VM's stages on its own bar.
struct VmBar {
    bar: ProgressBar,
}

impl Progress for VmBar {
    fn stage(&self, name: &str, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(0);
        self.bar.set_message(name.to_string());
    }

    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }
}

impl Drop for VmBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let tail: String = s
        .chars()
        .rev()
        .take(max - 1)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

fn status_word(s: VmStatus) -> &'static str {
    match s {
        VmStatus::Done => "done",
        VmStatus::Skipped => "skipped",
        VmStatus::Planned => "planned",
        VmStatus::Failed => "FAILED",
        VmStatus::Interrupted => "interrupted",
        VmStatus::NotRun => "not run",
    }
}

fn outcome_line(o: &VmOutcome) -> String {
    let name = o.name.as_deref().unwrap_or(&o.id);
    match o.status {
        VmStatus::Failed | VmStatus::Interrupted => format!(
            "{:<24} {:<11} {}",
            name,
            status_word(o.status),
            o.error.as_deref().unwrap_or("")
        ),
        VmStatus::Skipped => format!("{name:<24} {:<11} done by an earlier run", "skipped"),
        VmStatus::NotRun => format!("{name:<24} {:<11}", "not run"),
        VmStatus::Done | VmStatus::Planned => format!(
            "{:<24} {:<11} {} in {:.1} s",
            name,
            status_word(o.status),
            human(o.bytes_to_copy),
            o.seconds
        ),
    }
}

fn print_report(r: &WaveReport) {
    println!(
        "wave:    {} ({} VMs) -> {}{}",
        r.inventory,
        r.vms.len(),
        r.out_dir,
        if r.dry_run { " (--dry-run)" } else { "" }
    );
    for o in &r.vms {
        println!("  {}", outcome_line(o));
    }
    if r.stale_files_removed > 0 {
        println!(
            "cleanup: {} temporary file(s) of a killed run removed",
            r.stale_files_removed
        );
    }
    if r.dry_run {
        let total: u64 = r.vms.iter().map(|v| v.bytes_to_copy).sum();
        println!(
            "plan:    {} VM(s) to move, {} to copy, {} done before; nothing written (--dry-run)",
            r.planned,
            human(total),
            r.skipped
        );
        return;
    }
    println!(
        "result:  {} done, {} skipped (done before), {} failed, {} interrupted, {} not run; \
         {} copied in {:.1} s, {} at a time",
        r.done,
        r.skipped,
        r.failed,
        r.interrupted,
        r.not_run,
        human(r.bytes_copied),
        r.seconds,
        r.parallel
    );
}
