//! The e2e tests' own libvirtd: a real daemon, never the machine's, started once per test
//! process and shared by every test in it.
//!
//! Each instance lives under `target/libvirtd/<name>/`. Its `etc`, `run`, `lib`, `log`
//! and `cache` directories are bind-mounted over `/etc/libvirt`, `/run/libvirt`,
//! `/var/lib/libvirt`, `/var/log/libvirt` and `/var/cache/libvirt` inside a private
//! mount namespace, where `virtlogd` and `libvirtd` run; so the instance sees only its
//! own configuration and state, and a second instance (a migration destination) can run
//! next to it. The client stays outside the namespace and reaches the daemon through the
//! socket's real path: `qemu:///system?socket=<root>/run/libvirt-sock`. Disk paths must
//! therefore lie outside the overlaid directories; `images_dir` (the instance's pool
//! "default") does.
//!
//! The daemons outlive the test process (nothing runs at exit for statics); the next
//! start of the same instance kills them, and their guests, by their pid files.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use virtconn::{Connection, DomainState};

pub struct LocalLibvirtd {
    /// `qemu:///system?socket=…` for this instance.
    pub uri: String,
    /// `target/libvirtd/<name>`.
    pub root: PathBuf,
    /// The instance's `/var/log/libvirt`: `libvirtd.log`, and `qemu/<domain>.log`.
    pub log_dir: PathBuf,
    /// Backing directory of the instance's storage pool "default", for test disks.
    pub images_dir: PathBuf,
}

/// Why there is no daemon: a skip is fine locally, a failure never is.
enum Unavailable {
    Skip(String),
    Failed(String),
}

/// The shared source-side daemon, started on first use. `None` (after saying why) when
/// this machine cannot run one; with `CI` set that is a failure instead.
pub fn local_libvirtd() -> Option<&'static LocalLibvirtd> {
    static SRC: OnceLock<Result<LocalLibvirtd, Unavailable>> = OnceLock::new();
    match SRC.get_or_init(|| {
        prerequisites()?;
        start_instance("src").map_err(Unavailable::Failed)
    }) {
        Ok(daemon) => Some(daemon),
        Err(Unavailable::Skip(why)) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "own libvirtd is required in CI: {why}"
            );
            eprintln!("skipping: no own libvirtd: {why}");
            None
        }
        Err(Unavailable::Failed(why)) => panic!("own libvirtd failed to start: {why}"),
    }
}

fn prerequisites() -> Result<(), Unavailable> {
    if !is_root() {
        return Err(Unavailable::Skip(
            "needs root (mount namespaces, libvirtd)".into(),
        ));
    }
    for tool in [
        "libvirtd", "virtlogd", "virsh", "unshare", "setsid", "timeout",
    ] {
        if !on_path(tool) {
            return Err(Unavailable::Skip(format!("{tool} is not installed")));
        }
    }
    Ok(())
}

/// Effective UID from /proc, which needs no libc call.
fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join(tool).is_file())
            || ["/usr/sbin", "/sbin"]
                .iter()
                .any(|d| Path::new(d).join(tool).is_file())
    })
}

fn instances_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("libvirtd")
}

/// Starts instance `name` from a clean slate, killing whatever an earlier run of the
/// same instance left behind.
pub fn start_instance(name: &str) -> Result<LocalLibvirtd, String> {
    let root = instances_dir().join(name);
    kill_stale(&root);
    prepare_dirs(&root, name)?;
    launch(&root)?;
    let sock = root.join("run").join("libvirt-sock");
    let uri = format!("qemu:///system?socket={}", sock.display());
    let log_dir = root.join("log");
    let daemon_log = || tail(&log_dir.join("libvirtd.log"), 20);
    wait_for(Duration::from_secs(30), || sock.exists()).map_err(|()| {
        format!(
            "{} did not appear in 30 s; log: {}",
            sock.display(),
            daemon_log()
        )
    })?;
    // The first connection waits for the QEMU capability probe (~8 s under TCG).
    let mut last = String::new();
    wait_for(Duration::from_secs(120), || match virsh_version(&uri) {
        Ok(()) => true,
        Err(e) => {
            last = e;
            sleep(Duration::from_millis(500));
            false
        }
    })
    .map_err(|()| {
        format!(
            "virsh -c {uri} version kept failing: {last}; log: {}",
            daemon_log()
        )
    })?;
    Ok(LocalLibvirtd {
        uri,
        images_dir: root.join("images"),
        log_dir,
        root,
    })
}

fn wait_for(limit: Duration, mut ready: impl FnMut() -> bool) -> Result<(), ()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ready() {
            return Ok(());
        }
        sleep(Duration::from_millis(100));
    }
    Err(())
}

