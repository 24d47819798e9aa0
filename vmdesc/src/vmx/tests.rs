use std::path::{Path, PathBuf};

use super::*;

use crate::testutil::{corpus, files_with_ext, tempdir};

fn parse(text: &str) -> VmDescription {
    match parse_vmx(Path::new("/vms/test/test.vmx"), text) {
        Ok(d) => d,
        Err(e) => panic!("parse failed: {e}"),
    }
}

fn targets(d: &VmDescription) -> Vec<&str> {
    d.disks.iter().map(|x| x.target.as_str()).collect()
}

fn macs(d: &VmDescription) -> Vec<Option<&str>> {
    d.nics.iter().map(|n| n.mac.as_deref()).collect()
}

fn models(d: &VmDescription) -> Vec<Option<&str>> {
    d.nics.iter().map(|n| n.model.as_deref()).collect()
}

fn has_warning(d: &VmDescription, needle: &str) -> bool {
    d.warnings.iter().any(|w| w.contains(needle))
}

#[test]
fn corpus_every_vmx_parses_or_is_refused_cleanly() {
    let Some(dir) = corpus() else { return };
    let files = files_with_ext(&dir, "vmx");
    assert!(files.len() >= 14, "found only {files:?}");
    for f in files {
        let r = read_vmx(&f);
        // The xm config named .vmx is the one file that is not VMware's.
        if f.ends_with("xen-history/xmexample.vmx") {
            assert!(
                matches!(r, Err(DescError::Malformed { .. })),
                "{}: {r:?}",
                f.display()
            );
            continue;
        }
        let d = match r {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(d.hypervisor, SourceHypervisor::Vmware, "{}", f.display());
        assert!(!d.name.is_empty(), "{}", f.display());
        assert!(
            d.vcpus >= 1 && d.memory_bytes >= 32 << 20,
            "{}",
            f.display()
        );
        assert!(!d.disks.is_empty(), "{}", f.display());
        assert!(!d.nics.is_empty(), "{}", f.display());
        // Serialises (the report writer needs it).
        assert!(serde_json::to_string(&d).is_ok());
    }
}

fn corpus_file(rel: &str) -> Option<(PathBuf, VmDescription)> {
    let path = corpus()?.join(rel);
    match read_vmx(&path) {
        Ok(d) => Some((path, d)),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn corpus_esx_wild_12_efi_secure_boot_empty_cdrom() {
    let Some((path, d)) = corpus_file("libvirt-vmx/esx-in-the-wild-12.vmx") else {
        return;
    };
    assert_eq!(d.name, "Auto-esx8.0-rhell9.3-efi-with-empty-cdrom");
    assert_eq!(d.vcpus, 1);
    assert_eq!(d.memory_bytes, 2048 << 20);
    assert_eq!(d.firmware, Firmware::Uefi { secure_boot: true });
    assert_eq!(d.os_hint.as_deref(), Some("rhel9-64"));
    assert_eq!(targets(&d), ["scsi0:0", "sata0:0"]);
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    assert_eq!(
        d.disks[0].path,
        Some(dir.join("Auto-esx8.0-rhell9.3-efi-with-empty-cdrom.vmdk"))
    );
    assert_eq!(d.disks[0].format.as_deref(), Some("vmdk"));
    assert_eq!(d.disks[0].bus, DiskBus::Scsi);
    assert_eq!(d.disks[1].device, DiskDevice::Cdrom);
    assert_eq!(d.disks[1].bus, DiskBus::Sata);
    assert_eq!(d.disks[1].path, None);
    assert!(d.disks[1].read_only);
    assert_eq!(macs(&d), [Some("00:50:56:a0:cf:2f")]);
    assert_eq!(models(&d), [Some("vmxnet3")]);
    assert_eq!(d.nics[0].network.as_deref(), Some("VM Network"));
}

#[test]
fn corpus_esx_wild_13_static_mac_escaped_annotation() {
    let Some((path, d)) = corpus_file("libvirt-vmx/esx-in-the-wild-13.vmx") else {
        return;
    };
    assert_eq!(
        d.name,
        "Test-Mig-VM-1 (01ce57d0-4e20-41a5-8b6c-bcbf49a032ec)"
    );
    assert_eq!(d.memory_bytes, 1024 << 20);
    assert_eq!(d.firmware, Firmware::Bios);
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    assert_eq!(targets(&d), ["scsi0:0"]);
    assert_eq!(
        d.disks[0].path,
        Some(dir.join("Test-Mig-VM-1 (01ce57d0-4e20-41a5-8b6c-bcbf49a032ec)_2.vmdk"))
    );
    assert_eq!(macs(&d), [Some("fa:16:3e:bb:2c:4a")]);
    assert_eq!(d.nics[0].network.as_deref(), Some("Test"));
}

#[test]
fn corpus_esx_wild_14_zero_mac_and_host_cdrom() {
    let Some((_, d)) = corpus_file("libvirt-vmx/esx-in-the-wild-14.vmx") else {
        return;
    };
    assert_eq!(d.name, "wild14");
    assert_eq!(d.vcpus, 12);
    assert_eq!(d.memory_bytes, 32768 << 20);
    assert_eq!(targets(&d), ["scsi0:0", "scsi0:1", "ide0:0"]);
    assert_eq!(d.disks[2].device, DiskDevice::Cdrom);
    assert_eq!(d.disks[2].path, None);
    // Static all-zero MAC: unusable, so none.
    assert_eq!(macs(&d), [None]);
    assert!(has_warning(&d, "00:00:00:00:00:00"));
}

#[test]
fn corpus_esx_wild_17_datastore_iso_and_subfolder_disk() {
    let Some((path, d)) = corpus_file("libvirt-vmx/esx-in-the-wild-17.vmx") else {
        return;
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    assert_eq!(d.vcpus, 2);
    assert_eq!(d.memory_bytes, 4096 << 20);
    assert_eq!(targets(&d), ["scsi0:0", "scsi0:1", "sata0:0"]);
    assert_eq!(
        d.disks[1].path,
        Some(dir.join("subfolder/esx8.0-win11-with-second-disk-in-subfolder_1.vmdk"))
    );
    assert_eq!(
        d.disks[2].path.as_deref(),
        Some(Path::new(
            "/vmfs/volumes/f84f070c-0d65498d/win-iso/windows_11_x64_official_dvd.iso"
        ))
    );
    assert_eq!(d.disks[2].format.as_deref(), Some("raw"));
    assert!(has_warning(&d, "datastore"));
    assert_eq!(macs(&d), [Some("00:50:56:a5:b8:68")]);
    assert_eq!(models(&d), [Some("e1000e")]);
}

#[test]
fn corpus_esx_wild_2_mixed_buses_and_floppies() {
    let Some((path, d)) = corpus_file("libvirt-vmx/esx-in-the-wild-2.vmx") else {
        return;
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    assert_eq!(d.name, "virtDebian1");
    assert_eq!(d.vcpus, 4);
    assert_eq!(d.memory_bytes, 1000 << 20);
    assert_eq!(
        targets(&d),
        ["scsi0:0", "scsi1:0", "ide0:0", "ide0:1", "ide1:1", "floppy0", "floppy1"]
    );
    assert_eq!(d.disks[1].device, DiskDevice::Cdrom);
    assert_eq!(d.disks[1].path, Some(dir.join("Debian1-cdrom.iso")));
    assert_eq!(d.disks[4].path, Some(dir.join("Debian1-IDE.vmdk")));
    assert_eq!(d.disks[4].device, DiskDevice::Disk);
    assert_eq!(d.disks[4].bus, DiskBus::Ide);
    // /dev/scd0 and /dev/fd0 are the host's.
    assert_eq!(d.disks[3].path, None);
    assert_eq!(d.disks[5].device, DiskDevice::Floppy);
    assert_eq!(d.disks[5].path, None);
    assert_eq!(macs(&d), [Some("00:0c:29:3c:98:3e")]);
    assert_eq!(models(&d), [Some("vlance")]);
}

#[test]
fn corpus_fusion_wild_1_default_nic_model() {
    let Some((_, d)) = corpus_file("libvirt-vmx/fusion-in-the-wild-1.vmx") else {
        return;
    };
    assert_eq!(d.name, "ATTM_VM");
    assert_eq!(d.vcpus, 2);
    assert_eq!(d.memory_bytes, 3572 << 20);
    // scsi0:0 has no deviceType: a .vmdk is a disk.
    assert_eq!(targets(&d), ["scsi0:0", "ide0:0"]);
    assert_eq!(d.disks[0].device, DiskDevice::Disk);
    assert_eq!(d.disks[1].device, DiskDevice::Cdrom);
    assert_eq!(
        macs(&d),
        [Some("00:0c:29:3b:64:ea"), Some("00:0c:29:3b:64:f4")]
    );
    // winxppro is 32-bit.
    assert_eq!(models(&d), [Some("vlance"), Some("vlance")]);
    assert_eq!(d.nics[1].network.as_deref(), Some("VMnet0"));
}

#[test]
fn corpus_gsx_wild_3_ide_disk_and_absent_cdrom() {
    let Some((_, d)) = corpus_file("libvirt-vmx/gsx-in-the-wild-3.vmx") else {
        return;
    };
    assert_eq!(d.name, "Router");
    assert_eq!(d.memory_bytes, 32 << 20);
    assert_eq!(targets(&d), ["ide0:0"]);
    assert_eq!(d.os_hint.as_deref(), Some("other26xlinux"));
    assert_eq!(
        macs(&d),
        [Some("00:0c:29:c4:be:5a"), Some("00:0c:29:c4:be:64")]
    );
    let nets: Vec<_> = d.nics.iter().map(|n| n.network.as_deref()).collect();
    assert_eq!(nets, [Some("net1"), Some("net2")]);
}

#[test]
fn corpus_v2v_1_twenty_one_disks() {
    let Some((path, d)) = corpus_file("virt-v2v/test-i-vmx-1.vmx") else {
        return;
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    assert_eq!(d.name, "BZ1308535_21disks");
    assert_eq!(d.memory_bytes, 2147483648);
    let disks: Vec<_> = d
        .disks
        .iter()
        .filter(|x| x.device == DiskDevice::Disk)
        .collect();
    assert_eq!(disks.len(), 21);
    assert_eq!(disks[7].target, "scsi0:8");
    assert_eq!(disks[7].path, Some(dir.join("BZ1308535_21disks_7.vmdk")));
    assert_eq!(disks[20].target, "scsi1:5");
    // The CD-ROM (ide1:0) comes after SCSI.
    assert_eq!(d.disks.last().map(|x| x.target.as_str()), Some("ide1:0"));
    assert_eq!(macs(&d), [Some("00:0c:29:36:ef:31")]);
}

#[test]
fn corpus_v2v_5_cores_per_socket_no_devicetype() {
    let Some((_, d)) = corpus_file("virt-v2v/test-i-vmx-5.vmx") else {
        return;
    };
    assert_eq!(d.name, "MSEdge - Win10_preview");
    assert_eq!(
        d.topology,
        Some(Topology {
            sockets: 1,
            cores: 1,
            threads: 1
        })
    );
    assert_eq!(targets(&d), ["scsi0:0"]);
    assert_eq!(models(&d), [Some("e1000e")]);
    assert_eq!(macs(&d), [Some("00:0c:29:bf:e4:5d")]);
}

#[test]
fn corpus_v2v_6_nvme() {
    let Some((_, d)) = corpus_file("virt-v2v/test-i-vmx-6.vmx") else {
        return;
    };
    assert_eq!(targets(&d), ["sata0:0", "nvme0:0"]);
    assert_eq!(d.disks[1].bus, DiskBus::Nvme);
    assert_eq!(d.disks[0].path, None);
    assert_eq!(macs(&d), [Some("00:50:56:ac:cf:51")]);
}

#[test]
fn corpus_v2v_7_uefi_secure_boot_scsi_then_sata() {
    let Some((path, d)) = corpus_file("virt-v2v/test-i-vmx-7.vmx") else {
        return;
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    assert_eq!(d.name, "win2019");
    assert_eq!(d.vcpus, 2);
    assert_eq!(d.memory_bytes, 4294967296);
    assert_eq!(d.firmware, Firmware::Uefi { secure_boot: true });
    let disks: Vec<_> = d
        .disks
        .iter()
        .filter(|x| x.device == DiskDevice::Disk)
        .map(|x| (x.bus, x.path.clone()))
        .collect();
    assert_eq!(
        disks,
        [
            (DiskBus::Scsi, Some(dir.join("win2019.vmdk"))),
            (DiskBus::Sata, Some(dir.join("win2019_1.vmdk")))
        ]
    );
    assert_eq!(macs(&d), [Some("00:0c:29:46:9b:0b")]);
    assert_eq!(models(&d), [Some("vmxnet3")]);
}

#[test]
fn corpus_v2v_3_uefi_without_secure_boot() {
    let Some((_, d)) = corpus_file("virt-v2v/test-i-vmx-3.vmx") else {
        return;
    };
    assert_eq!(d.name, "RHEL 7.1 UEFI");
    assert_eq!(d.firmware, Firmware::Uefi { secure_boot: false });
}

#[test]
fn escapes_are_undone() {
    let d = parse("displayName = \"a |22quoted|22 name |7C pipe\"\nmemsize = \"64\"\n");
    assert_eq!(d.name, "a \"quoted\" name | pipe");
    let (s, bad) = unescape("x|zzy|4");
    assert_eq!(s, "x|zzy|4");
    assert!(bad);
    // A multi-byte UTF-8 character written as escapes.
    assert_eq!(unescape("caf|C3|A9").0, "café");
    // An escape producing invalid UTF-8 does not panic.
    assert!(unescape("|FF|FE").1);
}

#[test]
fn keys_are_case_insensitive_and_last_wins() {
    let d = parse(
        "DISPLAYNAME = \"one\"\nNumVCPUs = \"2\"\nMEMSIZE = \"128\"\ndisplayname = \"two\"\n",
    );
    assert_eq!(d.name, "two");
    assert_eq!(d.vcpus, 2);
    assert_eq!(d.memory_bytes, 128 << 20);
}

#[test]
fn defaults_and_name_from_file() {
    let d = parse(".encoding = \"UTF-8\"\nguestOS = \"other\"\n");
    assert_eq!(d.name, "test");
    assert_eq!(d.vcpus, 1);
    assert_eq!(d.memory_bytes, 32 << 20);
    assert_eq!(d.firmware, Firmware::Bios);
    assert!(d.disks.is_empty() && d.nics.is_empty());
}

#[test]
fn address_type_static_vs_generated() {
    let d = parse(concat!(
        "ethernet0.present = \"TRUE\"\n",
        "ethernet0.addressType = \"static\"\n",
        "ethernet0.address = \"00:50:56:AB:CD:EF\"\n",
        "ethernet0.generatedAddress = \"00:0c:29:00:00:01\"\n",
        "ethernet1.present = \"TRUE\"\n",
        "ethernet1.addressType = \"generated\"\n",
        "ethernet1.address = \"00:50:56:00:00:09\"\n",
        "ethernet1.generatedAddress = \"00-0C-29-00-00-02\"\n",
        "ethernet2.present = \"TRUE\"\n",
        "ethernet2.virtualDev = \"E1000\"\n",
        "ethernet3.present = \"FALSE\"\n",
        "ethernet4.present = \"TRUE\"\n",
        "ethernet4.address = \"zz:zz\"\n",
        "guestOS = \"debian11-64\"\n",
    ));
    assert_eq!(
        macs(&d),
        [
            Some("00:50:56:ab:cd:ef"),
            Some("00:0c:29:00:00:02"),
            None,
            None
        ]
    );
    // 64-bit guest without virtualDev: e1000, with a warning.
    assert_eq!(
        models(&d),
        [Some("e1000"), Some("e1000"), Some("e1000"), Some("e1000")]
    );
    assert!(has_warning(&d, "assumed e1000"));
    assert!(has_warning(&d, "zz:zz"));
}

#[test]
fn cores_per_socket() {
    let d = parse("numvcpus = \"8\"\ncpuid.coresPerSocket = \"4\"\n");
    assert_eq!(
        d.topology,
        Some(Topology {
            sockets: 2,
            cores: 4,
            threads: 1
        })
    );
    let d = parse("numvcpus = \"6\"\ncpuid.coresPerSocket = \"4\"\n");
    assert_eq!(d.topology, None);
    assert!(has_warning(&d, "does not divide"));
    let d = parse("numvcpus = \"6\"\ncpuid.coresPerSocket = \"0\"\n");
    assert_eq!(d.topology, None);
}

#[test]
fn efi_and_secure_boot() {
    let d = parse("firmware = \"EFI\"\nuefi.secureBoot.enabled = \"true\"\n");
    assert_eq!(d.firmware, Firmware::Uefi { secure_boot: true });
    let d = parse("firmware = \"efi\"\n");
    assert_eq!(d.firmware, Firmware::Uefi { secure_boot: false });
    let d = parse("firmware = \"bios\"\nuefi.secureBoot.enabled = \"TRUE\"\n");
    assert_eq!(d.firmware, Firmware::Bios);
    assert!(has_warning(&d, "secureBoot"));
    let d = parse("firmware = \"coreboot\"\n");
    assert_eq!(d.firmware, Firmware::Bios);
    assert!(has_warning(&d, "coreboot"));
}

#[test]
fn crlf_comments_and_bom() {
    let d = parse(
        "#!/usr/bin/vmware\r\n.encoding = \"UTF-8\"\r\n# comment\r\n\r\ndisplayName = \"crlf\"  # trailing\r\nmemsize = \"256\"\r\nscsi0.present = \"TRUE\"\r\nscsi0:0.present = \"TRUE\"\r\nscsi0:0.fileName = \"disk.vmdk\"\r\n",
    );
    assert_eq!(d.name, "crlf");
    assert_eq!(d.memory_bytes, 256 << 20);
    assert_eq!(d.disks[0].path, Some(PathBuf::from("/vms/test/disk.vmdk")));
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);

    let dir = tempdir();
    let p = dir.path().join("bom.vmx");
    std::fs::write(&p, b"\xEF\xBB\xBFdisplayName = \"bom\"\r\n").unwrap_or_else(|e| panic!("{e}"));
    let d = read_vmx(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.name, "bom");
}

#[test]
fn latin1_file_is_read_with_a_warning() {
    let dir = tempdir();
    let p = dir.path().join("l1.vmx");
    std::fs::write(&p, b"displayName = \"caf\xE9\"\n").unwrap_or_else(|e| panic!("{e}"));
    let d = read_vmx(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.name, "café");
    assert!(has_warning(&d, "Latin-1"));
}

#[test]
fn disk_rules() {
    let d = parse(concat!(
        "scsi0.present = \"FALSE\"\n",
        "scsi0:0.present = \"TRUE\"\n",
        "scsi0:0.fileName = \"lost.vmdk\"\n",
        "scsi1:7.present = \"TRUE\"\n",
        "scsi1:7.fileName = \"ctrl.vmdk\"\n",
        "sata0:0.present = \"TRUE\"\n",
        "sata0:0.deviceType = \"disk\"\n",
        "sata0:0.fileName = \"../other/x.vmdk\"\n",
        "ide1:0.present = \"TRUE\"\n",
        "ide1:0.deviceType = \"cdrom-image\"\n",
        "ide1:0.fileName = \"emptyBackingString\"\n",
        "ide0:0.present = \"TRUE\"\n",
        "ide0:0.deviceType = \"weird\"\n",
        "ide0:1.present = \"TRUE\"\n",
        "ide0:1.deviceType = \"ata-hardDisk\"\n",
        "nvme9:0.present = \"TRUE\"\n",
        "floppy0.present = \"TRUE\"\n",
        "floppy0.fileType = \"file\"\n",
        "floppy0.fileName = \"boot.flp\"\n",
        "scsi99999999999999999:0.present = \"TRUE\"\n",
    ));
    assert_eq!(targets(&d), ["sata0:0", "ide1:0", "floppy0"]);
    assert!(has_warning(&d, "controller scsi0 is not present"));
    assert!(has_warning(&d, "unit 7"));
    assert!(has_warning(&d, "leaves the .vmx folder"));
    assert!(has_warning(&d, "weird"));
    assert!(has_warning(&d, "disk has no fileName"));
    assert!(has_warning(&d, "nvme9:0"));
    assert_eq!(d.disks[1].path, None);
    assert!(d.disks[1].read_only);
    assert_eq!(d.disks[2].path, Some(PathBuf::from("/vms/test/boot.flp")));
    assert_eq!(d.disks[2].format.as_deref(), Some("raw"));
}

#[test]
fn host_paths_are_kept_and_duplicate_slots_merged() {
    let d = parse(concat!(
        "scsi0:0.present = \"TRUE\"\n",
        "scsi0:00.present = \"TRUE\"\n",
        "scsi0:0.fileName = \"C:\\VMs\\a.vmdk\"\n",
        "scsi0:1.present = \"TRUE\"\n",
        "scsi0:1.fileName = \"/srv/vm/b.VMDK\"\n",
    ));
    assert_eq!(targets(&d), ["scsi0:0", "scsi0:1"]);
    assert_eq!(d.disks[0].path, Some(PathBuf::from("C:\\VMs\\a.vmdk")));
    assert_eq!(d.disks[1].path, Some(PathBuf::from("/srv/vm/b.VMDK")));
    assert_eq!(d.disks[1].format.as_deref(), Some("vmdk"));
    assert!(has_warning(&d, "absolute host path"));
}

#[test]
fn hostile_binary_garbage_is_malformed() {
    let p = Path::new("/x/garbage.vmx");
    assert!(matches!(
        parse_vmx(p, "\u{0}\u{1}\u{2}abc"),
        Err(DescError::Malformed { .. })
    ));
    assert!(matches!(parse_vmx(p, ""), Err(DescError::Malformed { .. })));
    assert!(matches!(
        parse_vmx(p, "just some text\nwithout pairs\n"),
        Err(DescError::Malformed { .. })
    ));
    // Pseudo-random bytes through the file reader.
    let dir = tempdir();
    let f = dir.path().join("rand.vmx");
    let mut x: u32 = 0x1234_5678;
    let bytes: Vec<u8> = (0..65536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect();
    std::fs::write(&f, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let r = read_vmx(&f);
    assert!(matches!(r, Err(DescError::Malformed { .. })), "{r:?}");
    // Same, but with no NUL bytes, so the line check must catch it.
    let no_nul: Vec<u8> = bytes.iter().map(|&b| b.max(1)).collect();
    std::fs::write(&f, &no_nul).unwrap_or_else(|e| panic!("{e}"));
    let r = read_vmx(&f);
    assert!(matches!(r, Err(DescError::Malformed { .. })), "{r:?}");
}

#[test]
fn hostile_ten_megabytes_is_refused() {
    let dir = tempdir();
    let f = dir.path().join("big.vmx");
    let line = "displayName = \"x\"\n";
    let text = line.repeat(10 * 1024 * 1024 / line.len() + 1);
    std::fs::write(&f, &text).unwrap_or_else(|e| panic!("{e}"));
    let r = read_vmx(&f);
    match r {
        Err(DescError::Malformed { reason, .. }) => assert!(reason.contains("larger")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse_vmx(&f, &text),
        Err(DescError::Malformed { .. })
    ));
}

#[test]
fn hostile_missing_and_odd_values_warn() {
    let d = parse(concat!(
        "displayName = \"\"\n",
        "numvcpus = \"lots\"\n",
        "memsize = \"99999999999999999\"\n",
        "scsi0:0.present = \"maybe\"\n",
        "ethernet0.present = \"TRUE\"\n",
        "ethernet0.addressType = \"static\"\n",
        "key without value\n",
        "unterminated = \"abc\n",
        "novalue =\n",
    ));
    assert_eq!(d.vcpus, 1);
    assert_eq!(d.memory_bytes, 32 << 20);
    assert!(d.disks.is_empty());
    assert_eq!(macs(&d), [None]);
    assert!(has_warning(&d, "lots"));
    assert!(has_warning(&d, "overflows"));
    assert!(has_warning(&d, "maybe"));
    assert!(has_warning(&d, "not a key = \"value\" line"));
}

#[test]
fn hostile_many_warnings_are_capped() {
    let mut text = String::from("displayName = \"x\"\n");
    for i in 0..5000 {
        text.push_str(&format!("ethernet{i}.present = \"TRUE\"\n"));
    }
    let d = parse(&text);
    assert_eq!(d.nics.len(), 10);
    assert!(d.warnings.len() <= MAX_WARNINGS + 1);
    assert!(has_warning(&d, "more warnings"));
}

#[test]
fn missing_file_is_io() {
    let r = read_vmx(Path::new("/nonexistent/dir/vm.vmx"));
    match r {
        Err(e @ DescError::Io { .. }) => assert!(e.to_string().contains("/nonexistent/dir/vm.vmx")),
        other => panic!("{other:?}"),
    }
}
