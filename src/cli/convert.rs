//! `ferry convert SRC DST`: one disk in, one qcow2 or raw out, optionally verified.

use std::path::Path;

use serde::Serialize;

use converters::copy::{copy_disk, CopyOptions, CopyStats};
use converters::qcow2::{Qcow2Sink, Qcow2WriteOptions};
use converters::raw_sink::RawSink;
use converters::verify::{verify, VerifyError, VerifyReport};
use converters::{compress::Compression, DiskSink, DiskSource, Format, LayerInfo};

use super::units::human;
use super::{
    print_json, progress, CliResult, CompressArg, ConvertArgs, Exit, Failure, OutputFormat,
};

#[derive(Debug, Serialize)]
struct SourceSummary {
    path: String,
    format: String,
    subformat: Option<String>,
    virtual_size: u64,
    allocated_bytes: u64,
    layers: Vec<LayerInfo>,
}

#[derive(Debug, Serialize)]
struct OutputSummary {
    path: String,
    format: &'static str,
    cluster_size: Option<u64>,
    compression: Option<Compression>,
}

#[derive(Debug, Serialize)]
struct ConvertReport {
    dry_run: bool,
    source: SourceSummary,
    output: OutputSummary,
    jobs: usize,
    copy: Option<CopyStats>,
    verify: Option<VerifyReport>,
}

pub fn run(args: &ConvertArgs) -> CliResult {
    check_args(args)?;
    let source = args.source.open(&args.src)?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| CopyOptions::default().jobs)
        .max(1);
    let mut report = ConvertReport {
        dry_run: args.dry_run,
        source: summarize_source(&args.src, source.as_ref())?,
        output: OutputSummary {
            path: args.dst.display().to_string(),
            format: match args.output_format {
                OutputFormat::Qcow2 => "qcow2",
                OutputFormat::Raw => "raw",
            },
            cluster_size: (args.output_format == OutputFormat::Qcow2).then_some(args.cluster_size),
            compression: compression(args),
        },
        jobs,
        copy: None,
        verify: None,
    };
    if args.dry_run {
        return print_report(&report, args.json);
    }
    let sink = create_sink(args, source.size())?;
    let bar = progress::bytes_bar(source.size(), "convert", args.json);
    let cancel = super::interrupted();
    let opts = CopyOptions {
        jobs,
        compression_level: args.compress_level,
        cancel: Some(cancel.clone()),
        ..CopyOptions::default()
    };
    let stats = copy_disk(source.as_ref(), sink, &opts, &|n| bar.inc(n)).map_err(|e| {
        if cancel.load(std::sync::atomic::Ordering::SeqCst) {
            Failure::new(
                Exit::Interrupted,
                anyhow::anyhow!("interrupted; {} was not written", args.dst.display()),
            )
        } else {
            Failure::classify(e, Exit::OutputFailed)
        }
    })?;
    bar.finish_and_clear();
    report.copy = Some(stats);
    if args.verify {
        report.verify = Some(verify_output(args, source.as_ref(), jobs)?);
    }
    print_report(&report, args.json)
}

