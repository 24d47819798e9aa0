use super::*;

use crate::testutil::{corpus, files_with_ext, tempdir};

fn read(rel: &str) -> Option<VmDescription> {
    let root = corpus()?;
    match read_ovf(&root.join(rel)) {
        Ok(d) => Some(d),
        Err(e) => panic!("{rel}: {e}"),
    }
}

fn file_name(d: &DiskDesc) -> Option<String> {
    d.path
        .as_ref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
}

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// Descriptors that must be refused, with a word of the reason. Every other `.ovf` of
/// the corpus must read. Corpus negatives that still read are noted in `reads_with`.
const REFUSED: &[(&str, &str, &str)] = &[
    ("cot/ersatz_ovf_3.0.ovf", "unsupported", "envelope/3"),
    ("cot/v0.9.ovf", "unsupported", "OVF 0.9"),
    ("cot/invalid.ovf", "malformed", "Disk flash2"),
    ("govmomi-ovf/empty.ovf", "malformed", "no VirtualSystem"),
    (
        "govmomi-ovf/external/ovftoolresources/http_uri_in_file.ovf",
        "unsupported",
        "remote file http://",
    ),
    (
        "govmomi-ovf/external/unsupported-ovfs/unsupportedSection.ovf",
        "unsupported",
        "UnsupportedSectionFoo",
    ),
    (
        "open-vmdk/template-hw13.ovf",
        "malformed",
        "@@VMDK_CAPACITY@@",
    ),
    (
        "open-vmdk/template-hw21.ovf",
        "malformed",
        "@@VMDK_CAPACITY@@",
    ),
    (
        "open-vmdk/template-hw7.ovf",
        "malformed",
        "@@VMDK_CAPACITY@@",
    ),
];

/// Corpus files MANIFEST marks malformed for package-level reasons the descriptor
/// alone cannot show; they read, and the warning says what is off.
const READS_WITH: &[(&str, &str)] = &[
    (
        "govmomi-ovf/external/nostalgia-with-missing-vmdk.ovf",
        "missing-disk.vmdk not found",
    ),
    (
        "govmomi-ovf/external/standard_ovas/incorrect-disk/incorrect-disk.ovf",
        "correct-disk.vmdk not found",
    ),
    (
        "govmomi-ovf/external/ovf_negative_test/ovf_with_missing_ovf_content/haoUnOS2VMs.ovf",
        "not declared in the NetworkSection",
    ),
    ("govmomi-ovf/unsupported-resourcetype.ovf", "ignored"),
    ("govmomi-ovf/unsupported-resourcesubtype.ovf", "ignored"),
];

#[test]
fn every_corpus_descriptor_reads_or_fails_cleanly() {
    let Some(root) = corpus() else { return };
    let files = files_with_ext(&root, "ovf");
    assert!(files.len() > 60, "corpus has {} .ovf", files.len());
    for p in files {
        let rel = p
            .strip_prefix(&root)
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_default();
        let result = read_ovf(&p);
        match REFUSED.iter().find(|(f, _, _)| *f == rel) {
            Some((_, kind, word)) => {
                let e = result.expect_err(&rel);
                let msg = e.to_string();
                assert!(!msg.contains('\n'), "{rel}: multi-line error {msg}");
                assert!(msg.starts_with(&p.display().to_string()), "{msg}");
                assert!(msg.contains(word), "{rel}: {msg}");
                match (kind, &e) {
                    (&"unsupported", DescError::Unsupported { .. })
                    | (&"malformed", DescError::Malformed { .. }) => {}
                    _ => panic!("{rel}: wrong kind {e:?}"),
                }
            }
            None => {
                let d = result.unwrap_or_else(|e| panic!("{rel}: {e}"));
                assert_eq!(d.hypervisor, SourceHypervisor::Ovf, "{rel}");
                assert!(d.vcpus >= 1, "{rel}");
                if let Some((_, w)) = READS_WITH.iter().find(|(f, _)| *f == rel) {
                    assert!(
                        d.warnings.iter().any(|x| x.contains(w)),
                        "{rel}: {:?}",
                        d.warnings
                    );
                }
            }
        }
    }
}

#[test]
fn vsphere_export_test_i_ova() {
    let Some(d) = read("virt-v2v/test-i-ova.ovf") else {
        return;
    };
    assert_eq!(d.name, "TestOva");
    assert_eq!(d.vcpus, 1);
    assert_eq!(d.memory_bytes, 2 * GIB);
    assert_eq!(d.firmware, Firmware::Bios);
    assert_eq!(d.os_hint.as_deref(), Some("windows7_64Guest"));
    let disks: Vec<&DiskDesc> = d
        .disks
        .iter()
        .filter(|d| d.device == DiskDevice::Disk)
        .collect();
    assert_eq!(disks.len(), 1);
    assert_eq!(file_name(disks[0]).as_deref(), Some("test-ova.vmdk"));
    assert_eq!(disks[0].capacity_bytes, Some(32 * GIB));
    assert_eq!(disks[0].format.as_deref(), Some("vmdk"));
    assert_eq!(disks[0].bus, DiskBus::Scsi);
    assert_eq!(disks[0].target, "scsi3:0");
    assert!(d.warnings.iter().any(|w| w.contains("streamOptimized")));
    assert!(d
        .disks
        .iter()
        .any(|d| d.device == DiskDevice::Cdrom && d.bus == DiskBus::Ide));
    assert!(d.disks.iter().any(|d| d.device == DiskDevice::Floppy));
    assert_eq!(d.nics.len(), 1);
    assert_eq!(d.nics[0].model.as_deref(), Some("e1000"));
    assert_eq!(d.nics[0].network.as_deref(), Some("VM Network"));
}

