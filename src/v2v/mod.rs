//! `ferry v2v`: a VM description in, a KVM guest out — read the description, convert every
//! disk in parallel (fixing the guest on the way, in an overlay, so each disk is written
//! once), verify each output against what was copied, write the libvirt domain XML, and
//! optionally define and start the domain. Used by the CLI and by `ferry demo`.
//!
//! Outputs are staged: disks are written under temporary names by their sinks, the XML and
//! report under temporary names, and everything this run wrote is removed again when a
//! later stage fails, so `--out` never holds half a guest.

pub mod plan;
mod publish;
mod report;
pub mod source;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use converters::copy::{copy_disks, CopyOptions};
use converters::qcow2::{Qcow2Sink, Qcow2WriteOptions};
use converters::raw_sink::RawSink;
use converters::verify::verify;
use converters::{DiskSink, DiskSource, Format};
use domain::{ConvertedDisk, DomainOptions, NetTarget, VirtType};
use fixups::fixup::{Target, TargetNic};

use crate::guest::{fix_in_overlay, FixupDiskError, FixupOptions};
pub use plan::{domain_name, plan, Plan, PlannedDisk};
pub(crate) use publish::write_staged;
use publish::Written;
pub use report::{DiskReport, FixupSummary, GuestCaps, LibvirtReport, StageTime, V2vReport};
use source::{open_disk, resolve};

/// Why a move failed; the CLI maps each to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum V2vError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    OutputFailed(String),
    #[error("{0}")]
    VerifyFailed(String),
    #[error("{0}")]
    FixupFailed(String),
    #[error("{0}")]
    Libvirt(String),
    #[error("{0}")]
    Interrupted(String),
    /// `--migrate-to`: a preflight check failed; the guest runs on the conversion host.
    #[error("{0}")]
    PreflightFailed(String),
    /// `--migrate-to`: the move failed; the guest runs on the conversion host.
    #[error("{0}")]
    MigrationFailed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Qcow2,
    Raw,
}

impl OutputFormat {
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Qcow2 => "qcow2",
            OutputFormat::Raw => "raw",
        }
    }
}

/// Defining (and starting) the result in libvirt.
#[derive(Debug, Clone)]
pub struct DefineOptions {
    pub uri: String,
    pub start: bool,
    /// Put the disks in this storage pool's folder instead of `--out`.
    pub pool: Option<String>,
    /// After starting, move the guest live to this libvirt URI.
    pub migrate_to: Option<MigrateTo>,
}

/// The live move chained after `--start` (`ferry migrate` with `--persistent
/// --undefine-source`).
#[derive(Debug, Clone)]
pub struct MigrateTo {
    pub dest_uri: String,
    /// `tcp://HOST[:PORT]` when the destination's host name does not resolve here.
    pub migrate_uri: Option<String>,
    /// Copy the converted disks (when `--out` is not shared with the destination).
    pub copy_storage: bool,
}

/// Reports stage progress to a UI: a stage with its total, then advances.
pub trait Progress: Sync {
    fn stage(&self, name: &str, total: u64);
    fn advance(&self, n: u64);
}

/// A [`Progress`] that shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn stage(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
}

