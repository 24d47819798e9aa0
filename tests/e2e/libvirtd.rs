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
//! A second instance, [`dest_libvirtd`], is the destination "host" of migration tests: it
//! runs in its own UTS namespace too, with host name [`DEST_HOSTNAME`] (which does not
//! resolve from the source, as in the field: migrations must pass a migration URI such as
//! `tcp://127.0.0.1`), its own `host_uuid`, and listens on TCP on loopback without auth,
//! so it is reached at `qemu+tcp://127.0.0.1:<port>/system`. Both instances share the
//! host's network and PID namespaces; the destination's QEMU listens for incoming
//! migrations on 127.0.0.1, ports 49152–49215.
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
    /// How clients reach this instance: `qemu:///system?socket=…` for one without TCP
    /// (the source), `qemu+tcp://127.0.0.1:<port>/system` for one listening on TCP (the
    /// destination).
    pub uri: String,
    /// `qemu:///system?socket=…`: the instance's unix socket, for local checks.
    pub socket_uri: String,
    /// The TCP port the daemon listens on (127.0.0.1); 0 when it does not listen on TCP.
    pub port: u16,
    /// `target/libvirtd/<name>`.
    pub root: PathBuf,
    /// The instance's `/var/log/libvirt`: `libvirtd.log`, and `qemu/<domain>.log`.
    pub log_dir: PathBuf,
    /// Backing directory of the instance's storage pool "default", for test disks.
    pub images_dir: PathBuf,
    /// The host name inside the instance's UTS namespace; `None`: the machine's own.
    pub hostname: Option<String>,
}

/// Host name of the destination instance. It must not resolve (tests pass a migration
/// URI instead, as the field must when a destination's name does not resolve).
pub const DEST_HOSTNAME: &str = "ferry-dest-host";

/// How an instance is started.
#[derive(Clone, Debug, Default)]
pub struct InstanceOptions {
    /// Own UTS namespace with this host name.
    pub hostname: Option<String>,
    /// Listen on TCP on 127.0.0.1 (a free port is picked), without authentication.
    pub tcp: bool,
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

/// The shared destination daemon (a second "host", see the module docs), started on
/// first use. `None` (after saying why) when this machine cannot run one; with `CI` set
/// that is a failure instead.
pub fn dest_libvirtd() -> Option<&'static LocalLibvirtd> {
    static DEST: OnceLock<Result<LocalLibvirtd, Unavailable>> = OnceLock::new();
    match DEST.get_or_init(|| {
        prerequisites()?;
        start_instance_with(
            "dest",
            &InstanceOptions {
                hostname: Some(DEST_HOSTNAME.into()),
                tcp: true,
            },
        )
        .map_err(Unavailable::Failed)
    }) {
        Ok(daemon) => Some(daemon),
        Err(Unavailable::Skip(why)) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "own destination libvirtd is required in CI: {why}"
            );
            eprintln!("skipping: no own destination libvirtd: {why}");
            None
        }
        Err(Unavailable::Failed(why)) => {
            panic!("own destination libvirtd failed to start: {why}")
        }
    }
}

