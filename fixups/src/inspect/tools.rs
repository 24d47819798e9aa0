//! Guest tools (stub).
use serde::Serialize;

use super::read::Reader;
use super::InspectError;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GuestTool {
    pub name: String,
    pub evidence: Vec<String>,
}

pub fn read(_r: &Reader<'_>) -> Result<Vec<GuestTool>, InspectError> {
    Ok(Vec::new())
}