pub struct V2vOptions {
    pub out_dir: PathBuf,
    pub name: Option<String>,
    pub output_format: OutputFormat,
    pub network_map: Vec<(String, NetTarget)>,
    pub default_network: NetTarget,
    pub fixups: bool,
    pub verify: bool,
    pub dry_run: bool,
    /// `kvm` or `qemu`; `None`: what the libvirt host offers, else kvm.
    pub virt_type: Option<VirtType>,
    pub define: Option<DefineOptions>,
    pub jobs: usize,
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for V2vOptions {
    fn default() -> Self {
        V2vOptions {
            out_dir: PathBuf::from("."),
            name: None,
            output_format: OutputFormat::Qcow2,
            network_map: Vec::new(),
            default_network: NetTarget::Network("default".into()),
            fixups: true,
            verify: true,
            dry_run: false,
            virt_type: None,
            define: None,
            jobs: CopyOptions::default().jobs,
            cancel: None,
        }
    }
}

/// Where virtlogd keeps a system domain's serial log: the console of the first boot after
/// a move is the first thing to read when the guest does not come up.
fn serial_log_path(name: &str) -> PathBuf {
    PathBuf::from(format!("/var/log/libvirt/qemu/{name}-serial0.log"))
}

/// A description and its disks, opened read-only: what every move starts from. `ferry
/// v2v` reads it from the files it is given; `ferry p2v` builds it from the machine.
pub struct Prepared {
    pub resolved: source::Resolved,
    /// One per disk of `resolved`, in order.
    pub opened: Vec<Arc<dyn DiskSource>>,
}

/// Reads and opens what the user named: one description file or any number of disks.
pub fn prepare(sources: &[PathBuf]) -> Result<Prepared, V2vError> {
    let resolved = resolve(sources)?;
    let hypervisor = resolved.description.hypervisor;
    let opened: Vec<Arc<dyn DiskSource>> = resolved
        .disks
        .iter()
        .map(|d| open_disk(d, hypervisor).map(Arc::from))
        .collect::<Result<_, _>>()?;
    Ok(Prepared { resolved, opened })
}

/// Runs the whole move. `sources` is one description file or any number of disks.
pub fn run(
    sources: &[PathBuf],
    opts: &V2vOptions,
    progress: &dyn Progress,
) -> Result<V2vReport, V2vError> {
    let started = Instant::now();
    let prepared = prepare(sources)?;
    run_prepared(prepared, sources, started, opts, progress)
}

/// Runs the move from already opened disks; `sources` names them in reports.
pub fn run_prepared(
    prepared: Prepared,
    sources: &[PathBuf],
    started: Instant,
    opts: &V2vOptions,
    progress: &dyn Progress,
) -> Result<V2vReport, V2vError> {
    // The read stage counts from `started`, which includes preparing the disks.
    let mut stages = Stages {
        last: started,
        done: Vec::new(),
    };
    let Prepared { resolved, opened } = prepared;
    let conn = match &opts.define {
        Some(d) if !opts.dry_run => {
            Some(virtconn::Connection::open(&d.uri).map_err(|e| V2vError::Libvirt(e.to_string()))?)
        }
        _ => None,
    };
    let disk_dir = match (&conn, opts.define.as_ref().and_then(|d| d.pool.as_ref())) {
        (Some(c), Some(pool)) => c
            .pool_dir(pool)
            .map_err(|e| V2vError::Libvirt(e.to_string()))?,
        _ => opts.out_dir.clone(),
    };
    let plan = plan(&resolved, &opened, opts, &disk_dir)?;
    if let Some(c) = &conn {
        let exists = c
            .exists(&plan.name)
            .map_err(|e| V2vError::Libvirt(e.to_string()))?;
        if exists {
            return Err(V2vError::Libvirt(format!(
                "{}: a domain named '{}' is already defined; ferry never replaces one (pass --name, or `virsh undefine {}` first)",
                c.uri(),
                plan.name,
                plan.name
            )));
        }
    }
    stages.done("read", "description and disks opened");

    let mut written = Written::default();
    if !opts.dry_run {
        std::fs::create_dir_all(&opts.out_dir).map_err(|e| {
            V2vError::OutputFailed(format!("{}: cannot create: {e}", opts.out_dir.display()))
        })?;
        plan.refuse_existing_outputs(&opts.out_dir)?;
    }

    // Fixups run before the copy, into an overlay over the source disk that holds the root.
    let scratch = if opts.dry_run {
        std::env::temp_dir()
    } else {
        opts.out_dir.clone()
    };
    let nics: Vec<TargetNic> = resolved
        .description
        .nics
        .iter()
        .filter_map(|n| n.mac.clone().map(|mac| TargetNic { mac, name: None }))
        .collect();
    let mut copy_from: Vec<Arc<dyn DiskSource>> = opened.clone();
    let mut fixup_summary = None;
    if opts.fixups {
        let (index, fixed) = fix_first_root(&resolved, &opened, &scratch, &nics, opts)?;
        copy_from[index] = fixed.overlay.clone();
        fixup_summary = Some(FixupSummary::new(
            resolved.disks[index].shown().display().to_string(),
            &fixed,
        ));
        stages.done("fixup", "guest fixed in an overlay over the source");
    }
    let caps = GuestCaps::from_fixups(fixup_summary.as_ref());

    let mut disks: Vec<DiskReport> = plan
        .disks
        .iter()
        .map(DiskReport::planned)
        .collect::<Vec<_>>();
    let domain_opts = DomainOptions {
        name_override: Some(plan.name.clone()),
        network_map: opts.network_map.clone(),
        default_network: opts.default_network.clone(),
        virtio: caps.virtio,
        legacy_machine: false,
        virt_type: match (opts.virt_type, &conn) {
            (Some(t), _) => t,
            (None, Some(c)) => match c.virt_type() {
                Ok(virtconn::VirtTypeSupport::Kvm) | Err(_) => VirtType::Kvm,
                Ok(virtconn::VirtTypeSupport::Qemu) => VirtType::Qemu,
            },
            (None, None) => VirtType::Kvm,
        },
        serial_log: opts
            .define
            .as_ref()
            .filter(|d| d.uri.contains("/system"))
            .map(|_| serial_log_path(&plan.name)),
    };
    let converted: Vec<ConvertedDisk> = plan
        .disks
        .iter()
        .map(|d| ConvertedDisk {
            path: d.output.clone(),
            format: opts.output_format.name().to_string(),
        })
        .collect();
    let domain = domain::domain_for(&resolved.description, &converted, &domain_opts)
        .map_err(|e| V2vError::BadInput(format!("{}: {e}", sources[0].display())))?;
    let xml = domain.to_xml();
    let xml_path = opts.out_dir.join(format!("{}.xml", plan.name));

    let mut report = V2vReport {
        name: plan.name.clone(),
        source_kind: resolved.kind,
        sources: sources.iter().map(|p| p.display().to_string()).collect(),
        description: resolved.description.clone(),
        dry_run: opts.dry_run,
        disks: Vec::new(),
        bytes_to_copy: plan.bytes_to_copy,
        fixups: fixup_summary,
        guest_caps: caps,
        domain_xml_path: xml_path.display().to_string(),
        domain_xml: xml.clone(),
        libvirt: None,
        preflight: Vec::new(),
        migration: None,
        stages: Vec::new(),
        seconds: 0.0,
    };
    if opts.dry_run {
        report.disks = disks;
        report.stages = stages.into_vec();
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }

    // Convert every disk at once; the copy splits the worker threads between them.
    let sinks = plan
        .disks
        .iter()
        .map(|d| create_sink(&d.output, d.virtual_size, opts.output_format))
        .collect::<Result<Vec<_>, _>>()?;
    progress.stage("convert", plan.disks.iter().map(|d| d.virtual_size).sum());
    let pairs: Vec<(&dyn DiskSource, Box<dyn DiskSink>)> =
        copy_from.iter().map(|s| s.as_ref()).zip(sinks).collect();
    let copy_opts = CopyOptions {
        jobs: opts.jobs.max(1),
        cancel: opts.cancel.clone(),
        ..CopyOptions::default()
    };
    let results = copy_disks(pairs, &copy_opts, &|n| progress.advance(n));
    for (d, r) in plan.disks.iter().zip(&results) {
        if r.is_ok() {
            written.add(&d.output);
        }
    }
    for ((d, r), rep) in plan.disks.iter().zip(results).zip(disks.iter_mut()) {
        let stats = r.map_err(|e| {
            if cancelled(opts) {
                V2vError::Interrupted("interrupted; nothing was left in the output folder".into())
            } else if e.is_bad_input() {
                V2vError::BadInput(e.to_string())
            } else {
                V2vError::OutputFailed(format!("{}: {e}", d.output.display()))
            }
        })?;
        rep.copy = Some(stats);
    }
    stages.done("convert", "disks converted in parallel");

    if opts.verify {
        progress.stage("verify", plan.disks.iter().map(|d| d.virtual_size).sum());
        for ((d, src), rep) in plan.disks.iter().zip(&copy_from).zip(disks.iter_mut()) {
            let out = converters::open(
                &d.output,
                Some(match opts.output_format {
                    OutputFormat::Qcow2 => Format::Qcow2,
                    OutputFormat::Raw => Format::Raw,
                }),
                &converters::OpenOptions::default(),
            )
            .map_err(|e| V2vError::OutputFailed(e.to_string()))?;
            let v = verify(src.as_ref(), out.as_ref(), opts.jobs.max(1)).map_err(|e| {
                V2vError::VerifyFailed(format!(
                    "{}: differs from {}: {e}",
                    d.output.display(),
                    d.source
                ))
            })?;
            progress.advance(d.virtual_size);
            rep.verify = Some(v);
        }
        stages.done("verify", "every output proved equal to the (fixed) source");
    }
    report.disks = disks;

    write_staged(&xml_path, xml.as_bytes())
        .map_err(|e| V2vError::OutputFailed(format!("{}: {e}", xml_path.display())))?;
    written.add(&xml_path);
    stages.done("domain", "libvirt domain XML written");

    if let (Some(conn), Some(define)) = (&conn, &opts.define) {
        report.libvirt = Some(define_and_start(conn, define, &xml, &domain, &mut stages)?);
        if let Some(to) = &define.migrate_to {
            // The guest is defined and running here whatever the move does; the files
            // stay too, and the report records the outcome.
            written.keep();
            let chained = migrate_after_start(conn, to, &plan.name, progress);
            stages.done("migrate", "guest moved live to the destination host");
            let (checks, migration, result) = chained;
            report.preflight = checks;
            report.migration = migration;
            if let Err(e) = result {
                report.stages = stages.into_vec();
                report.seconds = started.elapsed().as_secs_f64();
                write_report(&opts.out_dir, &plan.name, &report)?;
                return Err(e);
            }
        }
    }
    report.stages = stages.into_vec();
    report.seconds = started.elapsed().as_secs_f64();
    write_report(&opts.out_dir, &plan.name, &report)?;
    written.keep();
    Ok(report)
}

fn write_report(out_dir: &Path, name: &str, report: &V2vReport) -> Result<(), V2vError> {
    let report_path = out_dir.join(format!("{name}.report.json"));
    let json = serde_json::to_vec_pretty(report)
        .map_err(|e| V2vError::OutputFailed(format!("{}: {e}", report_path.display())))?;
    // A report from an earlier chained move that failed is replaced by this one.
    write_staged(&report_path, &json)
        .map_err(|e| V2vError::OutputFailed(format!("{}: {e}", report_path.display())))
}

type Chained = (
    Vec<virtconn::migrate::Check>,
    Option<virtconn::migrate::MigrationReport>,
    Result<(), V2vError>,
);

/// Preflight, then the live move of the freshly started guest.
fn migrate_after_start(
    src: &virtconn::Connection,
    to: &MigrateTo,
    name: &str,
    progress: &dyn Progress,
) -> Chained {
    use virtconn::migrate::{CheckStatus, MigrateRequest, MigrationEvent};
    let mut req = MigrateRequest::new(name, src.uri(), &to.dest_uri);
    req.persistent = true;
    req.undefine_source = true;
    req.migrate_uri = to.migrate_uri.clone();
    req.copy_storage = to
        .copy_storage
        .then_some(virtconn::migrate::CopyStorage::All);
    let dest = match virtconn::Connection::open(&to.dest_uri) {
        Ok(d) => d,
        Err(e) => {
            let check = virtconn::migrate::unreachable_check(&to.dest_uri, &e);
            let msg = format!(
                "--migrate-to: {e}; {name} is defined and running on {}",
                src.uri()
            );
            return (vec![check], None, Err(V2vError::PreflightFailed(msg)));
        }
    };
    let checks = virtconn::migrate::preflight(src, &dest, &req);
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .map(|c| match &c.fix {
            Some(fix) => format!("{}: {} (fix: {fix})", c.id, c.message),
            None => format!("{}: {}", c.id, c.message),
        })
        .collect();
    if !failed.is_empty() {
        let msg = format!(
            "--migrate-to {}: preflight failed: {}; {name} is defined and running on {}",
            to.dest_uri,
            failed.join("; "),
            src.uri()
        );
        return (checks, None, Err(V2vError::PreflightFailed(msg)));
    }
    let (mut total, mut done) = (0u64, 0u64);
    let mut on_event = |e: &MigrationEvent| {
        if let MigrationEvent::Progress(p) = e {
            let now_total = p.mem_total + p.disk_total;
            if now_total != total {
                total = now_total;
                done = 0;
                progress.stage("migrate", total);
            }
            let processed = p.mem_processed + p.disk_processed;
            progress.advance(processed.saturating_sub(done));
            done = done.max(processed);
        }
    };
    let outcome = virtconn::migrate::migrate_with_report(src, &dest, &req, &mut on_event);
    let result = match outcome.error {
        None => Ok(()),
        Some(e) => Err(V2vError::MigrationFailed(format!("--migrate-to: {e}"))),
    };
    (checks, Some(outcome.report), result)
}

fn cancelled(opts: &V2vOptions) -> bool {
    opts.cancel
        .as_ref()
        .is_some_and(|c| c.load(Ordering::SeqCst))
}

fn create_sink(
    path: &Path,
    size: u64,
    format: OutputFormat,
) -> Result<Box<dyn DiskSink>, V2vError> {
    let failed = |e: converters::Error| V2vError::OutputFailed(e.to_string());
    Ok(match format {
        OutputFormat::Qcow2 => {
            Box::new(Qcow2Sink::create(path, size, Qcow2WriteOptions::default()).map_err(failed)?)
        }
        OutputFormat::Raw => Box::new(RawSink::create(path, size).map_err(failed)?),
    })
}

/// Fixes the guest on the first disk (in the description's order) that holds a Linux root.
fn fix_first_root(
    resolved: &source::Resolved,
    opened: &[Arc<dyn DiskSource>],
    scratch: &Path,
    nics: &[TargetNic],
    opts: &V2vOptions,
) -> Result<(usize, crate::guest::FixedOverlay), V2vError> {
    let fixup_opts = FixupOptions {
        target: Target::Kvm,
        dry_run: opts.dry_run,
        nics: nics.to_vec(),
        cancel: opts.cancel.clone(),
        progress: &|_| {},
    };
    let mut why = Vec::new();
    for (i, (loc, disk)) in resolved.disks.iter().zip(opened).enumerate() {
        match fix_in_overlay(&loc.shown(), disk.clone(), scratch, &fixup_opts) {
            Ok(fixed) => return Ok((i, fixed)),
            Err(FixupDiskError::BadInput(msg)) => why.push(msg),
            Err(FixupDiskError::FixupFailed(msg)) => return Err(V2vError::FixupFailed(msg)),
            Err(FixupDiskError::WriteFailed(msg)) => return Err(V2vError::OutputFailed(msg)),
            Err(FixupDiskError::Interrupted(msg)) => return Err(V2vError::Interrupted(msg)),
        }
    }
    if why.is_empty() {
        why.push("it has no disks".into());
    }
    Err(V2vError::BadInput(format!(
        "no operating system ferry can fix up: {}; pass --no-fixups to convert and describe only",
        why.join("; ")
    )))
}

fn define_and_start(
    conn: &virtconn::Connection,
    define: &DefineOptions,
    xml: &str,
    domain: &domain::Domain,
    stages: &mut Stages,
) -> Result<LibvirtReport, V2vError> {
    let libvirt = |e: virtconn::ConnError| V2vError::Libvirt(e.to_string());
    if let Some(pool) = &define.pool {
        conn.pool_refresh(pool).map_err(libvirt)?;
    }
    let info = conn.define(xml).map_err(libvirt)?;
    stages.done("define", "domain defined (persistent)");
    let mut report = LibvirtReport {
        uri: conn.uri().to_string(),
        name: info.name.clone(),
        uuid: info.uuid,
        pool: define.pool.clone(),
        started: false,
        macs: domain.macs(),
    };
    if define.start {
        conn.start(&info.name).map_err(|e| {
            V2vError::Libvirt(format!(
                "{e} (the domain stays defined; fix the cause and `virsh start {}`)",
                info.name
            ))
        })?;
        report.started = true;
        stages.done("start", "domain started");
    }
    Ok(report)
}

/// Times each stage from the end of the previous one.
struct Stages {
    last: Instant,
    done: Vec<StageTime>,
}

impl Stages {
    fn done(&mut self, stage: &'static str, what: &'static str) {
        let now = Instant::now();
        self.done.push(StageTime {
            stage,
            what,
            seconds: (now - self.last).as_secs_f64(),
        });
        self.last = now;
    }

    fn into_vec(self) -> Vec<StageTime> {
        self.done
    }
}
