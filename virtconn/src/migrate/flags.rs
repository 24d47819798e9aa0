//! A [`MigrateRequest`] as libvirt's migration flags and typed parameters.
//!
//! The mapping is faithful: what the user asked for goes to libvirt, plus only what the
//! request implies (tunnelled needs peer-to-peer, offline needs a persistent definition
//! at the destination). Combinations libvirt refuses (offline with copied storage, a
//! migration URI with tunnelling) are passed through on purpose: preflight rejects them
//! before a move starts, and if it is bypassed libvirt's own refusal names the conflict,
//! whereas silently dropping a flag would move something other than what was asked.

use virt::domain::MigrateParameters;
use virt::sys;

use super::request::{CopyStorage, MigrateRequest, MoveKind};

/// libvirt's `VIR_MIGRATE_*` flags for `req`.
pub fn migration_flags(req: &MigrateRequest) -> u32 {
    let mut flags = match req.kind {
        // ABORT_ON_ERROR: a guest I/O error mid-move would otherwise pause the guest and
        // let the move carry a broken guest over; cancelling keeps it on the source.
        MoveKind::Live => sys::VIR_MIGRATE_LIVE | sys::VIR_MIGRATE_ABORT_ON_ERROR,
        // Offline moves only the definition, and libvirt refuses OFFLINE without
        // PERSIST_DEST: a definition that is not persisted would be no move at all.
        MoveKind::Offline => sys::VIR_MIGRATE_OFFLINE | sys::VIR_MIGRATE_PERSIST_DEST,
    };
    let set = |flags: &mut u32, on: bool, flag: u32| {
        if on {
            *flags |= flag;
        }
    };
    set(&mut flags, req.persistent, sys::VIR_MIGRATE_PERSIST_DEST);
    set(
        &mut flags,
        req.undefine_source,
        sys::VIR_MIGRATE_UNDEFINE_SOURCE,
    );
    match req.copy_storage {
        Some(CopyStorage::All) => flags |= sys::VIR_MIGRATE_NON_SHARED_DISK,
        Some(CopyStorage::Inc) => flags |= sys::VIR_MIGRATE_NON_SHARED_INC,
        None => {}
    }
    // POSTCOPY only permits switching to post-copy; the policy decides whether and when
    // (virDomainMigrateStartPostCopy). Without the flag that call is refused.
    set(&mut flags, req.postcopy, sys::VIR_MIGRATE_POSTCOPY);
    set(
        &mut flags,
        req.auto_converge,
        sys::VIR_MIGRATE_AUTO_CONVERGE,
    );
    set(&mut flags, req.compressed, sys::VIR_MIGRATE_COMPRESSED);
    // Tunnelling runs through the source daemon's own connection to the destination,
    // so it is peer-to-peer by construction; libvirt refuses TUNNELLED alone.
    set(
        &mut flags,
        req.p2p || req.tunnelled,
        sys::VIR_MIGRATE_PEER2PEER,
    );
    set(&mut flags, req.tunnelled, sys::VIR_MIGRATE_TUNNELLED);
    flags
}

/// Whether the move is started by the source daemon (`virDomainMigrateToURI3`) rather
/// than driven by this client against both daemons (`virDomainMigrate3`).
pub(crate) fn is_peer_to_peer(req: &MigrateRequest) -> bool {
    req.p2p || req.tunnelled
}

