//! Every libvirt call, file lookup and network probe preflight makes, in one place. Each
//! answer, or the reason there is none, becomes a fact; nothing here judges.

use std::path::Path;

use virt::domain::Domain;
use virt::error::{Error as VirtError, ErrorNumber};
use virt::interface::Interface;
use virt::network::Network;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::sys;

use super::addr::{is_local_host, local_fs_type, probe, resolve, uri_host};
use super::checks::network::probe_target;
use super::domxml::{parse_caps, parse_domain};
use super::facts::{
    AllFacts, CpuVerdict, DestDomain, DestFacts, DiskPlace, DomainFacts, Fact, HostFacts, NetFacts,
    PortProbe, Presence,
};
use crate::error::one_line;
use crate::migrate::request::{MigrateRequest, MoveKind};
use crate::Connection;

fn text(e: &VirtError) -> String {
    one_line(e.message())
}

/// The virt crate panics on strings with interior NULs; such names cannot exist in
/// libvirt's XML anyway, so they are simply not looked up.
fn has_nul(s: &str) -> bool {
    s.contains('\0')
}

pub(crate) fn gather(src: &Connection, dest: &Connection, req: &MigrateRequest) -> AllFacts {
    let src_facts = host_facts(src);
    let dest_facts = host_facts(dest);
    let domain = domain_facts(src, req);
    let at_dest = match &domain {
        Ok(dom) => destination(dest, &dest_facts, src_facts.local, dom),
        Err(_) => DestFacts::default(),
    };
    let net = net_facts(req, &dest_facts);
    AllFacts {
        src: src_facts,
        dest: dest_facts,
        domain,
        at_dest,
        net,
    }
}

pub(crate) fn host_facts(c: &Connection) -> HostFacts {
    let conn = &c.conn;
    HostFacts {
        uri: c.uri().to_string(),
        local: is_local_host(&uri_host(c.uri())),
        alive: conn.is_alive().map_err(|e| text(&e)),
        hostname: conn.get_hostname().map_err(|e| text(&e)),
        hv_type: conn.get_type().map_err(|e| text(&e)),
        lib_version: conn.get_lib_version().map_err(|e| text(&e)),
        hyp_version: conn.get_hyp_version().map_err(|e| text(&e)),
        free_memory: conn.get_free_memory().map_err(|e| text(&e)),
        caps: conn
            .get_capabilities()
            .map_err(|e| text(&e))
            .and_then(|xml| parse_caps(&xml)),
        clock_offset_s: if is_local_host(&uri_host(c.uri())) {
            Some(Ok(0.0))
        } else {
            super::clock::offset_via_ssh(c.uri())
        },
    }
}

fn domain_facts(src: &Connection, req: &MigrateRequest) -> Fact<DomainFacts> {
    let name = &req.domain;
    // `state` refuses NUL-carrying names, so the direct lookups below are safe.
    let state = src.state(name).map_err(|e| e.to_string())?;
    let dom = Domain::lookup_by_name(&src.conn, name).map_err(|e| text(&e))?;
    let persistent = dom.is_persistent().map_err(|e| text(&e))?;
    // The migratable XML is what libvirt sends; an offline move sends the persistent one.
    let mut flags = sys::VIR_DOMAIN_XML_MIGRATABLE;
    if req.kind == MoveKind::Offline && persistent {
        flags |= sys::VIR_DOMAIN_XML_INACTIVE;
    }
    let xml = dom.get_xml_desc(flags).map_err(|e| text(&e))?;
    Ok(DomainFacts {
        state,
        persistent,
        def: parse_domain(&xml)?,
    })
}

fn destination(
    dest: &Connection,
    dest_host: &HostFacts,
    src_local: bool,
    dom: &DomainFacts,
) -> DestFacts {
    let def = &dom.def;
    let disks = def
        .disks
        .iter()
        .filter(|d| d.kind != "network")
        .filter_map(|d| d.source.as_deref().map(|p| (d.kind.as_str(), p)))
        .filter(|(_, p)| !has_nul(p))
        .map(|(kind, path)| {
            let mut place = if kind == "volume" {
                volume_place(dest, path)
            } else {
                path_place(dest, dest_host.local, path)
            };
            if src_local && kind == "file" {
                place.source_fs = local_fs_type(path);
            }
            place
        })
        .collect();
    let mut networks = Vec::new();
    let mut devices = Vec::new();
    for nic in &def.nics {
        let Some(source) = nic.source.as_deref().filter(|s| !has_nul(s)) else {
            continue;
        };
        match nic.kind.as_str() {
            "network" => networks.push((source.to_string(), network(dest, source))),
            "bridge" | "direct" => {
                devices.push((
                    source.to_string(),
                    net_device(dest, dest_host.local, source),
                ));
            }
            _ => {}
        }
    }
    DestFacts {
        disks,
        networks,
        devices,
        cpu: cpu_verdict(dest, dom),
        same_name: same_name(dest, &def.name),
    }
}

/// A file or block path at the destination: a storage volume there, the local
/// filesystem when the destination is this machine, or the pool that covers its
/// directory (where libvirt would create it for copy-storage).
fn path_place(dest: &Connection, dest_local: bool, path: &str) -> DiskPlace {
    let dir = Path::new(path)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pool = pool_for_dir(dest, &dir);
    if let Some(p) = &pool {
        // Files copied in behind libvirt's back show up only after a refresh.
        let _ = p.refresh(0);
    }
    let as_volume = StorageVol::lookup_by_path(&dest.conn, path).is_ok();
    let at_dest = if as_volume {
        Some(true)
    } else if dest_local {
        Some(Path::new(path).exists())
    } else if pool.is_some() {
        Some(false)
    } else {
        None
    };
    DiskPlace {
        path: path.to_string(),
        at_dest,
        dest_pool: pool.and_then(|p| p.get_name().ok()),
        source_fs: None,
    }
}

