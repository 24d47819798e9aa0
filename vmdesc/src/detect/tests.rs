#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use super::*;
use crate::testutil::{all_files, corpus, manifest_rows, tempdir};

/// What the MANIFEST's `kind` says a file should be detected as. Files whose kind does
/// not decide it (oracle outputs, the two toolstack configs) are listed by name.
fn expected(rel: &str, kind: &str) -> SourceKind {
    match rel {
        // libvirt domain XML (virt-v2v's expected output) and an OVF written by it.
        "virt-v2v/test-i-ova.xml" => return SourceKind::Libvirt,
        "virt-v2v/test-o-ovirt.ovf.expected" => return SourceKind::Ovf,
        // Xen's cpupool file sets `name`: sent to the Xen reader, which refuses it as
        // "not a Xen guest config". xl.conf is all comments: nothing to recognise.
        "xen/cpupool" => return SourceKind::Xen,
        "xen/xl.conf" => return SourceKind::Disk,
        _ => {}
    }
    match kind {
        "vmx" => SourceKind::Vmx,
        "ovf" => SourceKind::Ovf,
        "ova" | "tar" => SourceKind::Ova,
        "xl-cfg" | "xm-cfg" => SourceKind::Xen,
        // Disk images, VMDK descriptors and extents, fragments, compressed originals,
        // manifests, other text and virt-v2v's text reports: no VM description.
        _ => SourceKind::Disk,
    }
}