fn check_args(args: &ConvertArgs) -> CliResult {
    let usage = |msg: String| Failure::new(Exit::Usage, anyhow::anyhow!(msg));
    let cs = args.cluster_size;
    if !cs.is_power_of_two() || !(512..=2 << 20).contains(&cs) {
        return Err(usage(format!(
            "--cluster-size {cs} must be a power of two from 512 to 2M"
        )));
    }
    if args.compress.is_some() && args.output_format != OutputFormat::Qcow2 {
        return Err(usage("--compress needs qcow2 output (-O qcow2)".into()));
    }
    if same_file(&args.src, &args.dst) {
        return Err(usage(format!(
            "{}: the output is the source; ferry never writes to a source",
            args.dst.display()
        )));
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn compression(args: &ConvertArgs) -> Option<Compression> {
    args.compress.map(|c| match c {
        CompressArg::Zlib => Compression::Zlib,
        CompressArg::Zstd => Compression::Zstd,
    })
}

fn summarize_source(path: &Path, source: &dyn DiskSource) -> CliResult<SourceSummary> {
    let layers = source.layers();
    let allocated =
        converters::source::allocated_bytes(source).map_err(|e| Failure::new(Exit::BadInput, e))?;
    let top = layers.first();
    Ok(SourceSummary {
        path: path.display().to_string(),
        format: top.map_or_else(|| "unknown".into(), |l| l.format.clone()),
        subformat: top.and_then(|l| l.subformat.clone()),
        virtual_size: source.size(),
        allocated_bytes: allocated,
        layers,
    })
}

fn create_sink(args: &ConvertArgs, size: u64) -> CliResult<Box<dyn DiskSink>> {
    let out = |e| Failure::new(Exit::OutputFailed, e);
    Ok(match args.output_format {
        OutputFormat::Qcow2 => {
            let opts = Qcow2WriteOptions {
                cluster_size: args.cluster_size,
                compression: compression(args),
                compression_level: args.compress_level,
            };
            Box::new(Qcow2Sink::create(&args.dst, size, opts).map_err(out)?)
        }
        OutputFormat::Raw => Box::new(RawSink::create(&args.dst, size).map_err(out)?),
    })
}

fn verify_output(
    args: &ConvertArgs,
    source: &dyn DiskSource,
    jobs: usize,
) -> CliResult<VerifyReport> {
    let format = match args.output_format {
        OutputFormat::Qcow2 => Format::Qcow2,
        OutputFormat::Raw => Format::Raw,
    };
    let output = converters::open(&args.dst, Some(format), &converters::OpenOptions::default())
        .map_err(|e| Failure::new(Exit::OutputFailed, e))?;
    verify(source, output.as_ref(), jobs).map_err(|e| match e {
        VerifyError::Read(inner) => Failure::classify(inner, Exit::OutputFailed),
        other => Failure::new(
            Exit::VerifyFailed,
            anyhow::anyhow!("{}: verification failed: {other}", args.dst.display()),
        ),
    })
}

fn print_report(report: &ConvertReport, json: bool) -> CliResult {
    if json {
        return print_json(report);
    }
    let s = &report.source;
    let sub = s
        .subformat
        .as_deref()
        .map(|x| format!(" ({x})"))
        .unwrap_or_default();
    println!(
        "source:  {} — {}{sub}, {} virtual, {} allocated",
        s.path,
        s.format,
        human(s.virtual_size),
        human(s.allocated_bytes)
    );
    for (depth, layer) in s.layers.iter().enumerate().skip(1) {
        println!(
            "  backed by [{depth}] {} ({})",
            layer.path.display(),
            layer.format
        );
    }
    let o = &report.output;
    let comp = o
        .compression
        .map(|c| format!(", {c:?} compressed").to_lowercase())
        .unwrap_or_default();
    let cluster = o
        .cluster_size
        .map(|c| format!(", {} clusters", human(c)))
        .unwrap_or_default();
    println!("output:  {} — {}{cluster}{comp}", o.path, o.format);
    if report.dry_run {
        println!(
            "plan:    read {} with {} worker threads; nothing written (--dry-run)",
            human(s.allocated_bytes),
            report.jobs
        );
        return Ok(());
    }
    if let Some(c) = &report.copy {
        let rate = c.bytes_read as f64 / c.seconds.max(1e-9) / f64::from(1 << 20);
        println!(
            "copied:  {} read ({:.0} MiB/s), {} skipped by the allocation map, {} zero detected, {} stored; {:.2} s",
            human(c.bytes_read), rate, human(c.bytes_skipped_by_map), human(c.bytes_zero_detected), human(c.bytes_stored), c.seconds
        );
        println!("wrote:   {} ({} on disk)", o.path, human(c.sink.file_size));
    }
    if let Some(v) = &report.verify {
        println!(
            "verified: identical — {} ranges ({}) compared byte for byte, {} zero in both allocation maps",
            v.ranges_compared, human(v.bytes_compared), human(v.bytes_zero_in_both_maps)
        );
    }
    Ok(())
}
