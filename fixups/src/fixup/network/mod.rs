//! Network: keep the guest reachable when its NIC changes model.
//!
//! On KVM the NIC is a virtio-net device with the MAC it had before (ferry keeps source
//! MACs in the domain XML), but udev names it after its new bus position: `ens192` on
//! VMware becomes `enp1s0`, and a configuration written for `ens192` brings up nothing.
//! Every configuration style (ifupdown, netplan, NetworkManager keyfiles, ifcfg,
//! networkd) names the interface, so instead of rewriting five formats this fixup pins
//! each configured name to its MAC, where udev names NICs:
//!
//! - with systemd-udevd and `.link` support (`80-net-setup-link.rules` or
//!   `99-default.link` installed; systemd 209 and later), one
//!   `/etc/systemd/network/10-ferry-NAME.link` per name. The `10-` prefix sorts it before
//!   the distribution's `99-default.link`, and the first matching `.link` file wins;
//! - otherwise (older udev, or a systemd-udevd without `.link` files) the pins are udev
//!   rules in `/etc/udev/rules.d/70-ferry-net-names.rules`.
//!
//! The MAC of a name comes from, in order: the guest configuration (ifupdown
//! `hwaddress`, ifcfg `HWADDR`, NetworkManager `mac-address`, netplan `macaddress`),
//! `70-persistent-net.rules`, ferry's own pins from an earlier run, and the target NICs
//! (`GuestContext::nics`) when the guest configures exactly as many interfaces as there
//! are NICs; they are paired in order, leaving out NICs whose MAC a name already has.
//! Names pinned by `70-persistent-net.rules` but configured nowhere are carried too. The
//! rules file itself is then cleared: each pin carried over is commented out with
//! `# ferry: ` (the engine keeps the original as `*.ferry-orig`); lines that are not pins
//! ferry carried stay byte for byte.
//!
//! Not pinned, so left to udev: names that are not single literal interface names
//! (networkd globs such as `en*`, netplan ids matched by a name glob, aliases `eth0:1`,
//! VLANs `eth0.100`), virtual interfaces (`lo`, `br*`, `bond*`, `team*`, `vlan*`, …)
//! whose MAC belongs to a physical NIC, and configured names for which no MAC is known.
//! The last are listed in a comment of every file ferry writes (and in the skip reason
//! when nothing at all can be pinned). A name whose MAC is already pinned to another
//! name is listed the same way: one NIC cannot have two names.
//!
//! For [`Target::Physical`] (V2P) every MAC the guest knows is the VM's, which the
//! machine does not have. The pins come from the target NICs alone (`--mac`), paired in
//! order with the configured names; without any the fixup is skipped, and the machine's
//! udev names its NICs as it would. `70-persistent-net.rules` pins of the names pinned
//! anew are cleared as for KVM, since they hold the names for the VM's MACs. The VM's MAC
//! written in the configurations of a pinned name becomes the machine's ([`rebind`]).
//! The notes list `--mac` values left over and, without `--mac`, the configurations
//! bound to a VM MAC the machine does not have.

mod rebind;
mod udev;

#[cfg(test)]
mod tests;

use crate::guestfs::{GuestFs, GuestPath};
use crate::inspect::read::{normalize_mac, unquote};
use crate::inspect::{NetStyle, Reader};

use self::udev::Pin;
use super::guestio::{disable_line, entry, gpath, lines, read_config, write_change, Entry};
use super::{Change, FixupError, GuestContext, GuestFixup, Plan, Target};

pub struct Network;

