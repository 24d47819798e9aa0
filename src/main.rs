//! `ferry`: thin entry point; parsing, dispatch and exit codes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = ferry::cli::Cli::parse();
    match ferry::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("ferry: error: {:#}", failure.error);
            ExitCode::from(failure.exit.code())
        }
    }
}
