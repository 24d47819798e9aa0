//! libvirt domain XML of a *source* guest, as `virsh dumpxml` prints it on a Xen, KVM
//! or other libvirt host.
//!
//! Decisions worth knowing:
//! - `<currentMemory>` is what the guest runs with, `<memory>` its ceiling; they map to
//!   `memory_bytes` and `max_memory_bytes` the way the Xen reader maps `memory` and
//!   `maxmem` (libvirt's own xl driver pairs them the same way).
//! - `<vcpu current='n'>` is the boot count and becomes `vcpus`; the element's text is a
//!   hotplug ceiling the model cannot hold, so it is noted.
//! - Topology dies and clusters are folded into sockets: the model has no such level and
//!   the guest sees the same number of cores either way.
//! - The domain `type` is kept as a warning when it is not KVM/QEMU, so a report says
//!   where the guest came from (Xen PV drivers and devices need replacing).

mod devices;
#[cfg(test)]
mod tests;

use crate::{malformed, unsupported};
use std::path::Path;

use roxmltree::{Document, Node, ParsingOptions};

use crate::model::{Firmware, SourceHypervisor, Topology, VmDescription, XenPvBoot};
use crate::DescError;

/// virsh refuses XML files over 10 MiB (`VSH_MAX_XML_FILE`); a real domain is a few KiB.
pub const MAX_XML_BYTES: u64 = 10 << 20;
/// Bounds the DOM a hostile file can make; real domains have a few hundred nodes.
const MAX_NODES: u32 = 200_000;

const LIBOSINFO_NS: &str = "http://libosinfo.org/xmlns/libvirt/domain/1.0";

const WHAT: &str = "a libvirt domain XML";

/// Reads and parses a libvirt domain XML file.
pub fn read_libvirt(path: &Path) -> Result<VmDescription, DescError> {
    let bytes = crate::capped::read_capped(path, MAX_XML_BYTES, WHAT)?;
    let xml = crate::capped::utf8(&path.display().to_string(), bytes, WHAT)?;
    parse_libvirt(path, &xml)
}

/// Parses the text of a domain XML; `path` names it in errors and anchors relative
/// disk paths.
pub fn parse_libvirt(path: &Path, xml: &str) -> Result<VmDescription, DescError> {
    if xml.len() as u64 > MAX_XML_BYTES {
        return Err(malformed(
            path,
            "larger than 10 MiB: not a libvirt domain XML",
        ));
    }
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let opts = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
    };
    // roxmltree's messages are one line with a position: fine as they are.
    let doc = Document::parse_with_options(xml, opts)
        .map_err(|e| malformed(path, format!("XML: {e}")))?;
    let root = doc.root_element();
    if root.tag_name().name() != "domain" || root.tag_name().namespace().is_some() {
        return Err(malformed(
            path,
            format!(
                "root element is <{}>, not a libvirt <domain>",
                clip(root.tag_name().name())
            ),
        ));
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut d = VmDescription {
        hypervisor: SourceHypervisor::Libvirt,
        ..VmDescription::default()
    };
    domain_type(path, root, &mut d.warnings)?;
    d.name = text(root, "name")
        .map(str::to_string)
        .ok_or_else(|| malformed(path, "no <name>: libvirt requires one"))?;
    memory(path, root, &mut d)?;
    cpus(path, root, &mut d)?;
    let os = child(root, "os");
    let pv = os_type(path, os)?;
    d.firmware = firmware(os);
    d.xen_pv = pv_boot(root, os, pv, &mut d.warnings);
    d.os_hint = os_hint(root);
    if let Some(devs) = child(root, "devices") {
        devices::read(path, dir, devs, &mut d)?;
    }
    Ok(d)
}

/// Elements libvirt itself writes are unqualified; foreign ones (metadata) are not ours.
fn child<'a>(node: Node<'a, 'a>, name: &str) -> Option<Node<'a, 'a>> {
    children(node, name).next()
}

fn children<'a, 'n>(
    node: Node<'a, 'a>,
    name: &'n str,
) -> impl Iterator<Item = Node<'a, 'a>> + use<'a, 'n> {
    node.children().filter(move |c| {
        c.is_element() && c.tag_name().name() == name && c.tag_name().namespace().is_none()
    })
}

