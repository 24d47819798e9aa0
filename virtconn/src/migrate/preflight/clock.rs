//! The destination's clock offset from this machine. libvirt has no call that reads a
//! host's clock, so ferry asks the way libvirt itself reaches a `qemu+ssh://` host: one
//! `ssh HOST date +%s.%N` (batch mode, short timeouts), halving the round trip. Other
//! transports cannot be asked; a local destination shares this machine's clock.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::addr::uri_host_port;

/// Longer than any sane ssh round trip on a LAN, short enough for a preflight.
const SSH_TIMEOUT_S: u64 = 5;

/// Seconds the destination's clock is ahead of ours (negative: behind), when measurable.
pub(crate) fn offset_via_ssh(uri: &str) -> Option<Result<f64, String>> {
    let (scheme, _) = uri.split_once("://")?;
    if !scheme.ends_with("+ssh") {
        return None;
    }
    let (host, port) = uri_host_port(uri);
    let user = uri
        .split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?']).next())
        .and_then(|auth| auth.rsplit_once('@'))
        .map(|(u, _)| u.to_string());
    let target = match user {
        Some(u) => format!("{u}@{host}"),
        None => host,
    };
    let mut cmd = Command::new("ssh");
    cmd.args([
        "-o",
        "BatchMode=yes",
        "-o",
        &format!("ConnectTimeout={SSH_TIMEOUT_S}"),
    ]);
    if let Some(p) = port {
        cmd.args(["-p", &p.to_string()]);
    }
    cmd.args([target.as_str(), "date", "+%s.%N"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped());
    let sent = Instant::now();
    let before = now_s();
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => return Some(Err(format!("cannot run ssh: {e}"))),
    };
    let round_trip = sent.elapsed();
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Some(Err(format!("ssh {target}: {}", why.trim())));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.trim()
            .parse::<f64>()
            .map(|remote| offset(before, round_trip, remote))
            .map_err(|_| format!("ssh {target} date printed '{}'", text.trim())),
    )
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The remote clock was read about half a round trip after `sent_at`.
fn offset(sent_at: f64, round_trip: Duration, remote: f64) -> f64 {
    remote - (sent_at + round_trip.as_secs_f64() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_halves_the_round_trip() {
        let o = offset(100.0, Duration::from_secs(2), 104.0);
        assert!((o - 3.0).abs() < 1e-9, "{o}");
    }

    #[test]
    fn only_ssh_transports_are_asked() {
        assert!(offset_via_ssh("qemu+tcp://10.0.0.5/system").is_none());
        assert!(offset_via_ssh("qemu:///system").is_none());
    }
}