fn prerequisites() -> Result<(), Unavailable> {
    if !is_root() {
        return Err(Unavailable::Skip(
            "needs root (mount namespaces, libvirtd)".into(),
        ));
    }
    for tool in [
        "libvirtd", "virtlogd", "virsh", "unshare", "nsenter", "setsid", "timeout",
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
/// same instance left behind: unix socket only, the machine's host name.
pub fn start_instance(name: &str) -> Result<LocalLibvirtd, String> {
    start_instance_with(name, &InstanceOptions::default())
}

/// [`start_instance`] with an own host name and/or a TCP listener.
pub fn start_instance_with(name: &str, opts: &InstanceOptions) -> Result<LocalLibvirtd, String> {
    let root = instances_dir().join(name);
    kill_stale(&root);
    let port = if opts.tcp { free_port()? } else { 0 };
    prepare_dirs(&root, name, port)?;
    launch(&root, opts.hostname.as_deref(), port != 0)?;
    let sock = root.join("run").join("libvirt-sock");
    let socket_uri = format!("qemu:///system?socket={}", sock.display());
    let uri = if port == 0 {
        socket_uri.clone()
    } else {
        format!("qemu+tcp://127.0.0.1:{port}/system")
    };
    let daemon = LocalLibvirtd {
        uri,
        socket_uri,
        port,
        images_dir: root.join("images"),
        log_dir: root.join("log"),
        root,
        hostname: opts.hostname.clone(),
    };
    daemon.wait_ready(&sock)?;
    Ok(daemon)
}

impl LocalLibvirtd {
    fn pidfile(&self, daemon: &str) -> PathBuf {
        self.root.join("run").join(format!("{daemon}.pid"))
    }

    /// The pid of the instance's running `libvirtd` or `virtlogd`, from its pid file.
    pub fn daemon_pid(&self, daemon: &str) -> Option<u32> {
        let pid = fs::read_to_string(self.pidfile(daemon))
            .ok()?
            .trim()
            .parse::<u32>()
            .ok()?;
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        (comm.starts_with(daemon) && alive(pid)).then_some(pid)
    }

    /// Kills the instance's libvirtd, its guests and its virtlogd (for private instances;
    /// the shared ones are left running for the next test process to reap).
    pub fn stop(&self) {
        kill_stale(&self.root);
    }

    /// SIGKILLs the instance's libvirtd (its guests and virtlogd keep running), for fault
    /// tests; returns once it is gone. [`restart`](Self::restart) brings it back.
    pub fn kill_daemon(&self) {
        if let Some(pid) = self.daemon_pid("libvirtd") {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
            let _ = wait_for(Duration::from_secs(10), || !alive(pid));
        }
    }

    /// Starts the instance's libvirtd again (after [`kill_daemon`](Self::kill_daemon), or
    /// killing a running one first) with the same configuration, inside the instance's
    /// namespaces when its virtlogd still holds them; it reconnects to running guests.
    /// Returns once the daemon answers.
    pub fn restart(&self) -> Result<(), String> {
        self.kill_daemon();
        let listen = if self.port == 0 { "" } else { "--listen " };
        let script =
            format!("libvirtd {listen}-d -p \"$1/run/libvirtd.pid\" </dev/null >/dev/null 2>&1");
        let mut cmd = Command::new("setsid");
        if let Some(pid) = self.daemon_pid("virtlogd") {
            cmd.args(["nsenter", "-t", &pid.to_string(), "-m", "-u", "--"]);
            cmd.args(["sh", "-c", &script, "sh"]);
        } else {
            cmd.args(["unshare", "-m", "--propagation", "private"]);
            if self.hostname.is_some() {
                cmd.arg("-u");
            }
            let full = format!(
                "{}\n{}virtlogd -d -p \"$1/run/virtlogd.pid\" </dev/null >/dev/null 2>&1\n{script}\n",
                MOUNTS_SCRIPT,
                hostname_cmd(self.hostname.as_deref()),
            );
            cmd.args(["sh", "-c", &full, "sh"]);
        }
        cmd.arg(&self.root).stdin(Stdio::null());
        run_script(&mut cmd, "restarting libvirtd")?;
        self.wait_ready(&self.root.join("run").join("libvirt-sock"))
    }

    /// Waits for the socket, then for the first connection to succeed, on both URIs.
    fn wait_ready(&self, sock: &Path) -> Result<(), String> {
        let daemon_log = || tail(&self.log_dir.join("libvirtd.log"), 20);
        wait_for(Duration::from_secs(30), || sock.exists()).map_err(|()| {
            format!(
                "{} did not appear in 30 s; log: {}",
                sock.display(),
                daemon_log()
            )
        })?;
        // The first connection waits for the QEMU capability probe (~8 s under TCG).
        for uri in [&self.socket_uri, &self.uri] {
            let mut last = String::new();
            wait_for(Duration::from_secs(120), || {
                // A daemon that failed its initialisation is gone: no point waiting.
                if self.daemon_pid("libvirtd").is_none() {
                    last = "libvirtd exited".into();
                    return true;
                }
                match virsh_version(uri) {
                    Ok(()) => true,
                    Err(e) => {
                        last = e;
                        sleep(Duration::from_millis(500));
                        false
                    }
                }
            })
            .and_then(|()| {
                if last == "libvirtd exited" {
                    Err(())
                } else {
                    Ok(())
                }
            })
            .map_err(|()| {
                format!(
                    "virsh -c {uri} version kept failing: {last}; log: {}",
                    daemon_log()
                )
            })?;
        }
        Ok(())
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it outside the
/// QEMU migration range 49152–49215 in practice: its ephemeral range starts at 32768 but
/// a collision there would only make the start fail, loudly).
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
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
fn prepare_dirs(root: &Path, name: &str, tcp_port: u16) -> Result<(), String> {
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
            // No `migration_host`: the destination's host name must stay unresolvable,
            // so callers pass a migration URI, as they must in the field. (Nor
            // `migration_address`: libvirt refuses a loopback one, so an incoming QEMU
            // listens on all addresses, briefly, during a test migration.)
        ],
    )?;
    let uuid = format!("\"{}\"", host_uuid(name));
    let port = format!("\"{tcp_port}\"");
    let mut conf = vec![
        ("auth_unix_rw", "\"none\""),
        ("auth_unix_ro", "\"none\""),
        // Distinct per instance: libvirt refuses to migrate to a "host" with its own UUID.
        ("host_uuid", uuid.as_str()),
        ("log_outputs", "\"3:file:/var/log/libvirt/libvirtd.log\""),
    ];
    if tcp_port != 0 {
        // Tests only: unauthenticated, unencrypted, loopback.
        conf.extend([
            ("listen_tcp", "1"),
            ("listen_tls", "0"),
            ("auth_tcp", "\"none\""),
            ("tcp_port", port.as_str()),
            ("listen_addr", "\"127.0.0.1\""),
        ]);
    }
    set_conf(&etc.join("libvirtd.conf"), &conf)?;
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

/// Bind-mounts the instance's directories (`$1` is its root) over the real paths.
const MOUNTS_SCRIPT: &str = r#"set -e
r="$1"
for pair in etc:/etc/libvirt run:/run/libvirt lib:/var/lib/libvirt log:/var/log/libvirt cache:/var/cache/libvirt; do
    mkdir -p "${pair#*:}"
    mount --bind "$r/${pair%%:*}" "${pair#*:}"
done
"#;

fn hostname_cmd(hostname: Option<&str>) -> String {
    hostname.map_or_else(String::new, |h| format!("hostname '{h}'\n"))
}

/// Bind mounts and daemons inside a new private mount namespace (and UTS namespace, with
/// `hostname`). `setsid` keeps the daemons out of the test's session; closed stdio keeps
/// cargo's pipes from being held. libvirtd without systemd socket activation opens its
/// TCP socket only with `--listen`.
fn launch(root: &Path, hostname: Option<&str>, tcp: bool) -> Result<(), String> {
    let listen = if tcp { "--listen " } else { "" };
    let script = format!(
        "{MOUNTS_SCRIPT}{}virtlogd -d -p \"$r/run/virtlogd.pid\" </dev/null >/dev/null 2>&1\n\
         libvirtd {listen}-d -p \"$r/run/libvirtd.pid\" </dev/null >/dev/null 2>&1\n",
        hostname_cmd(hostname)
    );
    let mut cmd = Command::new("setsid");
    cmd.args(["unshare", "-m", "--propagation", "private"]);
    if hostname.is_some() {
        cmd.arg("-u");
    }
    cmd.args(["sh", "-c", &script, "sh"])
        .arg(root)
        .stdin(Stdio::null());
    run_script(&mut cmd, "starting the daemons in a mount namespace")
}

fn run_script(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}",
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

#[test]
fn dest_libvirtd_is_another_host_on_tcp() {
    let (Some(src), Some(dest)) = (local_libvirtd(), dest_libvirtd()) else {
        return;
    };
    assert_eq!(src.port, 0);
    assert_eq!(src.uri, src.socket_uri);
    assert_eq!(
        dest.uri,
        format!("qemu+tcp://127.0.0.1:{}/system", dest.port)
    );
    let virsh = |uri: &str, what: &str| {
        let out = Command::new("timeout")
            .args(["60", "virsh", "-c", uri, what])
            .stdin(Stdio::null())
            .output()
            .expect("virsh runs");
        assert!(out.status.success(), "virsh -c {uri} {what}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    // Over TCP and over the unix socket: the same daemon, another host name.
    assert_eq!(virsh(&dest.uri, "hostname"), DEST_HOSTNAME);
    assert_eq!(virsh(&dest.socket_uri, "hostname"), DEST_HOSTNAME);
    assert_ne!(virsh(&src.uri, "hostname"), DEST_HOSTNAME);
    let uuid = |caps: String| {
        caps.lines()
            .find_map(|l| l.trim().strip_prefix("<uuid>"))
            .and_then(|l| l.strip_suffix("</uuid>"))
            .map(str::to_owned)
            .expect("host uuid in capabilities")
    };
    let (src_uuid, dest_uuid) = (
        uuid(virsh(&src.uri, "capabilities")),
        uuid(virsh(&dest.uri, "capabilities")),
    );
    assert_ne!(
        src_uuid, dest_uuid,
        "libvirt refuses to migrate to the same host UUID"
    );
    assert_eq!(dest_uuid, host_uuid("dest"));
    // Realistic: the destination's name does not resolve from the source.
    let resolves = Command::new("getent")
        .args(["hosts", DEST_HOSTNAME])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(!resolves, "{DEST_HOSTNAME} must not resolve");
}
