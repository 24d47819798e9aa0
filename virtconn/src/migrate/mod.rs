//! Moving a domain between libvirt hosts: what the user asked for ([`MigrateRequest`]),
//! the checks that make a move succeed before it starts (`preflight`), and the move
//! itself with its progress and convergence policy (`run`).

pub mod preflight;
mod request;

pub use preflight::{flag_checks, preflight, unreachable_check, Check, CheckStatus};
pub use request::{CopyStorage, MigrateRequest, MoveKind, TimeoutAction};
