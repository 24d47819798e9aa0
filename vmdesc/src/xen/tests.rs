#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use super::*;
use crate::model::NicDesc;

use crate::testutil::{corpus, corpus_file, manifest_rows, tempdir};

fn read(rel: &str) -> Option<VmDescription> {
    let path = corpus_file(rel)?;
    Some(read_xen(&path).unwrap_or_else(|e| panic!("{rel}: {e}")))
}

fn parse(text: &str) -> Result<VmDescription, DescError> {
    parse_xen(Path::new("/etc/xen/guest.cfg"), text)
}

fn disk(d: &DiskDesc) -> (Option<&str>, Option<&str>, &str, DiskBus, DiskDevice, bool) {
    (
        d.path.as_deref().and_then(Path::to_str),
        d.format.as_deref(),
        d.target.as_str(),
        d.bus,
        d.device,
        d.read_only,
    )
}

fn nic(mac: Option<&str>, model: &str, network: Option<&str>) -> NicDesc {
    NicDesc {
        mac: mac.map(str::to_string),
        model: Some(model.to_string()),
        network: network.map(str::to_string),
    }
}

const MIB: u64 = 1024 * 1024;

// ---- every Xen config in the corpus ----

#[test]
fn every_corpus_xen_config_parses_or_fails_cleanly() {
    let Some(dir) = corpus() else { return };
    let mut seen = 0;
    for row in manifest_rows(&dir) {
        let (rel, kind) = (row.path.as_str(), row.kind.as_str());
        if !matches!(kind, "xl-cfg" | "xm-cfg" | "xen-other-cfg") {
            continue;
        }
        let path = dir.join(rel);
        if !path.is_file() {
            continue;
        }
        seen += 1;
        match read_xen(&path) {
            Ok(d) => {
                assert_eq!(d.hypervisor, SourceHypervisor::Xen, "{rel}");
                assert!(!d.name.is_empty(), "{rel}");
                // Every xl-format file must be understood.
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(!msg.contains('\n'), "{rel}: multi-line error {msg:?}");
                assert!(
                    msg.contains(rel),
                    "{rel}: error does not name the file: {msg}"
                );
                assert_ne!(kind, "xl-cfg", "{rel}: xl config rejected: {msg}");
            }
        }
    }
    assert!(seen >= 20, "only {seen} Xen configs found in the manifest");
}

#[test]
fn python_xm_examples_are_refused_with_their_line() {
    let Some(dir) = corpus() else { return };
    for (rel, needle) in [
        ("xen-history/xmexample2", "Python statement `def`"),
        ("xen-history/xmexample3", "Python statement `def`"),
        ("xen-history/xmexample.vmx", "Python statement `import`"),
        ("xen-history/xmexample.vti", "Python statement `import`"),
    ] {
        let path = dir.join(rel);
        if !path.is_file() {
            continue;
        }
        let e = read_xen(&path).unwrap_err();
        assert!(matches!(e, DescError::Unsupported { .. }), "{rel}: {e}");
        let msg = e.to_string();
        assert!(msg.contains(needle), "{rel}: {msg}");
        assert!(msg.contains("line "), "{rel}: {msg}");
    }
}

#[test]
fn toolstack_configs_are_not_guests() {
    let Some(dir) = corpus() else { return };
    for rel in ["xen/xl.conf", "xen/cpupool"] {
        let path = dir.join(rel);
        if path.is_file() {
            let e = read_xen(&path).unwrap_err().to_string();
            assert!(e.contains("not a Xen guest config"), "{rel}: {e}");
        }
    }
}

// ---- per-file facts ----

#[test]
fn xl_positional_full() {
    let Some(d) = read("libvirt-xl/test-disk-positional-parms-full.cfg") else {
        return;
    };
    assert_eq!(d.name, "XenGuest2");
    assert_eq!(d.memory_bytes, 394 * MIB);
    assert_eq!(d.max_memory_bytes, Some(579 * MIB));
    assert_eq!(d.vcpus, 1);
    assert_eq!(d.firmware, Firmware::Bios);
    assert_eq!(d.xen_pv, None);
    let disks: Vec<_> = d.disks.iter().map(disk).collect();
    assert_eq!(
        disks,
        vec![
            (
                Some("/dev/HostVG/XenGuest2"),
                Some("raw"),
                "hda",
                DiskBus::Ide,
                DiskDevice::Disk,
                false
            ),
            (
                Some("/var/lib/libvirt/images/XenGuest2-home"),
                Some("qcow2"),
                "hdb",
                DiskBus::Ide,
                DiskDevice::Disk,
                false
            ),
            (
                Some("/root/boot.iso"),
                Some("raw"),
                "hdc",
                DiskBus::Ide,
                DiskDevice::Cdrom,
                true
            ),
        ]
    );
    assert_eq!(
        d.nics,
        vec![nic(Some("00:16:3e:66:92:9c"), "e1000", Some("xenbr1"))]
    );
}

