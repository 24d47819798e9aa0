//! Placeholder until this fixup lands.

use super::{FixupError, GuestContext, GuestFixup, Plan};

pub struct ForeignTools;

impl GuestFixup for ForeignTools {
    fn id(&self) -> &'static str {
        "tools"
    }

    fn description(&self) -> &'static str {
        "VMware and Xen guest tools and PV-only bits disabled"
    }

    fn plan(&self, _ctx: &GuestContext<'_>) -> Result<Plan, FixupError> {
        Ok(Plan::Skip("not implemented yet".to_string()))
    }
}
