//! Network configuration in the five styles Linux guests use, with interface names and MACs.
//!
//! - ifupdown: `/etc/network/interfaces` and `/etc/network/interfaces.d/*`: one entry per
//!   `iface NAME FAMILY METHOD` stanza (loopback left out), MAC from `hwaddress [ether] MAC`.
//! - netplan: `/etc/netplan/*.yaml`, a minimal line-based reading of block-style YAML:
//!   children of `ethernets:`, their `set-name:`, `macaddress:`, `match:` (`name:`,
//!   `macaddress:`), `dhcp4:` and `addresses:`. Flow style (`{…}`) is not understood.
//! - NetworkManager keyfiles: `/etc/NetworkManager/system-connections/*.nmconnection`:
//!   `[connection] interface-name=`, `[ethernet] mac-address=`, `[ipv4] method=`.
//! - ifcfg: `/etc/sysconfig/network-scripts/ifcfg-*` (RHEL) and
//!   `/etc/sysconfig/network/ifcfg-*` (SUSE): `DEVICE=`, `HWADDR=`, `BOOTPROTO=`.
//! - systemd-networkd: `/etc/systemd/network/*.network`: `[Match] Name=`, `MACAddress=`,
//!   `[Network] DHCP=`, `Address=`.
//!
//! Methods are normalized to `dhcp` and `static` where the style says so (NetworkManager
//! `auto`/`manual`, ifcfg `BOOTPROTO=none` with an `IPADDR`); other values are kept as
//! written. MACs are lowercase `aa:bb:cc:dd:ee:ff`; an unparsable MAC is dropped.

mod netplan;

use serde::Serialize;

use super::os_release::shell_value;
use super::read::{config_lines, file_name, normalize_mac, unquote, Reader};
use super::InspectError;
use crate::guestfs::{FileKind, GuestPath};

/// Which configuration system a [`NetConfig`] belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetStyle {
    Ifupdown,
    Netplan,
    NetworkManager,
    Ifcfg,
    SystemdNetworkd,
}

/// One configured interface (or connection) in one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NetConfig {
    pub style: NetStyle,
    /// Guest path of the file that configures it.
    pub file: String,
    /// Interface name (a networkd `Name=` may be a glob list such as `en*`).
    pub interface: Option<String>,
    /// MAC the configuration sets or matches on.
    pub mac: Option<String>,
    /// `dhcp`, `static`, or the style's own word (`manual`, `auto`, `disabled`, …).
    pub method: Option<String>,
}

impl NetConfig {
    fn new(style: NetStyle, file: &GuestPath) -> Self {
        Self {
            style,
            file: file.to_string(),
            interface: None,
            mac: None,
            method: None,
        }
    }
}

/// Every network configuration found, style by style, files in name order.
pub fn read(r: &Reader<'_>) -> Result<Vec<NetConfig>, InspectError> {
    let mut out = Vec::new();
    let mut ifupdown_files = vec![GuestPath::new("/etc/network/interfaces")?];
    ifupdown_files.extend(r.list_matching("/etc/network/interfaces.d", "", "")?);
    read_each(r, &ifupdown_files, &mut out, parse_ifupdown)?;
    let netplan = r.list_matching("/etc/netplan", "", ".yaml")?;
    read_each(r, &netplan, &mut out, parse_netplan)?;
    let nm_dir = "/etc/NetworkManager/system-connections";
    let nm = r.list_matching(nm_dir, "", ".nmconnection")?;
    read_each(r, &nm, &mut out, parse_nm_keyfile)?;
    let mut ifcfg = r.list_matching("/etc/sysconfig/network-scripts", "ifcfg-", "")?;
    ifcfg.extend(r.list_matching("/etc/sysconfig/network", "ifcfg-", "")?);
    ifcfg.retain(|p| file_name(p) != "ifcfg-lo");
    read_each(r, &ifcfg, &mut out, parse_ifcfg)?;
    let networkd = r.list_matching("/etc/systemd/network", "", ".network")?;
    read_each(r, &networkd, &mut out, parse_networkd)?;
    Ok(out)
}

/// Parse each regular file of `files` that exists with `parse`.
fn read_each(
    r: &Reader<'_>,
    files: &[GuestPath],
    out: &mut Vec<NetConfig>,
    parse: fn(&GuestPath, &str) -> Vec<NetConfig>,
) -> Result<(), InspectError> {
    for file in files {
        if r.kind(file)? != Some(FileKind::File) {
            continue;
        }
        if let Some(text) = r.text(file)? {
            out.extend(parse(file, &text));
        }
    }
    Ok(())
}

