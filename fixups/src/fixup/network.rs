//! Placeholder until this fixup lands.

use super::{FixupError, GuestContext, GuestFixup, Plan};

pub struct Network;

impl GuestFixup for Network {
    fn id(&self) -> &'static str {
        "network"
    }

    fn description(&self) -> &'static str {
        "NIC names pinned to their MACs; stale persistent-net rules cleared"
    }

    fn plan(&self, _ctx: &GuestContext<'_>) -> Result<Plan, FixupError> {
        Ok(Plan::Skip("not implemented yet".to_string()))
    }
}
