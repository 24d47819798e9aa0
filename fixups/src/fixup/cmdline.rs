//! Every place a Linux guest keeps its kernel command line, edited byte-exactly: shared by
//! the fixups that change parameters (`devices`: `root=`/`resume=`; `consoles`:
//! `console=`).
//!
//! Places: `linux`/`linux16`/`linuxefi` lines of `grub.cfg`, `GRUB_CMDLINE_LINUX*` in
//! `/etc/default/grub` (so `update-grub` keeps the change), `kernelopts=` in `grubenv`
//! (its 1024-byte block keeps its size: `#` padding is given or taken), `options` lines
//! of BootLoaderSpec entries, and `/etc/kernel/cmdline` (what `kernel-install` builds new
//! entries from). Only the argument part of each line is handed to the edit; every other
//! byte (line ends, quoting, non-UTF-8) is kept.

use crate::guestfs::{GuestFs, GuestPath};
use crate::inspect::{GuestOs, Reader};

use super::guestio::{
    gpath, is_comment_or_blank, lines, read_config, resolved, split_eol, write_change,
};
use super::{Change, FixupError};

const GRUBENV_PATHS: [&str; 2] = ["/boot/grub2/grubenv", "/boot/grub/grubenv"];
const GRUBENV_HEADER: &[u8] = b"# GRUB Environment Block\n";
const BLS_DIR: &str = "/boot/loader/entries";
const DEFAULT_GRUB: &str = "/etc/default/grub";
const KERNEL_CMDLINE: &str = "/etc/kernel/cmdline";

/// An edit of one command line's arguments: the new arguments, `None` to keep them.
pub(in crate::fixup) type ArgsEdit<'a> = &'a dyn Fn(&[u8]) -> Option<Vec<u8>>;

/// The changes `fix` makes to the guest's kernel command lines.
pub(in crate::fixup) fn plan_cmdline_edits(
    fs: &dyn GuestFs,
    os: &GuestOs,
    fix: ArgsEdit<'_>,
) -> Result<Vec<Change>, FixupError> {
    let r = Reader::new(fs);
    let mut changes = Vec::new();
    if let Some(boot) = &os.bootloader {
        edit(fs, &gpath(&boot.config)?, &mut changes, |data| {
            edit_lines(data, fix, |body| {
                command_args(body, &["linux", "linux16", "linuxefi"])
            })
        })?;
    }
    edit(fs, &gpath(DEFAULT_GRUB)?, &mut changes, |data| {
        edit_lines(data, fix, default_grub_value)
    })?;
    let mut seen = Vec::new();
    for path in GRUBENV_PATHS {
        let path = gpath(path)?;
        match resolved(fs, &path)? {
            Some(real) if !seen.contains(&real) => seen.push(real),
            _ => continue,
        }
        edit(fs, &path, &mut changes, |data| fix_grubenv(data, fix))?;
    }
    for entry_file in r.list_matching(BLS_DIR, "", ".conf")? {
        edit(fs, &entry_file, &mut changes, |data| {
            edit_lines(data, fix, |body| command_args(body, &["options"]))
        })?;
    }
    edit(fs, &gpath(KERNEL_CMDLINE)?, &mut changes, |data| {
        edit_lines(data, fix, |body| Some((0, body.len())))
    })?;
    Ok(changes)
}

/// Plan `fix` on the file `path` when it is a readable regular file.
pub(in crate::fixup) fn edit(
    fs: &dyn GuestFs,
    path: &GuestPath,
    changes: &mut Vec<Change>,
    fix: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
) -> Result<(), FixupError> {
    let Some(before) = read_config(fs, path)? else {
        return Ok(());
    };
    if let Some(after) = fix(&before) {
        changes.extend(write_change(path, Some(before), after));
    }
    Ok(())
}

/// `data` with `fix` applied to the part of each line that `args` picks (a byte range of
/// the line without its end); `None` when nothing changed.
pub(in crate::fixup) fn edit_lines(
    data: &[u8],
    fix: ArgsEdit<'_>,
    args: impl Fn(&[u8]) -> Option<(usize, usize)>,
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut changed = false;
    for line in lines(data) {
        let (body, eol) = split_eol(line);
        let fixed = args(body).and_then(|(start, end)| {
            let fixed = fix(body.get(start..end)?)?;
            let mut l = body[..start].to_vec();
            l.extend(fixed);
            l.extend_from_slice(&body[end..]);
            Some(l)
        });
        match fixed {
            Some(new_body) => {
                out.extend(new_body);
                out.extend_from_slice(eol);
                changed = true;
            }
            None => out.extend_from_slice(line),
        }
    }
    changed.then_some(out)
}

/// The arguments of a line whose first word is one of `commands` (after blanks).
fn command_args(body: &[u8], commands: &[&str]) -> Option<(usize, usize)> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let len = body[start..]
        .iter()
        .position(u8::is_ascii_whitespace)
        .unwrap_or(body.len() - start);
    let word = &body[start..start + len];
    commands
        .iter()
        .any(|c| c.as_bytes() == word)
        .then_some((start + len, body.len()))
}

