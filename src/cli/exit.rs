//! Exit codes (documented in the README) and the error type that carries one.

use std::fmt;

/// Every way ferry can end; the numbers are part of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// The input is missing, unreadable, malformed, unsupported or of unknown format.
    BadInput = 1,
    /// The command line is wrong (clap reports these itself with the same code).
    Usage = 2,
    /// The output could not be written or a required tool failed.
    OutputFailed = 3,
    /// `--verify` found the output different from the source.
    VerifyFailed = 4,
    /// A guest fixup failed; the disk was left as it was.
    FixupFailed = 5,
    /// libvirt refused: no daemon, permission denied, the domain exists, start failed.
    LibvirtFailed = 6,
    /// `ferry migrate`: a preflight check failed; nothing was moved.
    PreflightFailed = 7,
    /// `ferry migrate`: the move failed or was aborted; the guest runs on the source.
    MigrationFailed = 8,
    /// `ferry wave`: the wave ended with VMs failed; the report says which and why.
    WaveIncomplete = 9,
    /// Interrupted (Ctrl-C / SIGINT / SIGTERM); partial output was removed.
    Interrupted = 130,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// An error on its way to `main`, with the exit code it ends in.
pub struct Failure {
    pub exit: Exit,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Self {
        Failure {
            exit,
            error: error.into(),
        }
    }

    /// Input errors (malformed, unsupported, unknown format) are exit 1; others fall into
    /// `otherwise`.
    pub fn classify(err: converters::Error, otherwise: Exit) -> Self {
        let exit = if err.is_bad_input() {
            Exit::BadInput
        } else {
            otherwise
        };
        Failure::new(exit, err)
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#} (exit {})", self.error, self.exit.code())
    }
}

pub type CliResult<T = ()> = Result<T, Failure>;