#[test]
fn xl_positional_partial_empty_fields() {
    let Some(d) = read("libvirt-xl/test-disk-positional-parms-partial.cfg") else {
        return;
    };
    let disks: Vec<_> = d.disks.iter().map(disk).collect();
    assert_eq!(
        disks,
        vec![
            (
                Some("/dev/HostVG/XenGuest2"),
                Some("raw"),
                "hda",
                DiskBus::Ide,
                DiskDevice::Disk,
                false
            ),
            (
                Some("/var/lib/libvirt/images/XenGuest2-home"),
                Some("raw"),
                "hdb",
                DiskBus::Ide,
                DiskDevice::Disk,
                false
            ),
            (
                Some("/root/boot.iso"),
                Some("raw"),
                "hdc",
                DiskBus::Ide,
                DiskDevice::Cdrom,
                true
            ),
        ]
    );
}

#[test]
fn xl_keyword_disks_and_ovmf() {
    let Some(d) = read("libvirt-xl/test-fullvirt-ovmf.cfg") else {
        return;
    };
    assert_eq!(d.firmware, Firmware::Uefi { secure_boot: false });
    let disks: Vec<_> = d.disks.iter().map(disk).collect();
    assert_eq!(
        disks,
        vec![
            (
                Some("/dev/HostVG/XenGuest2"),
                Some("raw"),
                "hda",
                DiskBus::Ide,
                DiskDevice::Disk,
                false
            ),
            (
                Some("/var/lib/libvirt/images/XenGuest2-home"),
                Some("qcow2"),
                "hdb",
                DiskBus::Ide,
                DiskDevice::Disk,
                false
            ),
            (
                Some("/root/boot.iso"),
                Some("raw"),
                "hdc",
                DiskBus::Ide,
                DiskDevice::Cdrom,
                true
            ),
        ]
    );
}

#[test]
fn xl_new_disk_single_letter_access() {
    let Some(d) = read("libvirt-xl/test-new-disk.cfg") else {
        return;
    };
    assert_eq!(d.disks.len(), 3);
    assert!(!d.disks[0].read_only);
    assert_eq!(d.disks[1].format.as_deref(), Some("qcow2"));
    assert!(d.disks[2].read_only);
    assert_eq!(d.disks[2].device, DiskDevice::Cdrom);
    // type=ioemu with model=e1000: the stated model wins.
    assert_eq!(
        d.nics,
        vec![nic(Some("00:16:3e:66:92:9c"), "e1000", Some("xenbr1"))]
    );
}

#[test]
fn xl_qed_format_is_kept() {
    let Some(d) = read("libvirt-xl/test-disk-qed.cfg") else {
        return;
    };
    assert_eq!(d.disks.len(), 1);
    assert_eq!(d.disks[0].format.as_deref(), Some("qed"));
    assert_eq!(d.disks[0].target, "hda");
}

#[test]
fn xl_pv_with_cmdline() {
    let Some(d) = read("libvirt-xl/test-paravirt-cmdline.cfg") else {
        return;
    };
    let pv = d.xen_pv.unwrap();
    assert_eq!(pv.kernel.as_deref(), Some("/tmp/vmlinuz"));
    assert_eq!(pv.ramdisk.as_deref(), Some("/tmp/initrd"));
    assert_eq!(pv.extra.as_deref(), Some("root=/dev/xvda1 console=hvc0"));
    assert_eq!(pv.bootloader, None);
    assert_eq!(
        disk(&d.disks[0]),
        (
            Some("/dev/HostVG/XenGuest2"),
            Some("raw"),
            "xvda",
            DiskBus::Xen,
            DiskDevice::Disk,
            false
        )
    );
    // No model on a PV guest: netfront.
    assert_eq!(
        d.nics,
        vec![nic(Some("00:16:3e:66:92:9c"), "netfront", Some("xenbr1"))]
    );
}