#[test]
fn every_corpus_file_is_detected_as_the_manifest_says() {
    let Some(root) = corpus() else { return };
    let rows = manifest_rows(&root);
    assert!(rows.len() > 200, "only {} MANIFEST rows", rows.len());
    let mut wrong = Vec::new();
    let mut checked = 0;
    for row in &rows {
        let path = root.join(&row.path);
        if !path.is_file() {
            continue;
        }
        checked += 1;
        let got = detect(&path).unwrap_or_else(|e| panic!("{}: {e}", row.path));
        let want = expected(&row.path, &row.kind);
        if got != want {
            wrong.push(format!(
                "{} ({}): {got:?}, want {want:?}",
                row.path, row.kind
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(checked > 200, "only {checked} corpus files checked");

    // Files the MANIFEST does not list (MANIFEST itself, README) must not panic either.
    for path in all_files(&root) {
        detect(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    // A directory is an I/O error naming it, not a panic.
    let e = detect(&root).unwrap_err().to_string();
    assert!(e.contains("corpus"), "{e}");
}

/// Every corpus description detect() routes to a reader reads or fails with one line.
#[test]
fn corpus_read_description_never_panics() {
    let Some(root) = corpus() else { return };
    let mut read = 0;
    for path in all_files(&root) {
        match read_description(&path) {
            Ok(Described::Vm(d)) => {
                read += 1;
                assert!(!d.name.is_empty(), "{}", path.display());
            }
            Ok(Described::Ova(ova)) => {
                read += 1;
                assert!(!ova.members.is_empty());
            }
            Ok(Described::Disk) => {}
            Err(e) => {
                let msg = e.to_string();
                assert!(!msg.contains('\n'), "{msg:?}");
                assert!(msg.contains(&*path.to_string_lossy()), "{msg}");
            }
        }
    }
    assert!(read > 80, "only {read} descriptions read");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn synthetic_files() {
    let dir = tempdir();
    let d = dir.path();
    let detect_bytes = |name: &str, bytes: &[u8]| detect(&write(d, name, bytes)).unwrap();

    // Tar: ustar magic at 257, whatever the name.
    let mut tar = vec![0u8; 1024];
    tar[257..262].copy_from_slice(b"ustar");
    assert_eq!(detect_bytes("export.bin", &tar), SourceKind::Ova);
    // .ova by name even when compressed, so the OVA reader can say so.
    assert_eq!(detect_bytes("a.OVA", b"\x1f\x8b\x08\0"), SourceKind::Ova);

    // Binary disk formats.
    let mut vmdk = b"KDMV\x01\0\0\0".to_vec();
    vmdk.resize(512, 0);
    assert_eq!(detect_bytes("d.vmx", &vmdk), SourceKind::Disk);
    assert_eq!(
        detect_bytes("d.qcow2", b"QFI\xfb\0\0\0\x03"),
        SourceKind::Disk
    );
    assert_eq!(
        detect_bytes("d.vhd", b"conectix\0\0\0\x02"),
        SourceKind::Disk
    );
    assert_eq!(detect_bytes("d.vhdx", b"vhdxfile"), SourceKind::Disk);
    assert_eq!(detect_bytes("d.raw", &[0u8; 4096]), SourceKind::Disk);
    assert_eq!(detect_bytes("empty", b""), SourceKind::Disk);

    // A VMDK descriptor is key=value text, but a disk.
    let desc = b"# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n\
                 createType=\"monolithicFlat\"\nRW 2048 FLAT \"a-flat.vmdk\" 0\n\
                 ddb.virtualHWVersion = \"4\"\nddb.adapterType = \"ide\"\n";
    assert_eq!(detect_bytes("a.vmdk", desc), SourceKind::Disk);

    // XML by root element, prefix and prologue notwithstanding.
    let ovf = "\u{feff}<?xml version='1.0'?>\n<!-- exported -->\n\
               <ovf:Envelope xmlns:ovf='http://schemas.dmtf.org/ovf/envelope/1'/>";
    assert_eq!(detect_bytes("x.xml", ovf.as_bytes()), SourceKind::Ovf);
    assert_eq!(
        detect_bytes(
            "guest.cfg",
            b"<!DOCTYPE x>\n<domain type='xen'><name>a</name></domain>"
        ),
        SourceKind::Libvirt
    );
    assert_eq!(
        detect_bytes("p.xml", b"<Parallels_disk_image/>"),
        SourceKind::Disk
    );
    assert_eq!(
        detect_bytes("c.xml", b"<!-- never closed"),
        SourceKind::Disk
    );

    // .vmx by its keys, whatever the name.
    let vmx = b".encoding = \"UTF-8\"\nconfig.version = \"8\"\nvirtualHW.version = \"14\"\n\
                displayName = \"web\"\nscsi0:0.fileName = \"web.vmdk\"\nethernet0.present = \"TRUE\"\n";
    assert_eq!(detect_bytes("web.txt", vmx), SourceKind::Vmx);
    assert_eq!(
        detect_bytes("x.vmx", b"# comment\nmemsize = \"1024\"\n"),
        SourceKind::Vmx
    );

    // Xen, including an xm config named .vmx.
    let xl = b"name = \"guest\"\nmemory = 1024\nvcpus = 2\n\
               disk = [ 'file:/x.img,xvda,w' ]\nvif = [ 'bridge=xenbr0' ]\n";
    assert_eq!(detect_bytes("guest.vmx", xl), SourceKind::Xen);
    assert_eq!(
        detect_bytes(
            "old",
            b"import os\nbuilder='hvm'\nkernel = \"/usr/lib/xen/boot/hvmloader\"\n"
        ),
        SourceKind::Xen
    );

    // Text that is none of these.
    assert_eq!(
        detect_bytes("notes.txt", b"hello\nworld\n"),
        SourceKind::Disk
    );
    assert_eq!(
        detect_bytes("a.ini", b"[s]\nkey = value\n"),
        SourceKind::Disk
    );

    // Missing files are I/O errors naming them.
    let e = detect(&d.join("absent")).unwrap_err();
    assert!(matches!(e, DescError::Io { .. }));
    assert!(e.to_string().contains("absent"));
}

#[test]
fn read_description_dispatches() {
    let dir = tempdir();
    let d = dir.path();
    let libvirt = write(
        d,
        "g.xml",
        b"<domain type='kvm'><name>g</name><memory>1024</memory></domain>",
    );
    match read_description(&libvirt).unwrap() {
        Described::Vm(v) => {
            assert_eq!(v.name, "g");
            assert_eq!(v.hypervisor, crate::SourceHypervisor::Libvirt);
        }
        other => panic!("{other:?}"),
    }
    let xen = write(d, "g.cfg", b"name = \"x\"\nmemory = 512\n");
    match read_description(&xen).unwrap() {
        Described::Vm(v) => assert_eq!(v.hypervisor, crate::SourceHypervisor::Xen),
        other => panic!("{other:?}"),
    }
    let vmx = write(d, "v.vmx", b"displayName = \"v\"\nmemsize = \"64\"\n");
    match read_description(&vmx).unwrap() {
        Described::Vm(v) => assert_eq!(v.hypervisor, crate::SourceHypervisor::Vmware),
        other => panic!("{other:?}"),
    }
    let raw = write(d, "disk.img", &[0u8; 1024]);
    assert_eq!(read_description(&raw).unwrap(), Described::Disk);
    // A broken description fails in its reader, naming the file.
    let bad = write(d, "bad.xml", b"<domain type='kvm'></domain>");
    let e = read_description(&bad).unwrap_err().to_string();
    assert!(e.contains("bad.xml") && e.contains("no <name>"), "{e}");
}
