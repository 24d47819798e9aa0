//! The connection and the domain and pool operations ferry performs through it.

use std::path::PathBuf;
use std::sync::Once;

use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::{Error as VirtError, ErrorNumber};
use virt::storage_pool::StoragePool;
use virt::sys;

use crate::classify::{conn_error, Subject};
use crate::error::ConnError;
use crate::xml;

use crate::model::{DomainInfo, DomainState, InterfaceInfo, VirtTypeSupport};

/// libvirt's default error handler prints every error to stderr, including the ones we
/// expect and handle (a lookup that finds nothing); ours go into `ConnError` instead.
fn silence_libvirt_stderr() {
    static ONCE: Once = Once::new();
    ONCE.call_once(virt::error::clear_error_callback);
}

/// The virt crate panics on strings with interior NULs; refuse them up front.
fn has_nul(s: &str) -> bool {
    s.contains('\0')
}

/// A read-write connection to one libvirt URI. Closed on drop.
pub struct Connection {
    uri: String,
    pub(crate) conn: Connect,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("uri", &self.uri)
            .finish()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Nothing useful to do if closing fails while we are letting go anyway.
        let _ = self.conn.close();
    }
}

impl Connection {
    /// Opens `uri` read-write.
    pub fn open(uri: &str) -> Result<Connection, ConnError> {
        silence_libvirt_stderr();
        if has_nul(uri) {
            return Err(ConnError::Libvirt {
                uri: uri.escape_default().to_string(),
                op: "connect",
                detail: "the URI contains a NUL byte".into(),
            });
        }
        let conn = Connect::open(Some(uri))
            .map_err(|e| conn_error(uri, "connect", Subject::Connection, &e))?;
        Ok(Connection {
            uri: uri.to_string(),
            conn,
        })
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    fn err(&self, op: &'static str, subject: Subject<'_>, e: &VirtError) -> ConnError {
        conn_error(&self.uri, op, subject, e)
    }

    fn no_such_domain(&self, name: &str) -> ConnError {
        ConnError::NoSuchDomain {
            uri: self.uri.clone(),
            name: name.escape_default().to_string(),
        }
    }

    fn domain(&self, name: &str) -> Result<Domain, ConnError> {
        if has_nul(name) {
            return Err(self.no_such_domain(name));
        }
        Domain::lookup_by_name(&self.conn, name)
            .map_err(|e| self.err("look up domain", Subject::Domain(name), &e))
    }

    /// `Ok(None)` when libvirt says there is no such domain; other failures are errors.
    fn domain_if_any(&self, name: &str) -> Result<Option<Domain>, ConnError> {
        match self.domain(name) {
            Ok(d) => Ok(Some(d)),
            Err(ConnError::NoSuchDomain { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn domain_by_uuid(&self, uuid: &str) -> Result<Option<Domain>, ConnError> {
        match Domain::lookup_by_uuid_string(&self.conn, uuid) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.code() == ErrorNumber::NoDomain => Ok(None),
            Err(e) if e.code() == ErrorNumber::InvalidArg => Err(ConnError::BadXml {
                detail: format!("<uuid>{uuid}</uuid> is not a UUID"),
            }),
            Err(e) => Err(self.err("look up domain by UUID", Subject::Connection, &e)),
        }
    }

    /// Defines a persistent domain from XML. Refuses when a domain with the XML's
    /// `<name>` or `<uuid>` already exists: libvirt itself would replace a domain with
    /// the same name and UUID, and a conversion must never clobber one.
    pub fn define(&self, xml: &str) -> Result<DomainInfo, ConnError> {
        let bad = |detail: String| ConnError::BadXml { detail };
        if has_nul(xml) {
            return Err(bad("the XML contains a NUL byte".into()));
        }
        let (name, uuid) = xml::domain_identity(xml).map_err(bad)?;
        if has_nul(&name) {
            return Err(bad("the domain <name> contains a NUL byte".into()));
        }
        if self.domain_if_any(&name)?.is_some() {
            return Err(ConnError::NameExists {
                uri: self.uri.clone(),
                name,
            });
        }
        if let Some(uuid) = uuid.filter(|u| !has_nul(u)) {
            if let Some(existing) = self.domain_by_uuid(&uuid)? {
                let existing_name = existing
                    .get_name()
                    .map_err(|e| self.err("read domain name", Subject::Connection, &e))?;
                return Err(ConnError::UuidExists {
                    uri: self.uri.clone(),
                    uuid,
                    existing_name,
                });
            }
        }
        let dom = Domain::define_xml(&self.conn, xml)
            .map_err(|e| self.err("define domain", Subject::Domain(&name), &e))?;
        let name = dom
            .get_name()
            .map_err(|e| self.err("read domain name", Subject::Domain(&name), &e))?;
        let uuid = dom
            .get_uuid_string()
            .map_err(|e| self.err("read domain UUID", Subject::Domain(&name), &e))?;
        Ok(DomainInfo { name, uuid })
    }

    pub fn start(&self, name: &str) -> Result<(), ConnError> {
        self.domain(name)?
            .create()
            .map(drop)
            .map_err(|e| self.err("start domain", Subject::Domain(name), &e))
    }

    /// Forces the domain off. A domain that is not running is already where the caller
    /// wants it, so that is success.
    pub fn destroy(&self, name: &str) -> Result<(), ConnError> {
        let dom = self.domain(name)?;
        let active = |d: &Domain| {
            d.is_active()
                .map_err(|e| self.err("query domain", Subject::Domain(name), &e))
        };
        if !active(&dom)? {
            return Ok(());
        }
        match dom.destroy() {
            Ok(()) => Ok(()),
            // It may have stopped between the check and the destroy.
            Err(e) if e.code() == ErrorNumber::OperationInvalid && !active(&dom)? => Ok(()),
            Err(e) => Err(self.err("destroy domain", Subject::Domain(name), &e)),
        }
    }

    /// Removes the domain's persistent definition, and its NVRAM file for UEFI guests
    /// (without the flag libvirt refuses to undefine a domain that has one).
    pub fn undefine(&self, name: &str) -> Result<(), ConnError> {
        let dom = self.domain(name)?;
        match dom.undefine_flags(sys::VIR_DOMAIN_UNDEFINE_NVRAM) {
            Ok(()) => Ok(()),
            // Drivers without NVRAM support reject the flag ("unsupported flags" is
            // VIR_ERR_INVALID_ARG); for them plain undefine is the whole job.
            Err(e)
                if matches!(
                    e.code(),
                    ErrorNumber::InvalidArg
                        | ErrorNumber::NoSupport
                        | ErrorNumber::ArgumentUnsupported
                ) =>
            {
                dom.undefine()
                    .map_err(|e| self.err("undefine domain", Subject::Domain(name), &e))
            }
            Err(e) => Err(self.err("undefine domain", Subject::Domain(name), &e)),
        }
    }

    pub fn exists(&self, name: &str) -> Result<bool, ConnError> {
        Ok(self.domain_if_any(name)?.is_some())
    }

    pub fn state(&self, name: &str) -> Result<DomainState, ConnError> {
        let (state, _reason) = self
            .domain(name)?
            .get_state()
            .map_err(|e| self.err("query domain state", Subject::Domain(name), &e))?;
        Ok(match state {
            sys::VIR_DOMAIN_RUNNING => DomainState::Running,
            sys::VIR_DOMAIN_PAUSED => DomainState::Paused,
            sys::VIR_DOMAIN_SHUTOFF => DomainState::ShutOff,
            sys::VIR_DOMAIN_BLOCKED => DomainState::Other("blocked".into()),
            sys::VIR_DOMAIN_SHUTDOWN => DomainState::Other("shutdown".into()),
            sys::VIR_DOMAIN_CRASHED => DomainState::Other("crashed".into()),
            sys::VIR_DOMAIN_PMSUSPENDED => DomainState::Other("pmsuspended".into()),
            sys::VIR_DOMAIN_NOSTATE => DomainState::Other("nostate".into()),
            other => DomainState::Other(format!("state {other}")),
        })
    }

    /// The domain's XML as libvirt reports it now (live definition while running).
    pub fn xml(&self, name: &str) -> Result<String, ConnError> {
        self.domain(name)?
            .get_xml_desc(0)
            .map_err(|e| self.err("read domain XML", Subject::Domain(name), &e))
    }

    /// The network interfaces in the domain's XML.
    pub fn interfaces(&self, name: &str) -> Result<Vec<InterfaceInfo>, ConnError> {
        let doc = self.xml(name)?;
        xml::interfaces(&doc).map_err(|detail| ConnError::Libvirt {
            uri: self.uri.clone(),
            op: "parse domain XML",
            detail,
        })
    }

    /// Whether x86_64 guests can use `type='kvm'` here, from the host capabilities.
    pub fn virt_type(&self) -> Result<VirtTypeSupport, ConnError> {
        let caps = self
            .conn
            .get_capabilities()
            .map_err(|e| self.err("read capabilities", Subject::Connection, &e))?;
        let kvm = xml::offers_kvm_x86_64(&caps).map_err(|detail| ConnError::Libvirt {
            uri: self.uri.clone(),
            op: "parse capabilities",
            detail,
        })?;
        Ok(if kvm {
            VirtTypeSupport::Kvm
        } else {
            VirtTypeSupport::Qemu
        })
    }

    fn pool(&self, pool: &str) -> Result<StoragePool, ConnError> {
        if has_nul(pool) {
            return Err(ConnError::NoSuchPool {
                uri: self.uri.clone(),
                pool: pool.escape_default().to_string(),
            });
        }
        StoragePool::lookup_by_name(&self.conn, pool)
            .map_err(|e| self.err("look up storage pool", Subject::Pool(pool), &e))
    }

    /// The directory behind a `dir` or `fs` pool, where ferry writes disk images.
    pub fn pool_dir(&self, pool: &str) -> Result<PathBuf, ConnError> {
        let desc = self
            .pool(pool)?
            .get_xml_desc(0)
            .map_err(|e| self.err("read storage pool XML", Subject::Pool(pool), &e))?;
        let parse_err = |detail: String| ConnError::Libvirt {
            uri: self.uri.clone(),
            op: "parse storage pool XML",
            detail,
        };
        let (kind, path) = xml::pool_target(&desc).map_err(parse_err)?;
        if kind != "dir" && kind != "fs" {
            return Err(ConnError::PoolNotDir {
                pool: pool.to_string(),
                kind,
            });
        }
        path.map(PathBuf::from)
            .ok_or_else(|| parse_err(format!("pool '{pool}' has no <target><path>")))
    }

    /// Makes libvirt rescan the pool so volumes written behind its back show up.
    pub fn pool_refresh(&self, pool: &str) -> Result<(), ConnError> {
        self.pool(pool)?
            .refresh(0)
            .map(drop)
            .map_err(|e| self.err("refresh storage pool", Subject::Pool(pool), &e))
    }
}

#[cfg(test)]
mod tests {
    //! Against libvirt's built-in test driver: no daemon needed. Its state is shared by
    //! all connections in the process, and tests run in parallel, so each test uses
    //! names and UUIDs of its own.

    use super::*;

    const TEST_URI: &str = "test:///default";

    fn open() -> Connection {
        Connection::open(TEST_URI).expect("test driver opens")
    }

    fn domain_xml(name: &str, uuid: Option<&str>) -> String {
        let uuid = uuid
            .map(|u| format!("<uuid>{u}</uuid>"))
            .unwrap_or_default();
        format!(
            "<domain type='test'><name>{name}</name>{uuid}<memory unit='MiB'>64</memory>\
             <os><type>hvm</type></os><devices>\
             <interface type='network'><mac address='52:54:00:12:34:56'/>\
             <source network='default'/><model type='virtio'/></interface>\
             <interface type='user'><mac address='52:54:00:12:34:57'/></interface>\
             </devices></domain>"
        )
    }

    #[test]
    fn define_then_undefine() {
        let c = open();
        assert_eq!(c.uri(), TEST_URI);
        let info = c.define(&domain_xml("vc-define", None)).expect("defines");
        assert_eq!(info.name, "vc-define");
        assert_eq!(info.uuid.len(), 36, "{}", info.uuid);
        assert!(c.exists("vc-define").expect("lookup"));
        assert_eq!(c.state("vc-define").expect("state"), DomainState::ShutOff);
        c.undefine("vc-define").expect("undefines");
        assert!(!c.exists("vc-define").expect("lookup"));
    }

    #[test]
    fn define_twice_is_name_exists() {
        let c = open();
        c.define(&domain_xml("vc-twice", None)).expect("defines");
        let err = c
            .define(&domain_xml("vc-twice", None))
            .expect_err("refused");
        assert!(
            matches!(&err, ConnError::NameExists { name, uri } if name == "vc-twice" && uri == TEST_URI),
            "{err}"
        );
        c.undefine("vc-twice").expect("undefines");
    }

    #[test]
    fn same_uuid_other_name_is_uuid_exists() {
        let c = open();
        let uuid = "3f2a8c1e-5b6d-4e7f-8a9b-0c1d2e3f4a5b";
        let info = c
            .define(&domain_xml("vc-uuid-a", Some(uuid)))
            .expect("defines");
        assert_eq!(info.uuid, uuid);
        let err = c
            .define(&domain_xml("vc-uuid-b", Some(uuid)))
            .expect_err("refused");
        assert!(
            matches!(&err, ConnError::UuidExists { uuid: u, existing_name, .. }
                if u == uuid && existing_name == "vc-uuid-a"),
            "{err}"
        );
        assert!(!c.exists("vc-uuid-b").expect("lookup"));
        c.undefine("vc-uuid-a").expect("undefines");
    }

    #[test]
    fn bad_xml_is_refused_before_libvirt() {
        let c = open();
        for xml in [
            "<domain",
            "<domain type='test'/>",
            "<network><name>x</name></network>",
        ] {
            let err = c.define(xml).expect_err("refused");
            assert!(matches!(err, ConnError::BadXml { .. }), "{err}");
            assert!(!err.to_string().contains('\n'), "{err}");
        }
    }

    #[test]
    fn start_state_destroy() {
        let c = open();
        c.define(&domain_xml("vc-run", None)).expect("defines");
        c.destroy("vc-run")
            .expect("destroying a stopped domain is fine");
        c.start("vc-run").expect("starts");
        assert_eq!(c.state("vc-run").expect("state"), DomainState::Running);
        let err = c.start("vc-run").expect_err("already running");
        assert!(
            matches!(
                err,
                ConnError::Libvirt {
                    op: "start domain",
                    ..
                }
            ),
            "{err}"
        );
        c.destroy("vc-run").expect("destroys");
        assert_eq!(c.state("vc-run").expect("state"), DomainState::ShutOff);
        c.destroy("vc-run").expect("again: already off");
        c.undefine("vc-run").expect("undefines");
    }

    #[test]
    fn interfaces_from_domain_xml() {
        let c = open();
        c.define(&domain_xml("vc-nics", None)).expect("defines");
        let nics = c.interfaces("vc-nics").expect("interfaces");
        assert_eq!(
            nics,
            vec![
                InterfaceInfo {
                    mac: "52:54:00:12:34:56".into(),
                    kind: "network".into(),
                    source: Some("default".into()),
                    model: Some("virtio".into()),
                },
                InterfaceInfo {
                    mac: "52:54:00:12:34:57".into(),
                    kind: "user".into(),
                    source: None,
                    model: None,
                },
            ]
        );
        assert!(c
            .xml("vc-nics")
            .expect("xml")
            .contains("<name>vc-nics</name>"));
        c.undefine("vc-nics").expect("undefines");
    }

    #[test]
    fn pool_dir_of_default_pool() {
        let c = open();
        assert_eq!(
            c.pool_dir("default-pool").expect("dir pool"),
            PathBuf::from("/default-pool")
        );
        c.pool_refresh("default-pool").expect("refresh");
        let err = c.pool_dir("vc-no-such-pool").expect_err("missing");
        assert!(
            matches!(&err, ConnError::NoSuchPool { pool, .. } if pool == "vc-no-such-pool"),
            "{err}"
        );
    }

    #[test]
    fn missing_domain_is_no_such_domain() {
        let c = open();
        assert!(!c.exists("vc-absent").expect("lookup"));
        for err in [
            c.start("vc-absent").expect_err("absent"),
            c.destroy("vc-absent").expect_err("absent"),
            c.undefine("vc-absent").expect_err("absent"),
            c.state("vc-absent").expect_err("absent"),
            c.interfaces("vc-absent").expect_err("absent"),
            c.start("nul\0name").expect_err("absent"),
        ] {
            assert!(matches!(err, ConnError::NoSuchDomain { .. }), "{err}");
            assert!(err.to_string().contains(TEST_URI), "{err}");
        }
    }

    #[test]
    fn test_driver_offers_no_kvm() {
        // The test driver's guests are all type 'test' on i686.
        assert_eq!(open().virt_type().expect("caps"), VirtTypeSupport::Qemu);
    }

    #[test]
    fn missing_socket_is_no_daemon() {
        let uri = "qemu:///system?socket=/nonexistent/sock";
        let err = Connection::open(uri).expect_err("no daemon");
        assert!(matches!(err, ConnError::NoDaemon { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(uri) && !msg.contains('\n'), "{msg}");
    }

    #[test]
    fn socket_without_listener_is_no_daemon() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("sock");
        // Bound then dropped: the file stays, nobody listens, connect gets ECONNREFUSED.
        drop(std::os::unix::net::UnixListener::bind(&sock).expect("bind"));
        let uri = format!("qemu:///system?socket={}", sock.display());
        let err = Connection::open(&uri).expect_err("refused");
        assert!(matches!(err, ConnError::NoDaemon { .. }), "{err}");
    }

    #[test]
    fn unreadable_socket_is_permission_denied() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o000)).expect("chmod");
        // Root ignores socket permissions; then the daemon-less listener just hangs up.
        if std::fs::File::open("/etc/shadow").is_ok() {
            eprintln!("skipped: running as root, permissions do not apply");
            return;
        }
        let uri = format!("qemu:///system?socket={}", sock.display());
        let err = Connection::open(&uri).expect_err("denied");
        assert!(matches!(err, ConnError::PermissionDenied { .. }), "{err}");
        assert!(err.to_string().contains("group libvirt"), "{err}");
    }
}
