//! The boot check: QEMU (TCG — KVM aborts on this machine, see `../shared/libvirt-local.md`)
//! boots a disk through its own bootloader with the serial port in a file, and the test
//! reads what the guest printed there.
//!
//! QEMU is always killed by the timeout, so a guest that hangs (or prints on a console
//! nobody reads, like a Xen guest's hvc0) fails the check instead of the test run. A boot
//! also stops early at a known dead end (a kernel panic, the initramfs giving up on root),
//! since no guest reaches its marker from there. Disks are opened with `snapshot=on`: the
//! booted image is never written.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The first word of the line the guest's marker unit prints on ttyS0.
pub const MARKER: &str = "FERRY-BOOT-MARKER";

/// Serial output after which a guest can no longer reach its marker.
const DEAD_ENDS: &[&str] = &[
    "Kernel panic - not syncing",
    "Dropping to a shell",
    "ALERT! ",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskBus {
    /// virtio-blk: the disk is `/dev/vda`.
    Virtio,
    /// PIIX IDE on the `pc` machine (driver `ata_piix`): `/dev/sda`.
    Ide,
    /// ICH9 AHCI on the `q35` machine (driver `ahci`): `/dev/sda`.
    Ahci,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nic {
    Virtio,
    E1000,
}

/// The virtual hardware to boot on.
#[derive(Clone, Debug)]
pub struct BootHw {
    pub disk_bus: DiskBus,
    pub nic: Nic,
    pub mac: String,
    /// Puts the NIC behind a PCIe root port with this slot number (q35). `Some(192)`
    /// gives the `ens192` name a VMware guest knows; `None` plugs it into the root bus.
    pub pcie_slot: Option<u16>,
}

/// What the serial port showed.
#[derive(Clone, Debug)]
pub struct BootOutcome {
    /// The marker line (from [`MARKER`] to the end of its line), if the guest printed it.
    pub marker_line: Option<String>,
    pub serial_log: String,
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl BootOutcome {
    /// The last 40 lines of the serial log and how the boot ended, for assertion messages.
    pub fn tail(&self) -> String {
        let lines: Vec<&str> = self.serial_log.lines().collect();
        let from = lines.len().saturating_sub(40);
        format!(
            "after {:?} (timed out: {}):\n{}",
            self.elapsed,
            self.timed_out,
            lines[from..].join("\n")
        )
    }

    /// The root filesystem's mount options from the marker, e.g. `rw,relatime`.
    pub fn root_options(&self) -> Option<&str> {
        self.marker_field("root=")
    }

    pub fn root_rw(&self) -> bool {
        self.root_options()
            .is_some_and(|o| o.split(',').any(|x| x == "rw"))
    }

    /// The network interfaces the guest has (`lo` included), by name.
    pub fn links(&self) -> Vec<&str> {
        self.marker_field("links=")
            .map(|l| l.split(',').filter(|n| !n.is_empty()).collect())
            .unwrap_or_default()
    }

    /// The IPv4 address (with prefix) the marker lists on `ifname`.
    pub fn ipv4_on(&self, ifname: &str) -> Option<&str> {
        let prefix = format!("{ifname}:inet:");
        self.marker_field("addrs=")?
            .split(',')
            .find_map(|a| a.strip_prefix(prefix.as_str()))
    }

    fn marker_field(&self, key: &str) -> Option<&str> {
        self.marker_line
            .as_deref()?
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key))
    }
}

/// Kills and reaps QEMU however the test ends (including a panic).
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Boots `disk` (of qemu `format`) on `hw`, for at most `timeout`.
pub fn boot(disk: &Path, format: &str, hw: &BootHw, timeout: Duration) -> BootOutcome {
    let dir = crate::util::tmpdir();
    let log = dir.path().join("serial.log");
    let errors = dir.path().join("qemu.stderr");
    let started = Instant::now();
    let mut qemu = Qemu(
        qemu_command(disk, format, hw, &log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&errors).expect("create qemu.stderr"))
            .spawn()
            .expect("run qemu-system-x86_64"),
    );
    let mut timed_out = false;
    let mut marker_seen: Option<Instant> = None;
    loop {
        if let Some(status) = qemu.0.try_wait().expect("wait qemu") {
            let why = read_log(&errors);
            assert!(status.success(), "qemu failed ({status}): {why}");
            break;
        }
        let text = read_log(&log);
        if marker_seen.is_none() && marker_line(&text).is_some() {
            marker_seen = Some(Instant::now());
        }
        // The marker is all a test reads: stop soon after it instead of waiting for the
        // guest's own (slow, under TCG) power-off.
        if marker_seen.is_some_and(|t| t.elapsed() > Duration::from_secs(2))
            || DEAD_ENDS.iter().any(|d| text.contains(d))
        {
            break;
        }
        if started.elapsed() > timeout {
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(qemu);
    let serial_log = read_log(&log);
    BootOutcome {
        marker_line: marker_line(&serial_log),
        serial_log,
        timed_out,
        elapsed: started.elapsed(),
    }
}

fn qemu_command(disk: &Path, format: &str, hw: &BootHw, log: &Path) -> Command {
    let q35 = hw.disk_bus == DiskBus::Ahci || hw.pcie_slot.is_some();
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-accel", "tcg", "-machine", if q35 { "q35" } else { "pc" }]);
    if hw.pcie_slot.is_some() {
        // Native PCIe hotplug: the guest reads the root port's slot number, which names the
        // NIC ens<slot> (with ACPI hotplug it would be enp1s0).
        cmd.args([
            "-global",
            "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off",
        ]);
    }
    cmd.args(["-m", "1024", "-nodefaults", "-nographic", "-no-reboot"])
        .args(["-monitor", "none", "-serial"])
        .arg(format!("file:{}", log.display()));
    let drive = format!(
        "file={},format={format},snapshot=on",
        disk.display().to_string().replace(',', ",,")
    );
    match hw.disk_bus {
        DiskBus::Virtio => cmd.args(["-drive", &format!("{drive},if=virtio")]),
        DiskBus::Ide => cmd.args(["-drive", &format!("{drive},if=ide")]),
        DiskBus::Ahci => cmd
            .args(["-drive", &format!("{drive},if=none,id=disk0")])
            .args(["-device", "ide-hd,drive=disk0,bus=ide.0"]),
    };
    let model = match hw.nic {
        Nic::Virtio => "virtio-net-pci",
        Nic::E1000 => "e1000",
    };
    // romfile= : no PXE option ROM is needed (and ipxe-qemu need not be installed).
    let mut nic = format!("{model},netdev=net0,mac={},romfile=", hw.mac);
    if let Some(slot) = hw.pcie_slot {
        cmd.args([
            "-device",
            &format!("pcie-root-port,id=rp0,chassis=1,slot={slot}"),
        ]);
        nic.push_str(",bus=rp0");
    }
    cmd.args(["-netdev", "user,id=net0", "-device", &nic]);
    cmd
}

fn marker_line(log: &str) -> Option<String> {
    let start = log.find(MARKER)?;
    let line = log[start..].lines().next()?.trim_end();
    // Only a complete line: the guest may still be writing it.
    (line.ends_with(" end")).then(|| line.to_owned())
}

fn read_log(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).replace('\r', ""))
        .unwrap_or_default()
}