#[test]
fn xl_pvh_without_disks() {
    let Some(d) = read("libvirt-xl/test-pvh-type.cfg") else {
        return;
    };
    assert!(d.disks.is_empty());
    assert!(d.nics.is_empty());
    assert_eq!(d.xen_pv.unwrap().kernel.as_deref(), Some("/tmp/vmlinuz"));
}

#[test]
fn xl_rbd_network_disk_is_skipped_with_warning() {
    let Some(d) = read("libvirt-xl/test-rbd-multihost-noauth.cfg") else {
        return;
    };
    assert_eq!(d.disks.len(), 1);
    assert_eq!(d.disks[0].target, "hda");
    assert!(
        d.warnings
            .iter()
            .any(|w| w.contains("hdb") && w.contains("network")),
        "{:?}",
        d.warnings
    );
}

#[test]
fn xm_blktap2_pygrub() {
    let Some(d) = read("libvirt-xm/test-disk-drv-blktap2-raw.cfg") else {
        return;
    };
    assert_eq!(d.name, "XenGuest1");
    assert_eq!(d.vcpus, 2);
    assert_eq!(
        d.xen_pv.unwrap().bootloader.as_deref(),
        Some("/usr/bin/pygrub")
    );
    assert_eq!(
        disk(&d.disks[0]),
        (
            Some("/root/some.img"),
            Some("raw"),
            "xvda",
            DiskBus::Xen,
            DiskDevice::Disk,
            false
        )
    );
    assert_eq!(
        d.nics,
        vec![nic(Some("00:16:3e:66:94:9c"), "netfront", Some("br0"))]
    );
}

#[test]
fn xm_escape_paths_and_cdrom_suffix() {
    let Some(d) = read("libvirt-xm/test-escape-paths.cfg") else {
        return;
    };
    assert_eq!(d.name, "XenGuest2&test");
    let disks: Vec<_> = d.disks.iter().map(disk).collect();
    assert_eq!(
        disks,
        vec![
            (
                Some("/dev/HostVG/XenGuest2"),
                Some("raw"),
                "hda",
                DiskBus::Ide,
                DiskDevice::Disk,
                false
            ),
            (
                Some("/root/boot.iso&test"),
                Some("raw"),
                "hdc",
                DiskBus::Ide,
                DiskDevice::Cdrom,
                true
            ),
        ]
    );
    // HVM without model: xl's emulated default.
    assert_eq!(
        d.nics,
        vec![nic(Some("00:16:3e:66:92:9c"), "rtl8139", Some("xenbr1"))]
    );
    // hvmloader as `kernel` is Xen's BIOS, not direct kernel boot.
    assert!(
        d.warnings.iter().all(|w| !w.contains("kernel")),
        "{:?}",
        d.warnings
    );
}

#[test]
fn xm_old_cdrom_key_and_ioemu_vdev() {
    let Some(d) = read("libvirt-xm/test-fullvirt-old-cdrom.cfg") else {
        return;
    };
    let disks: Vec<_> = d.disks.iter().map(disk).collect();
    assert_eq!(
        disks,
        vec![
            (
                Some("/dev/HostVG/XenGuest2"),
                Some("raw"),
                "hda",
                DiskBus::Ide,
                DiskDevice::Disk,
                false
            ),
            (
                Some("/root/boot.iso"),
                Some("raw"),
                "hdc",
                DiskBus::Ide,
                DiskDevice::Cdrom,
                true
            ),
        ]
    );
    assert_eq!(
        d.nics,
        vec![nic(Some("00:16:3e:66:92:9c"), "e1000", Some("xenbr0"))]
    );
}

#[test]
fn xm_pv_pvfb() {
    let Some(d) = read("libvirt-xm/test-paravirt-new-pvfb.cfg") else {
        return;
    };
    assert_eq!(
        d.xen_pv.unwrap().bootloader.as_deref(),
        Some("/usr/bin/pygrub")
    );
    assert_eq!(d.disks[0].target, "xvda");
    assert_eq!(d.disks[0].bus, DiskBus::Xen);
}

#[test]
fn xlexample_hvm() {
    let Some(d) = read("xen/xlexample.hvm") else {
        return;
    };
    assert_eq!(d.name, "example.hvm");
    assert_eq!(d.memory_bytes, 128 * MIB);
    assert_eq!(d.max_memory_bytes, None);
    assert_eq!(d.vcpus, 2);
    assert_eq!(d.firmware, Firmware::Bios);
    assert_eq!(d.xen_pv, None);
    assert_eq!(
        disk(&d.disks[0]),
        (
            Some("/dev/vg/guest-volume"),
            Some("raw"),
            "xvda",
            DiskBus::Xen,
            DiskDevice::Disk,
            false
        )
    );
    assert_eq!(d.nics, vec![nic(None, "rtl8139", None)]);
}