/// The active pool whose target is exactly `dir`, as libvirt's copy-storage looks it
/// up. Found by listing rather than virStoragePoolLookupByTargetPath, which not every
/// driver implements (the test driver does not).
fn pool_for_dir(dest: &Connection, dir: &str) -> Option<StoragePool> {
    let pools = dest
        .conn
        .list_all_storage_pools(sys::VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE)
        .ok()?;
    let wanted = Path::new(dir);
    pools.into_iter().find(|p| {
        p.get_xml_desc(0)
            .ok()
            .and_then(|xml| crate::xml::pool_target(&xml).ok())
            .and_then(|(_, target)| target)
            .is_some_and(|t| Path::new(&t) == wanted)
    })
}

/// A `POOL/VOLUME` disk: the pool must be active at the destination.
fn volume_place(dest: &Connection, spec: &str) -> DiskPlace {
    let (pool_name, vol) = spec.split_once('/').unwrap_or((spec, ""));
    let pool = StoragePool::lookup_by_name(&dest.conn, pool_name)
        .ok()
        .filter(|p| p.is_active().unwrap_or(false));
    let at_dest = match &pool {
        Some(p) => Some(StorageVol::lookup_by_name(p, vol).is_ok()),
        None => Some(false),
    };
    DiskPlace {
        path: spec.to_string(),
        at_dest,
        dest_pool: pool.map(|_| pool_name.to_string()),
        source_fs: None,
    }
}

fn network(dest: &Connection, name: &str) -> Presence {
    match Network::lookup_by_name(&dest.conn, name) {
        Ok(n) => match n.is_active() {
            Ok(true) => Presence::Active,
            Ok(false) => Presence::Inactive,
            Err(e) => Presence::Unknown(text(&e)),
        },
        Err(e) if e.code() == ErrorNumber::NoNetwork => Presence::Missing,
        Err(e) => Presence::Unknown(text(&e)),
    }
}

/// A bridge or macvtap parent device. libvirt's interface driver (netcf or udev) may
/// not list bridges, so only the local sysfs can say one is missing.
fn net_device(dest: &Connection, dest_local: bool, name: &str) -> Presence {
    if dest_local && !name.contains('/') {
        return if Path::new("/sys/class/net").join(name).exists() {
            Presence::Active
        } else {
            Presence::Missing
        };
    }
    match Interface::lookup_by_name(&dest.conn, name) {
        Ok(i) => match i.is_active() {
            Ok(false) => Presence::Inactive,
            _ => Presence::Active,
        },
        Err(e) if e.code() == ErrorNumber::NoInterface => {
            Presence::Unknown("not listed by the destination's interface driver".into())
        }
        Err(e) => Presence::Unknown(text(&e)),
    }
}

fn cpu_verdict(dest: &Connection, dom: &DomainFacts) -> Option<Fact<CpuVerdict>> {
    let cpu = dom.def.cpu.as_ref()?;
    if dom.def.virt_type == "qemu"
        || cpu.mode == "host-passthrough"
        || cpu.mode == "maximum"
        || has_nul(&cpu.xml)
    {
        return None;
    }
    Some(match dest.conn.compare_cpu(&cpu.xml, 0) {
        Ok(sys::VIR_CPU_COMPARE_INCOMPATIBLE) => Ok(CpuVerdict::Incompatible),
        Ok(sys::VIR_CPU_COMPARE_SUPERSET) => Ok(CpuVerdict::Superset),
        Ok(sys::VIR_CPU_COMPARE_IDENTICAL) => Ok(CpuVerdict::Identical),
        Ok(other) => Err(format!("unknown comparison result {other}")),
        Err(e) => Err(text(&e)),
    })
}

fn same_name(dest: &Connection, name: &str) -> Fact<Option<DestDomain>> {
    if has_nul(name) {
        return Ok(None);
    }
    match Domain::lookup_by_name(&dest.conn, name) {
        Ok(d) => Ok(Some(DestDomain {
            uuid: d.get_uuid_string().map_err(|e| text(&e))?,
            active: d.is_active().map_err(|e| text(&e))?,
        })),
        Err(e) if e.code() == ErrorNumber::NoDomain => Ok(None),
        Err(e) => Err(text(&e)),
    }
}

fn net_facts(req: &MigrateRequest, dest: &HostFacts) -> NetFacts {
    let moves_data = req.kind == MoveKind::Live && !req.tunnelled;
    let resolved = match (&dest.hostname, moves_data && req.migrate_uri.is_none()) {
        (Ok(name), true) => Some(resolve(name)),
        _ => None,
    };
    let host = uri_host(&req.dest_uri);
    let dest_uri_host_usable =
        !host.is_empty() && (host.parse::<std::net::IpAddr>().is_ok() || resolve(&host).is_ok());
    let probe = moves_data
        .then(|| probe_target(req, dest))
        .flatten()
        .map(|(host, port)| PortProbe {
            outcome: probe(&host, port),
            host,
            port,
        });
    NetFacts {
        resolved,
        dest_uri_host_usable,
        probe,
    }
}
