//! A tiny TCG guest for migration tests: boots in seconds by direct kernel boot and
//! proves it is alive (and was never reset) with a tick counter on its serial port.
//!
//! The kernel is Debian's (the package `linux-image-amd64` depends on), the initramfs a
//! newc archive written here of `busybox-static` and a shell `/init` that mounts
//! proc/sys/dev and prints `TICK <n>` on ttyS0 every second forever, n counting from 1:
//! after a reset the count would start over. With `ferry.dirty=MIB` on the kernel command
//! line ([`TinySpec::dirty_mib`]) `/init` also rewrites MIB MiB of a tmpfs (non-zero
//! data, so QEMU cannot send it as zero pages) over and over, so a pre-copy at low
//! bandwidth cannot converge.
//!
//! Both files are fetched with `apt-get download` (no install) and cached as
//! `target/guest-cache/tiny-<RECIPE>/{vmlinuz,initrd.cpio}` behind a [`CacheLock`].
//!
//! The serial port is `<serial type='file'>` with `append='on'` at a path of the
//! caller's outside the instances' namespaced directories (e.g. under `target/tmp`), so
//! after a live migration the destination's QEMU appends to the same file and the
//! counter reads continuously across the move.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::guest::{cache_dir, CacheLock};
use crate::libvirtd::{dest_libvirtd, local_libvirtd, start_instance, LocalLibvirtd};

/// Version of the cached kernel + initramfs; bump when `/init` or the archive changes.
pub const RECIPE: &str = "v2";

/// The guest's `/init`.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
dirty=$(sed -n 's/.*ferry\.dirty=\([0-9][0-9]*\).*/\1/p' /proc/cmdline)
if [ -n "$dirty" ] && [ "$dirty" -gt 0 ]; then
    # MIB MiB of random bytes (1 MiB repeated), copied over another MIB MiB file in
    # tmpfs again and again: one dd, memory to memory.
    mount -t tmpfs -o size=$((dirty * 2 + 2))m dirty /dirty
    dd if=/dev/urandom of=/dirty/seed bs=1M count=1 2>/dev/null
    i=0
    while [ $i -lt "$dirty" ]; do cat /dirty/seed; i=$((i + 1)); done >/dirty/src
    (while :; do
        dd if=/dirty/src of=/dirty/blob bs=1M conv=notrunc 2>/dev/null
    done) &
    echo "DIRTY $dirty MiB" >/dev/ttyS0
fi
n=1
while :; do
    echo "TICK $n" >/dev/ttyS0
    n=$((n + 1))
    sleep 1
done
"#;

/// Kernel and initramfs of the tiny guest.
pub struct TinyImages {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

/// What to boot.
#[derive(Clone, Debug)]
pub struct TinySpec {
    /// Domain name.
    pub name: String,
    pub memory_mib: u64,
    /// MiB the guest keeps rewriting (0: none). Needs `memory_mib` ≥ 2 × `dirty_mib` +
    /// ~80 (a source copy and the rewritten copy live in tmpfs).
    /// Measured under TCG on a busy 2-core machine with 64 MiB: at `--bandwidth 8`
    /// (MiB/s) every pre-copy pass still had ~61–63 MiB remaining, i.e. the whole set is
    /// rewritten faster than it is sent; the migration never converges.
    pub dirty_mib: u64,
    /// A raw or qcow2 file (told apart by its magic) attached as virtio disk `vda` with
    /// `cache='none'`; the guest does not use it (no virtio-blk driver in the initramfs),
    /// it is there for copy-storage and storage-path checks.
    pub disk: Option<PathBuf>,
}

impl TinySpec {
    /// 128 MiB, no dirtying, no disk.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            memory_mib: 128,
            dirty_mib: 0,
            disk: None,
        }
    }
}

/// Host tools needed to build the tiny guest (skip locally / fail under `CI` otherwise).
pub fn tools_present() -> bool {
    [
        "apt-get",
        "apt-cache",
        "dpkg-deb",
        "tar",
        "qemu-system-x86_64",
        "virsh",
    ]
    .iter()
    .all(|t| crate::util::have_tool(t))
}

