//! `ferry fixup DISK`: make a converted Linux guest boot under KVM, in place, without
//! booting it and without a helper VM (the work is in [`crate::guest::fixup_disk`]).

use std::sync::Arc;

use fixups::fixup::{FixupReport, Outcome, Target};

use super::units::human;
use super::{print_json, progress, CliResult, Exit, Failure, FixupArgs, TargetArg};
use crate::guest::{fixup_disk, Commit, FixupDiskError, FixupOptions, FixupRun};

pub fn run(args: &FixupArgs) -> CliResult {
    let source: Arc<dyn converters::DiskSource> = Arc::from(args.source.open(&args.disk)?);
    let bar = progress::bytes_bar(source.size(), "rewrite", args.json);
    let opts = FixupOptions {
        target: match args.target {
            TargetArg::Kvm => Target::Kvm,
        },
        dry_run: args.dry_run,
        nics: Vec::new(),
        cancel: Some(super::interrupted()),
        progress: &|n| bar.inc(n),
    };
    let run = fixup_disk(&args.disk, source, &opts).map_err(|e| {
        let exit = match e {
            FixupDiskError::BadInput(_) => Exit::BadInput,
            FixupDiskError::FixupFailed(_) => Exit::FixupFailed,
            FixupDiskError::WriteFailed(_) => Exit::OutputFailed,
            FixupDiskError::Interrupted(_) => Exit::Interrupted,
        };
        Failure::new(exit, e)
    })?;
    bar.finish_and_clear();
    if args.json {
        return print_json(&run);
    }
    print_run(&run);
    Ok(())
}

/// One line per fixup (applied or skipped with the reason), its changed paths, and on a
/// dry run each change as a diff.
pub(super) fn print_fixup_reports(reports: &[FixupReport], dry_run: bool) {
    for r in reports {
        let (word, detail) = match r.outcome {
            Outcome::Applied if dry_run => ("would fix", r.description.to_string()),
            Outcome::Applied => ("fixed", r.description.to_string()),
            Outcome::Skipped => ("skipped", r.reason.clone().unwrap_or_default()),
        };
        println!("  {:<10} {word:<9} {detail}", r.id);
        // A fixup with nothing to change carries its notes in the reason already.
        let said = |note: &str| r.reason.as_deref().is_some_and(|why| why.contains(note));
        for note in r.notes.iter().filter(|n| !said(n)) {
            println!("      note: {note}");
        }
        for c in &r.changes {
            println!("      {} {}", c.action, c.path);
            if dry_run {
                for line in c.diff.lines() {
                    println!("        {line}");
                }
            }
        }
    }
}

fn print_run(run: &FixupRun) {
    let os = run.os.as_deref().unwrap_or("unknown OS");
    println!(
        "disk:    {} ({}), root on {} — {os}",
        run.disk, run.format, run.root
    );
    print_fixup_reports(&run.fixups, run.dry_run);
    let verdict = match run.commit {
        Commit::None if run.dry_run => "nothing written (--dry-run)".to_string(),
        Commit::None => "nothing to change; the disk was not written".to_string(),
        Commit::InPlace => format!(
            "{} of guest blocks written in place",
            human(run.changed_bytes)
        ),
        Commit::Qcow2Rewrite => format!(
            "qcow2 rewritten with {} of changed guest blocks",
            human(run.changed_bytes)
        ),
    };
    println!("result:  {verdict}; {:.2} s", run.seconds);
}
