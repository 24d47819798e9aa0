//! Where a converted NIC is plugged in on the KVM host.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::names::xml_str_ok;
use crate::DomainError;

/// A libvirt network, a host bridge, or user-mode (SLIRP) networking.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "name")]
pub enum NetTarget {
    Network(String),
    Bridge(String),
    User,
}

impl NetTarget {
    /// Parses `network:NAME`, `bridge:NAME` or `user`; a bare `NAME` is a network, as
    /// in `virt-install --network`.
    pub fn parse(s: &str) -> Result<NetTarget, DomainError> {
        let bad = |reason: &str| DomainError::BadNetTarget {
            spec: s.escape_debug().to_string(),
            reason: reason.to_string(),
        };
        let s_trim = s.trim();
        if s_trim == "user" {
            return Ok(NetTarget::User);
        }
        let (kind, name) = match s_trim.split_once(':') {
            Some(("network", name)) => ("network", name),
            Some(("bridge", name)) => ("bridge", name),
            // A typo such as `brige:br0` must not silently become a network name.
            Some((kind, _)) => {
                return Err(bad(&format!(
                    "unknown kind `{}` (want network:, bridge: or user)",
                    kind.escape_debug()
                )))
            }
            None => ("network", s_trim),
        };
        if name.is_empty() {
            return Err(bad("empty name"));
        }
        // Both kinds of name are file or interface names on the host.
        if name.contains('/') || name.chars().any(char::is_control) || !xml_str_ok(name) {
            return Err(bad("name holds `/` or a control character"));
        }
        if kind == "bridge" {
            // Linux interface names: IFNAMSIZ is 16 with the NUL, and no white space.
            if name.len() > 15 || name.chars().any(char::is_whitespace) {
                return Err(bad(
                    "not a Linux interface name (at most 15 bytes, no spaces)",
                ));
            }
            Ok(NetTarget::Bridge(name.to_string()))
        } else {
            Ok(NetTarget::Network(name.to_string()))
        }
    }
}

impl FromStr for NetTarget {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NetTarget::parse(s)
    }
}

/// The same spelling [`NetTarget::parse`] reads.
impl fmt::Display for NetTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetTarget::Network(name) => write!(f, "network:{name}"),
            NetTarget::Bridge(name) => write!(f, "bridge:{name}"),
            NetTarget::User => f.write_str("user"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        assert_eq!(
            NetTarget::parse("network:lan").unwrap(),
            NetTarget::Network("lan".into())
        );
        assert_eq!(
            NetTarget::parse("bridge:br0").unwrap(),
            NetTarget::Bridge("br0".into())
        );
        assert_eq!(NetTarget::parse("user").unwrap(), NetTarget::User);
        assert_eq!(
            NetTarget::parse("default").unwrap(),
            NetTarget::Network("default".into())
        );
        assert_eq!(
            "bridge:br0".parse::<NetTarget>().unwrap().to_string(),
            "bridge:br0"
        );
    }

    #[test]
    fn refuses_typos_and_bad_names() {
        for bad in [
            "",
            "network:",
            "brige:br0",
            "bridge:a-very-long-bridge0",
            "bridge:br 0",
            "a/b",
            "x\ny",
        ] {
            let e = NetTarget::parse(bad).unwrap_err().to_string();
            assert!(!e.contains('\n'), "{bad:?}: {e}");
        }
    }
}
