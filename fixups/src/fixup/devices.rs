//! Placeholder until this fixup lands.

use super::{FixupError, GuestContext, GuestFixup, Plan};

pub struct DeviceNames;

impl GuestFixup for DeviceNames {
    fn id(&self) -> &'static str {
        "devices"
    }

    fn description(&self) -> &'static str {
        "device names (sd*, hd*, xvd*, cciss, nvme) replaced by UUID= or the virtio name"
    }

    fn plan(&self, _ctx: &GuestContext<'_>) -> Result<Plan, FixupError> {
        Ok(Plan::Skip("not implemented yet".to_string()))
    }
}
