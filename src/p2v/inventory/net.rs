//! Network interfaces from `/sys/class/net`.

use std::fs;
use std::path::Path;

use super::{read_attr, PhysicalNic, SysRoot};

/// Every interface but the loopback, sorted by name so reports are stable.
pub(super) fn nics(root: &SysRoot, warnings: &mut Vec<String>) -> Vec<PhysicalNic> {
    let class = root.join("sys/class/net");
    let entries = match fs::read_dir(&class) {
        Ok(entries) => entries,
        Err(e) => {
            warnings.push(format!(
                "could not list network interfaces in {} ({e}): none given",
                class.display()
            ));
            return Vec::new();
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lo")
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| nic(&class.join(&name), name))
        .collect()
}

fn nic(dir: &Path, name: String) -> PhysicalNic {
    // Bridges, bonds, veth, tun and the like have no backing `device`.
    let is_physical = dir.join("device").symlink_metadata().is_ok();
    PhysicalNic {
        mac: read_attr(&dir.join("address"))
            .unwrap_or_default()
            .to_ascii_lowercase(),
        driver: link_name(&dir.join("device/driver")),
        // Reading `speed` fails (EINVAL) on a link that is down; -1 (or its unsigned
        // form) means unknown.
        speed_mbps: read_attr(&dir.join("speed"))
            .and_then(|s| s.parse::<u32>().ok())
            .filter(|s| *s > 0 && *s != u32::MAX),
        is_physical,
        name,
    }
}

/// The last component of a symlink's target: `…/drivers/e1000e` → `e1000e`.
fn link_name(link: &Path) -> Option<String> {
    let target = fs::read_link(link).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}
