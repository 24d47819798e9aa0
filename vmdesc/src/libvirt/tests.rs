#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use super::*;
use crate::model::{DiskBus, DiskDevice, NicDesc};
use crate::testutil::{corpus_file, tempdir};

const KIB: u64 = 1024;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn parse(xml: &str) -> Result<VmDescription, DescError> {
    parse_libvirt(Path::new("/etc/libvirt/qemu/guest.xml"), xml)
}

fn ok(xml: &str) -> VmDescription {
    parse(xml).unwrap_or_else(|e| panic!("{e}"))
}

fn err(xml: &str) -> String {
    let e = parse(xml).expect_err("should fail").to_string();
    assert!(!e.contains('\n'), "multi-line error: {e:?}");
    assert!(e.starts_with("/etc/libvirt/qemu/guest.xml: "), "{e}");
    e
}

/// A domain with `body` inside `<domain type='kvm'>` after the name.
fn dom(body: &str) -> String {
    format!("<domain type='kvm'><name>g</name>{body}</domain>")
}

fn has_warning(d: &VmDescription, needle: &str) -> bool {
    d.warnings.iter().any(|w| w.contains(needle))
}

#[test]
fn kvm_guest_full() {
    let d = ok(r#"<?xml version="1.0"?>
<!-- virsh dumpxml web01 -->
<domain type='kvm' id='3'>
  <name>web01</name>
  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
  <metadata>
    <libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0">
      <libosinfo:os id="http://debian.org/debian/12"/>
    </libosinfo:libosinfo>
  </metadata>
  <memory unit='GiB'>4</memory>
  <currentMemory unit='MiB'>2048</currentMemory>
  <vcpu placement='static' current='4'>8</vcpu>
  <os firmware='efi'>
    <type arch='x86_64' machine='pc-q35-8.2'>hvm</type>
    <firmware>
      <feature enabled='yes' name='secure-boot'/>
      <feature enabled='yes' name='enrolled-keys'/>
    </firmware>
    <boot dev='hd'/>
  </os>
  <cpu mode='host-passthrough'>
    <topology sockets='1' dies='2' cores='2' threads='2'/>
  </cpu>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web01.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw'/>
      <source dev='/dev/vg0/web01-data'/>
      <target dev='sda' bus='scsi'/>
      <readonly/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='sdb' bus='sata'/>
    </disk>
    <disk type='file' device='disk'>
      <source file='images/nv.img'/>
      <target dev='nvme0n1' bus='nvme'/>
    </disk>
    <disk type='file' device='disk'>
      <source file='/srv/usb.img'/>
      <target dev='sdc' bus='usb'/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:AB:cd:01'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:ab:cd:02'/>
      <source bridge='br0'/>
      <model type='e1000e'/>
    </interface>
  </devices>
</domain>"#);
    assert_eq!(d.name, "web01");
    assert_eq!(d.hypervisor, SourceHypervisor::Libvirt);
    assert_eq!(d.memory_bytes, 2 * GIB);
    assert_eq!(d.max_memory_bytes, Some(4 * GIB));
    assert_eq!(d.vcpus, 4);
    assert!(has_warning(&d, "ceiling of 8"), "{:?}", d.warnings);
    assert_eq!(
        d.topology,
        Some(Topology {
            sockets: 2,
            cores: 2,
            threads: 2
        })
    );
    assert!(has_warning(&d, "folded into 2 sockets"));
    assert_eq!(d.firmware, Firmware::Uefi { secure_boot: true });
    assert_eq!(d.os_hint.as_deref(), Some("http://debian.org/debian/12"));
    assert_eq!(d.xen_pv, None);

    let disks: Vec<_> = d
        .disks
        .iter()
        .map(|x| {
            (
                x.path.as_deref().and_then(Path::to_str),
                x.format.as_deref(),
                x.target.as_str(),
                x.bus,
                x.device,
                x.read_only,
            )
        })
        .collect();
    assert_eq!(
        disks,
        [
            (
                Some("/var/lib/libvirt/images/web01.qcow2"),
                Some("qcow2"),
                "vda",
                DiskBus::Virtio,
                DiskDevice::Disk,
                false
            ),
            (
                Some("/dev/vg0/web01-data"),
                Some("raw"),
                "sda",
                DiskBus::Scsi,
                DiskDevice::Disk,
                true
            ),
            (
                None,
                Some("raw"),
                "sdb",
                DiskBus::Sata,
                DiskDevice::Cdrom,
                true
            ),
            (
                Some("/etc/libvirt/qemu/images/nv.img"),
                None,
                "nvme0n1",
                DiskBus::Nvme,
                DiskDevice::Disk,
                false
            ),
            (
                Some("/srv/usb.img"),
                None,
                "sdc",
                DiskBus::Unknown,
                DiskDevice::Disk,
                false
            ),
        ]
    );
    assert_eq!(
        d.nics,
        [
            NicDesc {
                mac: Some("52:54:00:ab:cd:01".into()),
                model: Some("virtio".into()),
                network: Some("default".into()),
            },
            NicDesc {
                mac: Some("52:54:00:ab:cd:02".into()),
                model: Some("e1000e".into()),
                network: Some("br0".into()),
            },
        ]
    );
    // No "came from" note for KVM.
    assert!(!has_warning(&d, "host"), "{:?}", d.warnings);
}

#[test]
fn memory_units_follow_libvirt() {
    for (unit, value, bytes) in [
        (None, "1024", MIB),
        (Some("KiB"), "1024", MIB),
        (Some("k"), "2", 2 * KIB),
        (Some("K"), "2", 2 * KIB),
        (Some("KB"), "2", 2000),
        (Some("kb"), "2", 2000),
        (Some("b"), "4096", 4096),
        (Some("bytes"), "4096", 4096),
        (Some("M"), "512", 512 * MIB),
        (Some("MiB"), "512", 512 * MIB),
        (Some("MB"), "512", 512_000_000),
        (Some("G"), "3", 3 * GIB),
        (Some("GiB"), "3", 3 * GIB),
        (Some("GB"), "3", 3_000_000_000),
        (Some("T"), "1", 1 << 40),
        (Some("TB"), "1", 1_000_000_000_000),
    ] {
        let attr = unit.map(|u| format!(" unit='{u}'")).unwrap_or_default();
        let d = ok(&dom(&format!("<memory{attr}> {value} </memory>")));
        assert_eq!(d.memory_bytes, bytes, "{unit:?} {value}");
        assert_eq!(d.max_memory_bytes, None);
    }
    // currentMemory alone is taken; equal values give no ceiling.
    let d = ok(&dom("<currentMemory>1048576</currentMemory>"));
    assert_eq!(d.memory_bytes, GIB);
    let d = ok(&dom(
        "<memory unit='G'>1</memory><currentMemory unit='M'>1024</currentMemory>",
    ));
    assert_eq!((d.memory_bytes, d.max_memory_bytes), (GIB, None));

    assert!(err(&dom("<memory unit='furlongs'>1</memory>")).contains("unknown unit"));
    assert!(err(&dom("<memory unit='MiBs'>1</memory>")).contains("unknown unit"));
    assert!(err(&dom("<memory>-1</memory>")).contains("not a whole number"));
    assert!(err(&dom("<memory unit='EiB'>100</memory>")).contains("does not fit"));
    let d = ok(&dom(""));
    assert!(has_warning(&d, "memory unknown"));
}

#[test]
fn vcpus_and_topology() {
    let d = ok(&dom(""));
    assert_eq!((d.vcpus, d.topology), (1, None));
    let d = ok(&dom(
        "<vcpu>6</vcpu><cpu><topology sockets='2' dies='1' cores='3' threads='1'/></cpu>",
    ));
    assert_eq!(d.vcpus, 6);
    assert_eq!(
        d.topology,
        Some(Topology {
            sockets: 2,
            cores: 3,
            threads: 1
        })
    );
    assert!(!has_warning(&d, "folded"));
    // Absent levels count as 1.
    let d = ok(&dom("<vcpu>4</vcpu><cpu><topology cores='4'/></cpu>"));
    assert_eq!(d.topology.map(|t| (t.sockets, t.cores)), Some((1, 4)));
    // A topology that does not multiply out is dropped with a note.
    let d = ok(&dom(
        "<vcpu>4</vcpu><cpu><topology sockets='2' cores='4' threads='2'/></cpu>",
    ));
    assert_eq!(d.topology, None);
    assert!(has_warning(&d, "does not match 4 vCPUs"));
    // Overflowing products are a mismatch, not a panic.
    let d = ok(&dom(
        "<vcpu>4</vcpu><cpu><topology sockets='4294967295' cores='4294967295'/></cpu>",
    ));
    assert_eq!(d.topology, None);

    assert!(err(&dom("<vcpu>0</vcpu>")).contains("not a usable count"));
    assert!(err(&dom("<vcpu>many</vcpu>")).contains("not a usable count"));
    assert!(err(&dom("<vcpu>2</vcpu><cpu><topology cores='0'/></cpu>")).contains("cores"));
}

#[test]
fn firmware_variants() {
    let fw = |os: &str| ok(&dom(&format!("<os>{os}</os>"))).firmware;
    let bios = Firmware::Bios;
    let uefi = Firmware::Uefi { secure_boot: false };
    let secure = Firmware::Uefi { secure_boot: true };
    assert_eq!(fw("<type>hvm</type>"), bios);
    assert_eq!(
        fw("<type>hvm</type><loader type='rom'>/usr/lib/xen/boot/hvmloader</loader>"),
        bios
    );
    assert_eq!(
        fw("<type>hvm</type><loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>"),
        uefi
    );
    assert_eq!(
        fw("<type>hvm</type><loader>/usr/share/AAVMF/AAVMF_CODE.fd</loader>"),
        uefi
    );
    assert_eq!(
        fw("<type>hvm</type><loader readonly='yes' secure='yes' type='pflash'>/usr/share/edk2/ovmf/OVMF_CODE.secboot.fd</loader>"),
        secure
    );
    assert_eq!(
        ok(&dom("<os firmware='efi'><type>hvm</type></os>")).firmware,
        uefi
    );
    assert_eq!(
        ok(&dom(
            "<os firmware='efi'><type>hvm</type><firmware>\
             <feature enabled='no' name='secure-boot'/></firmware></os>"
        ))
        .firmware,
        uefi
    );
    assert_eq!(
        ok(&dom("<os firmware='bios'><type>hvm</type></os>")).firmware,
        bios
    );
}

#[test]
fn xen_pv_guest_from_virsh_dumpxml() {
    let d = ok(r#"<domain type='xen' id='7'>
  <name>XenGuest2</name>
  <uuid>c7a5fdb2-cdaf-9455-926a-d65c16db1809</uuid>
  <memory unit='KiB'>592896</memory>
  <currentMemory unit='KiB'>403456</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <bootloader>/usr/bin/pygrub</bootloader>
  <bootloader_args>-q</bootloader_args>
  <os>
    <type arch='x86_64' machine='xenpv'>linux</type>
    <kernel>/boot/vmlinuz</kernel>
    <initrd>/boot/initrd.img</initrd>
    <cmdline>root=/dev/xvda1 console=hvc0</cmdline>
  </os>
  <devices>
    <disk type='block' device='disk'>
      <driver name='phy'/>
      <source dev='/dev/HostVG/XenGuest2'/>
      <target dev='xvda' bus='xen'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='tap' type='aio'/>
      <source file='/var/lib/xen/images/data.img'/>
      <target dev='xvdb'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='tap2' type='vpc'/>
      <source file='old.vhd'/>
      <target dev='xvdc'/>
    </disk>
    <disk type='network' device='disk'>
      <source protocol='rbd' name='pool/image'/>
      <target dev='xvdd' bus='xen'/>
    </disk>
    <interface type='bridge'>
      <mac address='00:16:3e:66:94:9c'/>
      <source bridge='xenbr0'/>
      <script path='vif-bridge'/>
    </interface>
    <interface type='ethernet'>
      <mac address='00:16:3e:zz:94:9c'/>
    </interface>
    <hostdev mode='subsystem' type='pci'/>
    <console type='pty'><target type='xen' port='0'/></console>
  </devices>
</domain>"#);
    assert_eq!(d.name, "XenGuest2");
    assert_eq!(d.hypervisor, SourceHypervisor::Libvirt);
    assert!(has_warning(&d, "from a Xen host"), "{:?}", d.warnings);
    assert_eq!(d.memory_bytes, 403_456 * KIB);
    assert_eq!(d.max_memory_bytes, Some(592_896 * KIB));
    assert_eq!(d.vcpus, 2);
    assert_eq!(d.firmware, Firmware::Bios);
    assert_eq!(
        d.xen_pv,
        Some(XenPvBoot {
            bootloader: Some("/usr/bin/pygrub".into()),
            kernel: Some("/boot/vmlinuz".into()),
            ramdisk: Some("/boot/initrd.img".into()),
            extra: Some("root=/dev/xvda1 console=hvc0".into()),
        })
    );
    assert!(has_warning(&d, "bootloader_args"));
    let disks: Vec<_> = d
        .disks
        .iter()
        .map(|x| {
            (
                x.path.clone(),
                x.format.as_deref(),
                x.target.as_str(),
                x.bus,
            )
        })
        .collect();
    assert_eq!(
        disks,
        [
            (
                Some(PathBuf::from("/dev/HostVG/XenGuest2")),
                None,
                "xvda",
                DiskBus::Xen
            ),
            (
                Some(PathBuf::from("/var/lib/xen/images/data.img")),
                Some("raw"),
                "xvdb",
                DiskBus::Xen
            ),
            (
                Some(PathBuf::from("/etc/libvirt/qemu/old.vhd")),
                Some("vhd"),
                "xvdc",
                DiskBus::Xen
            ),
        ]
    );
    assert!(has_warning(&d, "disk xvdd: type `network`"));
    assert_eq!(d.nics.len(), 2);
    assert_eq!(d.nics[0].mac.as_deref(), Some("00:16:3e:66:94:9c"));
    assert_eq!(d.nics[0].network.as_deref(), Some("xenbr0"));
    assert_eq!(d.nics[0].model, None);
    assert_eq!(d.nics[1].mac, None);
    assert!(has_warning(&d, "00:16:3e:zz:94:9c"));
    assert!(has_warning(&d, "1 host device"));
}

#[test]
fn xen_hvm_and_pvh() {
    let d = ok(r#"<domain type='xen'><name>hvm</name>
  <os><type arch='x86_64' machine='xenfv'>hvm</type>
    <loader type='rom'>/usr/lib/xen/boot/hvmloader</loader><boot dev='hd'/></os>
  <devices><disk type='file' device='disk'><source file='/x.img'/><target dev='hda'/></disk>
  <disk type='file' device='cdrom'><source file='/x.iso'/><target dev='hdc'/></disk>
  <disk type='file' device='floppy'><target dev='fda'/></disk></devices></domain>"#);
    assert_eq!(d.xen_pv, None);
    assert_eq!(d.firmware, Firmware::Bios);
    let buses: Vec<_> = d
        .disks
        .iter()
        .map(|x| (x.bus, x.device, x.read_only))
        .collect();
    assert_eq!(
        buses,
        [
            (DiskBus::Ide, DiskDevice::Disk, false),
            (DiskBus::Ide, DiskDevice::Cdrom, true),
            (DiskBus::Unknown, DiskDevice::Floppy, false),
        ]
    );

    let d = ok("<domain type='xen'><name>pvh</name><os><type>xenpvh</type>\
                <kernel>/boot/vmlinuz</kernel></os></domain>");
    assert_eq!(
        d.xen_pv.and_then(|p| p.kernel).as_deref(),
        Some("/boot/vmlinuz")
    );
    // A bootloader makes it PV even without os/type.
    let d = ok("<domain type='xen'><name>pv</name><bootloader>pygrub</bootloader></domain>");
    assert_eq!(
        d.xen_pv.and_then(|p| p.bootloader).as_deref(),
        Some("pygrub")
    );
    // HVM direct kernel boot is noted, not kept.
    let d = ok(&dom("<os><type>hvm</type><kernel>/vmlinuz</kernel></os>"));
    assert_eq!(d.xen_pv, None);
    assert!(has_warning(&d, "direct kernel boot"));
}

#[test]
fn disk_source_rules() {
    let d = ok(&dom("<devices>\
         <disk type='volume' device='disk'><source pool='default' volume='v1.qcow2'/>\
           <target dev='vda' bus='virtio'/></disk>\
         <disk type='file' device='disk'><target dev='vdb'/></disk>\
         <disk type='dir' device='floppy'><source dir='/tmp'/><target dev='fda'/></disk>\
         <disk device='lun' type='block'><source dev='/dev/sdz'/><target dev='sdz'/></disk>\
         </devices>"));
    assert_eq!(d.disks.len(), 2, "{:?}", d.disks);
    assert_eq!(d.disks[0].path, Some(PathBuf::from("v1.qcow2")));
    assert!(has_warning(&d, "pool `default`"));
    assert!(has_warning(&d, "vdb has no source"));
    assert!(has_warning(&d, "type `dir`"));
    assert_eq!(
        (d.disks[1].bus, d.disks[1].device),
        (DiskBus::Scsi, DiskDevice::Disk)
    );
    assert!(has_warning(&d, "LUN"));

    assert!(err(&dom(
        "<devices><disk type='file'><source file='/a'/></disk></devices>"
    ))
    .contains("disk 1 has no <target dev>"));
    assert!(err(&dom(
        "<devices><disk type='file' device='tape'><target dev='st0'/></disk></devices>"
    ))
    .contains("unknown device"));
}

#[test]
fn relative_sources_resolve_against_the_file() {
    let dir = tempdir();
    let xml = dir.path().join("guest.xml");
    std::fs::write(
        &xml,
        "\u{feff}<domain type='kvm'><name>rel</name><devices>\
         <disk type='file' device='disk'><source file='sub/disk.qcow2'/>\
         <target dev='vda' bus='virtio'/></disk></devices></domain>",
    )
    .unwrap();
    let d = read_libvirt(&xml).unwrap();
    assert_eq!(d.disks[0].path, Some(dir.path().join("sub/disk.qcow2")));
}

#[test]
fn hostile_inputs_fail_cleanly() {
    assert!(err("").contains("XML"));
    assert!(err("<domain").contains("XML"));
    assert!(err("<domain type='kvm'></domain>").contains("no <name>"));
    assert!(err("<domain type='kvm'><name>  </name></domain>").contains("no <name>"));
    assert!(err("<Envelope/>").contains("not a libvirt <domain>"));
    assert!(err("<x:domain xmlns:x='urn:x'><name>a</name></x:domain>").contains("<domain>"));
    assert!(err("<domain type='lxc'><name>c</name></domain>").contains("container"));
    assert!(err(&dom("<os><type>exe</type></os>")).contains("unsupported"));
    let e =
        err("<!DOCTYPE domain [<!ENTITY a 'aaaa'>]><domain type='kvm'><name>&a;</name></domain>");
    assert!(e.contains("XML"), "{e}");
    let e = err(&format!(
        "<domain type='kvm'><name>g</name><x>{}</x></domain>",
        "<y/>".repeat(300_000)
    ));
    assert!(e.contains("XML"), "{e}");
    let e = err(&dom("<vcpu>\n1\n2</vcpu>"));
    assert!(e.contains("not a usable count"), "{e}");

    let d = ok("<domain><name>untyped</name></domain>");
    assert!(has_warning(&d, "no type attribute"));
    let d = ok("<domain type='vmware'><name>esx</name></domain>");
    assert!(has_warning(&d, "'vmware' host"));

    let dir = tempdir();
    let big = dir.path().join("big.xml");
    std::fs::write(
        &big,
        " ".repeat(usize::try_from(MAX_XML_BYTES + 1).unwrap()),
    )
    .unwrap();
    let e = read_libvirt(&big).unwrap_err().to_string();
    assert!(e.contains("larger than 10 MiB"), "{e}");
    let bin = dir.path().join("bin.xml");
    std::fs::write(&bin, b"<domain>\xff\xfe</domain>").unwrap();
    let e = read_libvirt(&bin).unwrap_err().to_string();
    assert!(e.contains("not UTF-8"), "{e}");
    let e = read_libvirt(&dir.path().join("absent.xml")).unwrap_err();
    assert!(matches!(e, DescError::Io { .. }));
}

/// The only domain XML in the corpus: virt-v2v's expected `-o libvirt` output for
/// test-i-ova (a KVM guest, so it reads as a source too).
#[test]
fn corpus_virt_v2v_test_i_ova_xml() {
    let Some(path) = corpus_file("virt-v2v/test-i-ova.xml") else {
        return;
    };
    let d = read_libvirt(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.name, "TestOva");
    assert_eq!(d.hypervisor, SourceHypervisor::Libvirt);
    assert_eq!(d.memory_bytes, 2 * GIB);
    assert_eq!(d.max_memory_bytes, None);
    assert_eq!(d.vcpus, 1);
    assert_eq!(d.firmware, Firmware::Bios);
    assert_eq!(d.os_hint.as_deref(), Some("http://microsoft.com/win/2k22"));
    let dir = path.parent().unwrap();
    let disks: Vec<_> = d
        .disks
        .iter()
        .map(|x| (x.path.clone(), x.target.as_str(), x.bus, x.device))
        .collect();
    assert_eq!(
        disks,
        [
            (
                Some(dir.join("TestOva-sda")),
                "vda",
                DiskBus::Virtio,
                DiskDevice::Disk
            ),
            (None, "sda", DiskBus::Sata, DiskDevice::Cdrom),
            (None, "fda", DiskBus::Unknown, DiskDevice::Floppy),
        ]
    );
    assert_eq!(
        d.nics,
        [NicDesc {
            mac: None,
            model: Some("virtio".into()),
            network: Some("VM Network".into()),
        }]
    );
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}
