//! `flags`: option combinations libvirt refuses (quoted from its qemu driver, 11.x), or
//! that silently do not do what they seem to.

use super::{or_pass, FLAGS};
use crate::migrate::preflight::addr::uri_host_port;
use crate::migrate::preflight::Check;
use crate::migrate::request::{MigrateRequest, MoveKind, TimeoutAction};

pub(crate) fn check(req: &MigrateRequest) -> Vec<Check> {
    let mut out = Vec::new();
    let offline = req.kind == MoveKind::Offline;
    let fail = |out: &mut Vec<Check>, msg: &str, fix: &str| out.push(Check::fail(FLAGS, msg, fix));
    let warn = |out: &mut Vec<Check>, msg: &str, fix: &str| out.push(Check::warn(FLAGS, msg, fix));

    if req.tunnelled && req.copy_storage.is_some() {
        fail(
            &mut out,
            "--tunnelled with --copy-storage: libvirt refuses non-shared storage over a tunnel",
            "drop --tunnelled and open TCP 49152-49215 on the destination, or share the storage",
        );
    }
    if req.tunnelled && req.postcopy {
        fail(
            &mut out,
            "--tunnelled with --postcopy: libvirt does not support post-copy over a tunnel",
            "drop --postcopy, or drop --tunnelled",
        );
    }
    if offline {
        if req.copy_storage.is_some() {
            fail(
                &mut out,
                "offline move with --copy-storage: libvirt's offline migration cannot copy disks",
                "drop --copy-storage and copy the disk images yourself, or move the guest live",
            );
        }
        if !req.persistent {
            fail(
                &mut out,
                "offline move without --persistent: libvirt needs it, only the definition moves",
                "add --persistent",
            );
        }
        if req.tunnelled {
            fail(
                &mut out,
                "offline move with --tunnelled: libvirt refuses it, there is no data to tunnel",
                "drop --tunnelled",
            );
        }
        if req.postcopy {
            fail(
                &mut out,
                "offline move with --postcopy: post-copy needs a live move",
                "drop --postcopy",
            );
        }
        let ignored: Vec<&str> = [
            (req.auto_converge, "--auto-converge"),
            (req.compressed, "--compressed"),
            (req.max_downtime_ms.is_some(), "--max-downtime"),
            (req.bandwidth_mib_s.is_some(), "--bandwidth"),
            (req.migrate_uri.is_some(), "--migrate-uri"),
            (req.timeout_s.is_some(), "--timeout"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        if !ignored.is_empty() {
            warn(
                &mut out,
                &format!(
                    "offline move: {} only affect a live move and are ignored",
                    ignored.join(", ")
                ),
                "drop them, or move the guest live",
            );
        }
    } else if req.undefine_source && !req.persistent {
        warn(
            &mut out,
            "--undefine-source without --persistent: the guest will exist at the destination \
             only until it shuts down, and nowhere after that",
            "add --persistent",
        );
    }
    if req.timeout_action == TimeoutAction::Postcopy && !req.postcopy {
        fail(
            &mut out,
            "--timeout-action postcopy without --postcopy: libvirt can only switch to post-copy \
             when the move was started with it allowed",
            "add --postcopy, or choose another --timeout-action",
        );
    }
    if req.timeout_action != TimeoutAction::Abort && req.timeout_s.is_none() && !offline {
        warn(
            &mut out,
            "--timeout-action without --timeout never fires",
            "add --timeout SECONDS",
        );
    }
    if let Some(uri) = &req.migrate_uri {
        if req.tunnelled {
            warn(
                &mut out,
                &format!("--migrate-uri {uri} is not used with --tunnelled: the data goes through the libvirt connection"),
                "drop --migrate-uri, or drop --tunnelled",
            );
        } else if !offline {
            check_migrate_uri(&mut out, uri);
        }
    }
    or_pass(FLAGS, out, flags_summary(req))
}

fn check_migrate_uri(out: &mut Vec<Check>, uri: &str) {
    let scheme = uri.split(':').next().unwrap_or_default();
    let (host, _) = uri_host_port(uri);
    if !["tcp", "rdma", "unix"].contains(&scheme) || (scheme != "unix" && host.is_empty()) {
        out.push(Check::fail(
            FLAGS,
            format!("--migrate-uri '{uri}' is not of the form tcp://HOST[:PORT]"),
            "pass --migrate-uri tcp://ADDRESS-OF-DESTINATION",
        ));
    }
}

fn flags_summary(req: &MigrateRequest) -> String {
    let mut parts = vec![match req.kind {
        MoveKind::Live => "live",
        MoveKind::Offline => "offline",
    }];
    // libvirt refuses TUNNELLED without PEER2PEER; the request implies it.
    if req.tunnelled {
        parts.push("tunnelled (peer-to-peer)");
    } else if req.p2p {
        parts.push("peer-to-peer");
    }
    if req.copy_storage.is_some() {
        parts.push("copying storage");
    }
    if req.postcopy {
        parts.push("post-copy allowed");
    }
    if req.compressed {
        parts.push("compressed (xbzrle)");
    }
    format!("flag combination accepted: {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::preflight::CheckStatus;
    use crate::migrate::request::CopyStorage;

    fn req() -> MigrateRequest {
        MigrateRequest::new("vm", "qemu:///system", "qemu+tcp://10.0.0.5/system")
    }

    /// The single non-pass finding, asserted to contain `msg` and `fix`.
    fn only(req: &MigrateRequest, status: CheckStatus, msg: &str, fix: &str) {
        let found = check(req);
        assert_eq!(found.len(), 1, "{found:#?}");
        let c = &found[0];
        assert_eq!((c.id, c.status), (FLAGS, status), "{c:?}");
        assert!(c.message.contains(msg), "{c:?}");
        assert!(c.fix.as_deref().is_some_and(|f| f.contains(fix)), "{c:?}");
    }

    #[test]
    fn plain_live_move_passes() {
        let found = check(&req());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].status, CheckStatus::Pass);
        assert_eq!(found[0].message, "flag combination accepted: live");
        assert_eq!(found[0].fix, None);
        let mut r = req();
        r.tunnelled = true;
        r.compressed = true;
        assert_eq!(
            check(&r)[0].message,
            "flag combination accepted: live, tunnelled (peer-to-peer), compressed (xbzrle)"
        );
    }

    #[test]
    fn tunnelled_with_copy_storage_fails() {
        let mut r = req();
        r.tunnelled = true;
        r.copy_storage = Some(CopyStorage::All);
        only(
            &r,
            CheckStatus::Fail,
            "non-shared storage over a tunnel",
            "drop --tunnelled",
        );
    }

    #[test]
    fn tunnelled_with_postcopy_fails() {
        let mut r = req();
        r.tunnelled = true;
        r.postcopy = true;
        only(
            &r,
            CheckStatus::Fail,
            "post-copy over a tunnel",
            "drop --postcopy",
        );
    }

    #[test]
    fn offline_with_copy_storage_fails() {
        let mut r = req();
        r.kind = MoveKind::Offline;
        r.persistent = true;
        r.copy_storage = Some(CopyStorage::Inc);
        only(
            &r,
            CheckStatus::Fail,
            "cannot copy disks",
            "drop --copy-storage",
        );
    }

    #[test]
    fn offline_without_persistent_fails() {
        let mut r = req();
        r.kind = MoveKind::Offline;
        only(
            &r,
            CheckStatus::Fail,
            "without --persistent",
            "add --persistent",
        );
    }

    #[test]
    fn offline_tunnelled_and_postcopy_fail() {
        let mut r = req();
        r.kind = MoveKind::Offline;
        r.persistent = true;
        r.tunnelled = true;
        only(
            &r,
            CheckStatus::Fail,
            "offline move with --tunnelled",
            "drop --tunnelled",
        );
        r.tunnelled = false;
        r.postcopy = true;
        only(
            &r,
            CheckStatus::Fail,
            "post-copy needs a live move",
            "drop --postcopy",
        );
    }

    #[test]
    fn offline_ignores_live_tuning() {
        let mut r = req();
        r.kind = MoveKind::Offline;
        r.persistent = true;
        r.bandwidth_mib_s = Some(100);
        r.auto_converge = true;
        only(
            &r,
            CheckStatus::Warn,
            "--auto-converge, --bandwidth only affect a live move",
            "drop them",
        );
    }

    #[test]
    fn undefine_source_without_persistent_warns() {
        let mut r = req();
        r.undefine_source = true;
        only(
            &r,
            CheckStatus::Warn,
            "only until it shuts down",
            "add --persistent",
        );
        r.persistent = true;
        assert_eq!(check(&r)[0].status, CheckStatus::Pass);
    }

    #[test]
    fn timeout_postcopy_needs_postcopy() {
        let mut r = req();
        r.timeout_s = Some(60);
        r.timeout_action = TimeoutAction::Postcopy;
        only(
            &r,
            CheckStatus::Fail,
            "without --postcopy",
            "add --postcopy",
        );
        r.postcopy = true;
        assert_eq!(check(&r)[0].status, CheckStatus::Pass);
    }

    #[test]
    fn timeout_action_without_timeout_warns() {
        let mut r = req();
        r.timeout_action = TimeoutAction::Suspend;
        only(&r, CheckStatus::Warn, "never fires", "add --timeout");
    }

    #[test]
    fn migrate_uri_shape_and_tunnel() {
        let mut r = req();
        r.migrate_uri = Some("10.0.0.5".into());
        only(
            &r,
            CheckStatus::Fail,
            "not of the form tcp://HOST",
            "--migrate-uri tcp://",
        );
        r.migrate_uri = Some("tcp://10.0.0.5:49160".into());
        assert_eq!(check(&r)[0].status, CheckStatus::Pass);
        r.tunnelled = true;
        only(
            &r,
            CheckStatus::Warn,
            "is not used with --tunnelled",
            "drop --migrate-uri",
        );
    }
}