/// The daemon and tools a tiny-guest test needs: the source daemon, or `None` to skip.
pub fn prerequisites() -> Option<&'static LocalLibvirtd> {
    if !tools_present() {
        return None;
    }
    local_libvirtd()
}

/// The cached kernel and initramfs, built on first use (once across parallel tests and
/// test processes). Panics when they cannot be built.
pub fn images() -> &'static TinyImages {
    static IMAGES: OnceLock<TinyImages> = OnceLock::new();
    IMAGES.get_or_init(|| build_images().unwrap_or_else(|e| panic!("tiny guest: {e}")))
}

fn build_images() -> Result<TinyImages, String> {
    let cache = cache_dir();
    let dir = cache.join(format!("tiny-{RECIPE}"));
    let images = TinyImages {
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initrd.cpio"),
    };
    let done = || images.kernel.exists() && images.initrd.exists();
    if done() {
        return Ok(images);
    }
    let _lock = CacheLock::acquire(&cache.join(format!("tiny-{RECIPE}.lock")));
    if done() {
        return Ok(images);
    }
    let work = cache.join(format!("tiny-{RECIPE}.partial"));
    if work.exists() {
        fs::remove_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    }
    fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;

    let kernel_pkg = kernel_package()?;
    run(Command::new("apt-get")
        .args(["download", "-q", "-o", "APT::Sandbox::User=root"])
        .args([kernel_pkg.as_str(), "busybox-static"])
        .current_dir(&work))?;
    let deb = |prefix: &str| -> Result<PathBuf, String> {
        fs::read_dir(&work)
            .map_err(|e| format!("{}: {e}", work.display()))?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".deb"))
            })
            .ok_or_else(|| format!("apt-get download left no {prefix}*.deb"))
    };
    // Only /boot of the kernel package: its modules are ~400 MB and not needed (serial,
    // devtmpfs, tmpfs and the initramfs are built in).
    let kernel_deb = deb(&format!("{kernel_pkg}_"))?;
    let tree = work.join("tree");
    fs::create_dir_all(&tree).map_err(|e| format!("{}: {e}", tree.display()))?;
    run(Command::new("sh")
        .args([
            "-c",
            "dpkg-deb --fsys-tarfile \"$1\" | tar -x -C \"$2\" --wildcards './boot/vmlinuz-*'",
            "sh",
        ])
        .arg(&kernel_deb)
        .arg(&tree))?;
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb("busybox-static_")?)
        .arg(&tree))?;
    let vmlinuz = fs::read_dir(tree.join("boot"))
        .map_err(|e| format!("kernel package has no /boot: {e}"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("vmlinuz-"))
        .ok_or("kernel package has no /boot/vmlinuz-*")?;
    let busybox = fs::read(tree.join("bin/busybox")).map_err(|e| format!("busybox-static: {e}"))?;

    let kernel_tmp = work.join("vmlinuz");
    fs::copy(&vmlinuz, &kernel_tmp).map_err(|e| format!("{}: {e}", vmlinuz.display()))?;
    let initrd_tmp = work.join("initrd.cpio");
    fs::write(&initrd_tmp, initramfs(&busybox))
        .map_err(|e| format!("{}: {e}", initrd_tmp.display()))?;
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (from, to) in [(&kernel_tmp, &images.kernel), (&initrd_tmp, &images.initrd)] {
        fs::rename(from, to).map_err(|e| format!("{} → {}: {e}", from.display(), to.display()))?;
    }
    let _ = fs::remove_dir_all(&work);
    Ok(images)
}

/// The versioned kernel package `linux-image-amd64` depends on.
fn kernel_package() -> Result<String, String> {
    let out = run(Command::new("apt-cache").args(["depends", "linux-image-amd64"]))?;
    String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-") && p != &"linux-image-amd64")
        .map(str::to_owned)
        .ok_or_else(|| "apt-cache depends linux-image-amd64 names no kernel".into())
}

