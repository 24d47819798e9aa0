//! Placeholder until this fixup lands.

use super::{FixupError, GuestContext, GuestFixup, Plan};

pub struct Initramfs;

impl GuestFixup for Initramfs {
    fn id(&self) -> &'static str {
        "initramfs"
    }

    fn description(&self) -> &'static str {
        "virtio drivers added to every bootable kernel's initramfs"
    }

    fn plan(&self, _ctx: &GuestContext<'_>) -> Result<Plan, FixupError> {
        Ok(Plan::Skip("not implemented yet".to_string()))
    }
}
