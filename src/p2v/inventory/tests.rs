use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use vmdesc::{DiskBus, DiskDevice, Firmware, NicDesc, SourceHypervisor, Topology};

use super::cpu::{cpuinfo_entries, parse_cpu_list, uniform_topology};
use super::disk::{major, minor, transport};
use super::*;

/// A fake root with procfs and sysfs files.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        Tree {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> SysRoot {
        SysRoot::new(self.dir.path())
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn file(&self, rel: &str, content: impl AsRef<[u8]>) -> &Tree {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
        self
    }

    fn dir(&self, rel: &str) -> &Tree {
        fs::create_dir_all(self.path(rel)).unwrap();
        self
    }

    fn link(&self, rel: &str, target: &str) -> &Tree {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(target, p).unwrap();
        self
    }

    fn remove(&self, rel: &str) -> &Tree {
        let p = self.path(rel);
        if p.is_dir() {
            fs::remove_dir_all(p).unwrap();
        } else {
            fs::remove_file(p).unwrap();
        }
        self
    }
}

const SATA: &str = "sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0";
const NVME: &str = "sys/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0";

/// 2 sockets × 2 cores × 2 threads, 7.7 GiB, UEFI with secure boot, eth0 + br0 + lo, a
/// SATA disk with a partition and an NVMe disk.
fn machine() -> Tree {
    let t = Tree::new();
    t.file(
        "proc/meminfo",
        "MemTotal:        8049116 kB\nMemFree:         1000000 kB\n",
    )
    .file("proc/sys/kernel/hostname", "box01\n")
    .file(
        "etc/os-release",
        "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n",
    )
    .file("sys/devices/system/cpu/online", "0-7\n");
    for cpu in 0..8u32 {
        let (package, core, thread) = (cpu / 4, (cpu / 2) % 2, cpu % 2);
        let first = cpu - thread;
        let topo = format!("sys/devices/system/cpu/cpu{cpu}/topology");
        t.file(
            &format!("{topo}/physical_package_id"),
            format!("{package}\n"),
        )
        .file(&format!("{topo}/core_id"), format!("{core}\n"))
        .file(
            &format!("{topo}/thread_siblings_list"),
            format!("{first}-{}\n", first + 1),
        );
    }
    t.file(
        &format!("sys/firmware/efi/efivars/{SECURE_BOOT_VAR}"),
        [6, 0, 0, 0, 1],
    )
    // eth0: a PCI NIC (sysfs links the class entry to the device tree).
    .link(
        "sys/class/net/eth0",
        "../../devices/pci0000:00/0000:00:1f.6/net/eth0",
    )
    .file(
        "sys/devices/pci0000:00/0000:00:1f.6/net/eth0/address",
        "A0:36:9F:01:02:03\n",
    )
    .file(
        "sys/devices/pci0000:00/0000:00:1f.6/net/eth0/speed",
        "1000\n",
    )
    .link(
        "sys/devices/pci0000:00/0000:00:1f.6/net/eth0/device",
        "../../../0000:00:1f.6",
    )
    .link(
        "sys/devices/pci0000:00/0000:00:1f.6/driver",
        "../../../bus/pci/drivers/e1000e",
    )
    .file("sys/class/net/br0/address", "52:54:00:aa:bb:cc\n")
    .file("sys/class/net/br0/speed", "-1\n")
    .file("sys/class/net/lo/address", "00:00:00:00:00:00\n")
    // sda on AHCI, with a partition.
    .file(&format!("{SATA}/model"), "Samsung SSD 870 \n")
    .file(&format!("{SATA}/vendor"), "ATA     \n")
    .file(&format!("{SATA}/serial"), "S5Y1NX0R123456\n")
    .file(&format!("{SATA}/block/sda/size"), "1953525168\n")
    .file(&format!("{SATA}/block/sda/queue/rotational"), "0\n")
    .link(&format!("{SATA}/block/sda/device"), "../../../0:0:0:0")
    .file(&format!("{SATA}/block/sda/sda1/size"), "2048\n")
    .file(&format!("{SATA}/block/sda/sda1/partition"), "1\n")
    .link(
        "sys/class/block/sda",
        &format!("../../{}/block/sda", &SATA[4..]),
    )
    .link(
        "sys/class/block/sda1",
        &format!("../../{}/block/sda/sda1", &SATA[4..]),
    )
    // nvme0n1: model and serial on the controller it links to.
    .file(&format!("{NVME}/model"), "WDC PC SN730\n")
    .file(&format!("{NVME}/serial"), "21123456789\n")
    .file(&format!("{NVME}/nvme0n1/size"), "1000215216\n")
    .file(&format!("{NVME}/nvme0n1/queue/rotational"), "0\n")
    .link(&format!("{NVME}/nvme0n1/device"), "..")
    .link(
        "sys/class/block/nvme0n1",
        &format!("../../{}/nvme0n1", &NVME[4..]),
    );
    t
}