fn virsh_version(uri: &str) -> Result<(), String> {
    let out = Command::new("timeout")
        .args(["60", "virsh", "-c", uri, "version"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run virsh: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr)
            .trim()
            .replace('\n', " "))
    }
}

fn tail(path: &Path, lines: usize) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join(" | ")
        }
        Err(e) => format!("({}: {e})", path.display()),
    }
}

/// Kills the daemons and guests recorded in the instance's pid files. libvirtd goes
/// first so it does not react to its guests dying; virtlogd last, as guests log to it.
fn kill_stale(root: &Path) {
    let run = root.join("run");
    let mut pidfiles = vec![(run.join("libvirtd.pid"), "libvirtd")];
    if let Ok(entries) = fs::read_dir(run.join("qemu")) {
        pidfiles.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pid"))
                .map(|p| (p, "qemu")),
        );
    }
    pidfiles.push((run.join("virtlogd.pid"), "virtlogd"));
    for (pidfile, comm_prefix) in pidfiles {
        let Some(pid) = fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        else {
            continue;
        };
        // The pid may have been reused by an unrelated process since.
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.starts_with(comm_prefix) {
            terminate(pid);
        }
    }
}

fn alive(pid: u32) -> bool {
    // A zombie has exited; only its parent (init, here) has yet to reap it.
    fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        !s.lines()
            .any(|l| l.starts_with("State:") && l.contains("zombie"))
    })
}

fn terminate(pid: u32) {
    for (signal, grace) in [("-TERM", 10), ("-KILL", 5)] {
        let _ = Command::new("kill")
            .args([signal, &pid.to_string()])
            .stderr(Stdio::null())
            .status();
        if wait_for(Duration::from_secs(grace), || !alive(pid)).is_ok() {
            return;
        }
    }
}

/// Recreates the folders (only) below `real` under `dst`, with their modes.
fn mirror_dirs(real: &Path, dst: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(entries) = fs::read_dir(real) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_dir() {
            continue;
        }
        let to = dst.join(entry.file_name());
        fs::create_dir_all(&to).map_err(|e| format!("{}: {e}", to.display()))?;
        let mode = meta.permissions().mode() & 0o7777;
        fs::set_permissions(&to, fs::Permissions::from_mode(mode))
            .map_err(|e| format!("{}: {e}", to.display()))?;
        mirror_dirs(&entry.path(), &to)?;
    }
    Ok(())
}

/// Fresh per-instance directories and configuration.
fn prepare_dirs(root: &Path, name: &str) -> Result<(), String> {
    let io = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    for sub in ["etc", "run", "lib", "log", "cache", "images"] {
        let dir = root.join(sub);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| io("cannot remove", &dir, e))?;
        }
        fs::create_dir_all(&dir).map_err(|e| io("cannot create", &dir, e))?;
    }
    // The packages ship these trees' folders (e.g. /var/log/libvirt/qemu, where virtlogd
    // must open serial logs); the daemon does not create them all itself.
    for (sub, real) in [
        ("lib", "/var/lib/libvirt"),
        ("log", "/var/log/libvirt"),
        ("cache", "/var/cache/libvirt"),
    ] {
        mirror_dirs(Path::new(real), &root.join(sub))?;
    }
    let etc = root.join("etc");
    let out = Command::new("cp")
        .args(["-a", "/etc/libvirt/."])
        .arg(&etc)
        .output()
        .map_err(|e| format!("cannot run cp: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cp -a /etc/libvirt {}: {}",
            etc.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    // Nothing of the machine's own domains, pools or autostarted networks (a second
    // daemon autostarting "default" would fight over virbr0).
    for sub in ["qemu/autostart", "qemu/networks/autostart", "storage"] {
        let dir = etc.join(sub);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| io("cannot remove", &dir, e))?;
        }
    }
    if let Ok(entries) = fs::read_dir(etc.join("qemu")) {
        for xml in entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        {
            fs::remove_file(&xml).map_err(|e| io("cannot remove", &xml, e))?;
        }
    }
    set_conf(
        &etc.join("qemu.conf"),
        &[
            // No svirt, no chown of images, no cgroups: tests must not depend on (or
            // alter) the host's security setup.
            ("user", "\"root\""),
            ("group", "\"root\""),
            ("security_driver", "\"none\""),
            ("dynamic_ownership", "0"),
            ("remember_owner", "0"),
            ("cgroup_controllers", "[ ]"),
        ],
    )?;
    set_conf(
        &etc.join("libvirtd.conf"),
        &[
            ("auth_unix_rw", "\"none\""),
            ("auth_unix_ro", "\"none\""),
            // Distinct per instance: libvirt refuses to migrate to a "host" with its own UUID.
            ("host_uuid", &format!("\"{}\"", host_uuid(name))),
            ("log_outputs", "\"3:file:/var/log/libvirt/libvirtd.log\""),
        ],
    )?;
    write_default_pool(&etc, &root.join("images"))
}

