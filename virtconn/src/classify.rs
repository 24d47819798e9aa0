//! Turns a libvirt error into a [`ConnError`] by its code and domain, not by its wording,
//! except for system errors, where the errno only survives as strerror text.

use virt::error::{Error as VirtError, ErrorDomain, ErrorNumber};

use crate::error::{one_line, ConnError};

/// The handful of failures callers act on; everything else is passed through as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    NoDaemon,
    PermissionDenied,
    NoSuchDomain,
    NoSuchPool,
    BadXml,
    Other,
}

/// Socket errors come from the RPC layer as VIR_ERR_SYSTEM_ERROR with strerror text;
/// virt 0.4 does not expose the errno itself. The same errno text from another source
/// (a disk image missing when a domain starts) is not about the daemon, hence the
/// `connecting` / RPC-domain guard.
pub(crate) fn classify(
    code: ErrorNumber,
    domain: ErrorDomain,
    message: &str,
    connecting: bool,
) -> Class {
    match code {
        ErrorNumber::NoConnect => Class::NoDaemon,
        ErrorNumber::AuthFailed
        | ErrorNumber::AuthUnavailable
        | ErrorNumber::AuthCancelled
        | ErrorNumber::AccessDenied
        | ErrorNumber::OperationDenied => Class::PermissionDenied,
        ErrorNumber::NoDomain => Class::NoSuchDomain,
        ErrorNumber::NoStoragePool => Class::NoSuchPool,
        ErrorNumber::XmlError | ErrorNumber::XmlDetail | ErrorNumber::XmlInvalidSchema => {
            Class::BadXml
        }
        ErrorNumber::SystemError if connecting || domain == ErrorDomain::Rpc => {
            system_error_class(message)
        }
        _ => Class::Other,
    }
}

fn system_error_class(message: &str) -> Class {
    const ABSENT: [&str; 3] = [
        "No such file or directory", // ENOENT: socket path missing
        "Connection refused",        // ECONNREFUSED: stale socket, daemon gone
        "End of file while reading", // daemon died under us
    ];
    if ABSENT.iter().any(|s| message.contains(s)) {
        Class::NoDaemon
    } else if message.contains("Permission denied") || message.contains("Operation not permitted") {
        Class::PermissionDenied
    } else {
        Class::Other
    }
}

/// What the failing call was about, so the error can name it.
#[derive(Clone, Copy)]
pub(crate) enum Subject<'a> {
    Connection,
    Domain(&'a str),
    Pool(&'a str),
}

pub(crate) fn conn_error(
    uri: &str,
    op: &'static str,
    subject: Subject<'_>,
    err: &VirtError,
) -> ConnError {
    let detail = one_line(err.message());
    let connecting = matches!(subject, Subject::Connection);
    match (
        classify(err.code(), err.domain(), err.message(), connecting),
        subject,
    ) {
        (Class::NoDaemon, _) => ConnError::NoDaemon {
            uri: uri.to_string(),
            detail,
        },
        (Class::PermissionDenied, _) => ConnError::PermissionDenied {
            uri: uri.to_string(),
            detail,
        },
        (Class::NoSuchDomain, Subject::Domain(name)) => ConnError::NoSuchDomain {
            uri: uri.to_string(),
            name: name.to_string(),
        },
        (Class::NoSuchPool, Subject::Pool(pool)) => ConnError::NoSuchPool {
            uri: uri.to_string(),
            pool: pool.to_string(),
        },
        (Class::BadXml, _) => ConnError::BadXml {
            detail: format!("libvirt at {uri} rejected it: {detail}"),
        },
        _ => ConnError::Libvirt {
            uri: uri.to_string(),
            op,
            detail,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(code: ErrorNumber, domain: ErrorDomain, msg: &str, connecting: bool) -> Class {
        classify(code, domain, msg, connecting)
    }

    #[test]
    fn missing_or_refused_socket_is_no_daemon() {
        // Wording measured with libvirt 11.3's client against such sockets.
        let enoent = "Failed to connect socket to '/nonexistent/sock': No such file or directory";
        let refused = "Failed to connect socket to '/tmp/s': Connection refused";
        for msg in [enoent, refused] {
            assert_eq!(
                class(ErrorNumber::SystemError, ErrorDomain::Rpc, msg, true),
                Class::NoDaemon
            );
            assert_eq!(
                class(ErrorNumber::SystemError, ErrorDomain::Rpc, msg, false),
                Class::NoDaemon
            );
        }
        assert_eq!(
            class(ErrorNumber::NoConnect, ErrorDomain::Remote, "x", false),
            Class::NoDaemon
        );
    }

    #[test]
    fn unreadable_socket_and_auth_are_permission_denied() {
        let eacces = "Failed to connect socket to '/tmp/vcperm/s': Permission denied";
        assert_eq!(
            class(ErrorNumber::SystemError, ErrorDomain::Rpc, eacces, true),
            Class::PermissionDenied
        );
        for code in [
            ErrorNumber::AuthFailed,
            ErrorNumber::AuthUnavailable,
            ErrorNumber::AuthCancelled,
            ErrorNumber::AccessDenied,
            ErrorNumber::OperationDenied,
        ] {
            assert_eq!(
                class(code, ErrorDomain::Access, "x", false),
                Class::PermissionDenied
            );
        }
    }

    #[test]
    fn system_errors_outside_the_connection_stay_other() {
        // A guest's disk missing at start is not the daemon missing.
        let msg = "Cannot access storage file '/x.qcow2': No such file or directory";
        assert_eq!(
            class(ErrorNumber::SystemError, ErrorDomain::Qemu, msg, false),
            Class::Other
        );
        let msg = "unable to open '/x.qcow2': Permission denied";
        assert_eq!(
            class(ErrorNumber::SystemError, ErrorDomain::Storage, msg, false),
            Class::Other
        );
    }

    #[test]
    fn lookups_and_xml() {
        assert_eq!(
            class(ErrorNumber::NoDomain, ErrorDomain::Qemu, "x", false),
            Class::NoSuchDomain
        );
        assert_eq!(
            class(ErrorNumber::NoStoragePool, ErrorDomain::Storage, "x", false),
            Class::NoSuchPool
        );
        assert_eq!(
            class(ErrorNumber::XmlDetail, ErrorDomain::Xml, "x", false),
            Class::BadXml
        );
        assert_eq!(
            class(ErrorNumber::OperationInvalid, ErrorDomain::Qemu, "x", false),
            Class::Other
        );
    }
}