#[test]
fn inventories_a_fake_machine() {
    let t = machine();
    let dump = t.path("images/laptop.img");
    t.file("images/laptop.img", vec![0u8; 3 * 512]);
    let inv = inventory(&t.root(), std::slice::from_ref(&dump), None).unwrap();
    let d = &inv.description;
    assert_eq!(d.name, "box01");
    assert_eq!(d.hypervisor, SourceHypervisor::Unknown);
    assert_eq!(d.vcpus, 8);
    assert_eq!(
        d.topology,
        Some(Topology {
            sockets: 2,
            cores: 2,
            threads: 2
        })
    );
    // 8049116 kB is 7860.46 MiB, rounded up.
    assert_eq!(d.memory_bytes, 7861 << 20);
    assert_eq!(d.firmware, Firmware::Uefi { secure_boot: true });
    assert_eq!(d.os_hint.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
    assert_eq!(
        d.nics,
        [NicDesc {
            mac: Some("a0:36:9f:01:02:03".into()),
            model: Some("e1000e".into()),
            network: None,
        }]
    );
    assert_eq!(
        inv.nics,
        [
            PhysicalNic {
                name: "br0".into(),
                mac: "52:54:00:aa:bb:cc".into(),
                driver: None,
                speed_mbps: None,
                is_physical: false,
            },
            PhysicalNic {
                name: "eth0".into(),
                mac: "a0:36:9f:01:02:03".into(),
                driver: Some("e1000e".into()),
                speed_mbps: Some(1000),
                is_physical: true,
            },
        ]
    );
    assert_eq!(d.disks.len(), 1);
    let disk = &d.disks[0];
    assert_eq!(disk.path.as_deref(), Some(dump.as_path()));
    assert_eq!(disk.target, "laptop.img");
    assert_eq!(disk.bus, DiskBus::Unknown);
    assert_eq!(disk.device, DiskDevice::Disk);
    assert_eq!(disk.format.as_deref(), Some("raw"));
    assert_eq!(disk.capacity_bytes, Some(1536));
    assert_eq!(
        inv.disks,
        [PhysicalDisk {
            path: dump,
            size_bytes: 1536,
            model: None,
            vendor: None,
            serial: None,
            rotational: None,
            transport: None,
        }]
    );
    // Only the note that this is a physical machine: everything else was readable.
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    assert!(d.warnings[0].contains("physical machine"));
    let json = serde_json::to_value(&inv).unwrap();
    assert_eq!(json["disks"][0]["size_bytes"], 1536);
    assert_eq!(json["description"]["firmware"]["type"], "uefi");
}

#[test]
fn disk_facts_by_kernel_name() {
    let t = machine();
    let root = t.root();
    let sda = disk_facts(&root, "sda").unwrap();
    assert_eq!(
        sda,
        PhysicalDisk {
            path: PathBuf::from("/dev/sda"),
            size_bytes: 1953525168 * 512,
            model: Some("Samsung SSD 870".into()),
            vendor: Some("ATA".into()),
            serial: Some("S5Y1NX0R123456".into()),
            rotational: Some(false),
            transport: Some("sata".into()),
        }
    );
    // A partition: its own size, the whole disk's facts.
    let sda1 = disk_facts(&root, "sda1").unwrap();
    assert_eq!(sda1.size_bytes, 2048 * 512);
    assert_eq!(sda1.model.as_deref(), Some("Samsung SSD 870"));
    assert_eq!(sda1.transport.as_deref(), Some("sata"));

    let nvme = disk_facts(&root, "nvme0n1").unwrap();
    assert_eq!(nvme.model.as_deref(), Some("WDC PC SN730"));
    assert_eq!(nvme.serial.as_deref(), Some("21123456789"));
    assert_eq!(nvme.transport.as_deref(), Some("nvme"));
    assert_eq!(nvme.rotational, Some(false));

    let err = disk_facts(&root, "sdz").unwrap_err().to_string();
    assert!(
        err.contains("/dev/sdz") && err.contains("sys/class/block/sdz"),
        "{err}"
    );
    t.file("sys/class/block/bad/size", "lots\n");
    let err = disk_facts(&root, "bad").unwrap_err().to_string();
    assert!(
        err.contains("cannot read its size") && err.contains("lots"),
        "{err}"
    );
}

#[test]
fn transport_from_sysfs_path() {
    let cases = [
        (
            "devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb",
            Some("usb"),
        ),
        (
            "devices/pci0000:00/0000:00:05.0/virtio2/host2/target2:0:0/2:0:0:0/block/sda",
            Some("scsi"),
        ),
        (
            "devices/pci0000:00/0000:00:02.0/virtio1/block/vda",
            Some("virtio"),
        ),
        (
            "devices/virtual/nvme-subsystem/nvme-subsys0/nvme0n1",
            Some("nvme"),
        ),
        (
            "devices/platform/soc/mmc_host/mmc0/mmc0:0001/block/mmcblk0",
            Some("mmc"),
        ),
        ("devices/vbd-51712/block/xvda", Some("xen")),
        ("devices/virtual/block/loop0", None),
        ("devices/virtual/block/dm-0", None),
    ];
    for (path, want) in cases {
        assert_eq!(transport(Path::new(path)), want, "{path}");
    }
}

#[test]
fn cpu_lists() {
    assert_eq!(parse_cpu_list("0-3,6\n"), Some(vec![0, 1, 2, 3, 6]));
    assert_eq!(parse_cpu_list("0"), Some(vec![0]));
    assert_eq!(parse_cpu_list(""), None);
    assert_eq!(parse_cpu_list("3-1"), None);
    assert_eq!(parse_cpu_list("0-x"), None);
    assert_eq!(parse_cpu_list("0-4294967295"), None);
}

#[test]
fn hybrid_cpus_have_no_topology() {
    // Two P-cores with two threads, two E-cores with one.
    let places: Vec<(i64, String)> = [
        (0, "0-1"),
        (0, "0-1"),
        (0, "2-3"),
        (0, "2-3"),
        (0, "4"),
        (0, "5"),
    ]
    .into_iter()
    .map(|(p, c)| (p, c.to_string()))
    .collect();
    let err = uniform_topology(&places, 6).unwrap_err();
    assert!(err.contains("1 or 2 threads"), "{err}");

    let t = machine();
    t.file("sys/devices/system/cpu/online", "0-5\n");
    for cpu in 4..6 {
        t.file(
            &format!("sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"),
            format!("{cpu}\n"),
        );
    }
    let inv = inventory(&t.root(), &[], Some("given")).unwrap();
    assert_eq!(inv.description.name, "given");
    assert_eq!(inv.description.vcpus, 6);
    assert_eq!(inv.description.topology, None);
    assert!(
        inv.description
            .warnings
            .iter()
            .any(|w| w.contains("not uniform") && w.contains("6 vCPUs")),
        "{:?}",
        inv.description.warnings
    );
}

#[test]
fn cpuinfo_is_the_fallback() {
    let t = machine();
    t.remove("sys/devices/system/cpu");
    let mut cpuinfo = String::new();
    for cpu in 0..4 {
        cpuinfo.push_str(&format!(
            "processor\t: {cpu}\nvendor_id\t: GenuineIntel\nphysical id\t: 0\ncore id\t\t: {}\n\n",
            cpu % 2
        ));
    }
    t.file("proc/cpuinfo", &cpuinfo);
    assert_eq!(cpuinfo_entries(&cpuinfo).len(), 4);
    let d = inventory(&t.root(), &[], None).unwrap().description;
    assert_eq!(d.vcpus, 4);
    assert_eq!(
        d.topology,
        Some(Topology {
            sockets: 1,
            cores: 2,
            threads: 2
        })
    );
    assert!(d
        .warnings
        .iter()
        .any(|w| w.contains("counted the processors")));

    // Nothing at all: one vCPU, said so.
    t.remove("proc/cpuinfo");
    let d = inventory(&t.root(), &[], None).unwrap().description;
    assert_eq!((d.vcpus, d.topology), (1, None));
    assert!(d.warnings.iter().any(|w| w.contains("assumed 1 vCPU")));
}

#[test]
fn firmware_variants() {
    let t = machine();
    let root = t.root();
    let var = format!("sys/firmware/efi/efivars/{SECURE_BOOT_VAR}");
    t.file(&var, [6, 0, 0, 0, 0]);
    let d = inventory(&root, &[], None).unwrap().description;
    assert_eq!(d.firmware, Firmware::Uefi { secure_boot: false });
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);

    // No variable: firmware without secure boot; quietly off.
    t.remove(&var);
    let d = inventory(&root, &[], None).unwrap().description;
    assert_eq!(d.firmware, Firmware::Uefi { secure_boot: false });
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);

    // efivarfs not mounted: unknown, assumed off, said so.
    t.remove("sys/firmware/efi/efivars");
    let d = inventory(&root, &[], None).unwrap().description;
    assert_eq!(d.firmware, Firmware::Uefi { secure_boot: false });
    assert!(d
        .warnings
        .iter()
        .any(|w| w.contains("secure boot assumed off")));

    t.remove("sys/firmware/efi");
    let d = inventory(&root, &[], None).unwrap().description;
    assert_eq!(d.firmware, Firmware::Bios);
}

