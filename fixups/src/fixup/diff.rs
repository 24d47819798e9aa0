//! Changes rendered for people: unified diffs for text files (`--dry-run` prints them),
//! a one-line summary for appended archives and symlinks.

use similar::TextDiff;

use super::{Change, ChangeReport};

/// Context lines around each hunk, as `diff -u`.
const CONTEXT: usize = 3;

/// The report line(s) for one change.
pub fn report(change: &Change) -> ChangeReport {
    ChangeReport {
        action: change.action(),
        path: change.path().to_string(),
        diff: render(change),
    }
}

fn render(change: &Change) -> String {
    match change {
        Change::WriteFile {
            path,
            before,
            after,
        } => {
            let old = before.as_deref().unwrap_or_default();
            match (std::str::from_utf8(old), std::str::from_utf8(after)) {
                (Ok(old), Ok(new)) => unified(&path.to_string(), before.is_some(), old, new),
                _ => format!("binary file: {} bytes -> {} bytes", old.len(), after.len()),
            }
        }
        Change::AppendFile {
            before_len,
            data,
            summary,
            ..
        } => format!(
            "append {} bytes after byte {before_len}: {summary}",
            data.len()
        ),
        Change::CreateSymlink { path, target } => format!("+ {path} -> {target}"),
        Change::RemoveSymlink { path, target } => format!("- {path} -> {target}"),
    }
}

fn unified(path: &str, existed: bool, old: &str, new: &str) -> String {
    let from = if existed {
        format!("a{path}")
    } else {
        "/dev/null".to_string()
    };
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(CONTEXT)
        .header(&from, &format!("b{path}"))
        .to_string()
}
