//! Placeholder until the vhd reader lands.

use std::path::Path;

use crate::chain::ChainGuard;
use crate::error::{Error, Result};
use crate::probe::OpenOptions;
use crate::source::DiskSource;

pub fn open(
    path: &Path,
    _opts: &OpenOptions,
    _guard: &mut ChainGuard,
) -> Result<Box<dyn DiskSource>> {
    Err(Error::unsupported(
        path,
        "format vhd (reader not built yet)",
    ))
}