#[test]
fn xlexample_pvlinux_and_pvh() {
    let Some(d) = read("xen/xlexample.pvlinux") else {
        return;
    };
    assert_eq!(d.name, "example.pvlinux");
    let pv = d.xen_pv.unwrap();
    assert_eq!(pv.kernel.as_deref(), Some("/boot/vmlinuz"));
    assert_eq!(pv.extra.as_deref(), Some("root=/dev/xvda1"));
    assert_eq!(d.nics, vec![nic(None, "netfront", None)]);
    let Some(d) = read("xen/xlexample.pvhlinux") else {
        return;
    };
    assert_eq!(d.vcpus, 4);
    assert_eq!(d.memory_bytes, 512 * MIB);
    assert_eq!(
        d.disks[0].path.as_deref(),
        Some(Path::new("/dev/zvol/tank/guest-volume"))
    );
}

#[test]
fn xmexample_hvm_empty_cdrom() {
    let Some(d) = read("xen-history/xmexample.hvm") else {
        return;
    };
    assert_eq!(d.name, "ExampleHVMDomain");
    assert_eq!(d.memory_bytes, 128 * MIB);
    let disks: Vec<_> = d.disks.iter().map(disk).collect();
    assert_eq!(
        disks,
        vec![
            (
                Some("/var/images/min-el3-i386.img"),
                Some("raw"),
                "hda",
                DiskBus::Ide,
                DiskDevice::Disk,
                false
            ),
            (None, None, "hdc", DiskBus::Ide, DiskDevice::Cdrom, true),
        ]
    );
    assert_eq!(d.nics, vec![nic(None, "rtl8139", Some("xenbr0"))]);
}

#[test]
fn xmexample1_pv_root_and_bare_phy_device() {
    let Some(d) = read("xen-history/xmexample1") else {
        return;
    };
    assert_eq!(d.name, "ExampleDomain");
    assert_eq!(d.memory_bytes, 64 * MIB);
    let pv = d.xen_pv.unwrap();
    assert_eq!(pv.kernel.as_deref(), Some("/boot/vmlinuz-2.6.10-xenU"));
    assert_eq!(pv.extra.as_deref(), Some("root=/dev/hda1 ro 4"));
    assert_eq!(
        disk(&d.disks[0]),
        (
            Some("/dev/hda1"),
            Some("raw"),
            "hda1",
            DiskBus::Ide,
            DiskDevice::Disk,
            false
        )
    );
}

#[test]
fn xmexample_nbd_and_pvgrub() {
    let Some(d) = read("xen-history/xmexample.nbd") else {
        return;
    };
    assert!(d.disks.is_empty());
    assert!(d.warnings.iter().any(|w| w.contains("network")));
    assert_eq!(
        d.xen_pv.unwrap().ramdisk.as_deref(),
        Some("/boot/initrd-2.6.13-15b-xen")
    );
    let Some(d) = read("xen-history/xmexample.pv-grub") else {
        return;
    };
    assert_eq!(d.xen_pv.unwrap().kernel.as_deref(), Some("pv-grub.gz"));
}

// ---- inline: syntax ----

#[test]
fn positional_prefix_forms() {
    let d = parse(
        "name = 'g'\nmemory = 512\ndisk = [\n 'phy:/dev/vg/lv,xvda,w',\n 'file:/var/lib/xen/images/a.img,hda,w',\n 'tap:aio:/p/b.img,xvdb,r',\n 'tap:qcow2:/p/c.qcow2,xvdc,w',\n 'tap2:tapdisk:vhd:/p/d.vhd,sdb,w',\n ',hdc:cdrom,r',\n 'rel/e.img,xvde,w',\n]\n",
    )
    .unwrap();
    let disks: Vec<_> = d.disks.iter().map(disk).collect();
    assert_eq!(
        disks,
        vec![
            (
                Some("/dev/vg/lv"),
                Some("raw"),
                "xvda",
                DiskBus::Xen,
                DiskDevice::Disk,
                false
            ),
            (
                Some("/var/lib/xen/images/a.img"),
                Some("raw"),
                "hda",
                DiskBus::Ide,
                DiskDevice::Disk,
                false
            ),
            (
                Some("/p/b.img"),
                Some("raw"),
                "xvdb",
                DiskBus::Xen,
                DiskDevice::Disk,
                true
            ),
            (
                Some("/p/c.qcow2"),
                Some("qcow2"),
                "xvdc",
                DiskBus::Xen,
                DiskDevice::Disk,
                false
            ),
            (
                Some("/p/d.vhd"),
                Some("vhd"),
                "sdb",
                DiskBus::Scsi,
                DiskDevice::Disk,
                false
            ),
            (None, None, "hdc", DiskBus::Ide, DiskDevice::Cdrom, true),
            (
                Some("/etc/xen/rel/e.img"),
                Some("raw"),
                "xvde",
                DiskBus::Xen,
                DiskDevice::Disk,
                false
            ),
        ]
    );
}

