//! Host names and addresses: the host part of libvirt and migration URIs, whether a host
//! is this machine, name resolution and the TCP probe of the migration port.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::facts::ProbeOutcome;

/// The port probed when `--migrate-uri` names none: the top of libvirt's default range
/// 49152-49215 (qemu.conf `migration_port_min`/`max`). libvirt hands ports out from the
/// bottom, and an incoming QEMU accepts exactly one connection, so probing a port where
/// another move's QEMU is waiting would break that move; the top one is least likely.
pub(crate) const MIGRATION_PROBE_PORT: u16 = 49215;
/// Long enough for a LAN or a VPN round trip, short enough that a dropped SYN does not
/// stall preflight.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Host and port of a URI such as `qemu+tcp://user@host:16509/system`,
/// `tcp://[::1]:49152` or the legacy `tcp:host:port`. The host is empty for
/// `qemu:///system`; brackets around IPv6 addresses are removed.
pub(crate) fn uri_host_port(uri: &str) -> (String, Option<u16>) {
    let rest = match uri.split_once("://") {
        Some((_, rest)) => rest,
        None => match uri.split_once(':') {
            Some((_, rest)) => rest,
            None => return (String::new(), None),
        },
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']').unwrap_or((v6, ""));
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
        return (host.to_string(), port);
    }
    match hostport.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host.to_string(), port.parse().ok()),
        _ => (hostport.to_string(), None),
    }
}

pub(crate) fn uri_host(uri: &str) -> String {
    uri_host_port(uri).0
}

