//! The wave inventory: a TOML file listing the VMs to move and how.
//!
//! ```toml
//! [defaults]                      # optional; every key can be set per VM as well
//! format = "qcow2"                # qcow2 | raw
//! network = "network:default"     # where NICs not in network_map go
//! network_map = ["VM Network=bridge:br0"]
//! fixups = true
//! verify = true
//! define = false                  # define each domain in libvirt
//! start = false                   # and start it (implies define)
//! connect = "qemu:///system"
//! pool = "default"                # disks into this pool's folder instead of --out
//! virt_type = "kvm"               # kvm | qemu
//!
//! [[vm]]
//! source = "web01/web01.vmx"      # a description, or a list of disks
//! name = "web01"                  # optional: the domain name (default: the source's)
//!
//! [[vm]]
//! source = ["db01-disk1.vmdk", "db01-disk2.vmdk"]
//! name = "db01"
//! network_map = ["Storage=bridge:br-stor"]
//! ```
//!
//! Relative source paths are relative to the inventory's folder, so an inventory travels
//! with the exports it lists. Each VM is known by its `name`, or by its first source when
//! it has none; ids must be unique, since they key the resume state. Unknown keys are
//! errors: a misspelt `verfy = false` must not silently verify. (They are checked on the
//! parsed table before deserializing, because serde's `deny_unknown_fields` does not work
//! through the `flatten` that shares the option keys between `[defaults]` and `[[vm]]`.)

use std::path::{Path, PathBuf};

use serde::Deserialize;

use domain::{NetTarget, VirtType};

use crate::v2v::{DefineOptions, OutputFormat, V2vOptions};

/// Why an inventory cannot be used; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// The keys of [`VmOptions`], as written in the inventory.
const OPTION_KEYS: [&str; 10] = [
    "format",
    "network",
    "network_map",
    "fixups",
    "verify",
    "define",
    "start",
    "connect",
    "pool",
    "virt_type",
];

/// Options shared by the VMs, each overridable per VM.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VmOptions {
    pub format: Option<FormatName>,
    pub network: Option<String>,
    pub network_map: Option<Vec<String>>,
    pub fixups: Option<bool>,
    pub verify: Option<bool>,
    pub define: Option<bool>,
    pub start: Option<bool>,
    pub connect: Option<String>,
    pub pool: Option<String>,
    pub virt_type: Option<VirtTypeName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatName {
    Qcow2,
    Raw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VirtTypeName {
    Kvm,
    Qemu,
}

/// One source path or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Sources {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct VmEntry {
    source: Sources,
    name: Option<String>,
    #[serde(flatten)]
    options: VmOptions,
}

#[derive(Debug, Deserialize)]
struct File {
    #[serde(default)]
    defaults: VmOptions,
    #[serde(default)]
    vm: Vec<VmEntry>,
}

/// One VM of the wave, its options merged over the defaults.
#[derive(Debug, Clone)]
pub struct WaveVm {
    /// The key of the resume state: `name`, or the first source as written.
    pub id: String,
    pub name: Option<String>,
    /// Absolute, or relative to the current folder.
    pub sources: Vec<PathBuf>,
    pub options: VmOptions,
}

#[derive(Debug, Clone)]
pub struct Inventory {
    pub path: PathBuf,
    pub vms: Vec<WaveVm>,
}

/// Reads and checks an inventory: TOML syntax, known keys, at least one VM, sources
/// present in each entry, unique ids, option values that parse.
pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
    let shown = path.display().to_string();
    let text = crate::wave::read_small_text(path).map_err(|source| InventoryError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&text, path)
}

