//! Every domain ferry writes must pass libvirt's own schema check
//! (`virt-xml-validate FILE domain`): synthetic guests that cover each option, and
//! every VM description in the shared corpus that a reader accepts.
//!
//! Without the tool or the corpus the tests skip locally but fail under CI (`CI` set).

use std::path::{Path, PathBuf};
use std::process::Command;

use domain::{domain_for, ConvertedDisk, DomainOptions, NetTarget, VirtType};
use vmdesc::{
    DiskBus, DiskDesc, DiskDevice, Firmware, NicDesc, SourceHypervisor, Topology, VmDescription,
    XenPvBoot,
};

const VALIDATOR: &str = "/usr/bin/virt-xml-validate";

/// Skips (returns false) when `what` is missing, unless running under CI.
fn require(present: bool, what: &str) -> bool {
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} missing under CI (install libvirt-clients / lay out shared/corpus)"
        );
        eprintln!("{what} missing; skipping");
    }
    present
}

fn validator() -> bool {
    require(Path::new(VALIDATOR).is_file(), VALIDATOR)
}

fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    require(dir.join("MANIFEST.tsv").is_file(), "shared corpus").then_some(dir)
}

/// Runs the validator on `xml`; Err holds its output.
fn validate(xml: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("domain.xml");
    std::fs::write(&file, xml).map_err(|e| e.to_string())?;
    let out = Command::new(VALIDATOR)
        .arg(&file)
        .arg("domain")
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn fake_disks(desc: &VmDescription) -> Vec<ConvertedDisk> {
    let name = domain::sanitize_name(&desc.name).replace(' ', "_");
    (0..desc
        .disks
        .iter()
        .filter(|d| d.device == DiskDevice::Disk)
        .count())
        .map(|i| ConvertedDisk {
            path: PathBuf::from(format!("/var/lib/libvirt/images/{name}-disk{i}.qcow2")),
            format: "qcow2".into(),
        })
        .collect()
}

fn disk(target: &str, bus: DiskBus, device: DiskDevice) -> DiskDesc {
    DiskDesc {
        path: (device == DiskDevice::Disk).then(|| PathBuf::from(format!("/src/{target}.vmdk"))),
        format: None,
        bus,
        target: target.into(),
        device,
        read_only: false,
        capacity_bytes: None,
    }
}

fn nic(mac: Option<&str>, network: Option<&str>) -> NicDesc {
    NicDesc {
        mac: mac.map(Into::into),
        model: Some("vmxnet3".into()),
        network: network.map(Into::into),
    }
}

fn synthetic() -> Vec<(&'static str, VmDescription, DomainOptions)> {
    let vmware = VmDescription {
        name: "web & <db> 'prod' \"1\"".into(),
        hypervisor: SourceHypervisor::Vmware,
        vcpus: 4,
        topology: Some(Topology {
            sockets: 2,
            cores: 2,
            threads: 1,
        }),
        memory_bytes: 4 << 30,
        disks: vec![
            disk("scsi0:0", DiskBus::Scsi, DiskDevice::Disk),
            disk("scsi0:1", DiskBus::Scsi, DiskDevice::Disk),
            disk("ide1:0", DiskBus::Ide, DiskDevice::Cdrom),
            disk("floppy0", DiskBus::Unknown, DiskDevice::Floppy),
        ],
        nics: vec![
            nic(Some("00:50:56:aa:bb:cc"), Some("VM Network")),
            nic(None, Some("DMZ")),
            nic(Some("00:0c:29:01:02:03"), None),
        ],
        os_hint: Some("windows9srv-64".into()),
        ..Default::default()
    };
    let mapped = DomainOptions {
        network_map: vec![
            ("VM Network".into(), NetTarget::Bridge("br0".into())),
            ("DMZ".into(), NetTarget::User),
        ],
        serial_log: Some("/var/log/ferry/console & <x>.log".into()),
        ..Default::default()
    };
    let xen_pv = VmDescription {
        name: "xenpv".into(),
        hypervisor: SourceHypervisor::Xen,
        vcpus: 2,
        memory_bytes: 512 << 20,
        max_memory_bytes: Some(1 << 30),
        disks: vec![disk("xvda", DiskBus::Xen, DiskDevice::Disk)],
        nics: vec![nic(Some("00:16:3e:00:00:01"), Some("xenbr0"))],
        xen_pv: Some(XenPvBoot {
            kernel: Some("/boot/vmlinuz".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let uefi_sb = VmDescription {
        name: "sb".into(),
        firmware: Firmware::Uefi { secure_boot: true },
        vcpus: 3,
        topology: Some(Topology {
            sockets: 1,
            cores: 2,
            threads: 2,
        }),
        memory_bytes: 1_000_001,
        disks: (0..30)
            .map(|i| {
                disk(
                    &format!("scsi{}:{}", i / 15, i % 15),
                    DiskBus::Scsi,
                    DiskDevice::Disk,
                )
            })
            .collect(),
        ..Default::default()
    };
    let uefi = VmDescription {
        name: "efi".into(),
        firmware: Firmware::Uefi { secure_boot: false },
        ..uefi_sb.clone()
    };
    let legacy = DomainOptions {
        virtio: false,
        legacy_machine: true,
        virt_type: VirtType::Qemu,
        default_network: NetTarget::Network("lan".into()),
        ..Default::default()
    };
    let empty = VmDescription::default();
    vec![
        ("vmware", vmware.clone(), DomainOptions::default()),
        ("vmware-mapped", vmware.clone(), mapped),
        ("vmware-legacy", vmware, legacy.clone()),
        ("xen-pv", xen_pv, DomainOptions::default()),
        ("uefi-sb", uefi_sb.clone(), DomainOptions::default()),
        ("uefi-sb-legacy", uefi_sb, legacy.clone()),
        ("uefi-legacy", uefi, legacy),
        ("empty", empty, DomainOptions::default()),
    ]
}

/// Guards against a validator that accepts anything (wrong schema name, stub tool).
#[test]
fn validator_rejects_a_broken_domain() {
    if !validator() {
        return;
    }
    let dom = domain_for(&VmDescription::default(), &[], &DomainOptions::default())
        .expect("empty description");
    let broken = dom
        .to_xml()
        .replace("<vcpu placement=\"static\">1</vcpu>", "<vcpu>one</vcpu>");
    assert!(validate(&broken).is_err(), "accepted:\n{broken}");
}

#[test]
fn synthetic_domains_validate() {
    if !validator() {
        return;
    }
    let mut failures = Vec::new();
    for (label, desc, opts) in synthetic() {
        let dom = domain_for(&desc, &fake_disks(&desc), &opts).expect(label);
        let xml = dom.to_xml();
        if let Err(e) = validate(&xml) {
            failures.push(format!("{label}: {e}\n{xml}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn corpus_domains_validate() {
    if !validator() {
        return;
    }
    let Some(dir) = corpus() else { return };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let (mut validated, mut refused) = (0, 0);
    let mut failures = Vec::new();
    for row in manifest.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        let (Some(rel), Some(kind)) = (cols.first(), cols.get(3)) else {
            continue;
        };
        let path = dir.join(rel);
        // By the manifest's kind, not the extension: xen-history/xmexample.vmx is xm.
        let read = match *kind {
            "vmx" => vmdesc::vmx::read_vmx(&path),
            "ovf" => vmdesc::ovf::read_ovf(&path),
            "ova" => vmdesc::ova::read_ova(&path).map(|ova| ova.description),
            "xl-cfg" | "xm-cfg" | "xen-other-cfg" => vmdesc::xen::read_xen(&path),
            _ => continue,
        };
        let desc = match read {
            Ok(desc) => desc,
            Err(e) => {
                eprintln!("refused by reader: {e}");
                refused += 1;
                continue;
            }
        };
        let result = domain_for(&desc, &fake_disks(&desc), &DomainOptions::default())
            .map_err(|e| e.to_string())
            .and_then(|dom| validate(&dom.to_xml()).map_err(|e| format!("{e}\n{}", dom.to_xml())));
        match result {
            Ok(()) => validated += 1,
            Err(e) => failures.push(format!("{rel}: {e}")),
        }
    }
    eprintln!(
        "corpus: {validated} domains validated, {refused} descriptions refused by their reader, {} failed",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        validated >= 50,
        "only {validated} corpus descriptions validated"
    );
}
