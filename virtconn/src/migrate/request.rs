//! A move as the user asked for it, before libvirt sees it. Shared by the preflight checks
//! and the migration runner, so both judge exactly the same request.

use serde::Serialize;

/// Live (the guest keeps running while its memory is copied) or offline (only the
/// persistent definition moves; the guest must be shut off or is left where it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MoveKind {
    Live,
    Offline,
}

/// Storage copied along with the guest when it is not shared between the hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CopyStorage {
    /// Every disk, whole (`--copy-storage-all`).
    All,
    /// Only the top layer of disks with a shared backing chain (`--copy-storage-inc`).
    Inc,
}

/// What happens when `timeout_s` passes and the move has not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeoutAction {
    /// Cancel the move; the guest keeps running on the source.
    Abort,
    /// Switch to post-copy (needs `postcopy`).
    Postcopy,
    /// Pause the guest so the remaining memory converges (longer downtime, always ends).
    Suspend,
}

/// Everything `ferry migrate` was told.
#[derive(Debug, Clone, Serialize)]
pub struct MigrateRequest {
    pub domain: String,
    pub source_uri: String,
    pub dest_uri: String,
    pub kind: MoveKind,
    pub copy_storage: Option<CopyStorage>,
    /// Allow switching to post-copy (VIR_MIGRATE_POSTCOPY); started by the policy.
    pub postcopy: bool,
    pub auto_converge: bool,
    /// Peer-to-peer: the source daemon talks to the destination itself.
    pub p2p: bool,
    /// Tunnel the data through the libvirtd connection (implies p2p).
    pub tunnelled: bool,
    /// Define the domain persistently at the destination.
    pub persistent: bool,
    pub undefine_source: bool,
    pub compressed: bool,
    pub max_downtime_ms: Option<u64>,
    pub bandwidth_mib_s: Option<u64>,
    /// Where the destination QEMU listens (`tcp://HOST[:PORT]`), when the destination's
    /// host name does not resolve from the source.
    pub migrate_uri: Option<String>,
    pub timeout_s: Option<u64>,
    pub timeout_action: TimeoutAction,
}

impl MigrateRequest {
    /// A live, non-persistent, native-transport move with libvirt's defaults.
    pub fn new(domain: &str, source_uri: &str, dest_uri: &str) -> Self {
        MigrateRequest {
            domain: domain.to_string(),
            source_uri: source_uri.to_string(),
            dest_uri: dest_uri.to_string(),
            kind: MoveKind::Live,
            copy_storage: None,
            postcopy: false,
            auto_converge: false,
            p2p: false,
            tunnelled: false,
            persistent: false,
            undefine_source: false,
            compressed: false,
            max_downtime_ms: None,
            bandwidth_mib_s: None,
            migrate_uri: None,
            timeout_s: None,
            timeout_action: TimeoutAction::Abort,
        }
    }
}
