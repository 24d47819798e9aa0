//! `ferry v2p SOURCE --to /dev/sdY|FILE`: a VM disk onto bare metal (or a raw file), with
//! the reverse fixups for physical hardware; the writer is [`crate::v2p`].

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use converters::verify::{verify, VerifyReport};
use converters::DiskSource;
use fixups::fixup::{Target, TargetNic};

use super::units::human;
use super::{print_json, progress, CliResult, Exit, Failure, V2pArgs};
use crate::guest::{fix_in_overlay, FixupDiskError, FixupOptions};
use crate::v2p::{check_target, write_disk, GrowReport, V2pError, WriteOptions, WriteReport};
use crate::v2v::FixupSummary;

#[derive(Debug, Serialize)]
struct V2pReport {
    source: String,
    target: String,
    dry_run: bool,
    fixups: Option<FixupSummary>,
    write: WriteReport,
    verify: Option<VerifyReport>,
    grow: Option<GrowReport>,
}

pub fn run(args: &V2pArgs) -> CliResult {
    let nics = args
        .mac
        .iter()
        .map(|m| target_nic(m))
        .collect::<Result<Vec<_>, _>>()?;
    let source: Arc<dyn DiskSource> = Arc::from(args.source.open(&args.src)?);
    let size = source.size();
    check_target(&args.to, size, args.force).map_err(v2p_failure)?;

    let (copy_from, fixups) = if args.no_fixups {
        (source.clone(), None)
    } else {
        let opts = FixupOptions {
            target: Target::Physical,
            dry_run: args.dry_run,
            nics,
            cancel: Some(super::interrupted()),
            progress: &|_| {},
        };
        let fixed = fix_in_overlay(&args.src, source.clone(), &std::env::temp_dir(), &opts)
            .map_err(|e| {
                let exit = match e {
                    FixupDiskError::BadInput(_) => Exit::BadInput,
                    FixupDiskError::FixupFailed(_) => Exit::FixupFailed,
                    FixupDiskError::WriteFailed(_) => Exit::OutputFailed,
                    FixupDiskError::Interrupted(_) => Exit::Interrupted,
                };
                Failure::new(
                    exit,
                    anyhow::anyhow!("{e}; pass --no-fixups to write the disk as it is"),
                )
            })?;
        let summary = FixupSummary::new(args.src.display().to_string(), &fixed);
        (fixed.overlay.clone() as Arc<dyn DiskSource>, Some(summary))
    };

    let bar = progress::bytes_bar(size, "write", args.json);
    // The filesystem is grown only after the written disk was proved equal to the source.
    let write_opts = WriteOptions {
        force: args.force,
        dry_run: args.dry_run,
        grow: false,
        jobs: args
            .jobs
            .unwrap_or_else(|| WriteOptions::default().jobs)
            .max(1),
        cancel: Some(super::interrupted()),
    };
    let write = write_disk(copy_from.as_ref(), &args.to, &write_opts, &|n| bar.inc(n))
        .map_err(v2p_failure)?;
    bar.finish_and_clear();
    let mut report = V2pReport {
        source: args.src.display().to_string(),
        target: args.to.display().to_string(),
        dry_run: args.dry_run,
        fixups,
        verify: None,
        grow: None,
        write,
    };
    if !args.dry_run {
        report.verify = Some(verify_target(
            &args.to,
            copy_from.as_ref(),
            write_opts.jobs,
        )?);
        if args.grow {
            let is_device = report.write.target_kind == "block device";
            report.grow = crate::v2p::grow::grow_last_partition(
                &args.to,
                is_device,
                size,
                report.write.target_size,
            )
            .map_err(v2p_failure)?;
        }
    }
    if args.json {
        return print_json(&report);
    }
    print_report(&report);
    Ok(())
}

/// Compares the first `source.size()` bytes of the target with what was written.
fn verify_target(
    target: &PathBuf,
    source: &dyn DiskSource,
    jobs: usize,
) -> CliResult<VerifyReport> {
    let failed = |e: String| Failure::new(Exit::VerifyFailed, anyhow::anyhow!(e));
    let file = std::fs::File::open(target).map_err(|e| {
        Failure::new(
            Exit::OutputFailed,
            anyhow::anyhow!("{}: {e}", target.display()),
        )
    })?;
    let written = converters::member::open_window(
        target,
        Arc::new(file),
        0,
        source.size(),
        Some(converters::Format::Raw),
    )
    .map_err(|e| Failure::new(Exit::OutputFailed, e))?;
    verify(source, written.as_ref(), jobs)
        .map_err(|e| failed(format!("{}: verification failed: {e}", target.display())))
}