/// Where `.link` files go.
const LINK_DIR: &str = "/etc/systemd/network";
/// ferry's `.link` files are `LINK_PREFIX` + name + `.link`.
const LINK_PREFIX: &str = "10-ferry-";
const LINK_SUFFIX: &str = ".link";
/// Where the pins go when udev has no `.link` files.
const FERRY_RULES: &str = "/etc/udev/rules.d/70-ferry-net-names.rules";
/// The old persistent-net generator's output.
const PERSISTENT_RULES: &str = "/etc/udev/rules.d/70-persistent-net.rules";
/// systemd's udev daemon, merged-usr or not.
const SYSTEMD_UDEVD: [&str; 2] = [
    "/lib/systemd/systemd-udevd",
    "/usr/lib/systemd/systemd-udevd",
];
/// Files that show udev applies `.link` files (they came with systemd 209); an older
/// systemd-udevd (Ubuntu 14.04's udev 204) has neither.
const LINK_SUPPORT: [&str; 4] = [
    "/lib/udev/rules.d/80-net-setup-link.rules",
    "/usr/lib/udev/rules.d/80-net-setup-link.rules",
    "/lib/systemd/network/99-default.link",
    "/usr/lib/systemd/network/99-default.link",
];
/// Name prefixes of virtual interfaces: they carry a physical NIC's MAC (a bridge, a
/// bond) or none, so pinning their name to a MAC would rename the physical NIC.
const VIRTUAL_PREFIXES: [&str; 17] = [
    "lo", "br", "bond", "team", "vlan", "virbr", "vmbr", "docker", "veth", "tun", "tap", "wg",
    "dummy", "ppp", "vxlan", "macvlan", "macvtap",
];
/// Longest interface name, `IFNAMSIZ - 1`.
const IFNAME_MAX: usize = 15;

const LINK_HEADER: &str = "\
# Written by ferry when it converted this guest to KVM. The NIC became a virtio-net
# device and kept its MAC, but udev would give it a new predictable name (ens192 would
# become enp1s0) while the network configuration names the old one. This file pins the
# configured name to the MAC. Delete it to let udev name the NIC again.
";

const RULES_HEADER: &str = "\
# Written by ferry when it converted this guest to KVM. The NICs became virtio-net
# devices and kept their MACs, but udev would give them new names while the network
# configuration names the old ones. These rules pin each configured name to its MAC.
# Delete this file to let udev name the NICs again.
";

const PHYSICAL_LINK_HEADER: &str = "\
# Written by ferry when it moved this guest from a VM to a physical machine. The network
# configuration names the VM's interface; this file gives that name to the machine's NIC
# with the MAC ferry was given (--mac). Delete it to let udev name the NIC again.
";

const PHYSICAL_RULES_HEADER: &str = "\
# Written by ferry when it moved this guest from a VM to a physical machine. The network
# configuration names the VM's interfaces; these rules give those names to the machine's
# NICs with the MACs ferry was given (--mac). Delete this file to let udev name the NICs
# again.
";

/// Why a Physical run without target NICs pins nothing.
const NO_MAC_REASON: &str = "no --mac given: NIC names follow the physical machine's udev rules";

/// How the comment ferry puts atop `70-persistent-net.rules` starts.
const CLEARED_MARK: &str = "# Cleared by ferry:";

