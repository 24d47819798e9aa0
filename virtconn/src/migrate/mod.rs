//! Moving a domain between libvirt hosts: what the user asked for ([`MigrateRequest`]),
//! the checks that make a move succeed before it starts ([`preflight`]), and the move
//! itself with its progress and convergence policy (`run`).

mod ffi;
mod flags;
mod policy;
pub mod preflight;
mod progress;
mod request;
mod run;

pub use flags::{migration_flags, migration_params};
pub use policy::STALLED_PASSES;
pub use preflight::{flag_checks, preflight, unreachable_check, Check, CheckStatus};
pub use progress::{Escalation, JobProgress, MigrationEvent};
pub use request::{CopyStorage, MigrateRequest, MoveKind, TimeoutAction};
pub use run::{
    migrate, migrate_with_report, source_state_after_failure, MigrationOutcome, MigrationReport,
};
