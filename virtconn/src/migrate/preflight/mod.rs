//! Preflight: everything that can be known to make a move fail, checked before libvirt
//! is asked to move anything.
//!
//! DESIGN: `gather` makes every libvirt call and network probe once and turns the
//! answers into plain facts (`facts`); each check in `checks` is a pure function of the
//! request and those facts, so every way a check can fail is unit-tested without a
//! daemon. A fact libvirt could not supply turns the checks that need it into a warning
//! that says so, never into an error of `preflight` itself: the user gets the full list
//! in one go. Each [`Check`] names a stable id, what was found and, when it is not a
//! pass, one thing the user can do about it.

mod addr;
mod checks;
mod clock;
mod domxml;
mod facts;
mod gather;

#[cfg(test)]
mod tests;

use serde::Serialize;

use super::request::MigrateRequest;
use crate::{ConnError, Connection};

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    /// The move may work, but something deserves a look.
    Warn,
    /// The move will fail, or libvirt will refuse it.
    Fail,
    /// Does not apply to this request, or cannot be measured.
    Skip,
}

/// One finding. A check with several findings reports several of these, all with its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable kebab-case id, e.g. `name-resolution`.
    pub id: &'static str,
    pub status: CheckStatus,
    /// One line: what was found.
    pub message: String,
    /// One line: what the user can do; none for passes.
    pub fix: Option<String>,
}

/// Runs every check for moving `req.domain` from `src` to `dest`. Both connections are
/// open (see [`unreachable_check`] for when the destination would not open). Slow parts:
/// one DNS lookup and one TCP connect with a 1 s timeout.
pub fn preflight(src: &Connection, dest: &Connection, req: &MigrateRequest) -> Vec<Check> {
    let facts = gather::gather(src, dest, req);
    checks::run_all(req, &facts)
}

/// The flag combinations libvirt refuses, or that do not do what they seem to; needs no
/// connection.
pub fn flag_checks(req: &MigrateRequest) -> Vec<Check> {
    checks::flags::check(req)
}

/// The `dest-reachable` finding for a destination that could not be opened.
pub fn unreachable_check(dest_uri: &str, err: &ConnError) -> Check {
    checks::hosts::unreachable(dest_uri, err)
}