/// libvirt's typed migration parameters for `req`.
///
/// The maximum downtime has no parameter; it is a separate domain call, made by the
/// runner just before the move starts.
pub fn migration_params(req: &MigrateRequest) -> MigrateParameters {
    MigrateParameters {
        // Where the destination QEMU listens; needed when the destination's host name
        // does not resolve from the source (libvirt would otherwise use it).
        uri: req.migrate_uri.clone(),
        // VIR_MIGRATE_PARAM_BANDWIDTH is in MiB/s, as the request is. It limits the
        // pre-copy phase only: post-copy stays unlimited (libvirt's default), because
        // there every page the guest touches first is a fault it waits on.
        bandwidth: req.bandwidth_mib_s,
        // The domain keeps its name; a rename on the way would need a request field.
        dest_name: None,
        ..MigrateParameters::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::TimeoutAction;

    fn live() -> MigrateRequest {
        MigrateRequest::new("vm", "qemu:///system", "qemu+tcp://dst/system")
    }

    fn has(flags: u32, flag: u32) -> bool {
        flags & flag == flag
    }

    #[test]
    fn default_request_is_plain_live() {
        let f = migration_flags(&live());
        assert_eq!(f, sys::VIR_MIGRATE_LIVE | sys::VIR_MIGRATE_ABORT_ON_ERROR);
        assert!(!is_peer_to_peer(&live()));
        let p = migration_params(&live());
        assert!(p.uri.is_none() && p.bandwidth.is_none() && p.dest_name.is_none());
        assert!(p.to_vec().is_empty(), "libvirt gets no parameters at all");
    }

    #[test]
    fn offline_always_persists_and_is_not_live() {
        let mut r = live();
        r.kind = MoveKind::Offline;
        let f = migration_flags(&r);
        assert!(has(
            f,
            sys::VIR_MIGRATE_OFFLINE | sys::VIR_MIGRATE_PERSIST_DEST
        ));
        assert!(!has(f, sys::VIR_MIGRATE_LIVE));
        assert!(!has(f, sys::VIR_MIGRATE_ABORT_ON_ERROR));
        r.persistent = true;
        assert_eq!(migration_flags(&r), f, "persistent adds nothing to offline");
    }

    #[test]
    fn each_switch_sets_its_flag_and_nothing_else() {
        type Set = fn(&mut MigrateRequest);
        let cases: [(Set, u32); 8] = [
            (|r| r.persistent = true, sys::VIR_MIGRATE_PERSIST_DEST),
            (
                |r| r.undefine_source = true,
                sys::VIR_MIGRATE_UNDEFINE_SOURCE,
            ),
            (
                |r| r.copy_storage = Some(CopyStorage::All),
                sys::VIR_MIGRATE_NON_SHARED_DISK,
            ),
            (
                |r| r.copy_storage = Some(CopyStorage::Inc),
                sys::VIR_MIGRATE_NON_SHARED_INC,
            ),
            (|r| r.postcopy = true, sys::VIR_MIGRATE_POSTCOPY),
            (|r| r.auto_converge = true, sys::VIR_MIGRATE_AUTO_CONVERGE),
            (|r| r.compressed = true, sys::VIR_MIGRATE_COMPRESSED),
            (|r| r.p2p = true, sys::VIR_MIGRATE_PEER2PEER),
        ];
        let base = migration_flags(&live());
        for (set, flag) in cases {
            let mut r = live();
            set(&mut r);
            assert_eq!(migration_flags(&r), base | flag, "flag {flag:#x}");
        }
    }

    #[test]
    fn tunnelled_implies_peer_to_peer() {
        let mut r = live();
        r.tunnelled = true;
        let f = migration_flags(&r);
        assert!(has(
            f,
            sys::VIR_MIGRATE_TUNNELLED | sys::VIR_MIGRATE_PEER2PEER
        ));
        assert!(is_peer_to_peer(&r));
        r.p2p = true;
        assert_eq!(migration_flags(&r), f);
    }

    #[test]
    fn copy_storage_all_and_inc_are_exclusive() {
        let mut r = live();
        r.copy_storage = Some(CopyStorage::All);
        assert!(!has(migration_flags(&r), sys::VIR_MIGRATE_NON_SHARED_INC));
        r.copy_storage = Some(CopyStorage::Inc);
        assert!(!has(migration_flags(&r), sys::VIR_MIGRATE_NON_SHARED_DISK));
    }

    #[test]
    fn everything_at_once() {
        let mut r = live();
        r.copy_storage = Some(CopyStorage::All);
        r.postcopy = true;
        r.auto_converge = true;
        r.tunnelled = true;
        r.persistent = true;
        r.undefine_source = true;
        r.compressed = true;
        assert_eq!(
            migration_flags(&r),
            sys::VIR_MIGRATE_LIVE
                | sys::VIR_MIGRATE_ABORT_ON_ERROR
                | sys::VIR_MIGRATE_PERSIST_DEST
                | sys::VIR_MIGRATE_UNDEFINE_SOURCE
                | sys::VIR_MIGRATE_NON_SHARED_DISK
                | sys::VIR_MIGRATE_POSTCOPY
                | sys::VIR_MIGRATE_AUTO_CONVERGE
                | sys::VIR_MIGRATE_COMPRESSED
                | sys::VIR_MIGRATE_PEER2PEER
                | sys::VIR_MIGRATE_TUNNELLED
        );
    }

    #[test]
    fn runner_only_fields_do_not_change_flags() {
        let mut r = live();
        r.max_downtime_ms = Some(300);
        r.timeout_s = Some(60);
        r.timeout_action = TimeoutAction::Suspend;
        r.bandwidth_mib_s = Some(100);
        r.migrate_uri = Some("tcp://10.0.0.2".into());
        assert_eq!(migration_flags(&r), migration_flags(&live()));
    }

    #[test]
    fn params_carry_uri_and_bandwidth() {
        let mut r = live();
        r.migrate_uri = Some("tcp://127.0.0.1:49152".into());
        r.bandwidth_mib_s = Some(250);
        let p = migration_params(&r);
        assert_eq!(p.uri.as_deref(), Some("tcp://127.0.0.1:49152"));
        assert_eq!(p.bandwidth, Some(250));
        assert!(p.bandwidth_postcopy.is_none(), "post-copy stays unlimited");
        assert!(p.dest_name.is_none() && p.dest_xml.is_none());
        assert_eq!(p.to_vec().len(), 2);
    }
}