impl GuestFixup for Network {
    fn id(&self) -> &'static str {
        "network"
    }

    fn description(&self, target: Target) -> &'static str {
        match target {
            Target::Kvm => "NIC names pinned to their MACs; stale persistent-net rules cleared",
            Target::Physical => {
                "NIC names pinned to the machine's MACs (--mac); the VM's MACs replaced in network configurations"
            }
        }
    }

    fn notes(&self, ctx: &GuestContext<'_>) -> Result<Vec<String>, FixupError> {
        if ctx.target != Target::Physical {
            return Ok(Vec::new());
        }
        let configured = configured(ctx, &Reader::new(ctx.fs))?;
        Ok(physical_notes(ctx, &configured, &target_nics(ctx)))
    }

    fn plan(&self, ctx: &GuestContext<'_>) -> Result<Plan, FixupError> {
        let r = Reader::new(ctx.fs);
        let configured = configured(ctx, &r)?;
        let persistent = match entry(ctx.fs, &gpath(PERSISTENT_RULES)?)? {
            Entry::File(data) => Some(data),
            Entry::Absent | Entry::Unusable(_) => None,
        };
        let rule_pins: Vec<Pin> = persistent
            .as_deref()
            .map(|data| lines(data).filter_map(udev::rule_pin).collect())
            .unwrap_or_default();
        let ferry_pins = ferry_pins(ctx.fs, &r)?;
        let nics = target_nics(ctx);
        let (pins, unpinned) = match ctx.target {
            Target::Kvm => {
                let macs: Vec<String> = nics.into_iter().map(|(_, mac)| mac).collect();
                resolve(&configured, &rule_pins, &ferry_pins, &macs)
            }
            Target::Physical if nics.is_empty() => {
                return Ok(Plan::Skip(NO_MAC_REASON.to_string()));
            }
            Target::Physical => resolve_physical(&configured, &nics),
        };
        if pins.is_empty() {
            return Ok(Plan::Skip(skip_reason(&configured, &unpinned)));
        }

        let mut changes = Vec::new();
        let mut blocked = Vec::new();
        let link_support = has_link_support(&r)?;
        let carried = if link_support {
            write_links(ctx, &pins, &unpinned, &mut changes, &mut blocked)?
        } else {
            write_rules(ctx, &pins, &unpinned, &mut changes, &mut blocked)?
        };
        if carried.is_empty() {
            return Ok(Plan::Skip(format!(
                "cannot pin NIC names: {}",
                blocked.join("; ")
            )));
        }
        if ctx.target == Target::Physical {
            changes.extend(rebind::rebind_changes(ctx, &carried)?);
        }
        if let Some(before) = persistent {
            let pinned_in = if link_support {
                format!("{LINK_DIR}/{LINK_PREFIX}*{LINK_SUFFIX}")
            } else {
                FERRY_RULES.to_string()
            };
            let cleared: Vec<Pin> = match ctx.target {
                Target::Kvm => carried,
                // The rules name the VM's MACs; a name pinned to the machine's MAC now
                // must not be held by them too.
                Target::Physical => rule_pins
                    .iter()
                    .filter(|r| carried.iter().any(|c| c.name == r.name))
                    .cloned()
                    .collect(),
            };
            if let Some(after) = clear_persistent(&before, &cleared, &pinned_in) {
                changes.extend(write_change(&gpath(PERSISTENT_RULES)?, Some(before), after));
            }
        }
        Ok(Plan::Changes(changes))
    }
}

/// The target NICs, MACs normalized, in the order given, with the name each must get.
fn target_nics(ctx: &GuestContext<'_>) -> Vec<(Option<String>, String)> {
    ctx.nics
        .iter()
        .filter_map(|n| normalize_mac(&n.mac).map(|mac| (n.name.clone(), mac)))
        .collect()
}

