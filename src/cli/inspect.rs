//! `ferry inspect DISK...`: what operating system is on each disk, read without booting
//! it and without a helper VM: partitions, LVM, filesystems, which one is root, OS,
//! kernels and initramfs, bootloader, fstab, network configuration, guest tools.

use std::sync::Arc;

use serde::Serialize;

use fixups::inspect::GuestOs;

use super::units::human;
use super::{print_json, CliResult, Exit, Failure, InspectArgs};
use crate::guest::{find_guests, DiskGuests};

#[derive(Debug, Serialize)]
struct DiskReport {
    path: String,
    format: String,
    subformat: Option<String>,
    virtual_size: u64,
    #[serde(flatten)]
    guests: DiskGuests,
}

pub fn run(args: &InspectArgs) -> CliResult {
    let mut reports = Vec::new();
    for path in &args.disks {
        let source: Arc<dyn converters::DiskSource> = Arc::from(args.source.open(path)?);
        let top = source.layers().into_iter().next();
        let guests = find_guests(source.clone()).map_err(|e| {
            Failure::new(Exit::BadInput, anyhow::anyhow!("{}: {e}", path.display()))
        })?;
        reports.push(DiskReport {
            path: path.display().to_string(),
            format: top
                .as_ref()
                .map_or_else(|| "unknown".into(), |l| l.format.clone()),
            subformat: top.and_then(|l| l.subformat),
            virtual_size: source.size(),
            guests,
        });
    }
    if args.json {
        return print_json(&reports);
    }
    for r in &reports {
        print_disk(r);
    }
    Ok(())
}

fn print_disk(r: &DiskReport) {
    let sub = r
        .subformat
        .as_deref()
        .map(|s| format!(" {s}"))
        .unwrap_or_default();
    println!(
        "disk: {} ({}{sub}, {})",
        r.path,
        r.format,
        human(r.virtual_size)
    );
    if r.guests.filesystems.is_empty() {
        println!("  no filesystems found");
    }
    for (i, f) in r.guests.filesystems.iter().enumerate() {
        let fs = f.filesystem.map_or("unknown", |x| x.name());
        let label = f
            .label
            .as_deref()
            .map(|l| format!(" label={l}"))
            .unwrap_or_default();
        let uuid = f
            .uuid
            .as_deref()
            .map(|u| format!(" uuid={u}"))
            .unwrap_or_default();
        let root = if r.guests.root == Some(i) {
            "  <- root"
        } else {
            ""
        };
        println!("  {}: {fs}{label}{uuid}{root}", f.location);
        if let Some(e) = &f.error {
            println!("    not inspected: {e}");
        }
        if let Some(os) = &f.os {
            print_os(os);
        }
    }
}

fn print_os(os: &GuestOs) {
    let o = &os.os;
    let pretty = o.pretty_name.as_deref().unwrap_or(&o.id);
    let version = o.version_id.as_deref().unwrap_or("?");
    println!("    os:          {pretty} [{} {version}]", o.id);
    for w in &os.warnings {
        println!("    warning:     {w}");
    }
    for k in &os.kernels {
        let initrd = k.initramfs.as_deref().unwrap_or("no initramfs");
        let kind = k
            .initramfs_kind
            .map(|x| format!(", {x:?}"))
            .unwrap_or_default();
        println!("    kernel:      {} ({}{kind})", k.version, initrd);
    }
    if let Some(b) = &os.bootloader {
        println!("    bootloader:  {} {:?} {}", b.kind, b.firmware, b.config);
    }
    if let Some(root) = &os.root_device {
        println!("    root=:       {root}");
    }
    for e in &os.fstab {
        println!(
            "    fstab:       {} {} {} {}",
            e.spec, e.mountpoint, e.fstype, e.options
        );
    }
    for n in &os.network {
        let iface = n.interface.as_deref().unwrap_or("?");
        let mac = n
            .mac
            .as_deref()
            .map(|m| format!(" mac {m}"))
            .unwrap_or_default();
        let method = n
            .method
            .as_deref()
            .map(|m| format!(" {m}"))
            .unwrap_or_default();
        println!(
            "    network:     {:?} {iface}{mac}{method} ({})",
            n.style, n.file
        );
    }
    for t in &os.guest_tools {
        println!("    guest tools: {} ({})", t.name, t.evidence.join(", "));
    }
    if !os.consoles.is_empty() {
        println!("    consoles:    {}", os.consoles.join(", "));
    }
}