#[test]
fn keyword_form_target_keeps_commas_and_equals() {
    let d = parse(
        "name='g'\nmemory=1\ndisk=['format=qcow2, vdev=xvda, access=ro, target=/srv/a,b=c.qcow2', 'vdev=hdc, devtype=cdrom, target=iso/x.iso', 'backendtype=phy,format=raw,vdev=xvdb,target=/dev/sdz']\n",
    )
    .unwrap();
    let disks: Vec<_> = d.disks.iter().map(disk).collect();
    assert_eq!(
        disks,
        vec![
            (
                Some("/srv/a,b=c.qcow2"),
                Some("qcow2"),
                "xvda",
                DiskBus::Xen,
                DiskDevice::Disk,
                true
            ),
            (
                Some("/etc/xen/iso/x.iso"),
                Some("raw"),
                "hdc",
                DiskBus::Ide,
                DiskDevice::Cdrom,
                true
            ),
            (
                Some("/dev/sdz"),
                Some("raw"),
                "xvdb",
                DiskBus::Xen,
                DiskDevice::Disk,
                false
            ),
        ]
    );
}

#[test]
fn triple_quotes_comments_trailing_commas_semicolons() {
    let d = parse(
        "# header\nname = \"\"\"multi\nline\"\"\"  # why not\nmemory = 256;\nvcpus = 2,\nkernel = '''/boot/vm\\x6cinuz'''\nextra = 'a\\'b \\\\ c'\nvif = [ 'mac=00:16:3E:AA:BB:CC, bridge=xenbr0', # first\n  'model=e1000', ]\n",
    )
    .unwrap();
    assert_eq!(d.name, "multi\nline");
    assert_eq!(d.memory_bytes, 256 * MIB);
    assert_eq!(d.vcpus, 2);
    let pv = d.xen_pv.unwrap();
    assert_eq!(pv.kernel.as_deref(), Some("/boot/vmlinuz"));
    assert_eq!(pv.extra.as_deref(), Some("a'b \\ c"));
    assert_eq!(
        d.nics,
        vec![
            nic(Some("00:16:3e:aa:bb:cc"), "netfront", Some("xenbr0")),
            nic(None, "e1000", None)
        ]
    );
}

#[test]
fn plus_equals_appends_and_last_assignment_wins() {
    let d =
        parse("name='a'\nname='b'\nmemory=1\ndisk=['/a,raw,xvda,w']\ndisk+=['/b,raw,xvdb,w']\n")
            .unwrap();
    assert_eq!(d.name, "b");
    assert_eq!(d.disks.len(), 2);
}

#[test]
fn types_firmware_and_warnings() {
    let d = parse("name='w'\ntype='hvm'\nfirmware='uefi'\nmemory=2048\nmaxmem=4096\nmaxvcpus=8\nvcpus=2\npci=['01:00.0']\n").unwrap();
    assert_eq!(d.firmware, Firmware::Uefi { secure_boot: false });
    assert_eq!(d.max_memory_bytes, Some(4096 * MIB));
    assert!(d.warnings.iter().any(|w| w.contains("maxvcpus")));
    assert!(d.warnings.iter().any(|w| w.contains("PCI")));
    let d = parse("name='p'\nbuilder='hvm'\nbios='seabios'\nmemory=1\n").unwrap();
    assert_eq!(d.firmware, Firmware::Bios);
    assert!(d.xen_pv.is_none());
    let d = parse("name='p'\nbootloader='pygrub'\nmemory=1\n").unwrap();
    assert_eq!(d.xen_pv.unwrap().bootloader.as_deref(), Some("pygrub"));
    let e = parse("name='p'\ntype='hvmx'\nmemory=1\n").unwrap_err();
    assert!(matches!(e, DescError::Unsupported { .. }), "{e}");
}