/// Replaces (or adds) `key = value` lines in a libvirt config file.
fn set_conf(path: &Path, settings: &[(&str, &str)]) -> Result<(), String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let sets = |line: &str, key: &str| {
        line.trim_start()
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    let mut out: Vec<String> = text
        .lines()
        .filter(|l| !settings.iter().any(|(k, _)| sets(l, k)))
        .map(str::to_string)
        .collect();
    out.push("# ferry e2e harness".into());
    out.extend(settings.iter().map(|(k, v)| format!("{k} = {v}")));
    fs::write(path, out.join("\n") + "\n").map_err(|e| format!("{}: {e}", path.display()))
}

fn write_default_pool(etc: &Path, images: &Path) -> Result<(), String> {
    let storage = etc.join("storage");
    let autostart = storage.join("autostart");
    fs::create_dir_all(&autostart).map_err(|e| format!("{}: {e}", autostart.display()))?;
    let xml = format!(
        "<pool type='dir'>\n  <name>default</name>\n  <target>\n    <path>{}</path>\n  </target>\n</pool>\n",
        images.display()
    );
    let pool = storage.join("default.xml");
    fs::write(&pool, xml).map_err(|e| format!("{}: {e}", pool.display()))?;
    let link = autostart.join("default.xml");
    std::os::unix::fs::symlink("../default.xml", &link)
        .map_err(|e| format!("{}: {e}", link.display()))
}

/// A stable UUID from the instance name (FNV-1a, two seeds).
fn host_uuid(name: &str) -> String {
    let fnv = |seed: u64| {
        name.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let hex = format!(
        "{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x8422_2325_cbf2_9ce4)
    );
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Bind mounts and daemons inside a new private mount namespace. `setsid` keeps the
/// daemons out of the test's session; closed stdio keeps cargo's pipes from being held.
fn launch(root: &Path) -> Result<(), String> {
    const SCRIPT: &str = r#"set -e
r="$1"
for pair in etc:/etc/libvirt run:/run/libvirt lib:/var/lib/libvirt log:/var/log/libvirt cache:/var/cache/libvirt; do
    mkdir -p "${pair#*:}"
    mount --bind "$r/${pair%%:*}" "${pair#*:}"
done
virtlogd -d -p "$r/run/virtlogd.pid" </dev/null >/dev/null 2>&1
libvirtd -d -p "$r/run/libvirtd.pid" </dev/null >/dev/null 2>&1
"#;
    let out = Command::new("setsid")
        .args([
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            SCRIPT,
            "sh",
        ])
        .arg(root)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run setsid unshare: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "starting the daemons in a mount namespace failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', " | ")
        ))
    }
}

#[test]
fn own_libvirtd_answers() {
    let Some(daemon) = local_libvirtd() else {
        return;
    };
    let conn = Connection::open(&daemon.uri).expect("connects to own libvirtd");
    assert_eq!(conn.uri(), daemon.uri);
    let virt_type = conn.virt_type().expect("capabilities");
    eprintln!("own libvirtd at {} offers {virt_type:?}", daemon.uri);
    assert_eq!(
        conn.pool_dir("default").expect("pool default"),
        daemon.images_dir
    );
    conn.pool_refresh("default").expect("pool refresh");

    // The pid keeps names apart from other checkouts' daemons on the same host.
    let name = format!("ferry-e2e-probe-{}", std::process::id());
    let xml = format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64'>hvm</type></os><features><acpi/></features>\
         <devices><memballoon model='none'/></devices></domain>"
    );
    let info = conn.define(&xml).expect("defines");
    assert_eq!(info.name, name);
    assert!(matches!(
        conn.define(&xml),
        Err(virtconn::ConnError::NameExists { .. })
    ));
    assert_eq!(conn.state(&name).expect("state"), DomainState::ShutOff);
    if on_path("qemu-system-x86_64") {
        // Without a disk the guest just sits in its firmware, which is all this needs.
        conn.start(&name).unwrap_or_else(|e| {
            panic!(
                "{e}; qemu log: {}",
                tail(&daemon.log_dir.join("qemu").join(format!("{name}.log")), 10)
            )
        });
        assert_eq!(conn.state(&name).expect("state"), DomainState::Running);
        conn.destroy(&name).expect("destroys");
        assert_eq!(conn.state(&name).expect("state"), DomainState::ShutOff);
    } else {
        eprintln!("qemu-system-x86_64 missing: define/undefine only");
    }
    conn.undefine(&name).expect("undefines");
    assert!(!conn.exists(&name).expect("lookup"));
}
