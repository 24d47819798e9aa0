//! Placeholder until this fixup lands.

use super::{FixupError, GuestContext, GuestFixup, Plan};

pub struct Consoles;

impl GuestFixup for Consoles {
    fn id(&self) -> &'static str {
        "consoles"
    }

    fn description(&self) -> &'static str {
        "hvc0/xvc0 consoles moved to ttyS0 in the kernel command line, inittab and getty units"
    }

    fn plan(&self, _ctx: &GuestContext<'_>) -> Result<Plan, FixupError> {
        Ok(Plan::Skip("not implemented yet".to_string()))
    }
}