/// [`load`] on text already read; `path` locates relative sources and names errors.
pub fn parse(text: &str, path: &Path) -> Result<Inventory, InventoryError> {
    let shown = path.display().to_string();
    let invalid = |message: String| InventoryError::Invalid {
        path: shown.clone(),
        message,
    };
    let table: toml::Table =
        toml::from_str(text).map_err(|e| invalid(one_line_toml_error(&e, text)))?;
    check_keys(&table).map_err(invalid)?;
    let file: File = table
        .try_into()
        .map_err(|e: toml::de::Error| invalid(one_line_toml_error(&e, text)))?;
    if file.vm.is_empty() {
        return Err(invalid(
            "lists no VM: add a [[vm]] table with a source".into(),
        ));
    }
    let base = path.parent().unwrap_or(Path::new(""));
    let mut vms: Vec<WaveVm> = Vec::with_capacity(file.vm.len());
    for (i, entry) in file.vm.into_iter().enumerate() {
        let written: Vec<String> = match entry.source {
            Sources::One(s) => vec![s],
            Sources::Many(list) => list,
        };
        let label = format!("vm {}", i + 1);
        if written.is_empty() || written.iter().any(|s| s.trim().is_empty()) {
            return Err(invalid(format!("{label}: source is empty")));
        }
        let id = entry.name.clone().unwrap_or_else(|| written[0].clone());
        if let Some(other) = vms.iter().position(|v| v.id == id) {
            return Err(invalid(format!(
                "{label}: '{id}' is listed already (vm {}); give each VM its own name",
                other + 1
            )));
        }
        let options = merge(&file.defaults, entry.options);
        check_options(&options).map_err(|why| invalid(format!("{label} ({id}): {why}")))?;
        vms.push(WaveVm {
            id,
            name: entry.name,
            sources: written.iter().map(|s| base.join(s)).collect(),
            options,
        });
    }
    Ok(Inventory {
        path: path.to_path_buf(),
        vms,
    })
}

