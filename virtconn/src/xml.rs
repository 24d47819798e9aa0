//! Reading the few facts ferry needs out of libvirt's XML documents.
//! Errors are plain text; callers decide whether bad XML is the user's or libvirt's.

use roxmltree::{Document, Node};

use crate::model::InterfaceInfo;

fn child<'a, 'i>(node: Node<'a, 'i>, tag: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|n| n.has_tag_name(tag))
}

fn child_text(node: Node<'_, '_>, tag: &str) -> Option<String> {
    child(node, tag)
        .and_then(|n| n.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

fn root<'a, 'i>(doc: &'a Document<'i>, tag: &str) -> Result<Node<'a, 'i>, String> {
    let root = doc.root_element();
    if root.has_tag_name(tag) {
        Ok(root)
    } else {
        Err(format!(
            "root element is <{}>, expected <{tag}>",
            root.tag_name().name()
        ))
    }
}

/// The `<name>` (required) and `<uuid>` (optional: libvirt generates one) of a domain.
pub(crate) fn domain_identity(xml: &str) -> Result<(String, Option<String>), String> {
    let doc = Document::parse(xml).map_err(|e| e.to_string())?;
    let dom = root(&doc, "domain")?;
    let name = child_text(dom, "name").ok_or("the domain has no <name>")?;
    Ok((name, child_text(dom, "uuid")))
}

pub(crate) fn interfaces(xml: &str) -> Result<Vec<InterfaceInfo>, String> {
    let doc = Document::parse(xml).map_err(|e| e.to_string())?;
    let dom = root(&doc, "domain")?;
    let Some(devices) = child(dom, "devices") else {
        return Ok(Vec::new());
    };
    let attr =
        |n: Option<Node<'_, '_>>, name: &str| n.and_then(|n| n.attribute(name)).map(str::to_string);
    Ok(devices
        .children()
        .filter(|n| n.has_tag_name("interface"))
        .map(|iface| {
            let source = child(iface, "source");
            InterfaceInfo {
                mac: attr(child(iface, "mac"), "address").unwrap_or_default(),
                kind: iface.attribute("type").unwrap_or_default().to_string(),
                // Which attribute names the source depends on the type; user has none.
                source: ["network", "bridge", "dev", "name"]
                    .iter()
                    .find_map(|a| attr(source, a)),
                model: attr(child(iface, "model"), "type"),
            }
        })
        .collect())
}

/// Whether the capabilities offer `<domain type='kvm'>` for an x86_64 guest.
pub(crate) fn offers_kvm_x86_64(caps: &str) -> Result<bool, String> {
    let doc = Document::parse(caps).map_err(|e| e.to_string())?;
    let caps = root(&doc, "capabilities")?;
    Ok(caps
        .children()
        .filter(|n| n.has_tag_name("guest"))
        .flat_map(|g| g.children().filter(|n| n.has_tag_name("arch")))
        .filter(|arch| arch.attribute("name") == Some("x86_64"))
        .flat_map(|arch| arch.children().filter(|n| n.has_tag_name("domain")))
        .any(|d| d.attribute("type") == Some("kvm")))
}

/// A pool's type and its `<target><path>`, if it has one.
pub(crate) fn pool_target(xml: &str) -> Result<(String, Option<String>), String> {
    let doc = Document::parse(xml).map_err(|e| e.to_string())?;
    let pool = root(&doc, "pool")?;
    let kind = pool.attribute("type").unwrap_or_default().to_string();
    let path = child(pool, "target").and_then(|t| child_text(t, "path"));
    Ok((kind, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_needs_a_name() {
        let (name, uuid) = domain_identity(
            "<domain type='kvm'><name> a </name><uuid>1b4e28ba-2fa1-11d2-883f-0016d3cca427</uuid></domain>",
        )
        .expect("parses");
        assert_eq!(name, "a");
        assert_eq!(
            uuid.as_deref(),
            Some("1b4e28ba-2fa1-11d2-883f-0016d3cca427")
        );
        assert_eq!(
            domain_identity("<domain><name>b</name></domain>")
                .expect("parses")
                .1,
            None
        );
        assert!(domain_identity("<domain/>").is_err());
        assert!(domain_identity("<pool><name>x</name></pool>").is_err());
        assert!(domain_identity("<domain><name>").is_err());
    }

    #[test]
    fn interfaces_of_each_kind() {
        let xml = "<domain><devices>
            <interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/><model type='virtio'/></interface>
            <interface type='bridge'><mac address='52:54:00:00:00:02'/><source bridge='br0'/></interface>
            <interface type='user'><mac address='52:54:00:00:00:03'/><model type='e1000'/></interface>
            <disk type='file'/>
        </devices></domain>";
        let got = interfaces(xml).expect("parses");
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0],
            InterfaceInfo {
                mac: "52:54:00:00:00:01".into(),
                kind: "network".into(),
                source: Some("default".into()),
                model: Some("virtio".into()),
            }
        );
        assert_eq!(got[1].source.as_deref(), Some("br0"));
        assert_eq!(got[1].model, None);
        assert_eq!(got[2].kind, "user");
        assert_eq!(got[2].source, None);
    }

    #[test]
    fn kvm_only_counts_for_x86_64() {
        let caps = |arch: &str, ty: &str| {
            format!(
                "<capabilities><host/><guest><os_type>hvm</os_type><arch name='{arch}'>\
                 <domain type='qemu'/><domain type='{ty}'/></arch></guest></capabilities>"
            )
        };
        assert!(offers_kvm_x86_64(&caps("x86_64", "kvm")).expect("parses"));
        assert!(!offers_kvm_x86_64(&caps("x86_64", "qemu")).expect("parses"));
        assert!(!offers_kvm_x86_64(&caps("aarch64", "kvm")).expect("parses"));
    }

    #[test]
    fn pool_target_path() {
        let (kind, path) = pool_target(
            "<pool type='dir'><name>p</name><target><path>/var/lib/libvirt/images</path></target></pool>",
        )
        .expect("parses");
        assert_eq!(kind, "dir");
        assert_eq!(path.as_deref(), Some("/var/lib/libvirt/images"));
        let (kind, path) =
            pool_target("<pool type='logical'><name>vg</name></pool>").expect("parses");
        assert_eq!((kind.as_str(), path), ("logical", None));
    }
}