#[test]
fn syntax_error_reports_its_line() {
    let e = parse("name = 'g'\nmemory = 1\nvcpus 2\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/etc/xen/guest.cfg: line 3:"), "{e}");
    let e = parse("name = 'g'\n\nmemory = 'unterminated\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 3: unterminated string"), "{e}");
    let e = parse("name = 'g'\nmemory = 1\ndisk = ['/a,raw,xvda,w' '/b']\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 3:"), "{e}");
    let e = parse("name = 'g'\nmemory = 'lots'\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2:") && e.contains("memory"), "{e}");
    let e = parse("name='g'\nmemory=1\ndisk=['/a,raw,xvda,bogus']\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 3: disk entry 1") && e.contains("access"),
        "{e}"
    );
    let e = parse("name='g'\nmemory=1\ndisk=['/a,raw']\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no vdev"), "{e}");
}

#[test]
fn python_expressions_are_refused() {
    let e = parse("name = 'VM%d' % vmid\nmemory = 1\n").unwrap_err();
    assert!(matches!(e, DescError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("line 1"), "{e}");
    let e = parse("memory = 1\nname = os.getenv('X')\n").unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
}

// ---- hostile input ----

fn assert_one_line_error(r: Result<VmDescription, DescError>) {
    let msg = r.unwrap_err().to_string();
    assert!(!msg.contains('\n'), "{msg:?}");
    assert!(msg.len() < 400, "{msg:?}");
}

#[test]
fn hostile_inputs_fail_cleanly() {
    let dir = tempdir();
    let bin = dir.path().join("bin.cfg");
    std::fs::write(&bin, [0u8, 0xff, 0xfe, 0x00, 0x13, 0x80]).unwrap();
    assert_one_line_error(read_xen(&bin));

    let big = dir.path().join("big.cfg");
    let mut text = String::from("name = 'x'\nmemory = 1\n");
    while text.len() < 5 * 1024 * 1024 {
        text.push_str("# padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&big, &text).unwrap();
    assert_one_line_error(read_xen(&big));
    assert_one_line_error(parse(&text));

    assert_one_line_error(read_xen(&dir.path().join("missing.cfg")));

    for text in [
        "name='g'\ndisk = [ 'a,b,c',\n 'd',\n",
        "name='g'\nmemory=[[1]]\n",
        "name='g'\nmemory='''never closed\n\n",
        "name='g'\nmemory=99999999999999999\n",
        "name='g'\nvcpus=0\nmemory=1\n",
        "name='g'\nmemory=1\nvif=['mac=zz:zz']\n\u{0}",
        "name=\"\\x\"\n",
        "= 3\n",
        "name",
        "name =",
        "\u{feff}name='g'\n",
        "",
    ] {
        let r = parse(text);
        if let Err(e) = &r {
            assert!(!e.to_string().contains('\n'), "{text:?}: {e}");
        }
    }
    // Newlines inside values never reach an error message.
    let r = parse("name='g'\nmemory=1\ndisk=['/a,raw,x\\nvd\\na,bogus']\n");
    assert_one_line_error(r);
    let r = parse("name='g'\nmemory=1\ndisk=['/a,raw,xvda,w', 'fmt\\n=1']\n");
    assert_one_line_error(r);
    let many = format!(
        "name='g'\nmemory=1\ndisk=[{}]\n",
        "'/a,raw,xvda,w',".repeat(5000)
    );
    assert_one_line_error(parse(&many));
}

#[test]
#[ignore = "prints every corpus config's description for review"]
fn dump_corpus() {
    let Some(dir) = corpus() else { return };
    for sub in ["libvirt-xl", "libvirt-xm", "xen", "xen-history"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for p in paths {
            match read_xen(&p) {
                Ok(d) => println!("{}\n{}", p.display(), serde_json::to_string(&d).unwrap()),
                Err(e) => println!("ERR {e}"),
            }
        }
    }
}

#[test]
fn bom_and_crlf_are_tolerated() {
    let d =
        parse("\u{feff}name = 'g'\r\nmemory = 64\r\ndisk = [ 'phy:/dev/vg/g,xvda,w' ,\r\n ]\r\n")
            .unwrap();
    assert_eq!(d.name, "g");
    assert_eq!(d.disks.len(), 1);
    let e = parse("name = 'g'\nmemory = 1\nvcpus = 2 @\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 3: unexpected character"), "{e}");
}
