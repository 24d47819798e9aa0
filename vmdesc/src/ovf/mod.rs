//! OVF 1.x / 2.x descriptors. Elements are matched by namespace and local name, never by
//! prefix: exporters pick their own prefixes (`ovf:`, none, `ns0:`).

#[cfg(test)]
mod tests;

use crate::{malformed, unsupported};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use roxmltree::{Document, Node, ParsingOptions};

use crate::{
    DescError, DiskBus, DiskDesc, DiskDevice, Firmware, NicDesc, SourceHypervisor, Topology,
    VmDescription,
};

const OVF1: &str = "http://schemas.dmtf.org/ovf/envelope/1";
const OVF2: &str = "http://schemas.dmtf.org/ovf/envelope/2";
const OVF09: &str = "http://www.vmware.com/schema/ovf/1/envelope";
/// rasd/sasd/epasd all live under this; one real vApp OVF misspells the rest of the
/// epasd namespace, so only the prefix is checked.
const CIM: &str = "http://schemas.dmtf.org/wbem/wscim/";
const VMW: &str = "http://www.vmware.com/schema/ovf";
const VBOX: &str = "http://www.virtualbox.org/ovf/machine";
/// Real descriptors are well under 1 MiB (the vCenter appliance is 331 KiB).
const XML_LIMIT: u64 = 16 << 20;

/// Reads an OVF file and, when a sibling `NAME.mf` exists, verifies it.
pub fn read_ovf(path: &Path) -> Result<VmDescription, DescError> {
    const WHAT: &str = "an OVF descriptor";
    let bytes = crate::capped::read_capped(path, XML_LIMIT, WHAT)?;
    let xml = crate::capped::utf8(&path.display().to_string(), bytes, WHAT)?;
    let base = path.parent().unwrap_or(Path::new(""));
    let (mut desc, sizes) = parse_with_sizes(path, &xml, base)?;
    // The disks need not be here yet (the description may be read before they are
    // copied), but a missing or mis-sized file is worth saying.
    for disk in &desc.disks {
        let Some(p) = &disk.path else { continue };
        match std::fs::metadata(p) {
            Err(_) => desc
                .warnings
                .push(format!("{} not found next to the OVF", p.display())),
            Ok(m) => {
                if let Some((_, want)) = sizes.iter().find(|(s, _)| s == p) {
                    if m.len() != *want {
                        desc.warnings.push(format!(
                            "{} is {} bytes, the OVF says {want}",
                            p.display(),
                            m.len()
                        ));
                    }
                }
            }
        }
    }
    if !crate::ova::verify_sibling_manifest(path)? {
        desc.warnings
            .push("no manifest (.mf) next to the OVF: files not verified".into());
    }
    Ok(desc)
}

struct FileRef<'a> {
    href: &'a str,
    size: Option<u64>,
    compression: Option<&'a str>,
    chunked: bool,
}

struct DiskRef<'a> {
    file: Option<&'a str>,
    capacity: Option<u64>,
    format: Option<&'a str>,
}

/// One rasd Item of the chosen configuration.
struct Item<'a> {
    rtype: u32,
    instance: &'a str,
    name: &'a str,
    node: Node<'a, 'a>,
}

impl<'a> Item<'a> {
    fn get(&self, local: &str) -> Option<&'a str> {
        rasd(self.node, local)
    }
    /// How the item is named in messages.
    fn label(&self) -> String {
        format!("Item {:?} (InstanceID {})", self.name, self.instance)
    }
}