/// The trimmed, non-empty text of a child element.
fn text<'a>(node: Node<'a, 'a>, name: &str) -> Option<&'a str> {
    child(node, name)
        .and_then(|c| c.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Hostile values can be huge or multi-line; messages show a short single-line prefix.
fn clip(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(40)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

fn domain_type(path: &Path, root: Node, warnings: &mut Vec<String>) -> Result<(), DescError> {
    let Some(ty) = root.attribute("type") else {
        warnings.push("<domain> has no type attribute; source hypervisor unknown".into());
        return Ok(());
    };
    match ty {
        "kvm" | "qemu" | "hvf" => {}
        // Containers: there is no disk image to convert.
        "lxc" | "openvz" | "vz" => {
            return Err(unsupported(
                path,
                format!("domain type '{ty}' is a container"),
            ))
        }
        "xen" => warnings.push(
            "domain XML from a Xen host (type 'xen'): Xen PV drivers and devices need \
             replacing"
                .into(),
        ),
        other => warnings.push(format!("domain XML from a '{}' host", clip(other))),
    }
    Ok(())
}

/// libvirt's scaled integers (`virScaleInteger`): `b`/`bytes`, a one-letter power of
/// 1024 (`k`, `M`, `G`…), the same with `iB`, or with `B` for a power of 1000; case is
/// ignored. Memory without a unit is in KiB.
fn scaled(value: &str, unit: Option<&str>) -> Result<u64, String> {
    let n: u64 = value
        .trim()
        .parse()
        .map_err(|_| format!("`{}` is not a whole number", clip(value)))?;
    let unit = unit.map(str::trim).unwrap_or("KiB");
    let lower = unit.to_ascii_lowercase();
    let scale: u64 = if matches!(lower.as_str(), "b" | "byte" | "bytes") {
        1
    } else {
        let mut chars = lower.chars();
        let power = match chars.next() {
            Some('k') => 1,
            Some('m') => 2,
            Some('g') => 3,
            Some('t') => 4,
            Some('p') => 5,
            Some('e') => 6,
            _ => return Err(format!("unknown unit `{}`", clip(unit))),
        };
        let base: u64 = match chars.as_str() {
            "" | "ib" => 1024,
            "b" => 1000,
            _ => return Err(format!("unknown unit `{}`", clip(unit))),
        };
        base.checked_pow(power)
            .ok_or_else(|| format!("unit `{}` is too large", clip(unit)))?
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("{n} {} does not fit in 64 bits", clip(unit)))
}

fn memory_of(path: &Path, root: Node, name: &str) -> Result<Option<u64>, DescError> {
    let Some(el) = child(root, name) else {
        return Ok(None);
    };
    let value = el.text().unwrap_or("");
    scaled(value, el.attribute("unit"))
        .map(Some)
        .map_err(|e| malformed(path, format!("<{name}>: {e}")))
}

fn memory(path: &Path, root: Node, d: &mut VmDescription) -> Result<(), DescError> {
    let max = memory_of(path, root, "memory")?;
    let current = memory_of(path, root, "currentMemory")?;
    match (max, current) {
        (Some(max), Some(cur)) if cur < max => {
            d.memory_bytes = cur;
            d.max_memory_bytes = Some(max);
        }
        (Some(m), _) | (None, Some(m)) => d.memory_bytes = m,
        (None, None) => d
            .warnings
            .push("no <memory> or <currentMemory>; memory unknown".into()),
    }
    if child(root, "maxMemory").is_some() {
        d.warnings
            .push("<maxMemory> (memory hotplug ceiling) not kept".into());
    }
    Ok(())
}

fn count(path: &Path, what: &str, value: &str) -> Result<u32, DescError> {
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            malformed(
                path,
                format!("{what} `{}` is not a usable count", clip(value)),
            )
        })
}

fn cpus(path: &Path, root: Node, d: &mut VmDescription) -> Result<(), DescError> {
    // libvirt starts a domain without <vcpu> with one.
    let mut max = 1;
    d.vcpus = 1;
    if let Some(el) = child(root, "vcpu") {
        max = count(path, "<vcpu>", el.text().unwrap_or(""))?;
        d.vcpus = match el.attribute("current") {
            Some(cur) => count(path, "<vcpu current>", cur)?.min(max),
            None => max,
        };
        if d.vcpus < max {
            d.warnings.push(format!(
                "<vcpu> ceiling of {max} (vCPU hotplug) not kept; {} vCPUs at boot",
                d.vcpus
            ));
        }
    }
    let Some(topo) = child(root, "cpu").and_then(|c| child(c, "topology")) else {
        return Ok(());
    };
    // Absent levels are 1, as libvirt fills them in.
    let level = |name: &str| -> Result<u32, DescError> {
        match topo.attribute(name) {
            None => Ok(1),
            Some(v) => count(path, &format!("<topology {name}>"), v),
        }
    };
    let sockets = level("sockets")?;
    let dies = level("dies")?;
    let clusters = level("clusters")?;
    let cores = level("cores")?;
    let threads = level("threads")?;
    let folded = sockets
        .checked_mul(dies)
        .and_then(|s| s.checked_mul(clusters));
    let total = folded
        .and_then(|s| s.checked_mul(cores))
        .and_then(|s| s.checked_mul(threads));
    match (folded, total) {
        (Some(sockets), Some(total)) if total == max => {
            if dies > 1 || clusters > 1 {
                d.warnings.push(format!(
                    "topology dies={dies} clusters={clusters} folded into {sockets} sockets"
                ));
            }
            d.topology = Some(Topology {
                sockets,
                cores,
                threads,
            });
        }
        _ => d.warnings.push(format!(
            "<topology> sockets={sockets} dies={dies} clusters={clusters} cores={cores} \
             threads={threads} does not match {max} vCPUs; ignored"
        )),
    }
    Ok(())
}

/// How the guest boots, from `<os><type>`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OsType {
    Hvm,
    /// Xen PV or PVH: the hypervisor, not firmware, starts the kernel.
    XenPv,
}