#[test]
fn name_memory_and_os_fallbacks() {
    let t = machine();
    let root = t.root();
    t.remove("proc/sys/kernel/hostname")
        .file("etc/hostname", "from-etc\n")
        .remove("etc/os-release")
        .file("usr/lib/os-release", "NAME='Alpine Linux'\n")
        .file("proc/meminfo", "MemTotal:       1 kB\n");
    let d = inventory(&root, &[], Some("  ")).unwrap().description;
    assert_eq!(d.name, "from-etc");
    assert_eq!(d.os_hint.as_deref(), Some("Alpine Linux"));
    assert_eq!(d.memory_bytes, 1 << 20);

    t.remove("etc/hostname")
        .remove("usr/lib/os-release")
        .remove("proc/meminfo");
    let d = inventory(&root, &[], None).unwrap().description;
    assert_eq!(d.name, "p2v-machine");
    assert_eq!(d.os_hint, None);
    assert_eq!(d.memory_bytes, 2 << 30);
    assert!(d.warnings.iter().any(|w| w.contains("host name")));
    assert!(d.warnings.iter().any(|w| w.contains("memory size")));
}

#[test]
fn nics_without_ethernet_mac_are_left_out() {
    let t = machine();
    t.file(
        "sys/class/net/ib0/address",
        "80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0a:bc:de\n",
    )
    .dir("sys/class/net/ib0/device");
    let inv = inventory(&t.root(), &[], None).unwrap();
    assert_eq!(inv.description.nics.len(), 1);
    assert!(inv.nics.iter().any(|n| n.name == "ib0" && n.is_physical));
    assert!(inv
        .description
        .warnings
        .iter()
        .any(|w| w.contains("ib0") && w.contains("not an Ethernet MAC")));
}

