//! Logical CPUs and how they split into sockets, cores and threads.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use vmdesc::Topology;

use super::{read_attr, SysRoot};

/// Guards against a garbled `online` list ("0-4294967295") allocating without bound.
const MAX_CPUS: u32 = 1 << 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Cpus {
    pub vcpus: u32,
    /// Only when sockets × cores × threads accounts for every vCPU.
    pub topology: Option<Topology>,
}

/// Where a logical CPU sits: its package and a key naming its core.
type Place = (i64, String);

pub(super) fn cpus(root: &SysRoot, warnings: &mut Vec<String>) -> Cpus {
    let cpuinfo = fs::read_to_string(root.join("proc/cpuinfo")).ok();
    let cpuinfo = cpuinfo.as_deref().map(cpuinfo_entries).unwrap_or_default();
    let online = online_cpus(root, &cpuinfo, warnings);
    let vcpus = count(online.len());
    let places = sysfs_places(root, &online).or_else(|| cpuinfo_places(&cpuinfo, &online));
    let topology = match places.map(|p| uniform_topology(&p, vcpus)) {
        Some(Ok(t)) => Some(t),
        Some(Err(why)) => {
            warnings.push(format!(
                "CPU topology not uniform ({why}): {vcpus} vCPUs given without sockets/cores/threads"
            ));
            None
        }
        None => {
            warnings.push(format!(
                "CPU topology not readable from sysfs or /proc/cpuinfo: {vcpus} vCPUs given \
                 without sockets/cores/threads"
            ));
            None
        }
    };
    Cpus { vcpus, topology }
}

/// Online CPU numbers; never empty, since a guest needs at least one.
fn online_cpus(root: &SysRoot, cpuinfo: &[CpuinfoEntry], warnings: &mut Vec<String>) -> Vec<u32> {
    let path = root.join("sys/devices/system/cpu/online");
    if let Some(list) = read_attr(&path).and_then(|s| parse_cpu_list(&s)) {
        return list;
    }
    let processors: Vec<u32> = cpuinfo.iter().filter_map(|e| e.processor).collect();
    if !processors.is_empty() {
        warnings.push(format!(
            "could not read {}: counted the processors in /proc/cpuinfo",
            path.display()
        ));
        return processors;
    }
    warnings.push(format!(
        "could not read {} or /proc/cpuinfo: assumed 1 vCPU",
        path.display()
    ));
    vec![0]
}

/// A kernel CPU list ("0-3,6"); `None` when empty or malformed.
pub(super) fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?),
            None => {
                let n = part.trim().parse::<u32>().ok()?;
                (n, n)
            }
        };
        if first > last || last - first >= MAX_CPUS || cpus.len() >= MAX_CPUS as usize {
            return None;
        }
        cpus.extend(first..=last);
    }
    (!cpus.is_empty()).then_some(cpus)
}

/// Package and core of each online CPU from sysfs; `None` when any is missing.
fn sysfs_places(root: &SysRoot, online: &[u32]) -> Option<Vec<Place>> {
    let cpu_dir = root.join("sys/devices/system/cpu");
    online
        .iter()
        .map(|n| {
            let topo = cpu_dir.join(format!("cpu{n}/topology"));
            // ARM reports -1 for an unknown package; that still groups CPUs consistently.
            let package = read_attr(&topo.join("physical_package_id"))?.parse().ok()?;
            // The sibling list names a core uniquely across dies and packages, where
            // `core_id` may repeat; `core_id` is the fallback for old kernels.
            let core = read_attr(&topo.join("thread_siblings_list"))
                .or_else(|| read_attr(&topo.join("core_id")).map(|c| format!("id {c}")))?;
            Some((package, core))
        })
        .collect()
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct CpuinfoEntry {
    pub processor: Option<u32>,
    pub physical_id: Option<i64>,
    pub core_id: Option<String>,
}

/// The per-processor blocks of `/proc/cpuinfo` (x86 has `physical id` and `core id`).
pub(super) fn cpuinfo_entries(text: &str) -> Vec<CpuinfoEntry> {
    text.split("\n\n")
        .map(|block| {
            let mut entry = CpuinfoEntry::default();
            for (key, value) in block.lines().filter_map(|l| l.split_once(':')) {
                let value = value.trim();
                match key.trim() {
                    "processor" => entry.processor = value.parse().ok(),
                    "physical id" => entry.physical_id = value.parse().ok(),
                    "core id" => entry.core_id = Some(format!("id {value}")),
                    _ => {}
                }
            }
            entry
        })
        .filter(|e| e.processor.is_some())
        .collect()
}

fn cpuinfo_places(entries: &[CpuinfoEntry], online: &[u32]) -> Option<Vec<Place>> {
    online
        .iter()
        .map(|n| {
            let e = entries.iter().find(|e| e.processor == Some(*n))?;
            Some((e.physical_id?, e.core_id.clone()?))
        })
        .collect()
}

/// Sockets × cores × threads when every socket has as many cores and every core as many
/// threads; otherwise (hybrid CPUs, CPUs taken offline) why not.
pub(super) fn uniform_topology(places: &[Place], vcpus: u32) -> Result<Topology, String> {
    let mut sockets: BTreeMap<i64, BTreeMap<&str, u32>> = BTreeMap::new();
    for (package, core) in places {
        *sockets
            .entry(*package)
            .or_default()
            .entry(core.as_str())
            .or_default() += 1;
    }
    let core_counts: BTreeSet<usize> = sockets.values().map(BTreeMap::len).collect();
    let thread_counts: BTreeSet<u32> = sockets.values().flat_map(|s| s.values().copied()).collect();
    if core_counts.len() > 1 {
        return Err(format!("sockets have {} cores", either(&core_counts)));
    }
    if thread_counts.len() > 1 {
        return Err(format!("cores have {} threads", either(&thread_counts)));
    }
    let (Some(&cores), Some(&threads)) = (core_counts.first(), thread_counts.first()) else {
        return Err("no CPUs".to_string());
    };
    let topology = Topology {
        sockets: count(sockets.len()),
        cores: count(cores),
        threads,
    };
    let product = u64::from(topology.sockets) * u64::from(topology.cores) * u64::from(threads);
    if product != u64::from(vcpus) {
        return Err(format!(
            "{} sockets × {} cores × {threads} threads is not {vcpus}",
            topology.sockets, topology.cores
        ));
    }
    Ok(topology)
}

/// "1 or 2" for a message.
fn either<T: std::fmt::Display>(values: &BTreeSet<T>) -> String {
    let shown: Vec<String> = values.iter().map(T::to_string).collect();
    shown.join(" or ")
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