#[test]
fn two_disks_in_controller_order() {
    let Some(d) = read("virt-v2v/test-i-ova-two-disks.ovf") else {
        return;
    };
    let disks: Vec<(Option<String>, &str, Option<u64>)> = d
        .disks
        .iter()
        .filter(|d| d.device == DiskDevice::Disk)
        .map(|d| (file_name(d), d.target.as_str(), d.capacity_bytes))
        .collect();
    assert_eq!(
        disks,
        vec![
            (Some("disk1.vmdk".into()), "scsi3:0", Some(50 * GIB)),
            (Some("disk2.vmdk".into()), "scsi3:1", Some(450 * GIB)),
        ]
    );
}

#[test]
fn virtualbox_ovf2_with_manifest() {
    // ubuntu.2.0.mf (SHA256) sits next to it and covers the OVF and its disk.
    let Some(d) = read("cot/ubuntu.2.0.ovf") else {
        return;
    };
    assert_eq!(d.name, "ubuntu");
    assert_eq!(d.memory_bytes, 512 * MIB);
    assert_eq!(d.os_hint.as_deref(), Some("Ubuntu_64"));
    assert!(!d.warnings.iter().any(|w| w.contains("no manifest")));
    let disk = d
        .disks
        .iter()
        .find(|d| d.device == DiskDevice::Disk)
        .expect("disk");
    assert_eq!(disk.bus, DiskBus::Sata);
    assert_eq!(disk.capacity_bytes, Some(8 * GIB));
    assert_eq!(file_name(disk).as_deref(), Some("ubuntu.2.0-disk1.vmdk"));
    assert_eq!(d.nics[0].model.as_deref(), Some("e1000"));
    assert_eq!(d.nics[0].network.as_deref(), Some("NAT"));
}

#[test]
fn cores_per_socket() {
    let Some(d) = read("govmomi-ovf/external/cores-per-socket/multi-core-vm/multi-core-vm.ovf")
    else {
        return;
    };
    assert_eq!(d.vcpus, 4);
    assert_eq!(
        d.topology,
        Some(Topology {
            sockets: 2,
            cores: 2,
            threads: 1
        })
    );
    assert_eq!(d.memory_bytes, 4 * MIB);
}

#[test]
fn efi_firmware_from_vmw_config() {
    let Some(d) = read("govmomi-ovf/vmware/esxvmovf-25262174.ovf") else {
        return;
    };
    assert_eq!(d.firmware, Firmware::Uefi { secure_boot: false });
    assert_eq!(d.vcpus, 2);
    assert_eq!(d.memory_bytes, 8 * GIB);
    assert_eq!(d.nics[0].model.as_deref(), Some("vmxnet3"));
    assert_eq!(d.disks[0].capacity_bytes, Some(32 * GIB));
}

#[test]
fn default_deployment_option() {
    let Some(d) = read("govmomi-ovf/deployment-configs.ovf") else {
        return;
    };
    assert_eq!(d.vcpus, 8);
    assert_eq!(d.memory_bytes, 8 * GIB);
    let names: Vec<Option<String>> = d.disks.iter().map(file_name).collect();
    assert_eq!(
        names,
        vec![
            Some("system-large.vmdk".into()),
            Some("model-large.vmdk".into()),
            None
        ]
    );
    assert!(d.warnings.iter().any(|w| w.contains("deployment options")));
}

#[test]
fn cisco_iosv_ide_disks_and_e1000() {
    let Some(d) = read("cot/iosv.ovf") else {
        return;
    };
    assert_eq!(d.memory_bytes, 384 * MIB);
    assert_eq!(d.disks.len(), 2);
    assert!(d.disks.iter().all(|d| d.bus == DiskBus::Ide));
    assert_eq!(d.disks[1].capacity_bytes, Some(128 * MIB));
    assert_eq!(d.nics.len(), 2);
    assert!(d.nics.iter().all(|n| n.model.as_deref() == Some("e1000")));
}

#[test]
fn ovf2_collection_mac_and_first_system() {
    let Some(d) = read("govmomi-ovf/virtualsystemcollection.ovf") else {
        return;
    };
    assert_eq!(d.name, "Virtual Appliance One");
    assert_eq!(d.memory_bytes, GIB);
    assert_eq!(d.nics[0].mac.as_deref(), Some("00:16:8b:db:00:5e"));
    assert!(d.warnings.iter().any(|w| w.contains("VirtualSystems")));
}

