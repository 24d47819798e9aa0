//! `ferry p2v --disk DEV... --out DIR`: this machine (or raw dumps of one) as a KVM guest;
//! the work is in [`crate::p2v`].

use super::units::human;
use super::{print_json, CliResult, P2vArgs};
use crate::p2v::pipeline::{run as run_p2v, P2vOptions, P2vReport};

pub fn run(args: &P2vArgs) -> CliResult {
    let v2v = super::v2v::options(&args.v2v)?;
    let opts = P2vOptions {
        disks: args.disk.clone(),
        name: args.v2v.name.clone(),
        used_only: args.used_only,
        root: std::path::PathBuf::from("/"),
        v2v,
    };
    let bar = super::v2v::Bar::new(args.v2v.json);
    let report = run_p2v(&opts, &bar).map_err(super::v2v::failure)?;
    bar.finish();
    if args.v2v.json {
        return print_json(&report);
    }
    print_report(&report);
    Ok(())
}

fn print_report(r: &P2vReport) {
    let inv = &r.inventory;
    for d in &inv.disks {
        println!(
            "physical disk: {} — {}{}",
            d.path.display(),
            human(d.size_bytes),
            d.model
                .as_deref()
                .map(|m| format!(", {m}"))
                .unwrap_or_default()
        );
    }
    for n in inv.nics.iter().filter(|n| n.is_physical) {
        println!(
            "physical NIC:  {} {} ({})",
            n.name,
            n.mac,
            n.driver.as_deref().unwrap_or("unknown driver")
        );
    }
    for u in &r.used {
        println!(
            "used blocks:   {}: {} of {} to copy",
            u.disk,
            human(u.used_bytes),
            human(u.disk_size)
        );
        for region in &u.regions {
            println!("                 {}", region.why);
        }
    }
    for w in &r.warnings {
        println!("warning:       {w}");
    }
    super::v2v::print_report(&r.v2v);
}
