//! Consoles: Xen's paravirtual console (`hvc0`, or `xvc0` on old kernels) becomes the
//! first serial port, `ttyS0`, which is where ferry's KVM domain puts the console.
//!
//! Without it the kernel writes its messages to a device that does not exist, and no
//! login prompt appears on the serial console. Edited, keeping every other byte:
//!
//! - kernel command lines, wherever [`super::cmdline`] finds them. `console=hvc0` becomes
//!   `console=ttyS0,115200`; when the line already has a `console=ttyS0`, it is removed
//!   instead, so the serial port is not registered twice. The word's position is kept:
//!   the last `console=` is the one `/dev/console` follows;
//! - `/etc/inittab`: a getty on `hvc0` runs on `ttyS0` instead, or is commented out with
//!   `# ferry: ` when a getty on `ttyS0` is there already;
//! - systemd: `serial-getty@hvc0.service` (or `getty@hvc0.service`) enabled in
//!   `getty.target.wants/` is replaced by `serial-getty@ttyS0.service`, linked to the same
//!   unit file (`serial-getty@.service` in place of `getty@.service`, which is for
//!   virtual terminals);
//! - `/etc/securetty`, when the guest has one, lists `ttyS0` so root may log in there.
//!
//! `GRUB_TERMINAL` and `GRUB_SERIAL_COMMAND` are left alone: GRUB's own menu keeps the
//! VGA console, which KVM has, and only the kernel and gettys move. Other `hvcN` (a
//! second Xen console, or virtio-console on KVM, which is also `hvc`) are left alone, and
//! so are GRUB variables other than `kernelopts` (`set kernelopts=` in `grub.cfg` itself).

//!
//! For [`Target::Physical`] the same edits are made (virtio-console is `hvc0` too, and a
//! real machine has neither), and a command line whose only consoles are `console=ttyS0`
//! gets `console=tty0` before the first of them: a real machine has a screen someone
//! may be looking at. `ttyS0` stays last, so `/dev/console` (the last `console=`) and
//! the serial logs do not move. A line without `console=` already uses the VGA console
//! and is left alone.

#[cfg(test)]
mod tests;

use crate::guestfs::{FileKind, GuestFs};
use crate::inspect::Reader;

use super::cmdline::ArgsEdit;
use super::cmdline::{edit, plan_cmdline_edits, words};
use super::guestio::{
    disable_line, gpath, is_comment_or_blank, lines, link_target, lstat_kind, split_eol,
};
use super::{Change, FixupError, GuestContext, GuestFixup, Plan, Target};

pub struct Consoles;

/// What a Xen console parameter becomes: the first serial port at the speed KVM's (and
/// most distributions') serial console uses.
const SERIAL_CONSOLE: &[u8] = b"console=ttyS0,115200";
/// The VGA console added on bare metal, with the blank that separates it from the next.
const VGA_CONSOLE: &[u8] = b"console=tty0 ";
/// Xen's console parameters, as written (`console=hvc0`, optionally with options).
const PV_CONSOLES: [&[u8]; 2] = [b"console=hvc0", b"console=xvc0"];
/// Xen console devices as inittab getty lines name them.
const PV_TTYS: [&[u8]; 4] = [b"hvc0", b"xvc0", b"/dev/hvc0", b"/dev/xvc0"];

const INITTAB: &str = "/etc/inittab";
const SECURETTY: &str = "/etc/securetty";
const GETTY_WANTS: &str = "/etc/systemd/system/getty.target.wants";
/// Enabled gettys on a Xen console, by unit name.
const PV_GETTYS: [&str; 4] = [
    "serial-getty@hvc0.service",
    "serial-getty@xvc0.service",
    "getty@hvc0.service",
    "getty@xvc0.service",
];
const SERIAL_GETTY: &str = "serial-getty@ttyS0.service";

