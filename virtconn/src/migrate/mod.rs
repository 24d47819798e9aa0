//! Moving a domain between libvirt hosts: what the user asked for ([`MigrateRequest`]),
//! the checks that make a move succeed before it starts (`preflight`), and the move
//! itself with its progress and convergence policy (`run`).

mod request;

pub use request::{CopyStorage, MigrateRequest, MoveKind, TimeoutAction};
