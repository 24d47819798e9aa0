//! The error type every public call returns.

/// What went wrong talking to libvirt. Every message is a single line.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("no libvirt daemon answers at {uri} ({detail}); start libvirtd or pass --connect")]
    NoDaemon { uri: String, detail: String },
    #[error(
        "libvirt at {uri} refused access ({detail}); run as root, join group libvirt, \
         or use --connect qemu:///session"
    )]
    PermissionDenied { uri: String, detail: String },
    #[error("a domain named '{name}' already exists at {uri}; refusing to overwrite it")]
    NameExists { uri: String, name: String },
    #[error(
        "a domain with UUID {uuid} already exists at {uri} (named '{existing_name}'); \
         refusing to overwrite it"
    )]
    UuidExists {
        uri: String,
        uuid: String,
        existing_name: String,
    },
    #[error("no domain named '{name}' at {uri}")]
    NoSuchDomain { uri: String, name: String },
    #[error("no storage pool named '{pool}' at {uri}")]
    NoSuchPool { uri: String, pool: String },
    #[error("storage pool '{pool}' is of type '{kind}', not a directory (dir or fs) pool")]
    PoolNotDir { pool: String, kind: String },
    #[error("bad domain XML: {detail}")]
    BadXml { detail: String },
    #[error("libvirt at {uri} failed to {op}: {detail}")]
    Libvirt {
        uri: String,
        op: &'static str,
        detail: String,
    },
}

/// libvirt's XML errors quote the offending line with a caret under it on further lines;
/// our messages stay on one line, so the pieces are joined.
pub(crate) fn one_line(text: &str) -> String {
    text.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_joins_lines() {
        assert_eq!(one_line("a\n  b ^\n\n"), "a | b ^");
        assert_eq!(one_line("plain"), "plain");
    }

    #[test]
    fn messages_are_one_line_and_name_uri() {
        let uri = "qemu:///system".to_string();
        let errs = [
            ConnError::NoDaemon {
                uri: uri.clone(),
                detail: "x".into(),
            },
            ConnError::PermissionDenied {
                uri: uri.clone(),
                detail: "x".into(),
            },
            ConnError::NameExists {
                uri: uri.clone(),
                name: "n".into(),
            },
            ConnError::UuidExists {
                uri: uri.clone(),
                uuid: "u".into(),
                existing_name: "n".into(),
            },
            ConnError::NoSuchDomain {
                uri: uri.clone(),
                name: "n".into(),
            },
            ConnError::NoSuchPool {
                uri: uri.clone(),
                pool: "p".into(),
            },
            ConnError::Libvirt {
                uri: uri.clone(),
                op: "start",
                detail: "d".into(),
            },
        ];
        for e in errs {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "{msg}");
            assert!(msg.contains(&uri), "{msg}");
        }
        let no_daemon = ConnError::NoDaemon {
            uri,
            detail: "d".into(),
        }
        .to_string();
        assert!(no_daemon.contains("start libvirtd or pass --connect"));
    }
}