fn run(cmd: &mut Command) -> Result<Vec<u8>, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The initramfs: a newc ("070701") cpio archive, uncompressed (the kernel takes it so).
fn initramfs(busybox: &[u8]) -> Vec<u8> {
    const DIR: u32 = 0o040_755;
    const EXE: u32 = 0o100_755;
    const CHR: u32 = 0o020_600;
    let mut out = Vec::new();
    let mut ino = 0;
    let mut entry = |name: &str, mode: u32, rdev: (u32, u32), data: &[u8]| {
        ino += 1;
        let mut header = String::from("070701");
        let nlink = if mode & 0o170_000 == DIR & 0o170_000 {
            2
        } else {
            1
        };
        let namesize = name.len() + 1;
        for field in [
            ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            u32::try_from(data.len()).expect("initramfs file under 4 GiB"),
            0, // dev major
            0, // dev minor
            rdev.0,
            rdev.1,
            u32::try_from(namesize).expect("short name"),
            0, // check
        ] {
            let _ = write!(header, "{field:08x}");
        }
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(out.len().next_multiple_of(4), 0);
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(4), 0);
    };
    for dir in ["bin", "dev", "proc", "sys", "tmp", "dirty"] {
        entry(dir, DIR, (0, 0), &[]);
    }
    // The kernel opens /dev/console for init before devtmpfs is mounted.
    entry("dev/console", CHR, (5, 1), &[]);
    entry("bin/busybox", EXE, (0, 0), busybox);
    entry("init", EXE, (0, 0), INIT.as_bytes());
    entry("TRAILER!!!", 0, (0, 0), &[]);
    out.resize(out.len().next_multiple_of(512), 0);
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

fn disk_format(path: &Path) -> &'static str {
    let mut magic = [0u8; 4];
    let is_qcow2 = fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && magic == *b"QFI\xfb";
    if is_qcow2 {
        "qcow2"
    } else {
        "raw"
    }
}

/// The tiny guest's libvirt domain XML (builds the images on first use).
pub fn tiny_domain_xml(spec: &TinySpec, serial_log: &Path) -> String {
    let images = images();
    let e = |p: &Path| xml_escape(&p.to_string_lossy());
    let mut cmdline = String::from("console=ttyS0 quiet");
    if spec.dirty_mib > 0 {
        let _ = write!(cmdline, " ferry.dirty={}", spec.dirty_mib);
    }
    let disk = spec.disk.as_deref().map_or_else(String::new, |d| {
        format!(
            "    <disk type='file' device='disk'>\n      \
             <driver name='qemu' type='{}' cache='none'/>\n      \
             <source file='{}'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n",
            disk_format(d),
            e(d)
        )
    });
    format!(
        "<domain type='qemu'>\n  <name>{name}</name>\n  \
         <memory unit='MiB'>{mem}</memory>\n  <vcpu>1</vcpu>\n  \
         <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n    \
         <kernel>{kernel}</kernel>\n    <initrd>{initrd}</initrd>\n    \
         <cmdline>{cmdline}</cmdline>\n  </os>\n  \
         <features><acpi/></features>\n  \
         <devices>\n{disk}    \
         <serial type='file'>\n      <source path='{log}' append='on'/>\n      \
         <target port='0'/>\n    </serial>\n    \
         <controller type='usb' model='none'/>\n    \
         <memballoon model='none'/>\n  </devices>\n</domain>\n",
        name = xml_escape(&spec.name),
        mem = spec.memory_mib,
        kernel = e(&images.kernel),
        initrd = e(&images.initrd),
        log = e(serial_log),
    )
}