#[test]
fn capacity_from_product_property() {
    let Some(d) = read("govmomi-ovf/disk-capacity-property.ovf") else {
        return;
    };
    assert_eq!(d.disks[0].capacity_bytes, Some(5 * GIB));
}

#[test]
fn sibling_manifest_mismatch_is_refused() {
    let Some(root) = corpus() else { return };
    let dir = tempdir();
    for f in [
        "input.ovf",
        "input.mf",
        "input.vmdk",
        "input.iso",
        "sample_cfg.txt",
    ] {
        std::fs::copy(root.join("cot").join(f), dir.path().join(f)).expect("copy");
    }
    let ovf = dir.path().join("input.ovf");
    let d = read_ovf(&ovf).expect("manifest verifies");
    assert!(!d.warnings.iter().any(|w| w.contains("no manifest")));
    let iso = dir.path().join("input.iso");
    let mut bytes = std::fs::read(&iso).expect("read");
    bytes[1000] ^= 1;
    std::fs::write(&iso, bytes).expect("write");
    let e = read_ovf(&ovf).expect_err("tampered").to_string();
    assert!(e.contains("SHA1 of input.iso does not match"), "{e}");
    std::fs::remove_file(&iso).expect("rm");
    let e = read_ovf(&ovf).expect_err("missing").to_string();
    assert!(e.contains("input.iso, which is missing"), "{e}");
}

const HEAD: &str = r#"<?xml version="1.0"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">"#;

fn vm(refs: &str, disks: &str, items: &str) -> String {
    format!(
        r#"{HEAD}<References>{refs}</References><DiskSection><Info/>{disks}</DiskSection>
<VirtualSystem ovf:id="vm"><Info/><VirtualHardwareSection><Info/>
<Item><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
<Item><rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>1024</rasd:VirtualQuantity></Item>
<Item><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>20</rasd:ResourceType></Item>
{items}</VirtualHardwareSection></VirtualSystem></Envelope>"#
    )
}

fn parse(xml: &str) -> Result<VmDescription, DescError> {
    parse_ovf(Path::new("t.ovf"), xml, Path::new("pkg"))
}

const DISK_ITEM: &str = "<Item><rasd:InstanceID>4</rasd:InstanceID><rasd:ResourceType>17</rasd:ResourceType><rasd:Parent>3</rasd:Parent><rasd:AddressOnParent>1</rasd:AddressOnParent><rasd:HostResource>ovf:/disk/d1</rasd:HostResource></Item>";

#[test]
fn inline_sata_disk_and_units() {
    let xml = vm(
        r#"<File ovf:id="f1" ovf:href="a b.vmdk"/>"#,
        r#"<Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="3" ovf:capacityAllocationUnits="byte * 2^30" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#sparse"/>"#,
        DISK_ITEM,
    );
    let d = parse(&xml).expect("parses");
    assert_eq!(d.name, "vm");
    assert_eq!(d.vcpus, 2);
    assert_eq!(d.memory_bytes, GIB);
    assert_eq!(d.disks[0].path, Some(PathBuf::from("pkg/a b.vmdk")));
    assert_eq!(d.disks[0].target, "sata3:1");
    assert_eq!(d.disks[0].capacity_bytes, Some(3 * GIB));
    assert!(d.warnings.iter().any(|w| w.contains("vmdk sparse")));
}

#[test]
fn hostile_inputs_fail_cleanly() {
    let escape = vm(
        r#"<File ovf:id="f1" ovf:href="../../etc/shadow"/>"#,
        r#"<Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="1"/>"#,
        DISK_ITEM,
    );
    let huge = vm(
        r#"<File ovf:id="f1" ovf:href="a.vmdk"/>"#,
        r#"<Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="99999999999" ovf:capacityAllocationUnits="byte * 2^40"/>"#,
        DISK_ITEM,
    );
    let orphan = vm("", "", DISK_ITEM);
    let laughs = r#"<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><Envelope>&b;</Envelope>"#;
    for (xml, word) in [
        (escape.as_str(), "outside the package"),
        (huge.as_str(), "overflows"),
        (orphan.as_str(), "names no Disk d1"),
        (laughs, "XML"),
        ("<Envelope", "XML"),
        ("<x/>", "not an OVF Envelope"),
    ] {
        let e = parse(xml).expect_err(word).to_string();
        assert!(
            e.starts_with("t.ovf: ") && e.contains(word) && !e.contains('\n'),
            "{e}"
        );
    }
    let big = "x".repeat(usize::try_from(XML_LIMIT + 1).expect("fits"));
    assert!(parse(&big).is_err());
}

#[test]
fn allocation_units() {
    assert_eq!(unit_multiplier("byte * 2^20"), Some(MIB));
    assert_eq!(unit_multiplier("byte*2^30"), Some(GIB));
    assert_eq!(unit_multiplier("MegaBytes"), Some(MIB));
    assert_eq!(unit_multiplier("byte"), Some(1));
    assert_eq!(unit_multiplier("byte * 1024"), Some(1024));
    assert_eq!(unit_multiplier("byte * 2^99"), None);
    assert_eq!(unit_multiplier("hertz * 10^6"), None);
}
