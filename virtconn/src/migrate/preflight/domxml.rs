//! Reading the domain XML and the host capabilities into facts. Pure: the XML comes in
//! as text, so the parsing is tested on its own.

use roxmltree::{Document, Node};

use super::facts::{CapsFacts, CpuDef, Disk, DomainDef, HostDev};

fn child<'a, 'i>(node: Node<'a, 'i>, tag: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|n| n.has_tag_name(tag))
}

fn children<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    tag: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(move |n| n.has_tag_name(tag))
}

fn text(node: Option<Node<'_, '_>>) -> Option<String> {
    node.and_then(|n| n.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

fn attr(node: Option<Node<'_, '_>>, name: &str) -> Option<String> {
    node.and_then(|n| n.attribute(name)).map(str::to_string)
}

/// A libvirt memory size in KiB; libvirt's default unit is KiB.
fn memory_kib(node: Node<'_, '_>) -> Option<u64> {
    let value: u64 = text(Some(node))?.parse().ok()?;
    let unit = node.attribute("unit").unwrap_or("KiB");
    let bytes_per_unit: u64 = match unit {
        "b" | "bytes" => 1,
        "KB" => 1000,
        "k" | "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "M" | "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "G" | "GiB" => 1 << 30,
        "TB" => 1_000_000_000_000,
        "T" | "TiB" => 1 << 40,
        _ => return None,
    };
    Some(value.saturating_mul(bytes_per_unit).div_ceil(1024))
}

pub(crate) fn parse_domain(xml: &str) -> Result<DomainDef, String> {
    let doc = Document::parse(xml).map_err(|e| e.to_string())?;
    let dom = doc.root_element();
    if !dom.has_tag_name("domain") {
        return Err(format!(
            "root element is <{}>, expected <domain>",
            dom.tag_name().name()
        ));
    }
    let os_type = child(dom, "os").and_then(|os| child(os, "type"));
    let memory_kib = child(dom, "currentMemory")
        .or_else(|| child(dom, "memory"))
        .and_then(memory_kib)
        .unwrap_or(0);
    let cpu = child(dom, "cpu").map(|cpu| {
        let model = text(child(cpu, "model"));
        let mode = cpu.attribute("mode").unwrap_or("custom").to_string();
        CpuDef {
            mode,
            model,
            xml: xml[cpu.range()].to_string(),
        }
    });
    let mut def = DomainDef {
        name: text(child(dom, "name")).ok_or("the domain has no <name>")?,
        uuid: text(child(dom, "uuid")),
        virt_type: dom.attribute("type").unwrap_or_default().to_string(),
        arch: attr(os_type, "arch"),
        machine: attr(os_type, "machine"),
        memory_kib,
        cpu,
        nics: crate::xml::interfaces(xml)?,
        ..DomainDef::default()
    };
    let Some(devices) = child(dom, "devices") else {
        return Ok(def);
    };
    def.disks = children(devices, "disk").map(disk).collect();
    def.hostdevs = children(devices, "hostdev").map(hostdev).collect();
    def.char_devs = devices
        .children()
        .filter(|n| ["serial", "parallel", "console", "channel"].contains(&n.tag_name().name()))
        .filter(|n| n.attribute("type") == Some("dev"))
        .filter_map(|n| attr(child(n, "source"), "path"))
        .collect();
    Ok(def)
}

fn disk(node: Node<'_, '_>) -> Disk {
    let source = child(node, "source");
    let kind = node.attribute("type").unwrap_or("file").to_string();
    let path = match kind.as_str() {
        "file" => attr(source, "file"),
        "block" => attr(source, "dev"),
        "dir" => attr(source, "dir"),
        "volume" => attr(source, "pool")
            .zip(attr(source, "volume"))
            .map(|(p, v)| format!("{p}/{v}")),
        "network" => attr(source, "name").map(|n| {
            let proto = attr(source, "protocol").unwrap_or_default();
            format!("{proto}:{n}")
        }),
        _ => None,
    };
    Disk {
        target: attr(child(node, "target"), "dev").unwrap_or_default(),
        device: node.attribute("device").unwrap_or("disk").to_string(),
        kind,
        source: path,
        readonly: child(node, "readonly").is_some(),
        shareable: child(node, "shareable").is_some(),
        cache: attr(child(node, "driver"), "cache"),
    }
}

fn hostdev(node: Node<'_, '_>) -> HostDev {
    let kind = node.attribute("type").unwrap_or_default().to_string();
    let source = child(node, "source");
    let desc = match kind.as_str() {
        "pci" => child_of(source, "address").map(|a| {
            let f = |n: &str| {
                a.attribute(n)
                    .unwrap_or("?")
                    .trim_start_matches("0x")
                    .to_string()
            };
            format!(
                "PCI {}:{}:{}.{}",
                f("domain"),
                f("bus"),
                f("slot"),
                f("function")
            )
        }),
        "usb" => {
            let id = |tag: &str| attr(child_of(source, tag), "id");
            match (id("vendor"), id("product")) {
                (Some(v), Some(p)) => Some(format!("USB {v}:{p}")),
                _ => child_of(source, "address").map(|a| {
                    format!(
                        "USB bus {} device {}",
                        a.attribute("bus").unwrap_or("?"),
                        a.attribute("device").unwrap_or("?")
                    )
                }),
            }
        }
        "scsi" => attr(child_of(source, "adapter"), "name").map(|n| format!("SCSI {n}")),
        "scsi_host" => attr(source, "wwpn").map(|w| format!("vhost-scsi {w}")),
        "mdev" => attr(child_of(source, "address"), "uuid").map(|u| format!("mdev {u}")),
        _ => None,
    };
    HostDev {
        desc: desc.unwrap_or_else(|| format!("{kind} device")),
        kind,
    }
}

fn child_of<'a, 'i>(node: Option<Node<'a, 'i>>, tag: &str) -> Option<Node<'a, 'i>> {
    node.and_then(|n| child(n, tag))
}

pub(crate) fn parse_caps(xml: &str) -> Result<CapsFacts, String> {
    let doc = Document::parse(xml).map_err(|e| e.to_string())?;
    let caps = doc.root_element();
    if !caps.has_tag_name("capabilities") {
        return Err("root element is not <capabilities>".into());
    }
    let host_uuid = text(child(caps, "host").and_then(|h| child(h, "uuid")));
    let mut machines = Vec::new();
    for arch in children(caps, "guest").flat_map(|g| children(g, "arch")) {
        let name = arch.attribute("name").unwrap_or_default();
        // Machines appear under <arch> and, for some accelerators, under <domain>.
        let listed = children(arch, "machine")
            .chain(children(arch, "domain").flat_map(|d| children(d, "machine")));
        for m in listed {
            for alias in [text(Some(m)), attr(Some(m), "canonical")]
                .into_iter()
                .flatten()
            {
                let entry = (name.to_string(), alias);
                if !machines.contains(&entry) {
                    machines.push(entry);
                }
            }
        }
    }
    Ok(CapsFacts {
        host_uuid,
        machines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: &str = "<domain type='kvm'>
      <name>web</name><uuid>1b4e28ba-2fa1-11d2-883f-0016d3cca427</uuid>
      <memory unit='GiB'>4</memory><currentMemory unit='MiB'>2048</currentMemory>
      <os><type arch='x86_64' machine='pc-q35-10.0'>hvm</type></os>
      <cpu mode='custom' match='exact'><model fallback='forbid'>Skylake-Client</model></cpu>
      <devices>
        <disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/>
          <source file='/var/lib/libvirt/images/web.qcow2'/><target dev='vda' bus='virtio'/></disk>
        <disk type='block' device='disk'><source dev='/dev/vg/data'/><target dev='vdb'/><shareable/></disk>
        <disk type='file' device='cdrom'><source file='/iso/debian.iso'/><target dev='sda'/><readonly/></disk>
        <disk type='file' device='cdrom'><target dev='sdb'/><readonly/></disk>
        <disk type='volume' device='disk'><source pool='fast' volume='web-2'/><target dev='vdc'/></disk>
        <disk type='network' device='disk'><source protocol='rbd' name='pool/img'/><target dev='vdd'/></disk>
        <interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br0'/></interface>
        <hostdev mode='subsystem' type='pci' managed='yes'><source>
          <address domain='0x0000' bus='0x03' slot='0x00' function='0x1'/></source></hostdev>
        <hostdev mode='subsystem' type='usb'><source><vendor id='0x046d'/><product id='0xc52b'/></source></hostdev>
        <serial type='dev'><source path='/dev/ttyS0'/><target port='0'/></serial>
        <serial type='pty'><target port='1'/></serial>
      </devices></domain>";

    #[test]
    fn domain_facts_from_xml() {
        let d = parse_domain(DOMAIN).expect("parses");
        assert_eq!(d.name, "web");
        assert_eq!(d.virt_type, "kvm");
        assert_eq!(d.arch.as_deref(), Some("x86_64"));
        assert_eq!(d.machine.as_deref(), Some("pc-q35-10.0"));
        assert_eq!(d.memory_kib, 2048 * 1024);
        let cpu = d.cpu.as_ref().expect("cpu");
        assert_eq!(cpu.mode, "custom");
        assert_eq!(cpu.model.as_deref(), Some("Skylake-Client"));
        assert!(cpu.xml.starts_with("<cpu ") && cpu.xml.ends_with("</cpu>"));
        let sources: Vec<_> = d.disks.iter().map(|d| d.source.as_deref()).collect();
        assert_eq!(
            sources,
            [
                Some("/var/lib/libvirt/images/web.qcow2"),
                Some("/dev/vg/data"),
                Some("/iso/debian.iso"),
                None,
                Some("fast/web-2"),
                Some("rbd:pool/img"),
            ]
        );
        assert_eq!(d.disks[0].cache.as_deref(), Some("none"));
        assert!(d.disks[1].shareable && !d.disks[1].readonly);
        assert!(d.disks[2].readonly && d.disks[2].is_removable());
        assert_eq!(d.nics[0].source.as_deref(), Some("br0"));
        assert_eq!(
            d.hostdevs,
            vec![
                HostDev {
                    kind: "pci".into(),
                    desc: "PCI 0000:03:00.1".into()
                },
                HostDev {
                    kind: "usb".into(),
                    desc: "USB 0x046d:0xc52b".into()
                },
            ]
        );
        assert_eq!(d.char_devs, ["/dev/ttyS0"]);
    }

    #[test]
    fn memory_units_and_defaults() {
        let d = parse_domain("<domain type='qemu'><name>m</name><memory>1024</memory></domain>")
            .expect("parses");
        assert_eq!(d.memory_kib, 1024);
        assert!(d.cpu.is_none() && d.disks.is_empty() && d.machine.is_none());
        let d = parse_domain(
            "<domain type='qemu'><name>m</name><memory unit='b'>1048576</memory></domain>",
        )
        .expect("parses");
        assert_eq!(d.memory_kib, 1024);
        assert!(parse_domain("<domain/>").is_err());
        assert!(parse_domain("<pool><name>x</name></pool>").is_err());
    }

    #[test]
    fn caps_machines_and_uuid() {
        let caps = "<capabilities><host><uuid>4c4c4544-0000</uuid></host>
          <guest><os_type>hvm</os_type><arch name='x86_64'>
            <machine canonical='pc-q35-10.0' maxCpus='4096'>q35</machine>
            <machine>pc-i440fx-10.0</machine>
            <domain type='qemu'/><domain type='kvm'><machine>pc-kvm-only</machine></domain>
          </arch></guest></capabilities>";
        let c = parse_caps(caps).expect("parses");
        assert_eq!(c.host_uuid.as_deref(), Some("4c4c4544-0000"));
        let names: Vec<_> = c.machines.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(
            names,
            ["q35", "pc-q35-10.0", "pc-i440fx-10.0", "pc-kvm-only"]
        );
        assert!(c.machines.iter().all(|(a, _)| a == "x86_64"));
        assert!(parse_caps("<domain/>").is_err());
    }
}
