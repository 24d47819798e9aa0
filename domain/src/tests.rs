//! Golden-ish checks of the generated XML, one scenario each. Schema validity is
//! checked separately by `tests/validate.rs`.

use std::path::PathBuf;

use vmdesc::{
    DiskBus, DiskDesc, DiskDevice, Firmware as SrcFirmware, NicDesc, SourceHypervisor, Topology,
    VmDescription, XenPvBoot,
};

use crate::*;

fn disk(target: &str, device: DiskDevice) -> DiskDesc {
    DiskDesc {
        path: (device == DiskDevice::Disk).then(|| PathBuf::from(format!("/src/{target}.vmdk"))),
        format: Some("vmdk".into()),
        bus: DiskBus::Scsi,
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

fn converted(n: usize) -> Vec<ConvertedDisk> {
    (0..n)
        .map(|i| ConvertedDisk {
            path: PathBuf::from(format!("/var/lib/libvirt/images/g-disk{i}.qcow2")),
            format: "qcow2".into(),
        })
        .collect()
}

fn vmware() -> VmDescription {
    VmDescription {
        name: "web01".into(),
        hypervisor: SourceHypervisor::Vmware,
        vcpus: 4,
        topology: Some(Topology {
            sockets: 2,
            cores: 2,
            threads: 1,
        }),
        memory_bytes: 2 << 30,
        disks: vec![
            disk("scsi0:0", DiskDevice::Disk),
            disk("scsi0:1", DiskDevice::Disk),
        ],
        nics: vec![nic(Some("00:50:56:AA:bb:cc"), Some("VM Network"))],
        os_hint: Some("debian11-64".into()),
        ..Default::default()
    }
}

fn xml(desc: &VmDescription, opts: &DomainOptions) -> String {
    let n = desc
        .disks
        .iter()
        .filter(|d| d.device == DiskDevice::Disk)
        .count();
    domain_for(desc, &converted(n), opts).unwrap().to_xml()
}

#[track_caller]
fn has(xml: &str, needle: &str) {
    assert!(xml.contains(needle), "missing {needle:?} in\n{xml}");
}

#[track_caller]
fn lacks(xml: &str, needle: &str) {
    assert!(!xml.contains(needle), "unexpected {needle:?} in\n{xml}");
}

#[test]
fn vmware_guest() {
    let x = xml(&vmware(), &DomainOptions::default());
    assert!(
        x.starts_with("<domain type=\"kvm\">\n  <name>web01</name>\n"),
        "{x}"
    );
    assert!(x.ends_with("</domain>\n"));
    has(&x, "<memory unit=\"KiB\">2097152</memory>");
    has(&x, "<currentMemory unit=\"KiB\">2097152</currentMemory>");
    has(&x, "<vcpu placement=\"static\">4</vcpu>");
    has(
        &x,
        "<cpu mode=\"host-model\">\n    <topology sockets=\"2\" cores=\"2\" threads=\"1\"/>\n  </cpu>",
    );
    has(
        &x,
        "<os>\n    <type arch=\"x86_64\" machine=\"q35\">hvm</type>\n    <boot dev=\"hd\"/>\n  </os>",
    );
    has(&x, "<features>\n    <acpi/>\n    <apic/>\n  </features>");
    has(&x, "<clock offset=\"utc\"/>");
    has(&x, "<on_poweroff>destroy</on_poweroff>");
    has(&x, "<on_reboot>restart</on_reboot>");
    has(&x, "<on_crash>destroy</on_crash>");
    has(
        &x,
        "<disk type=\"file\" device=\"disk\">\n      \
         <driver name=\"qemu\" type=\"qcow2\" cache=\"none\" discard=\"unmap\"/>\n      \
         <source file=\"/var/lib/libvirt/images/g-disk0.qcow2\"/>\n      \
         <target dev=\"vda\" bus=\"virtio\"/>\n    </disk>",
    );
    has(
        &x,
        "<source file=\"/var/lib/libvirt/images/g-disk1.qcow2\"/>",
    );
    has(&x, "<target dev=\"vdb\" bus=\"virtio\"/>");
    // The MAC is normalised to lower case; unmapped network goes to the default.
    has(
        &x,
        "<interface type=\"network\">\n      <mac address=\"00:50:56:aa:bb:cc\"/>\n      \
         <source network=\"default\"/>\n      <model type=\"virtio\"/>\n    </interface>",
    );
    has(
        &x,
        "<serial type=\"pty\">\n      <target port=\"0\"/>\n    </serial>",
    );
    has(
        &x,
        "<console type=\"pty\">\n      <target type=\"serial\" port=\"0\"/>\n    </console>",
    );
    has(
        &x,
        "<target type=\"virtio\" name=\"org.qemu.guest_agent.0\"/>",
    );
    has(&x, "<backend model=\"random\">/dev/urandom</backend>");
    has(&x, "<listen type=\"address\" address=\"127.0.0.1\"/>");
    has(&x, "<graphics type=\"vnc\" port=\"-1\" autoport=\"yes\">");
    has(&x, "<model type=\"virtio\"/>\n    </video>");
    has(&x, "<memballoon model=\"virtio\"/>");
    lacks(&x, "<uuid>");
    lacks(&x, "<log ");
    lacks(&x, "firmware");
    lacks(&x, "boot order");

    let dom = domain_for(&vmware(), &converted(2), &DomainOptions::default()).unwrap();
    assert_eq!(dom.name(), "web01");
    assert_eq!(dom.uuid(), None);
    assert_eq!(dom.macs(), vec!["00:50:56:aa:bb:cc".to_string()]);
    assert!(dom.notes().is_empty(), "{:?}", dom.notes());
}

#[test]
fn windows_hint_means_local_time() {
    for hint in [
        "windows9srv-64",
        "winxppro",
        "Microsoft Windows Server 2019",
        "longhorn",
    ] {
        let desc = VmDescription {
            os_hint: Some(hint.into()),
            ..vmware()
        };
        has(
            &xml(&desc, &DomainOptions::default()),
            "<clock offset=\"localtime\"/>",
        );
    }
    let mac = VmDescription {
        os_hint: Some("darwin19-64".into()),
        ..vmware()
    };
    has(
        &xml(&mac, &DomainOptions::default()),
        "<clock offset=\"utc\"/>",
    );
}

#[test]
fn xen_pv_guest_boots_from_disk_under_hvm() {
    let desc = VmDescription {
        name: "pv".into(),
        hypervisor: SourceHypervisor::Xen,
        vcpus: 1,
        memory_bytes: 512 << 20,
        max_memory_bytes: Some(1 << 30),
        disks: vec![DiskDesc {
            bus: DiskBus::Xen,
            target: "xvda".into(),
            ..disk("xvda", DiskDevice::Disk)
        }],
        nics: vec![nic(Some("00:16:3e:01:02:03"), Some("xenbr0"))],
        xen_pv: Some(XenPvBoot {
            kernel: Some("/boot/vmlinuz".into()),
            ramdisk: Some("/boot/initrd".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let dom = domain_for(&desc, &converted(1), &DomainOptions::default()).unwrap();
    let x = dom.to_xml();
    // maxmem is the ceiling, memory what it boots with.
    has(&x, "<memory unit=\"KiB\">1048576</memory>");
    has(&x, "<currentMemory unit=\"KiB\">524288</currentMemory>");
    has(&x, "<type arch=\"x86_64\" machine=\"q35\">hvm</type>");
    has(&x, "<target dev=\"vda\" bus=\"virtio\"/>");
    lacks(&x, "<kernel");
    lacks(&x, "<initrd");
    lacks(&x, "xvda");
    assert!(dom.notes().iter().any(|n| n.contains("Xen PV")));
}

#[test]
fn uefi_secure_boot_forces_q35_and_smm() {
    let desc = VmDescription {
        firmware: SrcFirmware::Uefi { secure_boot: true },
        ..vmware()
    };
    let opts = DomainOptions {
        legacy_machine: true,
        ..Default::default()
    };
    let dom = domain_for(&desc, &converted(2), &opts).unwrap();
    let x = dom.to_xml();
    has(
        &x,
        "<os firmware=\"efi\">\n    <type arch=\"x86_64\" machine=\"q35\">hvm</type>\n    \
         <firmware>\n      <feature enabled=\"yes\" name=\"secure-boot\"/>\n      \
         <feature enabled=\"yes\" name=\"enrolled-keys\"/>\n    </firmware>\n    \
         <boot dev=\"hd\"/>\n  </os>",
    );
    has(&x, "<smm state=\"on\"/>");
    assert!(dom.notes().iter().any(|n| n.contains("q35")));
}

#[test]
fn uefi_without_secure_boot_honours_legacy_machine() {
    let desc = VmDescription {
        firmware: SrcFirmware::Uefi { secure_boot: false },
        ..vmware()
    };
    let opts = DomainOptions {
        legacy_machine: true,
        ..Default::default()
    };
    let x = xml(&desc, &opts);
    has(&x, "<os firmware=\"efi\">");
    has(&x, "machine=\"pc\"");
    has(&x, "<feature enabled=\"no\" name=\"secure-boot\"/>");
    has(&x, "<feature enabled=\"no\" name=\"enrolled-keys\"/>");
    lacks(&x, "smm");
}

#[test]
fn no_virtio_means_sata_e1000_vga_and_no_virtio_extras() {
    let mut desc = vmware();
    desc.disks.insert(0, disk("ide1:0", DiskDevice::Cdrom));
    desc.disks[1].read_only = true;
    let opts = DomainOptions {
        virtio: false,
        virt_type: VirtType::Qemu,
        ..Default::default()
    };
    let dom = domain_for(&desc, &converted(2), &opts).unwrap();
    let x = dom.to_xml();
    assert!(x.starts_with("<domain type=\"qemu\">"));
    // Hard disks keep the first letters even with a CD-ROM listed first.
    has(
        &x,
        "g-disk0.qcow2\"/>\n      <target dev=\"sda\" bus=\"sata\"/>",
    );
    has(
        &x,
        "g-disk1.qcow2\"/>\n      <target dev=\"sdb\" bus=\"sata\"/>",
    );
    has(&x, "<target dev=\"sdc\" bus=\"sata\"/>\n      <readonly/>");
    // AHCI hard disks cannot be read-only: dropped, with a note.
    assert_eq!(x.matches("<readonly/>").count(), 1, "{x}");
    assert!(dom.notes().iter().any(|n| n.contains("read-only")));
    has(&x, "<model type=\"e1000\"/>");
    has(&x, "<model type=\"vga\"/>");
    has(&x, "<memballoon model=\"none\"/>");
    lacks(&x, "virtio");
    lacks(&x, "<rng");
    lacks(&x, "<channel");
    // TCG: no host-model; the topology still matches, so a mode-less <cpu> carries it.
    has(
        &x,
        "<cpu>\n    <topology sockets=\"2\" cores=\"2\" threads=\"1\"/>\n  </cpu>",
    );
}

#[test]
fn qemu_without_topology_writes_no_cpu() {
    let desc = VmDescription {
        topology: None,
        ..vmware()
    };
    let opts = DomainOptions {
        virt_type: VirtType::Qemu,
        ..Default::default()
    };
    lacks(&xml(&desc, &opts), "<cpu");
    has(
        &xml(&desc, &DomainOptions::default()),
        "<cpu mode=\"host-model\"/>",
    );
}

#[test]
fn cdroms_are_empty_read_only_sata_drives_and_floppies_vanish() {
    let mut desc = vmware();
    desc.disks.push(DiskDesc {
        path: Some("/isos/install.iso".into()),
        ..disk("ide1:0", DiskDevice::Cdrom)
    });
    desc.disks.push(disk("ide1:1", DiskDevice::Cdrom));
    desc.disks.push(disk("floppy0", DiskDevice::Floppy));
    let x = xml(&desc, &DomainOptions::default());
    has(
        &x,
        "<disk type=\"file\" device=\"cdrom\">\n      <driver name=\"qemu\" type=\"raw\"/>\n      \
         <target dev=\"sda\" bus=\"sata\"/>\n      <readonly/>\n    </disk>",
    );
    has(&x, "<target dev=\"sdb\" bus=\"sata\"/>");
    lacks(&x, "install.iso");
    lacks(&x, "floppy");
    assert_eq!(x.matches("<disk ").count(), 4);
}

#[test]
fn read_only_virtio_disk_stays_read_only() {
    let mut desc = vmware();
    desc.disks[1].read_only = true;
    let x = xml(&desc, &DomainOptions::default());
    has(
        &x,
        "<target dev=\"vdb\" bus=\"virtio\"/>\n      <readonly/>",
    );
}

#[test]
fn topology_that_does_not_multiply_out_is_dropped() {
    let desc = VmDescription {
        vcpus: 6,
        ..vmware()
    };
    let dom = domain_for(&desc, &converted(2), &DomainOptions::default()).unwrap();
    let x = dom.to_xml();
    has(&x, "<cpu mode=\"host-model\"/>");
    lacks(&x, "<topology");
    assert!(dom.notes().iter().any(|n| n.contains("2x2x1")));
    // Overflowing products are a mismatch too, not a panic.
    let huge = VmDescription {
        topology: Some(Topology {
            sockets: u32::MAX,
            cores: u32::MAX,
            threads: 2,
        }),
        ..vmware()
    };
    lacks(&xml(&huge, &DomainOptions::default()), "<topology");
}

#[test]
fn network_map_picks_targets_by_exact_source_name() {
    let mut desc = vmware();
    desc.nics = vec![
        nic(Some("00:50:56:00:00:01"), Some("VM Network")),
        nic(Some("00:50:56:00:00:02"), Some("DMZ")),
        nic(None, Some("vm network")),
        nic(None, None),
    ];
    let opts = DomainOptions {
        network_map: vec![
            ("VM Network".into(), NetTarget::Bridge("br0".into())),
            ("DMZ".into(), NetTarget::User),
        ],
        default_network: NetTarget::Network("lan".into()),
        ..Default::default()
    };
    let dom = domain_for(&desc, &converted(2), &opts).unwrap();
    let x = dom.to_xml();
    has(
        &x,
        "<interface type=\"bridge\">\n      <mac address=\"00:50:56:00:00:01\"/>\n      \
         <source bridge=\"br0\"/>",
    );
    has(
        &x,
        "<interface type=\"user\">\n      <mac address=\"00:50:56:00:00:02\"/>\n      \
         <model type=\"virtio\"/>",
    );
    // Case differs, and no network at all: both go to the default.
    assert_eq!(x.matches("<source network=\"lan\"/>").count(), 2, "{x}");
    assert_eq!(dom.macs().len(), 2);
}

#[test]
fn serial_log_is_appended() {
    let opts = DomainOptions {
        serial_log: Some("/var/log/ferry/web01.log".into()),
        ..Default::default()
    };
    let x = xml(&vmware(), &opts);
    has(
        &x,
        "<serial type=\"pty\">\n      <log file=\"/var/log/ferry/web01.log\" append=\"on\"/>\n      \
         <target port=\"0\"/>\n    </serial>",
    );
}

#[test]
fn names_and_paths_are_escaped_by_the_writer() {
    let desc = VmDescription {
        name: "a&b <c> 'd' \"e\"/f".into(),
        ..vmware()
    };
    let disks = vec![
        ConvertedDisk {
            path: "/img/x&y<'z'>\".qcow2".into(),
            format: "qcow2".into(),
        },
        ConvertedDisk {
            path: "/img/plain.raw".into(),
            format: "raw".into(),
        },
    ];
    let opts = DomainOptions {
        network_map: vec![("VM Network".into(), NetTarget::parse("bridge:b&r").unwrap())],
        serial_log: Some("/log/<&>.log".into()),
        ..Default::default()
    };
    let dom = domain_for(&desc, &disks, &opts).unwrap();
    assert_eq!(dom.name(), "a&b <c> 'd' \"e\"-f");
    let x = dom.to_xml();
    has(
        &x,
        "<name>a&amp;b &lt;c&gt; &apos;d&apos; &quot;e&quot;-f</name>",
    );
    has(
        &x,
        "<source file=\"/img/x&amp;y&lt;&apos;z&apos;&gt;&quot;.qcow2\"/>",
    );
    has(
        &x,
        "<driver name=\"qemu\" type=\"raw\" cache=\"none\" discard=\"unmap\"/>",
    );
    has(&x, "<source bridge=\"b&amp;r\"/>");
    has(&x, "<log file=\"/log/&lt;&amp;&gt;.log\" append=\"on\"/>");
}

#[test]
fn name_override_wins_and_is_sanitized() {
    let opts = DomainOptions {
        name_override: Some("  new/name  ".into()),
        ..Default::default()
    };
    has(&xml(&vmware(), &opts), "<name>new-name</name>");
}

#[test]
fn memory_rounds_up_and_missing_values_get_defaults() {
    let desc = VmDescription {
        memory_bytes: 1025,
        ..vmware()
    };
    has(
        &xml(&desc, &DomainOptions::default()),
        "<memory unit=\"KiB\">2</memory>",
    );
    let dom = domain_for(&VmDescription::default(), &[], &DomainOptions::default()).unwrap();
    let x = dom.to_xml();
    has(&x, "<name>ferry-guest</name>");
    has(&x, "<memory unit=\"KiB\">1048576</memory>");
    has(&x, "<vcpu placement=\"static\">1</vcpu>");
    assert_eq!(dom.notes().len(), 2, "{:?}", dom.notes());
}

#[test]
fn bad_inputs_fail_with_one_line_messages() {
    let desc = vmware();
    let opts = DomainOptions::default();
    let mut errors = vec![
        domain_for(&desc, &converted(1), &opts).unwrap_err(),
        domain_for(&desc, &converted(3), &opts).unwrap_err(),
    ];
    let mut vmdk = converted(2);
    vmdk[0].format = "vmdk\n".into();
    errors.push(domain_for(&desc, &vmdk, &opts).unwrap_err());
    let mut ctl = converted(2);
    ctl[1].path = "/img/a\u{1}b.qcow2".into();
    errors.push(domain_for(&desc, &ctl, &opts).unwrap_err());
    let mut empty = converted(2);
    empty[1].path = PathBuf::new();
    errors.push(domain_for(&desc, &empty, &opts).unwrap_err());
    for mac in [
        "01:00:5e:00:00:01",
        "00:50:56:aa:bb",
        "00:50:56:aa:bb:cc:dd",
        "zz:50:56:aa:bb:cc",
        "",
    ] {
        let d = VmDescription {
            nics: vec![nic(Some(mac), None)],
            ..vmware()
        };
        errors.push(domain_for(&d, &converted(2), &opts).unwrap_err());
    }
    let bad_net = DomainOptions {
        default_network: NetTarget::Network("a\u{0}b".into()),
        ..Default::default()
    };
    errors.push(domain_for(&desc, &converted(2), &bad_net).unwrap_err());
    let bad_log = DomainOptions {
        serial_log: Some("/log/\u{7}.log".into()),
        ..Default::default()
    };
    errors.push(domain_for(&desc, &converted(2), &bad_log).unwrap_err());
    for e in errors {
        let msg = e.to_string();
        assert!(!msg.contains('\n') && !msg.is_empty(), "{msg:?}");
    }
}

#[test]
fn relative_disk_paths_become_absolute() {
    let mut disks = converted(2);
    disks[0].path = "images/g.qcow2".into();
    let dom = domain_for(&vmware(), &disks, &DomainOptions::default()).unwrap();
    let Disk::Disk { source, .. } = &dom.disks()[0] else {
        panic!("not a disk");
    };
    assert!(
        source.starts_with('/') && source.ends_with("/images/g.qcow2"),
        "{source}"
    );
}

#[test]
fn domain_serializes_for_reports() {
    let opts = DomainOptions {
        network_map: vec![("VM Network".into(), NetTarget::Bridge("br0".into()))],
        ..Default::default()
    };
    let dom = domain_for(&vmware(), &converted(2), &opts).unwrap();
    let json = serde_json::to_value(&dom).unwrap();
    assert_eq!(json["name"], "web01");
    assert_eq!(json["disks"][0]["device"], "disk");
    assert_eq!(json["disks"][0]["target"], "vda");
    assert_eq!(json["interfaces"][0]["target"]["type"], "bridge");
    assert_eq!(json["interfaces"][0]["target"]["name"], "br0");
    assert_eq!(json["os"]["machine"], "q35");
}
