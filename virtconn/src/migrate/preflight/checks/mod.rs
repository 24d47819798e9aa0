//! The checks: pure functions from the request and the gathered facts to findings.

pub(crate) mod disks;
pub(crate) mod domain;
pub(crate) mod flags;
pub(crate) mod hosts;
pub(crate) mod network;

use super::facts::AllFacts;
use super::{Check, CheckStatus};
use crate::migrate::request::MigrateRequest;

pub(crate) const FLAGS: &str = "flags";
pub(crate) const DEST_REACHABLE: &str = "dest-reachable";
pub(crate) const HYPERVISOR: &str = "hypervisor";
pub(crate) const DOMAIN_STATE: &str = "domain-state";
pub(crate) const NAME_RESOLUTION: &str = "name-resolution";
pub(crate) const PORTS: &str = "ports";
pub(crate) const STORAGE: &str = "storage";
pub(crate) const CACHE: &str = "cache";
pub(crate) const NETWORKS: &str = "networks";
pub(crate) const CPU: &str = "cpu";
pub(crate) const MEMORY: &str = "memory";
pub(crate) const HOST_DEVICES: &str = "host-devices";
pub(crate) const CLOCK: &str = "clock";

impl Check {
    pub(crate) fn pass(id: &'static str, message: impl Into<String>) -> Check {
        Check {
            id,
            status: CheckStatus::Pass,
            message: message.into(),
            fix: None,
        }
    }

    pub(crate) fn skip(id: &'static str, message: impl Into<String>) -> Check {
        Check {
            id,
            status: CheckStatus::Skip,
            message: message.into(),
            fix: None,
        }
    }

    pub(crate) fn warn(
        id: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            id,
            status: CheckStatus::Warn,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    pub(crate) fn fail(
        id: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            id,
            status: CheckStatus::Fail,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    /// Fail, or only warn when `hard` is false (e.g. offline moves, where a missing
    /// resource stops the guest from starting later rather than the move itself).
    pub(crate) fn fail_or_warn(
        hard: bool,
        id: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        if hard {
            Check::fail(id, message, fix)
        } else {
            Check::warn(id, message, fix)
        }
    }
}

/// The findings of a check that looks at many items: its problems, or one pass.
pub(crate) fn or_pass(id: &'static str, found: Vec<Check>, ok: impl Into<String>) -> Vec<Check> {
    if found.is_empty() {
        vec![Check::pass(id, ok)]
    } else {
        found
    }
}

/// Every check, in the order a user would fix things.
pub(crate) fn run_all(req: &MigrateRequest, f: &AllFacts) -> Vec<Check> {
    let mut out = flags::check(req);
    out.push(hosts::dest_reachable(&f.dest));
    out.push(hosts::hypervisor(&f.src, &f.dest, f.domain.as_ref().ok()));
    out.extend(domain::domain_state(req, &f.domain, &f.at_dest));
    out.push(network::name_resolution(req, &f.src, &f.dest, &f.net));
    out.push(network::ports(req, &f.net));
    match &f.domain {
        Ok(dom) => {
            out.extend(disks::storage(req, dom, &f.at_dest));
            out.extend(disks::cache(req, &f.src, dom));
            out.extend(network::networks(req, &f.dest, dom, &f.at_dest));
            out.push(hosts::cpu(req, dom, &f.at_dest));
            out.push(hosts::memory(req, &f.dest, dom));
            out.extend(disks::host_devices(req, dom, &f.at_dest));
        }
        Err(_) => {
            for id in [STORAGE, CACHE, NETWORKS, CPU, MEMORY, HOST_DEVICES] {
                out.push(Check::skip(
                    id,
                    "needs the domain's definition, which could not be read",
                ));
            }
        }
    }
    out.push(hosts::clock(&f.src, &f.dest));
    out
}

/// libvirt's version encoding, major * 1_000_000 + minor * 1000 + micro, as text.
pub(crate) fn version(v: u32) -> String {
    format!("{}.{}.{}", v / 1_000_000, (v / 1000) % 1000, v % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_like_libvirt_prints_them() {
        assert_eq!(version(11_003_000), "11.3.0");
        assert_eq!(version(10_000_001), "10.0.1");
    }
}

#[cfg(test)]
pub(crate) mod tests_support;