/// `--mac MAC` or `--mac NAME=MAC`.
fn target_nic(arg: &str) -> CliResult<TargetNic> {
    let usage = |why: &str| Failure::new(Exit::Usage, anyhow::anyhow!("--mac {arg}: {why}"));
    let (name, mac) = match arg.split_once('=') {
        Some((name, mac)) => (Some(name), mac),
        None => (None, arg),
    };
    if let Some(name) = name {
        let ok = (1..=15).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(usage(
                "expected an interface name of at most 15 letters, digits, '-' or '_' before '='",
            ));
        }
    }
    let lower = mac.to_ascii_lowercase();
    let ok = lower.len() == 17
        && lower.split(':').count() == 6
        && lower
            .split(':')
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        return Err(usage(
            "expected six hex pairs like 3c:ec:ef:12:34:56, or ens192=3c:ec:ef:12:34:56",
        ));
    }
    Ok(TargetNic {
        mac: lower,
        name: name.map(str::to_string),
    })
}

fn v2p_failure(e: V2pError) -> Failure {
    let exit = match e {
        V2pError::Refused(_) | V2pError::Io(_) => Exit::OutputFailed,
        V2pError::Source(_) => Exit::BadInput,
        V2pError::Interrupted(_) => Exit::Interrupted,
    };
    Failure::new(exit, e)
}

fn print_report(r: &V2pReport) {
    let w = &r.write;
    println!(
        "target:  {} ({}, {}) <- {} ({})",
        r.target,
        w.target_kind,
        human(w.target_size),
        r.source,
        human(w.source_size)
    );
    match &r.fixups {
        Some(f) => {
            println!(
                "guest:   {}, root on {}",
                f.os.as_deref().unwrap_or("unknown OS"),
                f.root
            );
            super::fixup::print_fixup_reports(&f.reports, r.dry_run);
        }
        None => println!("guest:   not inspected (--no-fixups)"),
    }
    if r.dry_run {
        println!(
            "plan:    write {}, zero {} on the target; nothing written (--dry-run)",
            human(w.bytes_written),
            human(w.bytes_zeroed)
        );
        return;
    }
    println!(
        "wrote:   {} written, {} zeroed, {} already zero; {:.2} s",
        human(w.bytes_written),
        human(w.bytes_zeroed),
        human(w.bytes_skipped),
        w.seconds
    );
    if let Some(v) = &r.verify {
        println!(
            "verified: identical to the (fixed) source ({} compared byte for byte)",
            human(v.bytes_compared)
        );
    }
    if let Some(g) = &r.grow {
        println!(
            "grown:   partition {} from {} to {}{}; {}",
            g.partition,
            human(g.old_size),
            human(g.new_size),
            if g.filesystem_grown {
                ", filesystem too"
            } else {
                ""
            },
            g.note
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_arguments_bare_or_named() {
        let bare = target_nic("3C:EC:EF:12:34:56").unwrap();
        assert_eq!((bare.mac.as_str(), bare.name), ("3c:ec:ef:12:34:56", None));
        let named = target_nic("ens192=3c:ec:ef:12:34:56").unwrap();
        assert_eq!(named.name.as_deref(), Some("ens192"));
        assert_eq!(named.mac, "3c:ec:ef:12:34:56");
    }

    #[test]
    fn bad_mac_arguments_are_usage_errors() {
        for bad in [
            "3c:ec:ef:12:34",
            "3c-ec-ef-12-34-56",
            "=3c:ec:ef:12:34:56",
            "a/b=3c:ec:ef:12:34:56",
            "averyveryverylongname=3c:ec:ef:12:34:56",
            "ens192=",
        ] {
            let err = target_nic(bad).unwrap_err();
            assert_eq!(err.exit, Exit::Usage, "{bad}");
        }
    }
}