#[test]
fn bad_disks_are_errors_naming_them() {
    let t = machine();
    let missing = t.path("nope.img");
    let err = inventory(&t.root(), &[missing], None).unwrap_err();
    assert!(matches!(err, InventoryError::DiskMissing { .. }));
    assert!(err.to_string().contains("nope.img"), "{err}");

    let dir = t.path("images");
    t.dir("images");
    let err = inventory(&t.root(), std::slice::from_ref(&dir), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "disk {}: neither a block device nor a regular file",
            dir.display()
        )
    );
}

#[test]
fn the_same_disk_twice_is_a_warning() {
    let t = machine();
    t.file("images/a.img", [0u8; 512])
        .link("images/b.img", "a.img");
    let paths = [t.path("images/a.img"), t.path("images/b.img")];
    let d = inventory(&t.root(), &paths, None).unwrap().description;
    assert_eq!(d.disks.len(), 2);
    assert!(d.warnings.iter().any(|w| w.contains("is the same as")));
}

#[test]
fn dev_numbers() {
    // 8:1 (sda1) in the old and the large encoding.
    assert_eq!((major(0x801), minor(0x801)), (8, 1));
    // glibc's makedev.
    let (maj, min): (u64, u64) = (0x123ab, 0x456cd);
    let big = ((maj & 0xfff) << 8)
        | ((maj & 0xffff_f000) << 32)
        | (min & 0xff)
        | ((min & 0xffff_ff00) << 12);
    assert_eq!(major(big), 0x123ab);
    assert_eq!(minor(big), 0x456cd);
}