/// Whether a URI's host part means this machine. A name that merely resolves to one of
/// this machine's public addresses is not recognised; the local-only checks then fall
/// back to what libvirt can tell.
pub(crate) fn is_local_host(host: &str) -> bool {
    host.is_empty()
        || host.eq_ignore_ascii_case("localhost")
        || host.eq_ignore_ascii_case("localhost.localdomain")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// How to write a host into `tcp://HOST`: IPv6 addresses need brackets.
pub(crate) fn uri_host_literal(host: &str) -> String {
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

pub(crate) fn resolve(host: &str) -> Result<Vec<IpAddr>, String> {
    let addrs = (host, 0)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .map(|a| a.ip())
        .collect::<Vec<_>>();
    if addrs.is_empty() {
        Err("no addresses".into())
    } else {
        Ok(addrs)
    }
}

/// A TCP connect to `host:port`, reduced to what it says about the path to the port.
pub(crate) fn probe(host: &str, port: u16) -> ProbeOutcome {
    let addrs: Vec<SocketAddr> = match (host, port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => return ProbeOutcome::NoAddress(e.to_string()),
    };
    let Some(addr) = addrs.first() else {
        return ProbeOutcome::NoAddress("no addresses".into());
    };
    match TcpStream::connect_timeout(addr, PROBE_TIMEOUT) {
        Ok(_) => ProbeOutcome::Accepted,
        Err(e) => match e.kind() {
            ErrorKind::ConnectionRefused => ProbeOutcome::Refused,
            ErrorKind::TimedOut | ErrorKind::WouldBlock => ProbeOutcome::TimedOut,
            _ => ProbeOutcome::Unreachable(e.to_string()),
        },
    }
}

/// Filesystem types libvirt treats as shared between hosts (virFileIsSharedFS): a
/// writable file disk elsewhere makes libvirt refuse a migration without copy-storage.
pub(crate) fn is_shared_fs(fstype: &str) -> bool {
    const SHARED: [&str; 15] = [
        "nfs",
        "nfs4",
        "gfs2",
        "gfs",
        "ocfs2",
        "afs",
        "smb3",
        "smbfs",
        "cifs",
        "ceph",
        "gpfs",
        "fuse.quobyte",
        "acfs",
        "fuse.glusterfs",
        "beegfs",
    ];
    SHARED.contains(&fstype)
}

/// The filesystem type of the mount holding `path`, from a `/proc/self/mountinfo` text:
/// the longest mount point that is a prefix of the path wins.
pub(crate) fn fs_type_in(mountinfo: &str, path: &str) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for line in mountinfo.lines() {
        // Fields: id parent major:minor root mountpoint options [optional…] - fstype …
        let mut halves = line.splitn(2, " - ");
        let (Some(left), Some(right)) = (halves.next(), halves.next()) else {
            continue;
        };
        let Some(mount_point) = left.split(' ').nth(4).map(unescape_mount) else {
            continue;
        };
        let Some(fstype) = right.split(' ').next() else {
            continue;
        };
        let under = mount_point == "/"
            || path == mount_point
            || path
                .strip_prefix(mount_point.as_str())
                .is_some_and(|rest| rest.starts_with('/'));
        if under
            && best
                .as_ref()
                .is_none_or(|(len, _)| mount_point.len() >= *len)
        {
            best = Some((mount_point.len(), fstype.to_string()));
        }
    }
    best.map(|(_, t)| t)
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

pub(crate) fn local_fs_type(path: &str) -> Option<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    fs_type_in(&mountinfo, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports_of_uris() {
        let cases = [
            ("qemu:///system", "", None),
            (
                "qemu+tcp://127.0.0.1:16509/system",
                "127.0.0.1",
                Some(16509),
            ),
            (
                "qemu+ssh://root@dst.example/system?keyfile=/k",
                "dst.example",
                None,
            ),
            ("qemu+ssh://[fd00::5]:22/system", "fd00::5", Some(22)),
            ("tcp://10.0.0.5", "10.0.0.5", None),
            ("tcp://10.0.0.5:49200", "10.0.0.5", Some(49200)),
            ("tcp:10.0.0.5:49200", "10.0.0.5", Some(49200)),
            ("tcp://[::1]:49152", "::1", Some(49152)),
            ("test:///default", "", None),
            ("nonsense", "", None),
        ];
        for (uri, host, port) in cases {
            assert_eq!(uri_host_port(uri), (host.to_string(), port), "{uri}");
        }
    }

    #[test]
    fn local_hosts() {
        for h in [
            "",
            "localhost",
            "127.0.0.1",
            "127.0.1.1",
            "::1",
            "LOCALHOST",
        ] {
            assert!(is_local_host(h), "{h}");
        }
        for h in ["10.0.0.5", "dst.example", "fd00::5"] {
            assert!(!is_local_host(h), "{h}");
        }
        assert_eq!(uri_host_literal("::1"), "[::1]");
        assert_eq!(uri_host_literal("10.0.0.5"), "10.0.0.5");
    }

    #[test]
    fn fs_type_by_longest_mount_point() {
        let mi = "\
22 1 8:1 / / rw - ext4 /dev/sda1 rw
30 22 0:40 / /var/lib/libvirt/images rw - nfs4 srv:/img rw
31 22 0:41 / /var/lib/libvirt/images2 rw - xfs /dev/sdb rw
32 22 0:42 / /mnt/with\\040space rw - cifs //s/x rw";
        let fs = |p: &str| fs_type_in(mi, p);
        assert_eq!(
            fs("/var/lib/libvirt/images/a.qcow2").as_deref(),
            Some("nfs4")
        );
        assert_eq!(
            fs("/var/lib/libvirt/images2/a.qcow2").as_deref(),
            Some("xfs")
        );
        assert_eq!(fs("/var/lib/libvirt/imagesX").as_deref(), Some("ext4"));
        assert_eq!(fs("/mnt/with space/d.img").as_deref(), Some("cifs"));
        assert!(is_shared_fs("nfs4") && is_shared_fs("fuse.glusterfs"));
        assert!(!is_shared_fs("ext4") && !is_shared_fs("xfs"));
    }

    #[test]
    fn probe_tells_refused_from_accepted() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert_eq!(probe("127.0.0.1", port), ProbeOutcome::Accepted);
        drop(listener);
        // Nobody listens on the port just released: the kernel answers with an RST.
        assert_eq!(probe("127.0.0.1", port), ProbeOutcome::Refused);
        assert!(matches!(
            probe("no-such-host.invalid", 1),
            ProbeOutcome::NoAddress(_)
        ));
    }

    #[test]
    fn resolve_localhost() {
        let addrs = resolve("localhost").expect("resolves");
        assert!(addrs.iter().all(IpAddr::is_loopback), "{addrs:?}");
        assert!(resolve("no-such-host.invalid").is_err());
    }
}