/// A TOML error on one line, with its line number when it has one.
fn one_line_toml_error(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map_or(0, |before| before.matches('\n').count())
                + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

/// Refuses keys the inventory format does not have, naming where they are.
fn check_keys(table: &toml::Table) -> Result<(), String> {
    let unknown = |key: &str, place: &str, known: &[&str]| {
        format!("{place}: unknown key `{key}` (known: {})", known.join(", "))
    };
    for key in table.keys() {
        if key != "defaults" && key != "vm" {
            return Err(unknown(key, "top level", &["defaults", "vm"]));
        }
    }
    if let Some(defaults) = table.get("defaults").and_then(toml::Value::as_table) {
        if let Some(key) = defaults.keys().find(|k| !OPTION_KEYS.contains(&k.as_str())) {
            return Err(unknown(key, "[defaults]", &OPTION_KEYS));
        }
    }
    let vm_keys: Vec<&str> = ["source", "name"].into_iter().chain(OPTION_KEYS).collect();
    let vms = table.get("vm").and_then(toml::Value::as_array);
    for (i, vm) in vms.into_iter().flatten().enumerate() {
        if let Some(key) = vm
            .as_table()
            .and_then(|t| t.keys().find(|k| !vm_keys.contains(&k.as_str())))
        {
            return Err(unknown(key, &format!("vm {}", i + 1), &vm_keys));
        }
    }
    Ok(())
}

/// `vm`'s options, each unset one taken from `defaults`.
fn merge(defaults: &VmOptions, vm: VmOptions) -> VmOptions {
    VmOptions {
        format: vm.format.or(defaults.format),
        network: vm.network.or_else(|| defaults.network.clone()),
        network_map: vm.network_map.or_else(|| defaults.network_map.clone()),
        fixups: vm.fixups.or(defaults.fixups),
        verify: vm.verify.or(defaults.verify),
        define: vm.define.or(defaults.define),
        start: vm.start.or(defaults.start),
        connect: vm.connect.or_else(|| defaults.connect.clone()),
        pool: vm.pool.or_else(|| defaults.pool.clone()),
        virt_type: vm.virt_type.or(defaults.virt_type),
    }
}

fn check_options(o: &VmOptions) -> Result<(), String> {
    network_map(o)?;
    if let Some(n) = &o.network {
        NetTarget::parse(n).map_err(|e| format!("network '{n}': {e}"))?;
    }
    let defines = o.define.unwrap_or(false) || o.start.unwrap_or(false);
    if o.pool.is_some() && !defines {
        return Err("pool needs define (the pool belongs to the libvirt host)".into());
    }
    Ok(())
}

fn network_map(o: &VmOptions) -> Result<Vec<(String, NetTarget)>, String> {
    let mut out = Vec::new();
    for entry in o.network_map.iter().flatten() {
        let (from, to) = entry
            .split_once('=')
            .ok_or_else(|| format!("network_map '{entry}': expected SOURCE=TARGET"))?;
        let to = NetTarget::parse(to).map_err(|e| format!("network_map '{entry}': {e}"))?;
        out.push((from.to_string(), to));
    }
    Ok(out)
}

impl WaveVm {
    /// The `ferry v2v` options this VM runs with.
    pub fn v2v_options(&self, out_dir: &Path, jobs: usize) -> V2vOptions {
        let o = &self.options;
        let defaults = V2vOptions::default();
        let start = o.start.unwrap_or(false);
        V2vOptions {
            out_dir: out_dir.to_path_buf(),
            name: self.name.clone(),
            output_format: match o.format {
                Some(FormatName::Raw) => OutputFormat::Raw,
                Some(FormatName::Qcow2) | None => OutputFormat::Qcow2,
            },
            // Checked by `parse`.
            network_map: network_map(o).unwrap_or_default(),
            default_network: o
                .network
                .as_deref()
                .and_then(|n| NetTarget::parse(n).ok())
                .unwrap_or(defaults.default_network),
            fixups: o.fixups.unwrap_or(true),
            verify: o.verify.unwrap_or(true),
            dry_run: false,
            virt_type: o.virt_type.map(|t| match t {
                VirtTypeName::Kvm => VirtType::Kvm,
                VirtTypeName::Qemu => VirtType::Qemu,
            }),
            define: (o.define.unwrap_or(false) || start).then(|| DefineOptions {
                uri: o
                    .connect
                    .clone()
                    .unwrap_or_else(|| "qemu:///system".to_string()),
                start,
                pool: o.pool.clone(),
                migrate_to: None,
            }),
            jobs: jobs.max(1),
            cancel: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Inventory, String> {
        parse(text, Path::new("/exports/wave1.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_merge_and_relative_sources_follow_the_inventory() {
        let inv = parsed(
            "[defaults]\nverify = false\nnetwork = \"bridge:br0\"\n\n\
             [[vm]]\nsource = \"web01/web01.vmx\"\n\n\
             [[vm]]\nsource = [\"/abs/db-1.vmdk\", \"db-2.vmdk\"]\nname = \"db01\"\nverify = true\n",
        )
        .unwrap();
        assert_eq!(inv.vms.len(), 2);
        let web = &inv.vms[0];
        assert_eq!(web.id, "web01/web01.vmx");
        assert_eq!(web.sources, [PathBuf::from("/exports/web01/web01.vmx")]);
        let opts = web.v2v_options(Path::new("/out"), 4);
        assert!(!opts.verify && opts.fixups && opts.define.is_none());
        assert_eq!(opts.default_network, NetTarget::Bridge("br0".into()));
        let db = &inv.vms[1];
        assert_eq!(db.id, "db01");
        assert_eq!(
            db.sources,
            [
                PathBuf::from("/abs/db-1.vmdk"),
                PathBuf::from("/exports/db-2.vmdk")
            ]
        );
        assert!(db.v2v_options(Path::new("/out"), 4).verify);
    }

    #[test]
    fn start_implies_define_with_the_default_uri() {
        let inv = parsed("[[vm]]\nsource = \"a.vmx\"\nstart = true\n").unwrap();
        let define = inv.vms[0].v2v_options(Path::new("/o"), 1).define.unwrap();
        assert!(define.start);
        assert_eq!(define.uri, "qemu:///system");
    }

    #[test]
    fn bad_inventories_are_one_line_errors_naming_the_file() {
        for (text, expect) in [
            ("", "lists no VM"),
            ("[[vm]]\nname = \"x\"\n", "missing field `source`"),
            (
                "[[vm]]\nsource = \"a\"\nverfy = false\n",
                "vm 1: unknown key `verfy`",
            ),
            (
                "[defaults]\nsource = \"a\"\n[[vm]]\nsource = \"b\"\n",
                "[defaults]: unknown key `source`",
            ),
            ("vms = 1\n", "top level: unknown key `vms`"),
            ("[[vm]]\nsource = []\n", "vm 1: source is empty"),
            (
                "[[vm]]\nsource = \"a\"\nname = \"x\"\n[[vm]]\nsource = \"b\"\nname = \"x\"\n",
                "vm 2: 'x' is listed already (vm 1)",
            ),
            (
                "[[vm]]\nsource = \"a\"\nformat = \"vdi\"\n",
                "unknown variant `vdi`",
            ),
            (
                "[[vm]]\nsource = \"a\"\nnetwork_map = [\"nope\"]\n",
                "vm 1 (a): network_map 'nope': expected SOURCE=TARGET",
            ),
            (
                "[[vm]]\nsource = \"a\"\npool = \"p\"\n",
                "pool needs define",
            ),
            ("[[vm]\nsource = \"a\"\n", "line 1: "),
            ("[[vm]]\nsource = \"a\"\nfixups = \"no\"\n", "invalid type"),
        ] {
            let err = parsed(text).unwrap_err();
            assert!(err.starts_with("/exports/wave1.toml: "), "{err}");
            assert!(err.contains(expect), "{text:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