/// The value of a `GRUB_CMDLINE_LINUX*=` assignment in `/etc/default/grub`.
pub(in crate::fixup) fn default_grub_value(body: &[u8]) -> Option<(usize, usize)> {
    if is_comment_or_blank(body) {
        return None;
    }
    let eq = body.iter().position(|&b| b == b'=')?;
    let key = body[..eq].trim_ascii();
    let key = key.strip_prefix(b"export ").unwrap_or(key).trim_ascii();
    key.starts_with(b"GRUB_CMDLINE_LINUX")
        .then_some((eq + 1, body.len()))
}

/// Words of a command line: runs between blanks and quotes (GRUB and shell quoting
/// surround words without being part of them).
pub(in crate::fixup) fn words(args: &[u8]) -> Vec<(usize, usize)> {
    let delimiter = |b: &u8| matches!(b, b' ' | b'\t' | b'"' | b'\'');
    let mut out = Vec::new();
    let mut start = None;
    for (i, b) in args.iter().enumerate() {
        match (delimiter(b), start) {
            (true, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, args.len()));
    }
    out
}

/// `args` with each word `replace` returns something for replaced by it; `None` when no
/// word changed.
pub(in crate::fixup) fn replace_words(
    args: &[u8],
    replace: impl Fn(&[u8]) -> Option<Vec<u8>>,
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(args.len() + 64);
    let mut pos = 0;
    let mut changed = false;
    for (s, e) in words(args) {
        if let Some(new) = replace(&args[s..e]) {
            out.extend_from_slice(&args[pos..s]);
            out.extend(new);
            pos = e;
            changed = true;
        }
    }
    out.extend_from_slice(&args[pos..]);
    changed.then_some(out)
}

/// `grubenv` with `kernelopts=` fixed, still the size it was: GRUB reads the block as
/// 1024 bytes padded with `#`. `None` when nothing changed or the padding cannot absorb
/// the change.
pub(in crate::fixup) fn fix_grubenv(data: &[u8], fix: ArgsEdit<'_>) -> Option<Vec<u8>> {
    let mut after = edit_lines(data, fix, |body| {
        body.starts_with(b"kernelopts=")
            .then_some(("kernelopts=".len(), body.len()))
    })?;
    if !data.starts_with(GRUBENV_HEADER) {
        return Some(after);
    }
    let padding_start = after.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if after[padding_start..].iter().any(|&b| b != b'#') {
        return None;
    }
    let padding = after.len() - padding_start;
    if after.len() > data.len() {
        let excess = after.len() - data.len();
        if excess > padding {
            return None;
        }
        after.truncate(data.len());
    } else {
        after.resize(data.len(), b'#');
    }
    Some(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upper_root(args: &[u8]) -> Option<Vec<u8>> {
        replace_words(args, |w| {
            w.starts_with(b"root=").then(|| w.to_ascii_uppercase())
        })
    }

    #[test]
    fn only_arguments_of_the_right_lines_change() {
        let cfg =
            b"set root='hd0,msdos1'\n\tlinux\t/vmlinuz root=/dev/sda1 ro\r\n\tinitrd /initrd\n";
        let out = edit_lines(cfg, &upper_root, |b| command_args(b, &["linux"])).unwrap();
        assert_eq!(
            out,
            b"set root='hd0,msdos1'\n\tlinux\t/vmlinuz ROOT=/DEV/SDA1 ro\r\n\tinitrd /initrd\n"
        );
        let grub = b"GRUB_CMDLINE_LINUX=\"root=/dev/sda1 quiet\"\n#GRUB_CMDLINE_LINUX=\"root=x\"\n";
        let out = edit_lines(grub, &upper_root, default_grub_value).unwrap();
        assert_eq!(
            out,
            b"GRUB_CMDLINE_LINUX=\"ROOT=/DEV/SDA1 quiet\"\n#GRUB_CMDLINE_LINUX=\"root=x\"\n"
        );
        assert_eq!(
            edit_lines(b"linux /k ro\n", &upper_root, |b| command_args(
                b,
                &["linux"]
            )),
            None
        );
    }

    #[test]
    fn grubenv_keeps_its_size() {
        let body = b"# GRUB Environment Block\nkernelopts=root=/dev/sda1 ro\n".to_vec();
        let mut env = body.clone();
        env.resize(1024, b'#');
        let fixed = fix_grubenv(&env, &upper_root).unwrap();
        assert_eq!(fixed.len(), 1024);
        assert!(fixed.starts_with(b"# GRUB Environment Block\nkernelopts=ROOT=/DEV/SDA1 ro\n#"));
        let grow = |_: &[u8]| Some(vec![b'x'; 2000]);
        assert_eq!(fix_grubenv(&env, &grow), None, "no room: left alone");
    }
}
