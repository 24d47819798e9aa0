//! A minimal, line-based reading of netplan YAML: enough for `ethernets:`.
//!
//! Only block style is understood, by indentation: the children of an `ethernets:` key
//! are interface ids; under each, `set-name:`, `macaddress:`, `dhcp4:` and `addresses:`
//! directly, and `name:`/`macaddress:` inside `match:`. Everything else (flow style
//! `{…}`, anchors, multi-document files, bonds, bridges, vlans) is ignored, never an
//! error. A full YAML parser is not worth the dependency for six keys of hostile input.

use crate::inspect::read::unquote;

/// What one `ethernets:` child says.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ethernet {
    pub id: String,
    pub set_name: Option<String>,
    pub match_name: Option<String>,
    pub mac: Option<String>,
    pub dhcp4: bool,
    pub addresses: bool,
}

impl Ethernet {
    /// The name the interface ends up with: `set-name`, else a literal `match: name`,
    /// else the id (which netplan uses as the name when there is no `match`).
    pub fn interface(&self) -> Option<String> {
        let literal = |n: &&String| !n.contains(['*', '?', '[']);
        self.set_name
            .clone()
            .or_else(|| self.match_name.as_ref().filter(literal).cloned())
            .or_else(|| (!self.id.is_empty()).then(|| self.id.clone()))
    }

    pub fn method(&self) -> Option<String> {
        if self.dhcp4 {
            Some("dhcp".to_string())
        } else {
            self.addresses.then(|| "static".to_string())
        }
    }
}

/// Indentation levels of the block being read.
#[derive(Default)]
struct State {
    ethernets: Option<usize>,
    child: Option<usize>,
    property: Option<usize>,
    section: String,
}

/// The `ethernets:` children of a netplan file, in file order.
pub fn parse(text: &str) -> Vec<Ethernet> {
    let mut out: Vec<Ethernet> = Vec::new();
    let mut st = State::default();
    for raw in text.lines() {
        let line = strip_comment(raw);
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('-') {
            continue;
        }
        let indent = line.len() - content.len();
        let (key, value) = match content.split_once(':') {
            Some((k, v)) => (unquote(k), unquote(v)),
            None => continue,
        };
        if st.ethernets.is_some_and(|e| indent <= e) {
            st = State::default();
        }
        let Some(_) = st.ethernets else {
            if key == "ethernets" {
                st.ethernets = Some(indent);
            }
            continue;
        };
        if st.child.is_none_or(|c| indent <= c) {
            st.child = Some(indent);
            st.property = None;
            out.push(Ethernet {
                id: key.to_string(),
                ..Ethernet::default()
            });
            continue;
        }
        if let Some(eth) = out.last_mut() {
            property(&mut st, eth, indent, key, value);
        }
    }
    out
}

/// Apply one line below an interface id.
fn property(st: &mut State, eth: &mut Ethernet, indent: usize, key: &str, value: &str) {
    if st.property.is_none_or(|p| indent <= p) {
        st.property = Some(indent);
        st.section = key.to_string();
        match key {
            "set-name" if !value.is_empty() => eth.set_name = Some(value.to_string()),
            "macaddress" if !value.is_empty() => eth.mac = Some(value.to_string()),
            "dhcp4" => eth.dhcp4 = matches!(value, "true" | "yes" | "on" | "True" | "TRUE"),
            "addresses" => eth.addresses = value != "[]",
            _ => {}
        }
        return;
    }
    if st.section == "match" && !value.is_empty() {
        match key {
            "name" => eth.match_name = Some(value.to_string()),
            "macaddress" => eth.mac = Some(value.to_string()),
            _ => {}
        }
    }
}

/// The line without a `#` comment (a `#` at the start or after a blank).
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let cut = (0..bytes.len())
        .find(|&i| bytes[i] == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()));
    line.get(..cut.unwrap_or(line.len()))
        .unwrap_or(line)
        .trim_end()
}
