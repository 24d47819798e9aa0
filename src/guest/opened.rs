//! A guest filesystem opened on a byte range, whichever backend reads it: ext2/3/4
//! (read-write on request) or xfs (always read-only). Other kinds are named in the error.

use std::sync::Arc;

use fixups::blockdev::BlockDevice;
use fixups::guestfs::ext4::{Access, Ext4Fs};
use fixups::guestfs::xfs::XfsFs;
use fixups::guestfs::GuestFs;

use crate::layout::Filesystem;

pub enum OpenedFs {
    Ext(Ext4Fs),
    Xfs(XfsFs),
}

impl OpenedFs {
    /// Opens `range` as `kind`; `Access::ReadWrite` is honoured by ext2/3/4 only.
    pub fn open(
        range: Arc<dyn BlockDevice>,
        kind: Option<Filesystem>,
        access: Access,
    ) -> Result<Self, String> {
        match kind {
            Some(Filesystem::Ext2 | Filesystem::Ext3 | Filesystem::Ext4) => {
                Ext4Fs::open(range, access)
                    .map(OpenedFs::Ext)
                    .map_err(|e| e.to_string())
            }
            Some(Filesystem::Xfs) => XfsFs::open(range)
                .map(OpenedFs::Xfs)
                .map_err(|e| e.to_string()),
            Some(other) => Err(format!(
                "{} is not inspected (ext2/3/4 and xfs only)",
                other.name()
            )),
            None => Err("no filesystem recognised".to_string()),
        }
    }

    pub fn guest_fs(&self) -> &dyn GuestFs {
        match self {
            OpenedFs::Ext(fs) => fs,
            OpenedFs::Xfs(fs) => fs,
        }
    }

    /// Whether fixups can write to it.
    pub fn is_writable(&self) -> bool {
        matches!(self, OpenedFs::Ext(_))
    }

    pub fn label(&self) -> String {
        match self {
            OpenedFs::Ext(fs) => fs.label(),
            OpenedFs::Xfs(fs) => fs.label(),
        }
    }

    pub fn uuid(&self) -> String {
        match self {
            OpenedFs::Ext(fs) => fs.uuid(),
            OpenedFs::Xfs(fs) => fs.uuid(),
        }
    }

    /// Flushes and closes (an ext filesystem puts its superblock state back).
    pub fn close(self) -> Result<(), String> {
        match self {
            OpenedFs::Ext(fs) => fs.close().map_err(|e| e.to_string()),
            OpenedFs::Xfs(_) => Ok(()),
        }
    }
}
