//! Adapter from our [`BlockDevice`] to `rust-fs-ext4`'s device trait.
//!
//! The driver reads and writes through `&self` at byte offsets relative to the start of
//! the filesystem, which is exactly a byte range; the range enforces the partition's
//! bounds, so a hostile superblock cannot make the driver touch bytes outside it.

use std::sync::Arc;

use fs_ext4::block_io::BlockDevice as DriverDevice;

use crate::blockdev::BlockDevice;

/// A byte range seen as a `rust-fs-ext4` device.
pub(super) struct RangeDevice {
    range: Arc<dyn BlockDevice>,
    writable: bool,
}

impl RangeDevice {
    pub(super) fn new(range: Arc<dyn BlockDevice>, writable: bool) -> Self {
        let writable = writable && range.is_writable();
        Self { range, writable }
    }
}

impl DriverDevice for RangeDevice {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> fs_ext4::Result<()> {
        Ok(self.range.read_at(buf, offset)?)
    }

    fn size_bytes(&self) -> u64 {
        self.range.size()
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> fs_ext4::Result<()> {
        if !self.writable {
            return Err(fs_ext4::Error::ReadOnly);
        }
        Ok(self.range.write_at(buf, offset)?)
    }

    fn flush(&self) -> fs_ext4::Result<()> {
        if self.writable {
            self.range.flush()?;
        }
        Ok(())
    }

    fn is_writable(&self) -> bool {
        self.writable
    }
}
