//! `ferry demo`: builds a small VMware guest disk and runs it through ferry's pipeline, so
//! a new user sees every stage work on their machine in seconds: conversion, verification,
//! inspection and fixups on the disk, then the whole `ferry v2v` move of the VM from its
//! `.vmx` — defined in libvirt when a daemon answers at `qemu:///system`.

mod sample_disk;
pub mod vmdk_writer;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::Serialize;

use converters::copy::{copy_disk, CopyOptions, CopyStats};
use converters::qcow2::{Qcow2Sink, Qcow2WriteOptions};
use converters::verify::{verify, VerifyReport};
use converters::{Format, OpenOptions};

use crate::guest::{fixup_disk, FixupOptions, FixupRun};
use crate::layout::{read_layout, DiskLayout};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot build the sample disk in {}: {err}", dir.display())]
    Build { dir: PathBuf, err: std::io::Error },
    #[error(transparent)]
    Convert(#[from] converters::Error),
    #[error("partition table: {0}")]
    Layout(String),
    #[error("verification failed: {0}")]
    Verify(String),
    #[error("fixup: {0}")]
    Fixup(String),
    #[error("v2v: {0}")]
    V2v(#[from] crate::v2v::V2vError),
}

/// The sample VM's NIC, as its guest configuration names it.
pub const SAMPLE_MAC: &str = "00:50:56:8a:3c:01";

/// The libvirt host the demo defines its VM on, when one answers.
const DEMO_URI: &str = "qemu:///system";

#[derive(Debug, Serialize)]
pub struct DemoReport {
    pub dir: PathBuf,
    pub source: PathBuf,
    pub source_format: String,
    pub source_subformat: Option<String>,
    pub guest_files: Vec<String>,
    pub layout: DiskLayout,
    pub output: PathBuf,
    pub copy: CopyStats,
    pub verify: VerifyReport,
    /// The OS found on the converted disk by `ferry inspect`'s code.
    pub guest_os: Option<String>,
    /// The root filesystem's location and its fstab's root device.
    pub guest_root: Option<String>,
    /// `qemu-img compare` and `check` on the result, when qemu-img is installed.
    pub qemu_img_cross_check: Option<String>,
    pub build_seconds: f64,
    /// `ferry fixup` of the converted qcow2.
    pub fixup: FixupRun,
    pub vmx: PathBuf,
    /// `ferry v2v` of the sample `.vmx`.
    pub v2v: crate::v2v::V2vReport,
    /// Why the VM was not defined in libvirt, when it was not.
    pub libvirt_skipped: Option<String>,
}

/// Runs the demo in `dir` (created if missing).
pub fn run(dir: &Path) -> Result<DemoReport, DemoError> {
    let build_err = |err| DemoError::Build {
        dir: dir.to_path_buf(),
        err,
    };
    std::fs::create_dir_all(dir).map_err(build_err)?;
    let started = Instant::now();
    let raw = dir.join("web01-sample.raw");
    let vmdk = dir.join("web01.vmdk");
    let guest_files = sample_disk::build(dir, &raw).map_err(build_err)?;
    vmdk_writer::write_monolithic_sparse(&raw, &vmdk).map_err(build_err)?;
    std::fs::remove_file(&raw).map_err(build_err)?;
    let build_seconds = started.elapsed().as_secs_f64();

    let source = converters::open(&vmdk, None, &OpenOptions::default())?;
    let top = source.layers().into_iter().next();
    let layout = read_layout(source.as_ref()).map_err(|e| DemoError::Layout(e.to_string()))?;
    let output = dir.join("web01.qcow2");
    let sink = Qcow2Sink::create(&output, source.size(), Qcow2WriteOptions::default())?;
    let copy = copy_disk(
        source.as_ref(),
        Box::new(sink),
        &CopyOptions::default(),
        &|_| {},
    )?;
    let written = converters::open(&output, Some(Format::Qcow2), &OpenOptions::default())?;
    let verify = verify(
        source.as_ref(),
        written.as_ref(),
        CopyOptions::default().jobs,
    )
    .map_err(|e| DemoError::Verify(e.to_string()))?;
    let (guest_os, guest_root) = describe_guest(std::sync::Arc::from(written));
    // QEMU compares the conversion before the fixups change the guest.
    let qemu_img_cross_check = qemu_img_cross_check(&vmdk, &output);
    let fixed = converters::open(&output, Some(Format::Qcow2), &OpenOptions::default())?;
    let fixup_opts = FixupOptions {
        target: fixups::fixup::Target::Kvm,
        dry_run: false,
        nics: Vec::new(),
        cancel: None,
        progress: &|_| {},
    };
    let fixup = fixup_disk(&output, std::sync::Arc::from(fixed), &fixup_opts)
        .map_err(|e| DemoError::Fixup(e.to_string()))?;

    let vmx = dir.join("web01.vmx");
    std::fs::write(&vmx, sample_vmx("web01.vmdk")).map_err(build_err)?;
    let mut name = demo_domain_name(dir);
    let (define, libvirt_skipped) = match virtconn::Connection::open(DEMO_URI) {
        Ok(conn) => (
            {
                // An earlier demo's VM keeps its name; this one takes the next free one.
                let base = name.clone();
                let mut n = 1;
                while conn.exists(&name).unwrap_or(false) {
                    n += 1;
                    name = format!("{base}-{n}");
                }
                Some(crate::v2v::DefineOptions {
                    uri: DEMO_URI.to_string(),
                    start: false,
                    pool: None,
                    migrate_to: None,
                })
            },
            None,
        ),
        Err(e) => (None, Some(e.to_string())),
    };
    // The demo's folder is its own: a rerun replaces the previous run's move.
    let kvm = dir.join("kvm");
    if kvm.exists() {
        std::fs::remove_dir_all(&kvm).map_err(build_err)?;
    }
    let v2v_opts = crate::v2v::V2vOptions {
        out_dir: kvm,
        name: Some(name),
        default_network: domain::NetTarget::User,
        define,
        ..crate::v2v::V2vOptions::default()
    };
    let v2v = crate::v2v::run(std::slice::from_ref(&vmx), &v2v_opts, &crate::v2v::Silent)?;
    Ok(DemoReport {
        dir: dir.to_path_buf(),
        source: vmdk.clone(),
        source_format: top
            .as_ref()
            .map_or_else(|| "vmdk".into(), |l| l.format.clone()),
        source_subformat: top.and_then(|l| l.subformat),
        guest_files,
        layout,
        qemu_img_cross_check,
        guest_os,
        guest_root,
        fixup,
        output,
        copy,
        verify,
        build_seconds,
        vmx,
        v2v,
        libvirt_skipped,
    })
}

/// The sample VM as VMware Workstation would describe it.
fn sample_vmx(disk_file: &str) -> String {
    format!(
        ".encoding = \"UTF-8\"\nconfig.version = \"8\"\nvirtualHW.version = \"19\"\n\
         displayName = \"web01\"\nguestOS = \"debian12-64\"\nnumvcpus = \"2\"\n\
         memsize = \"1024\"\nscsi0.present = \"TRUE\"\nscsi0.virtualDev = \"pvscsi\"\n\
         scsi0:0.present = \"TRUE\"\nscsi0:0.fileName = \"{disk_file}\"\n\
         ethernet0.present = \"TRUE\"\nethernet0.virtualDev = \"vmxnet3\"\n\
         ethernet0.networkName = \"VM Network\"\nethernet0.addressType = \"static\"\n\
         ethernet0.address = \"{SAMPLE_MAC}\"\n"
    )
}

/// Unique per demo folder, so a second demo never meets the first one's domain.
fn demo_domain_name(dir: &Path) -> String {
    let tag = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tag = tag.trim_start_matches("ferry-demo-");
    domain::sanitize_name(&format!("ferry-demo-web01-{tag}"))
}

/// What inspection finds on the converted disk, in a phrase each.
fn describe_guest(
    disk: std::sync::Arc<dyn converters::DiskSource>,
) -> (Option<String>, Option<String>) {
    let Ok(found) = crate::guest::find_guests(disk) else {
        return (None, None);
    };
    let Some(root) = found.root.and_then(|i| found.filesystems.get(i)) else {
        return (None, None);
    };
    let Some(os) = &root.os else {
        return (None, None);
    };
    let name = os
        .os
        .pretty_name
        .clone()
        .unwrap_or_else(|| os.os.id.clone());
    let fstab_root = os
        .fstab
        .iter()
        .find(|e| e.mountpoint == "/")
        .map(|e| e.spec.clone());
    let where_ = format!(
        "{} ({}), fstab names root {}",
        root.location,
        root.filesystem.map_or("?", |f| f.name()),
        fstab_root.as_deref().unwrap_or("?")
    );
    (Some(name), Some(where_))
}

/// An independent opinion from QEMU's own tool, when it is installed.
fn qemu_img_cross_check(source: &Path, output: &Path) -> Option<String> {
    let compare = Command::new("qemu-img")
        .args(["compare", "-f", "vmdk", "-F", "qcow2"])
        .arg(source)
        .arg(output)
        .output()
        .ok()?;
    let check = Command::new("qemu-img")
        .args(["check", "-f", "qcow2"])
        .arg(output)
        .output()
        .ok()?;
    Some(format!(
        "qemu-img compare: {}; qemu-img check: {}",
        String::from_utf8_lossy(&compare.stdout)
            .trim()
            .trim_end_matches('.'),
        if check.status.success() {
            "no errors"
        } else {
            "ERRORS"
        }
    ))
}