/// Any block device node on this machine, for the block-device path (a fake tree cannot
/// create one without privileges).
fn some_block_node() -> Option<(PathBuf, u64)> {
    fs::read_dir("/dev")
        .ok()?
        .filter_map(Result::ok)
        .find_map(|e| {
            let meta = e.path().metadata().ok()?;
            meta.file_type()
                .is_block_device()
                .then(|| (e.path(), meta.rdev()))
        })
}

#[test]
fn block_devices_are_found_by_device_number() {
    let Some((node, rdev)) = some_block_node() else {
        eprintln!("no block device node in /dev; skipped");
        return;
    };
    let t = machine();
    let number = format!("{}:{}", major(rdev), minor(rdev));
    // The fake sysfs calls it sda whatever the real node is named.
    t.link(
        &format!("sys/dev/block/{number}"),
        &format!("../../{}/block/sda", &SATA[4..]),
    );
    let inv = inventory(&t.root(), std::slice::from_ref(&node), None).unwrap();
    let disk = &inv.description.disks[0];
    assert_eq!(disk.target, "sda");
    assert_eq!(disk.bus, DiskBus::Sata);
    assert_eq!(disk.path.as_deref(), Some(node.as_path()));
    assert_eq!(disk.capacity_bytes, Some(1953525168 * 512));
    assert_eq!(inv.disks[0].path, node);
    assert_eq!(inv.disks[0].model.as_deref(), Some("Samsung SSD 870"));
}

#[test]
fn the_real_machine() {
    let inv = inventory(&SysRoot::host(), &[], None).unwrap();
    let d = &inv.description;
    assert!(d.vcpus >= 1);
    assert!(d.memory_bytes > 0);
    assert!(!d.name.is_empty());
    assert!(d.nics.len() <= inv.nics.len());
    // A container may show /dev nodes its sysfs does not describe; that is reported, not
    // failed.
    if let Some((node, _)) = some_block_node() {
        match inventory(&SysRoot::host(), std::slice::from_ref(&node), None) {
            Ok(with_disk) => {
                assert!(!with_disk.description.disks[0].target.is_empty());
                eprintln!("{:?}", with_disk.disks[0]);
            }
            Err(e) => eprintln!("{e}"),
        }
    }
    eprintln!("{}", serde_json::to_string_pretty(&inv).unwrap());
}
