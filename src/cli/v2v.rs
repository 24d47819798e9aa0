//! `ferry v2v SOURCE... --out DIR`: a VMware, OVF/OVA, Xen or libvirt guest (or bare disks)
//! to a KVM guest; the pipeline is [`crate::v2v`].

use indicatif::ProgressBar;

use domain::{NetTarget, VirtType};

use super::units::human;
use super::{print_json, progress, CliResult, Exit, Failure, MoveArgs, V2vArgs, VirtTypeArg};
use crate::v2v::{self, DefineOptions, OutputFormat, Progress, V2vError, V2vOptions, V2vReport};

pub fn run(args: &V2vArgs) -> CliResult {
    let opts = options(&args.opts)?;
    let bar = Bar::new(args.opts.json);
    let report = v2v::run(&args.sources, &opts, &bar).map_err(failure)?;
    bar.finish();
    if args.opts.json {
        return print_json(&report);
    }
    print_report(&report);
    Ok(())
}

pub(super) fn options(args: &MoveArgs) -> CliResult<V2vOptions> {
    let usage = |msg: String| Failure::new(Exit::Usage, anyhow::anyhow!(msg));
    let mut network_map = Vec::new();
    for entry in &args.network_map {
        let (from, to) = entry
            .split_once('=')
            .ok_or_else(|| usage(format!("--network-map '{entry}': expected SOURCE=TARGET")))?;
        let to =
            NetTarget::parse(to).map_err(|e| usage(format!("--network-map '{entry}': {e}")))?;
        network_map.push((from.to_string(), to));
    }
    if args.migrate_to.is_some() && !args.start {
        return Err(usage(
            "--migrate-to moves the running guest: it needs --start".into(),
        ));
    }
    if args.pool.is_some() && !(args.define || args.start) {
        return Err(usage(
            "--pool needs --define (the pool belongs to the libvirt host)".into(),
        ));
    }
    let default_network = NetTarget::parse(&args.network)
        .map_err(|e| usage(format!("--network '{}': {e}", args.network)))?;
    Ok(V2vOptions {
        out_dir: args.out.clone(),
        name: args.name.clone(),
        output_format: match args.output_format {
            super::OutputFormat::Qcow2 => OutputFormat::Qcow2,
            super::OutputFormat::Raw => OutputFormat::Raw,
        },
        network_map,
        default_network,
        fixups: !args.no_fixups,
        verify: !args.no_verify,
        dry_run: args.dry_run,
        virt_type: args.virt_type.map(|t| match t {
            VirtTypeArg::Kvm => VirtType::Kvm,
            VirtTypeArg::Qemu => VirtType::Qemu,
        }),
        define: (args.define || args.start).then(|| DefineOptions {
            uri: args.connect.clone(),
            start: args.start,
            pool: args.pool.clone(),
            migrate_to: args
                .migrate_to
                .clone()
                .map(|dest_uri| crate::v2v::MigrateTo {
                    dest_uri,
                    migrate_uri: args.migrate_uri.clone(),
                    copy_storage: args.migrate_copy_storage,
                }),
        }),
        jobs: args
            .jobs
            .unwrap_or_else(|| V2vOptions::default().jobs)
            .max(1),
        cancel: Some(super::interrupted()),
    })
}

pub(super) fn failure(e: V2vError) -> Failure {
    let exit = match &e {
        V2vError::Usage(_) => Exit::Usage,
        V2vError::BadInput(_) => Exit::BadInput,
        V2vError::OutputFailed(_) => Exit::OutputFailed,
        V2vError::VerifyFailed(_) => Exit::VerifyFailed,
        V2vError::FixupFailed(_) => Exit::FixupFailed,
        V2vError::Libvirt(_) => Exit::LibvirtFailed,
        V2vError::Interrupted(_) => Exit::Interrupted,
        V2vError::PreflightFailed(_) => Exit::PreflightFailed,
        V2vError::MigrationFailed(_) => Exit::MigrationFailed,
    };
    Failure::new(exit, e)
}

/// One bar per stage on a terminal; nothing otherwise.
pub(super) struct Bar {
    quiet: bool,
    current: std::sync::Mutex<Option<ProgressBar>>,
}

