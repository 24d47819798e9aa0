//! Helpers shared by this crate's tests.

use std::process::Command;

/// Whether every tool of `package` answers `-V`; a test without them skips locally and
/// fails under CI (`CI` set), where `.ci/run` installs them.
pub fn tools_present(package: &str, tools: &[&str]) -> bool {
    let ok = tools.iter().all(|tool| {
        Command::new(tool)
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{package} missing under CI"
        );
        eprintln!("skipping: {package} ({}) not installed", tools.join(", "));
    }
    ok
}