fn rasd<'a>(node: Node<'a, 'a>, local: &str) -> Option<&'a str> {
    node.children()
        .find(|c| {
            c.is_element()
                && c.tag_name().name() == local
                && c.tag_name().namespace().is_some_and(|n| n.starts_with(CIM))
        })
        .and_then(|c| c.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Parses an OVF descriptor; relative disk hrefs are joined to `base` (the OVF's folder,
/// or its folder inside an OVA). `path` names the file in errors.
pub fn parse_ovf(path: &Path, xml: &str, base: &Path) -> Result<VmDescription, DescError> {
    parse_with_sizes(path, xml, base).map(|(desc, _)| desc)
}

/// [`parse_ovf`], plus the `ovf:size` the References give for each disk path.
pub(crate) fn parse_with_sizes(
    path: &Path,
    xml: &str,
    base: &Path,
) -> Result<(VmDescription, Vec<(PathBuf, u64)>), DescError> {
    if xml.len() as u64 > XML_LIMIT {
        return Err(malformed(path, "OVF descriptor larger than 16 MiB"));
    }
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let opts = ParsingOptions {
        allow_dtd: false,
        nodes_limit: 1_000_000, // real OVFs: ~10k nodes; bounds DOM memory
    };
    let doc = Document::parse_with_options(xml, opts)
        .map_err(|e| malformed(path, format!("XML: {e}")))?;
    let root = doc.root_element();
    let ns = match root.tag_name().namespace() {
        _ if root.tag_name().name() != "Envelope" => {
            return Err(malformed(path, "root element is not an OVF Envelope"))
        }
        Some(OVF1) => OVF1,
        Some(OVF2) => OVF2,
        Some(OVF09) => {
            return Err(unsupported(
                path,
                "OVF 0.9 (pre-standard VMware namespace); re-export as OVF 1.0 or later",
            ))
        }
        Some(other) if other.starts_with("http://schemas.dmtf.org/ovf/envelope/") => {
            return Err(unsupported(path, format!("OVF envelope namespace {other}")))
        }
        _ => return Err(malformed(path, "root element is not an OVF Envelope")),
    };
    Parser {
        path,
        ns,
        base,
        warnings: Vec::new(),
        sizes: Vec::new(),
    }
    .parse(&doc)
}

struct Parser<'p> {
    path: &'p Path,
    ns: &'static str,
    base: &'p Path,
    warnings: Vec<String>,
    /// `ovf:size` of each disk file the model points at, for the package checks.
    sizes: Vec<(PathBuf, u64)>,
}

impl<'p> Parser<'p> {
    fn is(&self, node: Node, local: &str) -> bool {
        is_ns(node, self.ns, local)
    }

    /// `ovf:`-qualified attributes; a few exporters leave them unqualified.
    fn attr<'a>(&self, node: Node<'a, 'a>, local: &str) -> Option<&'a str> {
        node.attribute((self.ns, local))
            .or_else(|| node.attribute(local))
    }

    fn child<'a>(&self, node: Node<'a, 'a>, local: &str) -> Option<Node<'a, 'a>> {
        node.children().find(|c| self.is(*c, local))
    }

    /// Unknown extension sections the author marked required must not be ignored.
    fn check_required(&self, parent: Node) -> Result<(), DescError> {
        for c in parent.children().filter(Node::is_element) {
            let required = self.attr(c, "required");
            let foreign = c.tag_name().namespace() != Some(self.ns);
            if foreign && required == Some("true") {
                return Err(unsupported(
                    self.path,
                    format!("required extension element {}", c.tag_name().name()),
                ));
            }
            // Old-style `<Section xsi:type="…">` is required unless it says otherwise.
            if self.is(c, "Section") && required != Some("false") {
                let ty = c
                    .attributes()
                    .find(|a| a.name() == "type")
                    .map_or("?", |a| a.value());
                return Err(unsupported(self.path, format!("required section {ty}")));
            }
        }
        Ok(())
    }

    fn parse(
        mut self,
        doc: &'p Document<'p>,
    ) -> Result<(VmDescription, Vec<(PathBuf, u64)>), DescError> {
        let env = doc.root_element();
        self.check_required(env)?;

        let mut files: HashMap<&str, FileRef> = HashMap::new();
        if let Some(refs) = self.child(env, "References") {
            for f in refs.children().filter(|c| self.is(*c, "File")) {
                let id = self
                    .attr(f, "id")
                    .ok_or_else(|| malformed(self.path, "File without ovf:id"))?;
                let href = self
                    .attr(f, "href")
                    .ok_or_else(|| malformed(self.path, format!("File {id} without ovf:href")))?;
                files.insert(
                    id,
                    FileRef {
                        href,
                        size: self.attr(f, "size").and_then(|s| s.parse().ok()),
                        compression: self.attr(f, "compression").filter(|c| *c != "identity"),
                        chunked: self.attr(f, "chunkSize").is_some(),
                    },
                );
            }
        }

        let vs_all: Vec<Node> = env
            .descendants()
            .filter(|n| self.is(*n, "VirtualSystem"))
            .collect();
        let vs = *vs_all
            .first()
            .ok_or_else(|| malformed(self.path, "no VirtualSystem in the envelope"))?;
        if vs_all.len() > 1 {
            self.warnings.push(format!(
                "{} VirtualSystems (a vApp); only the first is read",
                vs_all.len()
            ));
        }
        self.check_required(vs)?;

        let mut disks: HashMap<&str, DiskRef> = HashMap::new();
        let disk_sections = env
            .children()
            .chain(vs.children())
            .filter(|n| self.is(*n, "DiskSection"))
            .collect::<Vec<_>>();
        for section in disk_sections {
            let ns = self.ns;
            for d in section.children().filter(|c| is_ns(*c, ns, "Disk")) {
                let id = self
                    .attr(d, "diskId")
                    .ok_or_else(|| malformed(self.path, "Disk without ovf:diskId"))?;
                // Some exporters write `ovf:fileRef=""` for a blank disk.
                let file = self.attr(d, "fileRef").filter(|f| !f.is_empty());
                if let Some(f) = file {
                    if !files.contains_key(f) {
                        return Err(malformed(
                            self.path,
                            format!("Disk {id}: fileRef {f} names no File in References"),
                        ));
                    }
                }
                if self.attr(d, "parentRef").is_some() {
                    self.warnings.push(format!(
                        "disk {id} is a delta of a parent disk (ovf:parentRef)"
                    ));
                }
                let capacity = self.capacity(vs, d, id)?;
                disks.insert(
                    id,
                    DiskRef {
                        file,
                        capacity,
                        format: self.attr(d, "format"),
                    },
                );
            }
        }

        let name = self
            .child(vs, "Name")
            .and_then(|n| n.text())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .or_else(|| self.attr(vs, "id"))
            .map(str::to_string)
            .or_else(|| {
                self.path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
            })
            .unwrap_or_default();

        let os_hint = self.child(vs, "OperatingSystemSection").and_then(|os| {
            os.attribute((VMW, "osType"))
                .or_else(|| self.child(os, "Description").and_then(|d| d.text()))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        });

        let hw_all: Vec<Node> = vs
            .children()
            .filter(|n| self.is(*n, "VirtualHardwareSection"))
            .collect();
        let hw = *hw_all
            .first()
            .ok_or_else(|| malformed(self.path, "VirtualSystem has no VirtualHardwareSection"))?;
        if hw_all.len() > 1 {
            self.warnings.push(format!(
                "{} VirtualHardwareSections; only the first is read",
                hw_all.len()
            ));
        }
        self.check_required(hw)?;

        let config = self.default_configuration(env);
        let items = self.items(hw, config.as_deref())?;

        let mut desc = VmDescription {
            name,
            hypervisor: SourceHypervisor::Ovf,
            os_hint,
            ..VmDescription::default()
        };
        desc.firmware = self.firmware(hw, vs);
        self.hardware(&items, &files, &disks, &mut desc)?;
        self.check_networks(env, &desc.nics);
        desc.warnings.append(&mut self.warnings);
        Ok((desc, self.sizes))
    }

    /// The default deployment option: the one marked `ovf:default="true"`, else the first.
    fn default_configuration(&mut self, env: Node) -> Option<String> {
        let section = self.child(env, "DeploymentOptionSection")?;
        let configs: Vec<Node> = section
            .children()
            .filter(|c| self.is(*c, "Configuration"))
            .collect();
        let chosen = configs
            .iter()
            .find(|c| self.attr(**c, "default") == Some("true"))
            .or_else(|| configs.first())?;
        let id = self.attr(*chosen, "id")?.to_string();
        if configs.len() > 1 {
            self.warnings.push(format!(
                "{} deployment options; using the default {id:?}",
                configs.len()
            ));
        }
        Some(id)
    }

    fn items<'a>(
        &self,
        hw: Node<'a, 'a>,
        config: Option<&str>,
    ) -> Result<Vec<Item<'a>>, DescError> {
        let mut items = Vec::new();
        for node in hw.children().filter(|c| {
            self.is(*c, "Item") || self.is(*c, "StorageItem") || self.is(*c, "EthernetPortItem")
        }) {
            if let Some(list) = self.attr(node, "configuration") {
                if !config.is_some_and(|id| list.split_whitespace().any(|c| c == id)) {
                    continue;
                }
            }
            // Range bounds describe what a deployer may choose, not the machine.
            if matches!(self.attr(node, "bound"), Some("min" | "max")) {
                continue;
            }
            let name = rasd(node, "ElementName").unwrap_or("");
            // ovftool's own test OVFs spell it `InstanceId`; the intent is plain.
            let instance = rasd(node, "InstanceID")
                .or_else(|| rasd(node, "InstanceId"))
                .ok_or_else(|| malformed(self.path, format!("Item {name:?} without InstanceID")))?;
            let rtype = rasd(node, "ResourceType")
                .ok_or_else(|| malformed(self.path, format!("Item {name:?} without ResourceType")))?
                .parse()
                .map_err(|_| malformed(self.path, format!("Item {name:?}: bad ResourceType")))?;
            items.push(Item {
                rtype,
                instance,
                name,
                node,
            });
        }
        Ok(items)
    }

    fn firmware(&mut self, hw: Node, vs: Node) -> Firmware {
        let mut efi = false;
        let mut secure = false;
        for c in hw.children().filter(|c| {
            c.is_element()
                && c.tag_name().namespace() == Some(VMW)
                && c.tag_name().name() == "Config"
        }) {
            let key = c.attribute((VMW, "key")).unwrap_or("");
            let value = c.attribute((VMW, "value")).unwrap_or("");
            match (key, value) {
                ("firmware", "efi") => efi = true,
                ("firmware", "bios") => {}
                ("firmware", other) => self.warnings.push(format!("unknown firmware {other:?}")),
                ("uefi.secureBoot.enabled", v) => secure = v.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        // VirtualBox keeps its own settings in vbox:Machine; `<Firmware type="EFI"/>`.
        let vbox_efi = vs
            .descendants()
            .filter(|n| n.tag_name().namespace() == Some(VBOX) && n.tag_name().name() == "Machine")
            .flat_map(|m| m.descendants())
            .any(|n| {
                n.tag_name().name() == "Firmware"
                    && n.attribute("type").is_some_and(|t| t.starts_with("EFI"))
            });
        if efi || vbox_efi {
            Firmware::Uefi {
                secure_boot: secure,
            }
        } else {
            Firmware::Bios
        }
    }

    /// `ovf:capacity` × `ovf:capacityAllocationUnits`; `${key}` is looked up in the
    /// ProductSection properties, whose default value is what a deployer gets.
    fn capacity(&mut self, vs: Node, d: Node, id: &str) -> Result<Option<u64>, DescError> {
        let Some(raw) = self.attr(d, "capacity") else {
            return Ok(None);
        };
        let text = match raw.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
            Some(key) => {
                let prop = vs
                    .descendants()
                    .find(|n| self.is(*n, "Property") && self.attr(*n, "key") == Some(key));
                match prop.and_then(|p| self.attr(p, "value")) {
                    Some(v) => v,
                    None => {
                        self.warnings
                            .push(format!("disk {id}: capacity {raw} has no default value"));
                        return Ok(None);
                    }
                }
            }
            None => raw,
        };
        let n: u64 = text.trim().parse().map_err(|_| {
            malformed(
                self.path,
                format!("Disk {id}: capacity {raw:?} is not a number"),
            )
        })?;
        let units = self.attr(d, "capacityAllocationUnits").unwrap_or("byte");
        let mult = unit_multiplier(units).ok_or_else(|| {
            malformed(
                self.path,
                format!("Disk {id}: unknown capacity units {units:?}"),
            )
        })?;
        n.checked_mul(mult)
            .map(Some)
            .ok_or_else(|| malformed(self.path, format!("Disk {id}: capacity overflows")))
    }

    /// A File href as a path in the model: relative to `base`, never outside it.
    fn file_path(&mut self, file: &FileRef, what: &str) -> Result<PathBuf, DescError> {
        if file.href.contains("://") {
            return Err(unsupported(
                self.path,
                format!("{what}: remote file {} (download it first)", file.href),
            ));
        }
        let rel = Path::new(file.href);
        if !rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(malformed(
                self.path,
                format!("{what}: href {:?} points outside the package", file.href),
            ));
        }
        if let Some(c) = file.compression {
            self.warnings
                .push(format!("{}: compressed ({c}) in the package", file.href));
        }
        if file.chunked {
            self.warnings.push(format!(
                "{}: split in chunks ({}.000000000, …)",
                file.href, file.href
            ));
        }
        let joined = self.base.join(rel);
        if let Some(size) = file.size {
            self.sizes.push((joined.clone(), size));
        }
        Ok(joined)
    }

    /// A NIC's Connection must name a Network of the NetworkSection.
    fn check_networks(&mut self, env: Node, nics: &[NicDesc]) {
        let declared: Vec<&str> = self
            .child(env, "NetworkSection")
            .map(|s| {
                s.children()
                    .filter(|c| self.is(*c, "Network"))
                    .filter_map(|c| self.attr(c, "name"))
                    .collect()
            })
            .unwrap_or_default();
        for net in nics.iter().filter_map(|n| n.network.as_deref()) {
            if !declared.contains(&net) {
                self.warnings.push(format!(
                    "NIC network {net:?} is not declared in the NetworkSection"
                ));
            }
        }
    }

    fn hardware(
        &mut self,
        items: &[Item],
        files: &HashMap<&str, FileRef>,
        disks: &HashMap<&str, DiskRef>,
        desc: &mut VmDescription,
    ) -> Result<(), DescError> {
        // Controllers by InstanceID: bus, the name used in targets, their sort rank.
        let mut controllers: HashMap<&str, (DiskBus, &str)> = HashMap::new();
        for it in items {
            let sub = it.get("ResourceSubType").unwrap_or("").to_ascii_lowercase();
            let ctl = match it.rtype {
                5 => (DiskBus::Ide, "ide"),
                6 => (DiskBus::Scsi, "scsi"),
                20 if sub.contains("nvme") => (DiskBus::Nvme, "nvme"),
                20 => (DiskBus::Sata, "sata"),
                _ => continue,
            };
            if it.rtype == 6 && !sub.is_empty() {
                self.warnings
                    .push(format!("SCSI controller {} is {sub}", it.instance));
            }
            controllers.insert(it.instance, ctl);
        }

        let mut found_disks: Vec<((u64, u64), DiskDesc)> = Vec::new();
        let mut vcpus = None;
        for it in items {
            match it.rtype {
                3 => {
                    if vcpus.is_some() {
                        continue;
                    }
                    let n: u32 = it
                        .get("VirtualQuantity")
                        .and_then(|q| q.parse().ok())
                        .filter(|&n| n > 0)
                        .ok_or_else(|| {
                            malformed(self.path, format!("{}: bad VirtualQuantity", it.label()))
                        })?;
                    vcpus = Some(n);
                    desc.vcpus = n;
                    let cores = it
                        .node
                        .children()
                        .find(|c| {
                            c.tag_name().namespace() == Some(VMW)
                                && c.tag_name().name() == "CoresPerSocket"
                        })
                        .and_then(|c| c.text())
                        .and_then(|t| t.trim().parse::<u32>().ok());
                    if let Some(cores) = cores {
                        if cores > 0 && n.is_multiple_of(cores) {
                            desc.topology = Some(Topology {
                                sockets: n / cores,
                                cores,
                                threads: 1,
                            });
                        } else {
                            self.warnings
                                .push(format!("CoresPerSocket {cores} does not divide {n} vCPUs"));
                        }
                    }
                }
                4 => {
                    let q: u64 = it
                        .get("VirtualQuantity")
                        .and_then(|q| q.parse().ok())
                        .ok_or_else(|| {
                            malformed(self.path, format!("{}: bad VirtualQuantity", it.label()))
                        })?;
                    let units = match it.get("AllocationUnits") {
                        Some(u) => u,
                        None => {
                            self.warnings
                                .push("memory without AllocationUnits: assumed MiB".into());
                            "byte * 2^20"
                        }
                    };
                    let mult = unit_multiplier(units).ok_or_else(|| {
                        malformed(
                            self.path,
                            format!("{}: unknown AllocationUnits {units:?}", it.label()),
                        )
                    })?;
                    desc.memory_bytes = q
                        .checked_mul(mult)
                        .ok_or_else(|| malformed(self.path, "memory size overflows"))?;
                }
                5 | 6 | 20 => {}
                10 => desc.nics.push(self.nic(it)),
                14..=17 => {
                    found_disks.push(self.disk(it, &controllers, files, disks)?);
                }
                other => self
                    .warnings
                    .push(format!("{} (ResourceType {other}) ignored", it.label())),
            }
        }
        if vcpus.is_none() {
            self.warnings.push("no CPU Item: assumed 1 vCPU".into());
            desc.vcpus = 1;
        }
        if desc.memory_bytes == 0 {
            self.warnings.push("no memory Item".into());
        }
        found_disks.sort_by_key(|(k, _)| *k);
        desc.disks = found_disks.into_iter().map(|(_, d)| d).collect();
        Ok(())
    }

    fn nic(&mut self, it: &Item) -> NicDesc {
        let subtypes: Vec<String> = it
            .get("ResourceSubType")
            .map(|s| s.split_whitespace().map(str::to_ascii_lowercase).collect())
            .unwrap_or_default();
        // Cisco lists alternatives ("VmxNet3 virtio"): the first is what the source ran.
        if subtypes.len() > 1 {
            self.warnings.push(format!(
                "{}: alternative NIC models {}",
                it.label(),
                subtypes.join(" ")
            ));
        }
        let model = subtypes.first().map(|s| match s.as_str() {
            // PCNet32 is what VMware calls vlance; keep one name across readers.
            "pcnet32" => "vlance".to_string(),
            other => other.to_string(),
        });
        let mac = it.get("Address").and_then(|a| {
            let norm = a.replace('-', ":").to_ascii_lowercase();
            let ok = norm.len() == 17
                && norm.split(':').count() == 6
                && norm
                    .split(':')
                    .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
            if !ok {
                self.warnings
                    .push(format!("{}: MAC {a:?} not understood", it.label()));
            }
            ok.then_some(norm)
        });
        NicDesc {
            mac,
            model,
            network: it.get("Connection").map(str::to_string),
        }
    }

    fn disk(
        &mut self,
        it: &Item,
        controllers: &HashMap<&str, (DiskBus, &str)>,
        files: &HashMap<&str, FileRef>,
        disks: &HashMap<&str, DiskRef>,
    ) -> Result<((u64, u64), DiskDesc), DescError> {
        let device = match it.rtype {
            17 => DiskDevice::Disk,
            14 => DiskDevice::Floppy,
            _ => DiskDevice::Cdrom,
        };
        let addr = it.get("AddressOnParent").unwrap_or("0");
        let (bus, target, rank) = match it.get("Parent") {
            Some(p) => {
                let (bus, kind) = controllers.get(p).copied().ok_or_else(|| {
                    malformed(
                        self.path,
                        format!("{}: Parent {p} is not a disk controller", it.label()),
                    )
                })?;
                (
                    bus,
                    format!("{kind}{p}:{addr}"),
                    p.parse().unwrap_or(u64::MAX - 1),
                )
            }
            None => (
                DiskBus::Unknown,
                format!("instance{}", it.instance),
                u64::MAX,
            ),
        };
        let mut out = DiskDesc {
            path: None,
            format: None,
            bus,
            target,
            device,
            read_only: device == DiskDevice::Cdrom,
            capacity_bytes: None,
        };
        let host = it.get("HostResource");
        let file_id = host.and_then(|h| {
            h.strip_prefix("ovf:/file/")
                .or_else(|| h.strip_prefix("/file/"))
        });
        let disk_id = host.and_then(|h| {
            h.strip_prefix("ovf:/disk/")
                .or_else(|| h.strip_prefix("/disk/"))
        });
        let label = it.label();
        if let Some(id) = disk_id {
            let d = disks.get(id).ok_or_else(|| {
                malformed(
                    self.path,
                    format!("{label}: HostResource names no Disk {id}"),
                )
            })?;
            out.capacity_bytes = d.capacity;
            if let Some(fmt) = d.format {
                out.format = self.format(fmt, id);
            }
            match d.file.and_then(|f| files.get(f)) {
                Some(f) => out.path = Some(self.file_path(f, &label)?),
                None => self
                    .warnings
                    .push(format!("disk {id} has no file: a blank disk to create")),
            }
        } else if let Some(id) = file_id {
            let f = files.get(id).ok_or_else(|| {
                malformed(
                    self.path,
                    format!("{label}: HostResource names no File {id}"),
                )
            })?;
            out.path = Some(self.file_path(f, &label)?);
        } else if let Some(h) = host {
            if device == DiskDevice::Disk {
                return Err(malformed(
                    self.path,
                    format!("{label}: HostResource {h:?} is not ovf:/disk/ or ovf:/file/"),
                ));
            }
            self.warnings
                .push(format!("{label}: HostResource {h:?} ignored"));
        } else if device == DiskDevice::Disk {
            self.warnings
                .push(format!("{label}: no HostResource, a blank disk"));
        }
        let rank = (rank, addr.parse().unwrap_or(u64::MAX));
        Ok((rank, out))
    }

    /// `ovf:format` is a URL naming a spec: `…/vmdk.html#streamOptimized`.
    fn format(&mut self, url: &str, id: &str) -> Option<String> {
        let lower = url.to_ascii_lowercase();
        let (spec, variant) = lower.split_once('#').unwrap_or((&lower, ""));
        let name = ["vmdk", "vhdx", "vhd", "qcow2", "raw"]
            .into_iter()
            .find(|f| spec.contains(f));
        match name {
            Some(n) => {
                if !variant.is_empty() {
                    let original = url.rsplit_once('#').map_or(variant, |(_, v)| v);
                    self.warnings.push(format!("disk {id}: {n} {original}"));
                }
                Some(n.to_string())
            }
            None => {
                self.warnings
                    .push(format!("disk {id}: unknown format {url}"));
                None
            }
        }
    }
}