/// `virsh -c <uri> <args…>` with a time limit; its stdout, or an error with its stderr.
pub fn virsh(uri: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new("timeout")
        .args(["300", "virsh", "-c", uri])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run virsh: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "virsh -c {uri} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `virsh domstate`, e.g. "running", "shut off"; `None` when the domain does not exist.
pub fn domstate(uri: &str, name: &str) -> Option<String> {
    virsh(uri, &["domstate", name])
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Asserts that libvirt at `uri` has the domain `name` running.
pub fn assert_running(uri: &str, name: &str) {
    assert_eq!(
        domstate(uri, name).as_deref(),
        Some("running"),
        "{name} is not running at {uri}"
    );
}

/// Defines and starts the tiny guest on `d` (through its unix socket). Panics, with the
/// QEMU log, when it cannot. The serial log is truncated first.
pub fn define_and_start(d: &LocalLibvirtd, spec: &TinySpec, serial_log: &Path) {
    let _ = fs::remove_file(serial_log);
    let xml = tiny_domain_xml(spec, serial_log);
    let file = serial_log.with_extension("domain.xml");
    fs::write(&file, &xml).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    virsh(&d.socket_uri, &["define", &file.to_string_lossy()])
        .unwrap_or_else(|e| panic!("{e}\n{xml}"));
    virsh(&d.socket_uri, &["start", &spec.name]).unwrap_or_else(|e| {
        panic!(
            "{e}; qemu log: {}",
            fs::read_to_string(d.log_dir.join("qemu").join(format!("{}.log", spec.name)))
                .unwrap_or_default()
        )
    });
}

/// The tick numbers in the serial log, in order; only complete lines count.
pub fn ticks(serial_log: &Path) -> Vec<u64> {
    let bytes = fs::read(serial_log).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    let mut out = Vec::new();
    for line in complete.lines() {
        let mut rest = line;
        while let Some(at) = rest.find("TICK ") {
            rest = &rest[at + 5..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if let Ok(n) = rest[..digits].parse() {
                out.push(n);
            }
            rest = &rest[digits..];
        }
    }
    out
}

/// Waits until the guest has printed tick `at_least` (or a later one); the last tick.
pub fn wait_ticks(serial_log: &Path, at_least: u64, timeout: Duration) -> Result<u64, String> {
    let start = Instant::now();
    loop {
        let last = ticks(serial_log).last().copied().unwrap_or(0);
        if last >= at_least {
            return Ok(last);
        }
        if start.elapsed() > timeout {
            let text = fs::read_to_string(serial_log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            return Err(format!(
                "no TICK {at_least} in {} within {timeout:?} (last tick {last}); log tail:\n{}",
                serial_log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        sleep(Duration::from_millis(200));
    }
}

/// Destroys and undefines a domain on every given daemon when dropped, however the test
/// ends.
pub struct DomainGuard {
    pub name: String,
    uris: Vec<String>,
}

impl DomainGuard {
    pub fn new(name: &str, daemons: &[&LocalLibvirtd]) -> Self {
        Self {
            name: name.to_owned(),
            uris: daemons.iter().map(|d| d.socket_uri.clone()).collect(),
        }
    }
}

impl Drop for DomainGuard {
    fn drop(&mut self) {
        for uri in &self.uris {
            let _ = virsh(uri, &["destroy", &self.name]);
            let _ = virsh(uri, &["undefine", &self.name]);
        }
    }
}

/// A domain name unique to this test process.
pub fn unique_name(what: &str) -> String {
    format!("ferry-tiny-{what}-{}", std::process::id())
}

/// A field of `virsh domjobinfo` output ("Total downtime" → "127 ms"), or "?".
pub fn job_stat(domjobinfo: &str, key: &str) -> String {
    domjobinfo
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim_start().strip_prefix(':'))
        .map_or_else(
            || "?".into(),
            |v| v.split_whitespace().collect::<Vec<_>>().join(" "),
        )
}

/// Strictly increasing: no reset (which restarts at 1) and no repeat.
fn assert_never_reset(ticks: &[u64], log: &Path) {
    assert!(
        ticks.windows(2).all(|w| w[0] < w[1]),
        "tick counter went back (guest reset?) in {}: {ticks:?}",
        log.display()
    );
}

#[test]
fn initramfs_is_newc() {
    let cpio = initramfs(b"\x7fELF");
    assert!(cpio.starts_with(b"070701"));
    assert_eq!(cpio.len() % 512, 0);
    let trailer = cpio
        .windows(10)
        .position(|w| w == b"TRAILER!!!")
        .expect("trailer");
    assert!(cpio[..trailer].windows(4).any(|w| w == b"init"));
}

#[test]
fn ticks_parse_complete_lines_only() {
    let dir = crate::util::tmpdir();
    let log = dir.path().join("serial.log");
    fs::write(
        &log,
        "\x1b[2JTICK 1\r\n[  3.1] noise\r\nTICK 2\r\nTICK 3TICK 5\r\nTICK 6",
    )
    .unwrap();
    assert_eq!(ticks(&log), [1, 2, 3, 5]);
    assert_eq!(wait_ticks(&log, 5, Duration::ZERO), Ok(5));
    assert!(wait_ticks(&log, 6, Duration::ZERO).is_err());
}

#[test]
fn tiny_guest_ticks() {
    let Some(src) = prerequisites() else {
        return;
    };
    let dir = crate::util::tmpdir();
    let log = dir.path().join("serial.log");
    let spec = TinySpec::new(&unique_name("ticks"));
    let _ = images();
    let _guard = DomainGuard::new(&spec.name, &[src]);
    let start = Instant::now();
    define_and_start(src, &spec, &log);
    let first = wait_ticks(&log, 1, Duration::from_secs(120)).unwrap_or_else(|e| panic!("{e}"));
    let booted = start.elapsed();
    let last =
        wait_ticks(&log, first + 3, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "tiny guest: first tick {booted:.1?} after define+start, tick {last} after {:.1?}",
        start.elapsed()
    );
    assert_never_reset(&ticks(&log), &log);
    assert_running(&src.socket_uri, &spec.name);
}

#[test]
fn virsh_live_migration_between_own_daemons_keeps_ticking() {
    let Some(src) = prerequisites() else {
        return;
    };
    let Some(dest) = dest_libvirtd() else {
        return;
    };
    let dir = crate::util::tmpdir();
    let log = dir.path().join("serial.log");
    let mut spec = TinySpec::new(&unique_name("migrate"));
    spec.memory_mib = 256;
    let _guard = DomainGuard::new(&spec.name, &[src, dest]);
    define_and_start(src, &spec, &log);
    let before = wait_ticks(&log, 3, Duration::from_secs(120)).unwrap_or_else(|e| panic!("{e}"));

    let start = Instant::now();
    virsh_migrate(src, dest, &spec.name);
    let took = start.elapsed();
    let stats =
        virsh(&dest.socket_uri, &["domjobinfo", "--completed", &spec.name]).unwrap_or_default();
    let stat = |key: &str| job_stat(&stats, key);
    eprintln!(
        "virsh migrate --live took {took:.2?}: total {}, downtime {}, iterations {}",
        stat("Time elapsed"),
        stat("Total downtime"),
        stat("Iteration")
    );

    assert_running(&dest.socket_uri, &spec.name);
    assert_eq!(
        domstate(&src.socket_uri, &spec.name),
        None,
        "undefined on source"
    );
    assert!(
        virsh(
            &dest.socket_uri,
            &["list", "--all", "--persistent", "--name"]
        )
        .unwrap_or_default()
        .lines()
        .any(|l| l.trim() == spec.name),
        "persistent on destination"
    );
    // The guest keeps counting from where it was: no reboot, no second boot.
    let moved_at = ticks(&log).last().copied().unwrap_or(0);
    let after = wait_ticks(&log, moved_at + 3, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("guest stopped ticking after the move: {e}"));
    assert!(after > before);
    assert_never_reset(&ticks(&log), &log);
    assert_running(&dest.socket_uri, &spec.name);
}

/// Stops a private daemon instance when dropped.
struct StopInstance(LocalLibvirtd);

impl Drop for StopInstance {
    fn drop(&mut self) {
        self.0.stop();
    }
}

#[test]
fn guest_survives_libvirtd_kill_and_restart() {
    if prerequisites().is_none() {
        return;
    }
    // A private instance: killing the shared ones would break tests running in parallel.
    let d = StopInstance(start_instance("restart").unwrap_or_else(|e| panic!("{e}")));
    let d = &d.0;
    let dir = crate::util::tmpdir();
    let log = dir.path().join("serial.log");
    let spec = TinySpec::new(&unique_name("restart"));
    let _guard = DomainGuard::new(&spec.name, &[d]);
    define_and_start(d, &spec, &log);
    let before = wait_ticks(&log, 2, Duration::from_secs(120)).unwrap_or_else(|e| panic!("{e}"));

    d.kill_daemon();
    assert_eq!(d.daemon_pid("libvirtd"), None);
    assert!(
        virsh(&d.socket_uri, &["version"]).is_err(),
        "daemon is gone"
    );
    let during = wait_ticks(&log, before + 2, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("guest stopped with its libvirtd: {e}"));

    let start = Instant::now();
    d.restart().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("libvirtd restarted in {:.1?}", start.elapsed());
    assert_running(&d.socket_uri, &spec.name);
    wait_ticks(&log, during + 2, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    assert_never_reset(&ticks(&log), &log);
}

#[test]
fn dirtying_guest_does_not_converge_at_low_bandwidth() {
    let Some(src) = prerequisites() else {
        return;
    };
    let Some(dest) = dest_libvirtd() else {
        return;
    };
    let dir = crate::util::tmpdir();
    let log = dir.path().join("serial.log");
    let mut spec = TinySpec::new(&unique_name("dirty"));
    spec.memory_mib = 256;
    spec.dirty_mib = 64;
    let _guard = DomainGuard::new(&spec.name, &[src, dest]);
    define_and_start(src, &spec, &log);
    wait_ticks(&log, 3, Duration::from_secs(120)).unwrap_or_else(|e| panic!("{e}"));
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("DIRTY 64 MiB"),
        "dirtier did not start: {text}"
    );

    // At 8 MiB/s the guest rewrites its 64 MiB faster than they are sent: every pass
    // leaves about all of them, never within the default 300 ms downtime.
    let mut migrate = Command::new("timeout")
        .args([
            "300", "virsh", "-c", &src.uri, "migrate", "--live", &spec.name, &dest.uri,
        ])
        .args(["--migrateuri", "tcp://127.0.0.1", "--bandwidth", "8"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("virsh migrate runs");
    let mut info = String::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(90) {
        sleep(Duration::from_secs(2));
        if let Some(status) = migrate.try_wait().expect("wait virsh") {
            panic!("migration ended ({status}) although the guest dirties memory: {info}");
        }
        info = virsh(&src.socket_uri, &["domjobinfo", &spec.name]).unwrap_or_default();
        let iterations: u64 = job_stat(&info, "Iteration").parse().unwrap_or(0);
        if iterations >= 3 {
            break;
        }
    }
    eprintln!(
        "dirtying guest after {:.1?}: iteration {}, remaining {}, dirty rate {}, bandwidth {}",
        start.elapsed(),
        job_stat(&info, "Iteration"),
        job_stat(&info, "Memory remaining"),
        job_stat(&info, "Dirty rate"),
        job_stat(&info, "Memory bandwidth"),
    );
    assert!(
        job_stat(&info, "Iteration").parse::<u64>().unwrap_or(0) >= 3,
        "pre-copy should still be iterating: {info}"
    );
    let remaining_mib: f64 = job_stat(&info, "Memory remaining")
        .trim_end_matches("MiB")
        .trim()
        .parse()
        .unwrap_or(0.0);
    assert!(
        remaining_mib >= 32.0,
        "the dirtied set should stay unsent at 8 MiB/s: {info}"
    );
    virsh(&src.socket_uri, &["domjobabort", &spec.name]).unwrap_or_else(|e| panic!("{e}"));
    let out = migrate.wait_with_output().expect("virsh migrate ends");
    assert!(!out.status.success(), "aborted migration reports failure");

    assert_running(&src.socket_uri, &spec.name);
    assert_eq!(
        domstate(&dest.socket_uri, &spec.name),
        None,
        "nothing left on dest"
    );
    let last = ticks(&log).last().copied().unwrap_or(0);
    wait_ticks(&log, last + 2, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    assert_never_reset(&ticks(&log), &log);
}

/// `virsh migrate --live --persistent --undefinesource` from `src` to `dest`, with the
/// migration address the destination's unresolvable host name needs.
pub fn virsh_migrate(src: &LocalLibvirtd, dest: &LocalLibvirtd, name: &str) {
    virsh(
        &src.uri,
        &[
            "migrate",
            "--live",
            "--persistent",
            "--undefinesource",
            name,
            &dest.uri,
            "--migrateuri",
            "tcp://127.0.0.1",
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
}
