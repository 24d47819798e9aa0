//! Network configuration (stub).
use serde::Serialize;

use super::read::Reader;
use super::InspectError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetStyle {
    Ifupdown,
    Netplan,
    NetworkManager,
    Ifcfg,
    SystemdNetworkd,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NetConfig {
    pub style: NetStyle,
    pub file: String,
    pub interface: Option<String>,
    pub mac: Option<String>,
    pub method: Option<String>,
}

pub fn read(_r: &Reader<'_>) -> Result<Vec<NetConfig>, InspectError> {
    Ok(Vec::new())
}