impl Bar {
    pub(super) fn new(quiet: bool) -> Self {
        Bar {
            quiet,
            current: std::sync::Mutex::new(None),
        }
    }

    pub(super) fn finish(&self) {
        if let Ok(mut cur) = self.current.lock() {
            if let Some(b) = cur.take() {
                b.finish_and_clear();
            }
        }
    }
}

impl Progress for Bar {
    fn stage(&self, name: &str, total: u64) {
        self.finish();
        if let Ok(mut cur) = self.current.lock() {
            *cur = Some(progress::bytes_bar(total, name, self.quiet));
        }
    }

    fn advance(&self, n: u64) {
        if let Ok(cur) = self.current.lock() {
            if let Some(b) = cur.as_ref() {
                b.inc(n);
            }
        }
    }
}

pub(super) fn print_report(r: &V2vReport) {
    let d = &r.description;
    let firmware = match d.firmware {
        vmdesc::Firmware::Bios => "BIOS".to_string(),
        vmdesc::Firmware::Uefi { secure_boot } => {
            format!("UEFI{}", if secure_boot { ", secure boot" } else { "" })
        }
    };
    println!(
        "source:  {} ({}) — {} vCPU, {}, {firmware}, {} NIC(s){}",
        r.sources.join(" "),
        r.source_kind,
        d.vcpus,
        human(d.memory_bytes),
        d.nics.len(),
        d.os_hint
            .as_deref()
            .map(|o| format!(", guest OS {o}"))
            .unwrap_or_default()
    );
    for w in &d.warnings {
        println!("  note:  {w}");
    }
    for disk in &r.disks {
        let p = &disk.plan;
        println!(
            "disk:    {} ({}, {} virtual, {} to copy) -> {}",
            p.source,
            p.source_format,
            human(p.virtual_size),
            human(p.allocated_bytes),
            p.output.display()
        );
        if let Some(c) = &disk.copy {
            println!(
                "           copied {} in {:.2} s, {} stored",
                human(c.bytes_read),
                c.seconds,
                human(c.bytes_stored)
            );
        }
        if let Some(v) = &disk.verify {
            println!(
                "           verified identical ({} compared byte for byte)",
                human(v.bytes_compared)
            );
        }
    }
    match &r.fixups {
        Some(f) => {
            let os = f.os.as_deref().unwrap_or("unknown OS");
            println!("guest:   {os}, root on {} of {}", f.root, f.disk);
            super::fixup::print_fixup_reports(&f.reports, r.dry_run);
        }
        None => println!("guest:   not inspected (--no-fixups)"),
    }
    println!("devices: {}", r.guest_caps.reason);
    if r.dry_run {
        println!(
            "plan:    copy {} into {} disk(s); domain XML {}:",
            human(r.bytes_to_copy),
            r.disks.len(),
            r.domain_xml_path
        );
        println!("{}", r.domain_xml.trim_end());
        println!("nothing written (--dry-run)");
        return;
    }
    println!("domain:  {}", r.domain_xml_path);
    for c in r
        .preflight
        .iter()
        .filter(|c| c.status != virtconn::migrate::CheckStatus::Pass)
    {
        println!("  preflight {:?} {}: {}", c.status, c.id, c.message);
    }
    if let Some(m) = &r.migration {
        println!(
            "migrate: moved to {} in {} ms, downtime {}",
            m.dest_uri,
            m.total_ms,
            m.downtime_ms
                .map_or_else(|| "?".to_string(), |d| format!("{d} ms"))
        );
    }
    if let Some(l) = &r.libvirt {
        println!(
            "libvirt: defined '{}' ({}) at {}{}; MACs {}",
            l.name,
            l.uuid,
            l.uri,
            if l.started { ", started" } else { "" },
            l.macs.join(", ")
        );
    }
    let stages: Vec<String> = r
        .stages
        .iter()
        .map(|s| format!("{} {:.2} s", s.stage, s.seconds))
        .collect();
    println!("time:    {:.2} s ({})", r.seconds, stages.join(", "));
}
