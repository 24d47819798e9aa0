//! V2P: the VM's MACs written inside network configurations, replaced by the machine's.
//!
//! Pinning a name to the machine's NIC is not enough when a configuration also binds to
//! the VM's MAC: ifcfg `HWADDR=` makes initscripts skip a device with another MAC,
//! NetworkManager does not activate a profile whose `mac-address=` no NIC has, netplan
//! and networkd `match` on it. Where a configuration *sets* a MAC (ifupdown `hwaddress`,
//! ifcfg `MACADDR=`, netplan `macaddress:` outside `match:`) the VM's MAC would be
//! cloned onto the machine's NIC, which collides with the VM when both stay on one
//! network, the usual case for a lab reproduction. So every occurrence of the VM's MAC in
//! the files that configure a pinned name becomes the machine's MAC, whatever the key:
//! the MAC is the token, and its spelling (separator, case) is kept.
//!
//! Only files inspection read as network configurations are touched, and in them only
//! MAC tokens: 17 characters, six hex pairs joined by one separator (`:` or `-`), not
//! part of a longer hex run. Every replacement of a file is made in one pass over the
//! original text, so a MAC written by one replacement is never replaced again.

use std::collections::BTreeMap;

use crate::inspect::read::normalize_mac;

use super::super::guestio::{gpath, read_config, write_change};
use super::udev::Pin;
use super::{Change, FixupError, GuestContext};

/// Rewrites of the files that configure a pinned name with another MAC: for each file,
/// the VM MAC → machine MAC pairs to apply.
pub(super) fn rebind_changes(
    ctx: &GuestContext<'_>,
    pins: &[Pin],
) -> Result<Vec<Change>, FixupError> {
    let mut per_file: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for cfg in &ctx.os.network {
        let (Some(name), Some(vm_mac)) = (cfg.interface.as_deref(), cfg.mac.as_deref()) else {
            continue;
        };
        let Some(pin) = pins.iter().find(|p| p.name == name) else {
            continue;
        };
        if pin.mac == vm_mac {
            continue;
        }
        let pairs = per_file.entry(cfg.file.as_str()).or_default();
        if !pairs.iter().any(|(old, _)| old == vm_mac) {
            pairs.push((vm_mac.to_string(), pin.mac.clone()));
        }
    }
    let mut changes = Vec::new();
    for (file, pairs) in per_file {
        let path = gpath(file)?;
        let Some(before) = read_config(ctx.fs, &path)? else {
            continue;
        };
        if let Some(after) = replace_macs(&before, &pairs) {
            changes.extend(write_change(&path, Some(before), after));
        }
    }
    Ok(changes)
}

/// `text` with every MAC token equal to a pair's first MAC replaced by its second, in the
/// token's spelling; `None` when nothing matched.
pub(super) fn replace_macs(text: &[u8], pairs: &[(String, String)]) -> Option<Vec<u8>> {
    const LEN: usize = 17;
    let mut out = Vec::with_capacity(text.len());
    let mut changed = false;
    let mut i = 0;
    while i < text.len() {
        let token = text.get(i..i + LEN).filter(|t| {
            is_mac_token(t)
                && (i == 0 || !is_mac_byte(text[i - 1]))
                && text.get(i + LEN).is_none_or(|b| !is_mac_byte(*b))
        });
        let replacement = token.and_then(|t| {
            let written = std::str::from_utf8(t).ok()?;
            let mac = normalize_mac(written)?;
            let (_, new) = pairs.iter().find(|(old, _)| *old == mac)?;
            Some(respell(new, written))
        });
        match replacement {
            Some(new) => {
                out.extend_from_slice(new.as_bytes());
                changed = true;
                i += LEN;
            }
            None => {
                out.push(text[i]);
                i += 1;
            }
        }
    }
    changed.then_some(out)
}

/// Six hex pairs joined by one separator, `:` or `-`.
fn is_mac_token(t: &[u8]) -> bool {
    let sep = t[2];
    (sep == b':' || sep == b'-')
        && t.chunks(3).all(|c| {
            c[0].is_ascii_hexdigit()
                && c[1].is_ascii_hexdigit()
                && c.get(2).is_none_or(|s| *s == sep)
        })
}

/// Bytes that may continue a MAC-like run: a token next to one is part of something
/// longer (an IPv6 address, an InfiniBand address, a hash).
fn is_mac_byte(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'-'
}

/// `mac` (lower case, `:`-separated) in the spelling of `like`: its separator, and upper
/// case when `like` has no lower-case letter.
fn respell(mac: &str, like: &str) -> String {
    let sep = if like.as_bytes()[2] == b'-' { "-" } else { ":" };
    let upper = !like.bytes().any(|b| b.is_ascii_lowercase());
    let out = mac.replace(':', sep);
    if upper {
        out.to_ascii_uppercase()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn replaced(text: &str, list: &[(&str, &str)]) -> Option<String> {
        replace_macs(text.as_bytes(), &pairs(list)).map(|v| String::from_utf8(v).unwrap())
    }

    const VM: &str = "00:50:56:8a:3c:01";
    const HOST: &str = "3c:ec:ef:12:34:56";

    #[test]
    fn keeps_the_spelling_of_each_token() {
        assert_eq!(
            replaced("HWADDR=00:50:56:8A:3C:01\n", &[(VM, HOST)]).as_deref(),
            Some("HWADDR=3C:EC:EF:12:34:56\n")
        );
        assert_eq!(
            replaced("mac-address=00-50-56-8a-3c-01\n", &[(VM, HOST)]).as_deref(),
            Some("mac-address=3c-ec-ef-12-34-56\n")
        );
        assert_eq!(
            replaced(
                "  macaddress: \"00:50:56:8a:3c:01\"  # nic\n",
                &[(VM, HOST)]
            )
            .as_deref(),
            Some("  macaddress: \"3c:ec:ef:12:34:56\"  # nic\n")
        );
    }

    #[test]
    fn leaves_other_macs_and_longer_runs_alone() {
        assert_eq!(replaced("HWADDR=00:50:56:8a:3c:02\n", &[(VM, HOST)]), None);
        // Part of an IPv6 address or a 20-byte InfiniBand address: not a MAC token.
        assert_eq!(
            replaced("IPV6ADDR=fe80:00:50:56:8a:3c:01\n", &[(VM, HOST)]),
            None
        );
        assert_eq!(replaced("x 00:50:56:8a:3c:01:ff y\n", &[(VM, HOST)]), None);
        assert_eq!(replaced("00:50:56:8a:3c", &[(VM, HOST)]), None);
        assert_eq!(replaced("", &[(VM, HOST)]), None);
    }

    #[test]
    fn swaps_happen_in_one_pass() {
        let a = "00:50:56:00:00:0a";
        let b = "00:50:56:00:00:0b";
        assert_eq!(
            replaced(&format!("{a}\n{b}\n"), &[(a, b), (b, a)]).as_deref(),
            Some(format!("{b}\n{a}\n").as_str())
        );
    }

    #[test]
    fn non_utf8_bytes_around_tokens_are_kept() {
        let mut text = b"\xff# \xfe\nHWADDR=".to_vec();
        text.extend_from_slice(VM.as_bytes());
        let got = replace_macs(&text, &pairs(&[(VM, HOST)])).unwrap();
        assert!(got.starts_with(b"\xff# \xfe\nHWADDR="));
        assert!(got.ends_with(HOST.as_bytes()));
    }
}