impl GuestFixup for Consoles {
    fn id(&self) -> &'static str {
        "consoles"
    }

    fn description(&self, target: Target) -> &'static str {
        match target {
            Target::Kvm => "hvc0/xvc0 consoles moved to ttyS0 in the kernel command line, inittab and getty units",
            Target::Physical => {
                "hvc0/xvc0 consoles moved to ttyS0, and console=tty0 added so the screen shows the boot too"
            }
        }
    }

    fn plan(&self, ctx: &GuestContext<'_>) -> Result<Plan, FixupError> {
        let fs = ctx.fs;
        let r = Reader::new(fs);
        let fix: ArgsEdit<'_> = match ctx.target {
            Target::Kvm => &fix_console_args,
            Target::Physical => &fix_physical_console_args,
        };
        let mut changes = plan_cmdline_edits(fs, ctx.os, fix)?;
        edit(fs, &gpath(INITTAB)?, &mut changes, fix_inittab)?;
        getty_units(fs, &r, &mut changes)?;

        if changes.is_empty() {
            let also = match ctx.target {
                Target::Kvm => "",
                Target::Physical => ", and no command line with only a ttyS0 console",
            };
            return Ok(Plan::Skip(format!(
                "no hvc0 or xvc0 console configured (kernel command lines, \
                 /etc/default/grub, /etc/inittab, getty units){also}"
            )));
        }
        edit(fs, &gpath(SECURETTY)?, &mut changes, add_securetty)?;
        Ok(Plan::Changes(changes))
    }
}

/// Whether a kernel parameter is Xen's console.
fn is_pv_console(word: &[u8]) -> bool {
    PV_CONSOLES.iter().any(|c| {
        word == *c
            || word
                .strip_prefix(*c)
                .is_some_and(|rest| rest.starts_with(b","))
    })
}

/// Whether a kernel parameter is the first serial port's console.
fn is_serial_console(word: &[u8]) -> bool {
    let c: &[u8] = b"console=ttyS0";
    word == c
        || word
            .strip_prefix(c)
            .is_some_and(|rest| rest.starts_with(b","))
}

/// Command line arguments with Xen consoles replaced by (or, when it is there already,
/// folded into) the serial console; `None` when there is none.
fn fix_console_args(args: &[u8]) -> Option<Vec<u8>> {
    let words = words(args);
    if !words.iter().any(|&(s, e)| is_pv_console(&args[s..e])) {
        return None;
    }
    let mut has_serial = words.iter().any(|&(s, e)| is_serial_console(&args[s..e]));
    let mut out = Vec::with_capacity(args.len() + SERIAL_CONSOLE.len());
    let mut pos = 0;
    for (s, e) in words {
        if !is_pv_console(&args[s..e]) {
            continue;
        }
        out.extend_from_slice(&args[pos..s]);
        pos = e;
        if !has_serial {
            out.extend_from_slice(SERIAL_CONSOLE);
            has_serial = true;
        } else if matches!(out.last(), Some(b' ' | b'\t')) {
            // Removed with the blank before it, so no double blank is left behind.
            out.pop();
        } else if matches!(args.get(e), Some(b' ' | b'\t')) {
            pos = e + 1;
        }
    }
    out.extend_from_slice(&args[pos..]);
    Some(out)
}

/// [`fix_console_args`], then [`add_vga_console`]; `None` when neither changed anything.
fn fix_physical_console_args(args: &[u8]) -> Option<Vec<u8>> {
    let fixed = fix_console_args(args);
    add_vga_console(fixed.as_deref().unwrap_or(args)).or(fixed)
}

/// Command line arguments whose consoles are all the first serial port with
/// `console=tty0` inserted before the first of them; `None` when there is no console,
/// or one that is not `ttyS0` (a `tty0` already, or a choice ferry should not undo).
fn add_vga_console(args: &[u8]) -> Option<Vec<u8>> {
    let consoles: Vec<(usize, usize)> = words(args)
        .into_iter()
        .filter(|&(s, e)| args[s..e].starts_with(b"console="))
        .collect();
    let &(first, _) = consoles.first()?;
    if !consoles
        .iter()
        .all(|&(s, e)| is_serial_console(&args[s..e]))
    {
        return None;
    }
    let mut out = Vec::with_capacity(args.len() + VGA_CONSOLE.len());
    out.extend_from_slice(&args[..first]);
    out.extend_from_slice(VGA_CONSOLE);
    out.extend_from_slice(&args[first..]);
    Some(out)
}

