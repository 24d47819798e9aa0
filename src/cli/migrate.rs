//! `ferry migrate DOMAIN --to URI`: preflight checks, then a live or offline move through
//! libvirt with progress and a final report (the work is in `virtconn::migrate`).

use std::io::Write;

use serde::Serialize;

use virtconn::migrate::{
    flag_checks, migrate, preflight, unreachable_check, Check, CheckStatus, CopyStorage,
    MigrateRequest, MigrationEvent, MigrationReport, MoveKind, TimeoutAction,
};
use virtconn::Connection;

use super::units::human;
use super::{print_json, CliResult, CopyStorageArg, Exit, Failure, MigrateArgs, TimeoutActionArg};

#[derive(Debug, Serialize)]
struct MigrateOutput<'a> {
    request: &'a MigrateRequest,
    dry_run: bool,
    preflight: &'a [Check],
    migration: Option<&'a MigrationReport>,
}

pub fn run(args: &MigrateArgs) -> CliResult {
    let req = request(args);
    let src =
        Connection::open(&req.source_uri).map_err(|e| Failure::new(Exit::LibvirtFailed, e))?;
    let dest = Connection::open(&req.dest_uri);
    // The full preflight includes the flag checks; they alone still run without it.
    let checks = match &dest {
        Ok(dest) if !args.no_preflight => preflight(&src, dest, &req),
        Ok(_) => flag_checks(&req),
        Err(e) => {
            let mut checks = flag_checks(&req);
            checks.push(unreachable_check(&req.dest_uri, e));
            checks
        }
    };
    let dest = dest.ok();
    let failed: Vec<&Check> = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .collect();
    if !args.json {
        print_checks(&checks);
    }
    let Some(dest) = dest.filter(|_| failed.is_empty() && !args.dry_run) else {
        if args.json {
            print_json(&MigrateOutput {
                request: &req,
                dry_run: args.dry_run,
                preflight: &checks,
                migration: None,
            })?;
        }
        if !failed.is_empty() {
            let ids: Vec<&str> = failed.iter().map(|c| c.id).collect();
            return Err(Failure::new(
                Exit::PreflightFailed,
                anyhow::anyhow!(
                    "preflight failed ({}): nothing was moved; {} stays on {}",
                    ids.join(", "),
                    req.domain,
                    req.source_uri
                ),
            ));
        }
        if !args.json {
            println!("dry run: every check passed; nothing was moved");
        }
        return Ok(());
    };

    let bar = super::progress::bytes_bar(0, "migrate", args.json);
    let mut on_event = |event: &MigrationEvent| match event {
        MigrationEvent::Progress(p) => {
            let total = p.mem_total + p.disk_total;
            if total > 0 {
                bar.set_length(total);
                bar.set_position(p.mem_processed + p.disk_processed);
            }
            if args.json {
                json_line(&serde_json::json!({ "event": "progress", "progress": p }));
            }
        }
        MigrationEvent::Escalated { to, why } => {
            bar.suspend(|| eprintln!("ferry: escalating to {to:?}: {why}"));
            if args.json {
                json_line(
                    &serde_json::json!({ "event": "escalated", "to": format!("{to:?}").to_lowercase(), "why": why }),
                );
            }
        }
        MigrationEvent::Phase(what) => {
            if args.json {
                json_line(&serde_json::json!({ "event": "phase", "phase": what }));
            }
        }
    };
    let result = migrate(&src, &dest, &req, &mut on_event);
    bar.finish_and_clear();
    let report = result.map_err(|e| Failure::new(Exit::MigrationFailed, e))?;
    if args.json {
        return print_json(&MigrateOutput {
            request: &req,
            dry_run: false,
            preflight: &checks,
            migration: Some(&report),
        });
    }
    print_report(&report);
    Ok(())
}

/// One JSON object per line on stdout, as it happens.
fn json_line(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

fn request(args: &MigrateArgs) -> MigrateRequest {
    let mut req = MigrateRequest::new(&args.domain, &args.connect, &args.to);
    req.kind = if args.offline {
        MoveKind::Offline
    } else {
        MoveKind::Live
    };
    req.copy_storage = args.copy_storage.map(|c| match c {
        CopyStorageArg::All => CopyStorage::All,
        CopyStorageArg::Inc => CopyStorage::Inc,
    });
    req.postcopy = args.postcopy;
    req.auto_converge = args.auto_converge;
    req.p2p = args.p2p || args.tunnelled;
    req.tunnelled = args.tunnelled;
    req.persistent = args.persistent || args.offline;
    req.undefine_source = args.undefine_source;
    req.compressed = args.compressed;
    req.max_downtime_ms = args.max_downtime;
    req.bandwidth_mib_s = args.bandwidth;
    req.migrate_uri = args.migrate_uri.clone();
    req.timeout_s = args.timeout;
    req.timeout_action = match args.timeout_action {
        TimeoutActionArg::Abort => TimeoutAction::Abort,
        TimeoutActionArg::Postcopy => TimeoutAction::Postcopy,
        TimeoutActionArg::Suspend => TimeoutAction::Suspend,
    };
    req
}

fn print_checks(checks: &[Check]) {
    println!("preflight:");
    for c in checks {
        let word = match c.status {
            CheckStatus::Pass => "ok",
            CheckStatus::Warn => "WARN",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Skip => "skip",
        };
        println!("  {word:<5} {:<16} {}", c.id, c.message);
        if let Some(fix) = &c.fix {
            if c.status != CheckStatus::Pass {
                println!("        {:<16} fix: {fix}", "");
            }
        }
    }
}

fn print_report(r: &MigrationReport) {
    println!(
        "moved:   {} from {} to {} ({:?})",
        r.domain, r.source_uri, r.dest_uri, r.kind
    );
    let ms = |v: Option<u64>| v.map_or_else(|| "?".to_string(), |v| format!("{v} ms"));
    println!(
        "time:    {} ms total, downtime {}, {} transferred, {} iteration(s)",
        r.total_ms,
        ms(r.downtime_ms),
        r.bytes_transferred.map_or_else(|| "?".to_string(), human),
        r.iterations
            .map_or_else(|| "?".to_string(), |i| i.to_string())
    );
    if r.postcopy_used {
        println!("         post-copy was used");
    }
    if let Some(t) = r.auto_converge_throttle {
        println!("         auto-converge throttled the guest to {t}%");
    }
    for e in &r.escalations {
        println!("         escalation: {e}");
    }
}