/// `iface` stanzas of an ifupdown file.
pub fn parse_ifupdown(file: &GuestPath, text: &str) -> Vec<NetConfig> {
    let mut out: Vec<NetConfig> = Vec::new();
    let mut in_stanza = false;
    for line in config_lines(text) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["iface", _, _, "loopback", ..] => in_stanza = false,
            ["iface", name, _family, method, ..] => {
                let mut cfg = NetConfig::new(NetStyle::Ifupdown, file);
                cfg.interface = Some((*name).to_string());
                cfg.method = Some((*method).to_string());
                out.push(cfg);
                in_stanza = true;
            }
            ["hwaddress", .., mac] if in_stanza => {
                if let Some(cfg) = out.last_mut() {
                    cfg.mac = normalize_mac(mac);
                }
            }
            [first, ..] if is_ifupdown_keyword(first) => in_stanza = false,
            _ => {}
        }
    }
    out
}

fn is_ifupdown_keyword(word: &str) -> bool {
    matches!(
        word,
        "iface" | "auto" | "mapping" | "source" | "source-directory" | "rename"
    ) || word.starts_with("allow-")
        || word.starts_with("no-")
}

/// A NetworkManager keyfile: one connection (loopback connections left out).
pub fn parse_nm_keyfile(file: &GuestPath, text: &str) -> Vec<NetConfig> {
    let mut cfg = NetConfig::new(NetStyle::NetworkManager, file);
    let mut loopback = false;
    for (section, key, value) in ini(text) {
        match (section, key) {
            ("connection", "interface-name") => cfg.interface = nonempty(value),
            ("connection", "type") => loopback = value == "loopback",
            ("ethernet" | "802-3-ethernet", "mac-address") => cfg.mac = normalize_mac(value),
            ("ipv4", "method") => {
                cfg.method = Some(match value {
                    "auto" => "dhcp".to_string(),
                    "manual" => "static".to_string(),
                    other => other.to_string(),
                });
            }
            _ => {}
        }
    }
    if loopback {
        return Vec::new();
    }
    vec![cfg]
}

/// An ifcfg file: shell variables; the device defaults to the file name's suffix.
pub fn parse_ifcfg(file: &GuestPath, text: &str) -> Vec<NetConfig> {
    let mut cfg = NetConfig::new(NetStyle::Ifcfg, file);
    let (mut bootproto, mut has_ipaddr) = (String::new(), false);
    for line in config_lines(text) {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = shell_value(value);
        match key.trim() {
            "DEVICE" => cfg.interface = nonempty(&value),
            "HWADDR" => cfg.mac = normalize_mac(&value),
            "MACADDR" if cfg.mac.is_none() => cfg.mac = normalize_mac(&value),
            "BOOTPROTO" => bootproto = value.to_ascii_lowercase(),
            k if k.starts_with("IPADDR") && !value.is_empty() => has_ipaddr = true,
            _ => {}
        }
    }
    if cfg.interface.is_none() {
        cfg.interface = file_name(file).strip_prefix("ifcfg-").and_then(nonempty);
    }
    cfg.method = match bootproto.as_str() {
        "dhcp" | "bootp" => Some("dhcp".to_string()),
        "static" => Some("static".to_string()),
        "none" | "" if has_ipaddr => Some("static".to_string()),
        "" => None,
        other => Some(other.to_string()),
    };
    vec![cfg]
}

/// A systemd-networkd `.network` file.
pub fn parse_networkd(file: &GuestPath, text: &str) -> Vec<NetConfig> {
    let mut cfg = NetConfig::new(NetStyle::SystemdNetworkd, file);
    let (mut dhcp, mut has_address) = (false, false);
    for (section, key, value) in ini(text) {
        match (section, key) {
            ("Match", "Name") => cfg.interface = nonempty(value),
            ("Match", "MACAddress") => {
                cfg.mac = value.split_whitespace().next().and_then(normalize_mac);
            }
            ("Network", "DHCP") => {
                dhcp = matches!(
                    value.to_ascii_lowercase().as_str(),
                    "yes" | "true" | "on" | "1" | "ipv4" | "both"
                );
            }
            ("Network" | "Address", "Address") => has_address |= !value.is_empty(),
            _ => {}
        }
    }
    cfg.method = if dhcp {
        Some("dhcp".to_string())
    } else {
        has_address.then(|| "static".to_string())
    };
    vec![cfg]
}

/// `(section, key, value)` of an INI-style file (`#` and `;` comments).
fn ini(text: &str) -> Vec<(&str, &str, &str)> {
    let mut section = "";
    let mut out = Vec::new();
    for line in config_lines(text).filter(|l| !l.starts_with(';')) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim();
        } else if let Some((key, value)) = line.split_once('=') {
            out.push((section, key.trim(), value.trim()));
        }
    }
    out
}

fn nonempty(value: &str) -> Option<String> {
    let value = unquote(value);
    (!value.is_empty()).then(|| value.to_string())
}

/// Netplan `ethernets:` entries; see [`netplan`] for what is understood.
pub fn parse_netplan(file: &GuestPath, text: &str) -> Vec<NetConfig> {
    netplan::parse(text)
        .into_iter()
        .map(|e| {
            let mut cfg = NetConfig::new(NetStyle::Netplan, file);
            cfg.interface = e.interface();
            cfg.mac = e.mac.as_deref().and_then(normalize_mac);
            cfg.method = e.method();
            cfg
        })
        .collect()
}