/// What a V2P run leaves for the user to check: `--mac` values no configured name takes
/// and, without `--mac`, configurations bound to a MAC only the VM had.
fn physical_notes(
    ctx: &GuestContext<'_>,
    configured: &[Configured],
    nics: &[(Option<String>, String)],
) -> Vec<String> {
    let is_configured = |name: &str| configured.iter().any(|c| c.name == name);
    let mut notes: Vec<String> = nics
        .iter()
        .filter_map(|(name, mac)| match name {
            Some(name) if !is_configured(name) => Some(format!(
                "--mac {name}={mac} not used: the guest configures no interface {name}"
            )),
            _ => None,
        })
        .collect();
    let claimed = nics
        .iter()
        .filter(|(name, _)| name.as_deref().is_some_and(is_configured))
        .count();
    notes.extend(
        nics.iter()
            .filter(|(name, _)| name.is_none())
            .skip(configured.len().saturating_sub(claimed))
            .map(|(_, mac)| {
                format!("--mac {mac} not used: the guest configures no further interface")
            }),
    );
    if nics.is_empty() {
        for cfg in &ctx.os.network {
            if let (Some(name), Some(mac)) = (cfg.interface.as_deref(), cfg.mac.as_deref()) {
                let note = format!(
                    "{} configures {name} with the VM's MAC {mac}, which the machine does not \
                     have: pass --mac to rewrite it",
                    cfg.file
                );
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
        }
    }
    notes
}

/// A configured interface and the MAC its configuration gives.
#[derive(Debug)]
struct Configured {
    name: String,
    mac: Option<String>,
}

/// The interfaces the guest configures by a literal name, in inspection order, once each.
fn configured(ctx: &GuestContext<'_>, r: &Reader<'_>) -> Result<Vec<Configured>, FixupError> {
    let mut out: Vec<Configured> = Vec::new();
    for cfg in &ctx.os.network {
        let Some(name) = cfg.interface.as_deref() else {
            continue;
        };
        if !valid_ifname(name) || is_virtual(name) {
            continue;
        }
        if cfg.style == NetStyle::Netplan {
            // Inspection names a netplan entry matched by a name glob after its id,
            // which is no interface name.
            let text = r.text_at(&cfg.file)?.unwrap_or_default();
            if netplan_glob_ids(&text).iter().any(|id| id == name) {
                continue;
            }
        }
        match out.iter_mut().find(|c| c.name == name) {
            Some(known) => {
                if known.mac.is_none() {
                    known.mac.clone_from(&cfg.mac);
                }
            }
            None => out.push(Configured {
                name: name.to_string(),
                mac: cfg.mac.clone(),
            }),
        }
    }
    Ok(out)
}

/// Pins left by an earlier run: ferry's `.link` files and rules file.
fn ferry_pins(fs: &dyn GuestFs, r: &Reader<'_>) -> Result<Vec<Pin>, FixupError> {
    let mut out = Vec::new();
    for path in r.list_matching(LINK_DIR, LINK_PREFIX, LINK_SUFFIX)? {
        let Some(data) = read_config(fs, &path)? else {
            continue;
        };
        // Only a file named after the name it pins is ferry's.
        if let Some(pin) = udev::link_pin(&data) {
            if link_path(&pin.name)? == path {
                out.push(pin);
            }
        }
    }
    if let Some(data) = read_config(fs, &gpath(FERRY_RULES)?)? {
        out.extend(lines(&data).filter_map(udev::rule_pin));
    }
    Ok(out)
}

/// The pins to write, and the configured names left unpinned (with why), from the MAC
/// sources in order of trust.
fn resolve(
    configured: &[Configured],
    rule_pins: &[Pin],
    ferry_pins: &[Pin],
    nics: &[String],
) -> (Vec<Pin>, Vec<String>) {
    let known = |name: &str| {
        rule_pins
            .iter()
            .chain(ferry_pins)
            .find(|p| p.name == name)
            .map(|p| p.mac.clone())
    };
    let mut macs: Vec<Option<String>> = configured
        .iter()
        .map(|c| c.mac.clone().or_else(|| known(&c.name)))
        .collect();
    if !nics.is_empty() && configured.len() == nics.len() {
        let unclaimed: Vec<&String> = nics
            .iter()
            .filter(|m| !macs.iter().flatten().any(|known| known == *m))
            .collect();
        let missing = macs.iter().filter(|m| m.is_none()).count();
        if missing == unclaimed.len() {
            let mut unclaimed = unclaimed.into_iter();
            for mac in macs.iter_mut().filter(|m| m.is_none()) {
                *mac = unclaimed.next().cloned();
            }
        }
    }

    let mut pins: Vec<Pin> = Vec::new();
    let mut unpinned = Vec::new();
    for (c, mac) in configured.iter().zip(macs) {
        let Some(mac) = mac else {
            unpinned.push(format!("{} (no MAC known)", c.name));
            continue;
        };
        match pins.iter().find(|p| p.mac == mac) {
            Some(other) => {
                unpinned.push(format!(
                    "{} ({mac} is named {} already)",
                    c.name, other.name
                ));
            }
            None => pins.push(Pin {
                name: c.name.clone(),
                mac,
            }),
        }
    }
    // Pins nobody configures are carried too: the rules file they come from is cleared.
    for pin in rule_pins.iter().chain(ferry_pins) {
        if !pins.iter().any(|p| p.name == pin.name || p.mac == pin.mac) {
            pins.push(pin.clone());
        }
    }
    (pins, unpinned)
}

/// The pins on a physical machine: names given with a MAC (`NAME=MAC`) get it, the other
/// configured names are paired in order with the MACs given alone. Names beyond the MACs
/// are left unpinned, and so are MACs beyond the names.
fn resolve_physical(
    configured: &[Configured],
    nics: &[(Option<String>, String)],
) -> (Vec<Pin>, Vec<String>) {
    let mut pins: Vec<Pin> = Vec::new();
    let mut unpinned = Vec::new();
    let mut in_order = nics.iter().filter(|(name, _)| name.is_none());
    for c in configured {
        let named = nics
            .iter()
            .find(|(name, _)| name.as_deref() == Some(c.name.as_str()));
        let Some((_, mac)) = named.or_else(|| in_order.next()) else {
            unpinned.push(format!("{} (no --mac for it)", c.name));
            continue;
        };
        match pins.iter().find(|p| &p.mac == mac) {
            Some(other) => unpinned.push(format!(
                "{} ({mac} is named {} already)",
                c.name, other.name
            )),
            None => pins.push(Pin {
                name: c.name.clone(),
                mac: mac.clone(),
            }),
        }
    }
    (pins, unpinned)
}

fn skip_reason(configured: &[Configured], unpinned: &[String]) -> String {
    if configured.is_empty() {
        return "no network interface is configured by name, and no NIC name is pinned".to_string();
    }
    format!(
        "no MAC known for {}: the guest configuration, 70-persistent-net.rules and the \
         target NICs give none (pass the NICs' MACs to pin them)",
        unpinned.join(", ")
    )
}

/// Whether udev reads `.link` files on this guest.
fn has_link_support(r: &Reader<'_>) -> Result<bool, FixupError> {
    let mut udevd = false;
    for path in SYSTEMD_UDEVD {
        udevd |= r.exists(path)?;
    }
    let mut links = false;
    for path in LINK_SUPPORT {
        links |= r.exists(path)?;
    }
    Ok(udevd && links)
}

fn link_path(name: &str) -> Result<GuestPath, FixupError> {
    gpath(&format!("{LINK_DIR}/{LINK_PREFIX}{name}{LINK_SUFFIX}"))
}

/// Comment lines naming the configured interfaces left unpinned.
fn unpinned_note(unpinned: &[String]) -> String {
    if unpinned.is_empty() {
        return String::new();
    }
    format!(
        "# Not pinned, so udev names them: {}.\n",
        unpinned.join(", ")
    )
}

/// One `.link` file per pin; the pins that are (or will be) in place.
fn write_links(
    ctx: &GuestContext<'_>,
    pins: &[Pin],
    unpinned: &[String],
    changes: &mut Vec<Change>,
    blocked: &mut Vec<String>,
) -> Result<Vec<Pin>, FixupError> {
    let note = unpinned_note(unpinned);
    let header = match ctx.target {
        Target::Kvm => LINK_HEADER,
        Target::Physical => PHYSICAL_LINK_HEADER,
    };
    let mut carried = Vec::new();
    for pin in pins {
        let path = link_path(&pin.name)?;
        let content = format!(
            "{header}{note}[Match]\nMACAddress={}\n\n[Link]\nName={}\n",
            pin.mac, pin.name
        );
        let before = match entry(ctx.fs, &path)? {
            Entry::Absent => None,
            Entry::File(data) => Some(data),
            // A directory or device in the way: leave it, and the pin where it was.
            Entry::Unusable(why) => {
                blocked.push(why);
                continue;
            }
        };
        changes.extend(write_change(&path, before, content.into_bytes()));
        carried.push(pin.clone());
    }
    Ok(carried)
}

/// All pins as udev rules in one file; the pins that are (or will be) in place.
fn write_rules(
    ctx: &GuestContext<'_>,
    pins: &[Pin],
    unpinned: &[String],
    changes: &mut Vec<Change>,
    blocked: &mut Vec<String>,
) -> Result<Vec<Pin>, FixupError> {
    let path = gpath(FERRY_RULES)?;
    let header = match ctx.target {
        Target::Kvm => RULES_HEADER,
        Target::Physical => PHYSICAL_RULES_HEADER,
    };
    let mut content = format!("{header}{}", unpinned_note(unpinned));
    for pin in pins {
        content.push_str(&udev::rule_line(pin));
    }
    let before = match entry(ctx.fs, &path)? {
        Entry::Absent => None,
        Entry::File(data) => Some(data),
        Entry::Unusable(why) => {
            blocked.push(why);
            return Ok(Vec::new());
        }
    };
    changes.extend(write_change(&path, before, content.into_bytes()));
    Ok(pins.to_vec())
}

/// `70-persistent-net.rules` with the carried pins commented out, `None` when none is
/// left active. `pinned_in` says where the pins are now.
fn clear_persistent(before: &[u8], carried: &[Pin], pinned_in: &str) -> Option<Vec<u8>> {
    let mut body = Vec::with_capacity(before.len());
    let mut changed = false;
    for line in lines(before) {
        match udev::rule_pin(line) {
            Some(pin) if carried.contains(&pin) => {
                body.extend(disable_line(line));
                changed = true;
            }
            _ => body.extend_from_slice(line),
        }
    }
    if !changed {
        return None;
    }
    let mut after = Vec::with_capacity(body.len() + 256);
    if !before.starts_with(CLEARED_MARK.as_bytes()) {
        after.extend(cleared_header(pinned_in).into_bytes());
    }
    after.extend(body);
    Some(after)
}

/// The comment atop a cleared `70-persistent-net.rules`.
fn cleared_header(pinned_in: &str) -> String {
    format!(
        "{CLEARED_MARK} the NIC names below are pinned by {pinned_in} now.\n\
         # The original is kept beside this file as 70-persistent-net.rules.ferry-orig.\n"
    )
}

/// Whether `name` is one literal interface name ferry can write into a file name and a
/// `.link` file: at most 15 bytes of letters, digits, `-` and `_`. Aliases (`eth0:1`),
/// VLANs (`eth0.100`), globs and lists are not.
pub(super) fn valid_ifname(name: &str) -> bool {
    (1..=IFNAME_MAX).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn is_virtual(name: &str) -> bool {
    VIRTUAL_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Ids of netplan `ethernets:` entries whose `match:` names interfaces by a glob
/// (`name: en*`). A minimal block-indentation reading, as inspection's: copied here
/// because inspection keeps its netplan reader private.
fn netplan_glob_ids(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut ethernets: Option<usize> = None;
    let mut child: Option<(usize, String)> = None;
    for raw in text.lines() {
        let line = strip_yaml_comment(raw);
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('-') {
            continue;
        }
        let indent = line.len() - content.len();
        let Some((key, value)) = content.split_once(':') else {
            continue;
        };
        let (key, value) = (unquote(key), unquote(value));
        if ethernets.is_some_and(|e| indent <= e) {
            ethernets = None;
            child = None;
        }
        let Some(_) = ethernets else {
            if key == "ethernets" {
                ethernets = Some(indent);
            }
            continue;
        };
        match &child {
            Some((c, _)) if indent > *c => {
                let glob = value.contains(['*', '?', '[']);
                if key == "name" && glob {
                    if let Some((_, id)) = &child {
                        if !out.contains(id) {
                            out.push(id.clone());
                        }
                    }
                }
            }
            _ => child = Some((indent, key.to_string())),
        }
    }
    out
}

fn strip_yaml_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let cut = (0..bytes.len())
        .find(|&i| bytes[i] == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()))
        .unwrap_or(bytes.len());
    line.get(..cut).unwrap_or(line).trim_end()
}
