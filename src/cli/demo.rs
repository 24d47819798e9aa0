//! `ferry demo`: run the sample pipeline and narrate it.

use super::units::human;
use super::{print_json, CliResult, DemoArgs, Exit, Failure};
use crate::demo::{self, DemoError};

pub fn run(args: &DemoArgs) -> CliResult {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => tempfile::Builder::new()
            .prefix("ferry-demo-")
            .tempdir()
            .map_err(|e| Failure::new(Exit::OutputFailed, e))?
            .keep(),
    };
    if !args.json {
        println!(
            "ferry demo: building a sample VMware guest disk in {}",
            dir.display()
        );
    }
    let report = demo::run(&dir).map_err(|e| {
        let exit = match e {
            DemoError::Verify(_) => Exit::VerifyFailed,
            DemoError::Fixup(_) => Exit::FixupFailed,
            DemoError::V2v(crate::v2v::V2vError::Libvirt(_)) => Exit::LibvirtFailed,
            _ => Exit::OutputFailed,
        };
        Failure::new(exit, e)
    })?;
    if args.json {
        return print_json(&report);
    }
    let sub = report.source_subformat.as_deref().unwrap_or("");
    println!(
        "1. built {} in {:.1} s: a {} VMware disk ({} {sub}) with an MBR and an ext4 root holding:",
        report.source.display(),
        report.build_seconds,
        human(report.copy.virtual_size),
        report.source_format
    );
    for f in &report.guest_files {
        println!("     {f}");
    }
    println!(
        "2. inspected it: {} partition table",
        format!("{:?}", report.layout.table).to_uppercase()
    );
    for p in &report.layout.partitions {
        println!(
            "     partition {} at {} MiB, {}, {}",
            p.number,
            p.start >> 20,
            human(p.size),
            p.filesystem.map_or("-", |f| f.name())
        );
    }
    let c = &report.copy;
    println!("3. converted it to {} in {:.2} s: read {} of data, skipped {} by the allocation map, {} zero detected",
        report.output.display(), c.seconds, human(c.bytes_read), human(c.bytes_skipped_by_map), human(c.bytes_zero_detected));
    let v = &report.verify;
    println!("4. verified the qcow2 against the VMDK: identical ({} compared byte for byte in {} ranges, {} zero in both maps)",
        human(v.bytes_compared), v.ranges_compared, human(v.bytes_zero_in_both_maps));
    match &report.qemu_img_cross_check {
        Some(x) => println!("5. cross-checked with QEMU: {x}"),
        None => println!("5. qemu-img is not installed: skipped QEMU's own cross-check"),
    }
    match (&report.guest_os, &report.guest_root) {
        (Some(os), Some(root)) => {
            println!("6. inspected the converted guest without booting it: {os}, root on {root}")
        }
        _ => println!("6. inspected the converted guest: no operating system found"),
    }
    let f = &report.fixup;
    println!(
        "7. fixed it for KVM in place in {:.2} s, without booting it:",
        f.seconds
    );
    for r in &f.fixups {
        match r.outcome {
            fixups::fixup::Outcome::Applied => {
                let paths: Vec<&str> = r.changes.iter().map(|c| c.path.as_str()).collect();
                println!("     {:<10} {}", r.id, paths.join(", "));
            }
            fixups::fixup::Outcome::Skipped => println!(
                "     {:<10} skipped: {}",
                r.id,
                r.reason.as_deref().unwrap_or("")
            ),
        }
    }
    let v = &report.v2v;
    println!(
        "8. moved the whole VM from {} with ferry v2v in {:.2} s:",
        report.vmx.display(),
        v.seconds
    );
    for s in &v.stages {
        println!("     {:<8} {:.2} s  {}", s.stage, s.seconds, s.what);
    }
    for d in &v.disks {
        println!("     disk     {}", d.plan.output.display());
    }
    println!(
        "     domain   {} ({})",
        v.domain_xml_path, v.guest_caps.reason
    );
    match (&v.libvirt, &report.libvirt_skipped) {
        (Some(l), _) => println!(
            "     libvirt  defined '{}' at {} (not started); remove it with `virsh undefine {}`",
            l.name, l.uri, l.name
        ),
        (None, Some(why)) => println!("     libvirt  not defined: {why}"),
        (None, None) => {}
    }
    println!(
        "\nnext: ferry info {0}; ferry inspect {0}; ferry fixup --dry-run {0}; ferry v2v --dry-run {1} --out DIR",
        report.output.display(),
        report.vmx.display()
    );
    Ok(())
}
