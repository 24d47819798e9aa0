//! udev rules and `.link` files as far as NIC names go: reading the pins that
//! `70-persistent-net.rules` (and ferry's own files) hold, and writing ferry's.
//!
//! A pin is a rule line with `SUBSYSTEM=="net"`, a literal `ATTR{address}=="MAC"` and
//! `NAME="NAME"` (`=` or `:=`), as udev's old persistent-net generator wrote them. Lines
//! that are anything else (globs in the MAC, `NAME="%k"`, other keys' syntax ferry cannot
//! read) are not pins and are kept as they are.

use crate::inspect::read::normalize_mac;

/// A NIC name pinned to a MAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    pub name: String,
    /// Lower case `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
}

/// The pin a udev rule line sets, `None` when it is not one (comments included).
pub fn rule_pin(line: &[u8]) -> Option<Pin> {
    let line = std::str::from_utf8(line).ok()?.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut subsystem_net = false;
    let mut mac = None;
    let mut name = None;
    for (key, op, value) in rule_pairs(line)? {
        match (key, op) {
            ("SUBSYSTEM", "==") => subsystem_net = value == "net",
            ("ATTR{address}", "==") => mac = Some(normalize_mac(value)?),
            ("NAME", "=" | ":=") => name = Some(value),
            _ => {}
        }
    }
    let name = name.filter(|n| super::valid_ifname(n))?;
    subsystem_net.then_some(Pin {
        name: name.to_string(),
        mac: mac?,
    })
}

/// `KEY OP "VALUE"` triples of a rule line, `None` when the line does not parse.
fn rule_pairs(line: &str) -> Option<Vec<(&str, &str, &str)>> {
    let mut out = Vec::new();
    let mut rest = line;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            return Some(out);
        }
        // A key is letters, digits and `_`, optionally followed by `{attribute}`.
        let mut key_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if rest[key_end..].starts_with('{') {
            key_end += rest[key_end..].find('}')? + 1;
        }
        let key = &rest[..key_end];
        if key.is_empty() {
            return None;
        }
        rest = &rest[key_end..];
        let op = ["==", "!=", "+=", "-=", ":=", "="]
            .into_iter()
            .find(|op| rest.starts_with(op))?;
        rest = rest[op.len()..].strip_prefix('"')?;
        let end = value_end(rest)?;
        out.push((key, op, &rest[..end]));
        rest = &rest[end + 1..];
    }
}

/// Index of the closing quote of a value (a `\"` does not close it).
fn value_end(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The rule line ferry writes for a pin. `DRIVERS=="?*"` keeps VLANs and bridges, which
/// share their parent's MAC but have no driver, from being renamed too; `ATTR{type}=="1"`
/// limits it to Ethernet, as the persistent-net generator did.
pub fn rule_line(pin: &Pin) -> String {
    format!(
        "SUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"?*\", ATTR{{address}}==\"{}\", \
         ATTR{{type}}==\"1\", NAME=\"{}\"\n",
        pin.mac, pin.name
    )
}

/// The `[Match] MACAddress=` and `[Link] Name=` of a `.link` file, when it pins exactly
/// one name to one MAC.
pub fn link_pin(text: &[u8]) -> Option<Pin> {
    let text = String::from_utf8_lossy(text);
    let mut section = "";
    let (mut mac, mut name) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match (section, key.trim()) {
            ("Match", "MACAddress") => mac = normalize_mac(value.trim()),
            ("Link", "Name") => name = Some(value.trim().to_string()),
            _ => {}
        }
    }
    let name = name.filter(|n| super::valid_ifname(n))?;
    Some(Pin { name, mac: mac? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(name: &str, mac: &str) -> Pin {
        Pin {
            name: name.into(),
            mac: mac.into(),
        }
    }

    #[test]
    fn persistent_net_generator_lines() {
        let line = br#"SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="00:16:3E:5a:7b:02", ATTR{dev_id}=="0x0", ATTR{type}=="1", KERNEL=="eth*", NAME="eth0""#;
        assert_eq!(rule_pin(line), Some(pin("eth0", "00:16:3e:5a:7b:02")));
        let ours = rule_line(&pin("eth1", "00:16:3e:00:00:01"));
        assert_eq!(
            rule_pin(ours.as_bytes()),
            Some(pin("eth1", "00:16:3e:00:00:01"))
        );
    }

    #[test]
    fn lines_that_are_not_pins() {
        for line in [
            &b"# SUBSYSTEM==\"net\", ATTR{address}==\"00:16:3e:5a:7b:02\", NAME=\"eth0\""[..],
            b"SUBSYSTEM==\"net\", ATTR{address}==\"00:16:3e:*\", NAME=\"eth0\"",
            b"SUBSYSTEM==\"net\", ATTR{address}==\"00:16:3e:5a:7b:02\", NAME=\"%k\"",
            b"SUBSYSTEM==\"net\", ATTR{address}==\"00:16:3e:5a:7b:02\"",
            b"SUBSYSTEM==\"block\", ATTR{address}==\"00:16:3e:5a:7b:02\", NAME=\"eth0\"",
            b"SUBSYSTEM==\"net\", ATTR{address}==\"00:16:3e:5a:7b:02\", NAME=\"eth0",
            b"SUBSYSTEM==\"net\" ATTR{address==\"00:16:3e:5a:7b:02\", NAME=\"eth0\"",
            b"SUBSYSTEM==\"net\", ATTR{address}==\"00:16:3e:5a:7b:02\", NAME=\"a/b\"",
            b"\xff\xfe garbage \"",
            b"",
            b"=\"x\"",
        ] {
            assert_eq!(rule_pin(line), None, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn link_files() {
        let text = b"# comment\n[Match]\nMACAddress=00:50:56:8A:3C:01\n\n[Link]\nName=ens192\n";
        assert_eq!(link_pin(text), Some(pin("ens192", "00:50:56:8a:3c:01")));
        assert_eq!(link_pin(b"[Link]\nName=ens192\n"), None);
        assert_eq!(link_pin(b"[Match]\nMACAddress=00:50:56:8a:3c:01\n"), None);
        assert_eq!(link_pin(b"\xff\x00[[[\n=\n"), None);
    }
}