/// `/etc/inittab` with gettys on a Xen console moved to `ttyS0`.
fn fix_inittab(data: &[u8]) -> Option<Vec<u8>> {
    let serial_getty = lines(data).any(|line| {
        inittab_process(line).is_some_and(|p| {
            p.split(u8::is_ascii_whitespace)
                .any(|w| w == b"ttyS0" || w == b"/dev/ttyS0")
        })
    });
    let mut out = Vec::with_capacity(data.len());
    let mut changed = false;
    for line in lines(data) {
        let (body, eol) = split_eol(line);
        let Some(process) = inittab_process(line) else {
            out.extend_from_slice(line);
            continue;
        };
        let offset = body.len() - process.len();
        let mut new_body = body[..offset].to_vec();
        let mut pos = 0;
        let mut found = false;
        for (s, e) in blank_words(process) {
            let word = &process[s..e];
            if !PV_TTYS.contains(&word) {
                continue;
            }
            found = true;
            new_body.extend_from_slice(&process[pos..s]);
            new_body.extend_from_slice(if word.starts_with(b"/dev/") {
                b"/dev/ttyS0"
            } else {
                b"ttyS0"
            });
            pos = e;
        }
        if !found {
            out.extend_from_slice(line);
            continue;
        }
        changed = true;
        if serial_getty {
            out.extend(disable_line(line));
        } else {
            new_body.extend_from_slice(&process[pos..]);
            out.extend(new_body);
            out.extend_from_slice(eol);
        }
    }
    changed.then_some(out)
}

/// The process field of an active inittab entry (`id:runlevels:action:process`).
fn inittab_process(line: &[u8]) -> Option<&[u8]> {
    let (body, _) = split_eol(line);
    if is_comment_or_blank(body) {
        return None;
    }
    let mut fields = body.splitn(4, |&b| b == b':');
    let _id = fields.next()?;
    let _runlevels = fields.next()?;
    let _action = fields.next()?;
    fields.next()
}

/// Words separated by blanks.
fn blank_words(s: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, b) in s.iter().enumerate() {
        match (b.is_ascii_whitespace(), start) {
            (true, Some(st)) => {
                out.push((st, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(st) = start {
        out.push((st, s.len()));
    }
    out
}

/// Gettys enabled on a Xen console replaced by one on `ttyS0`.
fn getty_units(
    fs: &dyn GuestFs,
    r: &Reader<'_>,
    changes: &mut Vec<Change>,
) -> Result<(), FixupError> {
    let dir = gpath(GETTY_WANTS)?;
    let serial = dir.join(SERIAL_GETTY.as_bytes())?;
    let mut serial_exists = lstat_kind(fs, &serial)?.is_some();
    for (path, e) in r.list(GETTY_WANTS)? {
        if e.kind != FileKind::Symlink || !PV_GETTYS.iter().any(|u| u.as_bytes() == e.name) {
            continue;
        }
        // A target that is not UTF-8 cannot be recorded in a plan; leave the link.
        let Some(target) = link_target(fs, &path)?.and_then(|t| String::from_utf8(t).ok()) else {
            continue;
        };
        changes.push(Change::RemoveSymlink {
            path,
            target: target.clone(),
        });
        if !serial_exists {
            changes.push(Change::CreateSymlink {
                path: serial.clone(),
                target: serial_getty_target(&target),
            });
            serial_exists = true;
        }
    }
    Ok(())
}

/// The unit file for the new link: the same, or `serial-getty@.service` beside a
/// `getty@.service` (which is for virtual terminals).
fn serial_getty_target(target: &str) -> String {
    match target.rsplit_once('/') {
        Some((dir, "getty@.service")) => format!("{dir}/serial-getty@.service"),
        None if target == "getty@.service" => "serial-getty@.service".to_string(),
        _ => target.to_string(),
    }
}

/// `/etc/securetty` with a `ttyS0` line, `None` when it has one.
fn add_securetty(data: &[u8]) -> Option<Vec<u8>> {
    if lines(data).any(|l| split_eol(l).0.trim_ascii() == b"ttyS0") {
        return None;
    }
    let mut out = data.to_vec();
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(b"ttyS0\n");
    Some(out)
}