fn os_type(path: &Path, os: Option<Node>) -> Result<OsType, DescError> {
    let Some(ty) = os.and_then(|os| text(os, "type")) else {
        // libvirt requires <os><type>; without it the XML is not a runnable guest, but
        // what a VM is normally (hvm) is the safer guess than refusing.
        return Ok(OsType::Hvm);
    };
    match ty {
        "hvm" => Ok(OsType::Hvm),
        // libvirt's Xen driver writes `linux` for PV (`xen` in old versions), `xenpvh`
        // for PVH.
        "linux" | "xen" | "xenpv" | "xenpvh" => Ok(OsType::XenPv),
        other => Err(unsupported(path, format!("<os><type> `{}`", clip(other)))),
    }
}

fn firmware(os: Option<Node>) -> Firmware {
    let Some(os) = os else {
        return Firmware::Bios;
    };
    let loader = child(os, "loader");
    let by_attr = os.attribute("firmware") == Some("efi");
    let by_loader = loader.is_some_and(|l| {
        l.attribute("type") == Some("pflash")
            || l.text().is_some_and(|t| {
                let t = t.to_ascii_lowercase();
                ["ovmf", "aavmf", "efi", "edk2"]
                    .iter()
                    .any(|k| t.contains(k))
            })
    });
    if !(by_attr || by_loader) {
        return Firmware::Bios;
    }
    let secure_loader = loader.is_some_and(|l| l.attribute("secure") == Some("yes"));
    let secure_feature = child(os, "firmware").is_some_and(|fw| {
        children(fw, "feature").any(|f| {
            f.attribute("name") == Some("secure-boot") && f.attribute("enabled") == Some("yes")
        })
    });
    Firmware::Uefi {
        secure_boot: secure_loader || secure_feature,
    }
}

fn pv_boot(
    root: Node,
    os: Option<Node>,
    ty: OsType,
    warnings: &mut Vec<String>,
) -> Option<XenPvBoot> {
    let os_text = |name: &str| os.and_then(|os| text(os, name)).map(str::to_string);
    let bootloader = text(root, "bootloader").map(str::to_string);
    let kernel = os_text("kernel");
    if ty == OsType::Hvm && bootloader.is_none() {
        if let Some(k) = kernel {
            warnings.push(format!(
                "direct kernel boot (<kernel>{}) not kept",
                clip(&k)
            ));
        }
        return None;
    }
    if text(root, "bootloader_args").is_some() {
        warnings.push("<bootloader_args> not kept".into());
    }
    Some(XenPvBoot {
        bootloader,
        kernel,
        ramdisk: os_text("initrd"),
        extra: os_text("cmdline"),
    })
}

/// virt-install and virt-manager record the libosinfo id of the installed OS.
fn os_hint(root: Node) -> Option<String> {
    let meta = child(root, "metadata")?;
    meta.descendants()
        .find(|n| {
            n.is_element()
                && n.tag_name().name() == "os"
                && n.tag_name().namespace() == Some(LIBOSINFO_NS)
        })
        .and_then(|n| n.attribute("id"))
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
}