fn is_ns(node: Node, ns: &str, local: &str) -> bool {
    node.is_element() && node.tag_name().name() == local && node.tag_name().namespace() == Some(ns)
}

/// Multiplier for DMTF allocation units: `byte`, `byte * 2^20`, `MegaBytes`, `KB`, ….
fn unit_multiplier(units: &str) -> Option<u64> {
    let t: String = units
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    let named = match t.as_str() {
        "byte" | "bytes" | "b" => Some(1),
        "kilobytes" | "kb" | "kib" => Some(1 << 10),
        "megabytes" | "mb" | "mib" => Some(1 << 20),
        "gigabytes" | "gb" | "gib" => Some(1 << 30),
        "terabytes" | "tb" | "tib" => Some(1 << 40),
        _ => None,
    };
    if named.is_some() {
        return named;
    }
    let rest = t
        .strip_prefix("byte*")
        .or_else(|| t.strip_prefix("bytes*"))?;
    let mut mult: u64 = 1;
    for factor in rest.split('*') {
        let f = match factor.split_once('^') {
            Some((b, e)) => {
                let b: u64 = b.parse().ok()?;
                b.checked_pow(e.parse().ok()?)?
            }
            None => factor.parse().ok()?,
        };
        mult = mult.checked_mul(f)?;
    }
    Some(mult)
}
