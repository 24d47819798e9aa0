//! `ferry info SRC`: what a disk is and what is on it.

use serde::Serialize;

use converters::LayerInfo;

use super::units::human;
use super::{print_json, CliResult, Exit, Failure, InfoArgs};
use crate::layout::{read_layout, DiskLayout};

#[derive(Debug, Serialize)]
struct InfoReport {
    path: String,
    format: String,
    subformat: Option<String>,
    virtual_size: u64,
    allocated_bytes: u64,
    /// Top layer first; more than one entry means a snapshot/backing chain.
    chain: Vec<LayerInfo>,
    layout: Option<DiskLayout>,
    /// Why the partition table could not be read, when it could not.
    layout_error: Option<String>,
}

pub fn run(args: &InfoArgs) -> CliResult {
    let source = args.source.open(&args.src)?;
    let allocated = converters::source::allocated_bytes(source.as_ref())
        .map_err(|e| Failure::new(Exit::BadInput, e))?;
    let chain = source.layers();
    let (layout, layout_error) = match read_layout(source.as_ref()) {
        Ok(l) => (Some(l), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let top = chain.first();
    let report = InfoReport {
        path: args.src.display().to_string(),
        format: top.map_or_else(|| "unknown".into(), |l| l.format.clone()),
        subformat: top.and_then(|l| l.subformat.clone()),
        virtual_size: source.size(),
        allocated_bytes: allocated,
        chain,
        layout,
        layout_error,
    };
    if args.json {
        return print_json(&report);
    }
    print_text(&report);
    Ok(())
}

fn print_text(r: &InfoReport) {
    println!("image:          {}", r.path);
    let sub = r
        .subformat
        .as_deref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    println!("format:         {}{sub}", r.format);
    println!(
        "virtual size:   {} ({} bytes)",
        human(r.virtual_size),
        r.virtual_size
    );
    println!(
        "allocated:      {} ({} bytes)",
        human(r.allocated_bytes),
        r.allocated_bytes
    );
    if r.chain.len() > 1 {
        println!("chain:");
        for (depth, layer) in r.chain.iter().enumerate() {
            let sub = layer.subformat.as_deref().unwrap_or("");
            println!(
                "  [{depth}] {} {} {sub}",
                layer.path.display(),
                layer.format
            );
        }
    }
    if let Some(files) = r.chain.first().map(|l| &l.files).filter(|f| f.len() > 1) {
        println!(
            "files:          {}",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(e) = &r.layout_error {
        println!("partitions:     unreadable ({e})");
    }
    let Some(layout) = &r.layout else { return };
    if let Some(fs) = layout.whole_disk_filesystem {
        println!(
            "filesystem:     {} (whole disk, no partition table)",
            fs.name()
        );
        return;
    }
    let table = match layout.table {
        crate::layout::TableKind::Mbr => "MBR",
        crate::layout::TableKind::Gpt => "GPT",
        crate::layout::TableKind::None => "none",
    };
    println!("partition table: {table}");
    for p in &layout.partitions {
        let fs = p.filesystem.map_or("-", |f| f.name());
        let name = p
            .name
            .as_deref()
            .map(|n| format!(" \"{n}\""))
            .unwrap_or_default();
        let boot = if p.bootable { " boot" } else { "" };
        println!(
            "  {:>2}  start {:>12}  size {:>10}  type {}  {fs}{name}{boot}",
            p.number,
            p.start,
            human(p.size),
            p.type_id
        );
    }
}
