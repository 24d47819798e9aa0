//! Listing of block-mapped (ext2/ext3, non-extent) directories.
//!
//! `rust-fs-ext4` 0.8 looks names up in such directories but its `read_dir_ino` refuses
//! them ("legacy (non-extent) dirs not yet supported"); this walks the directory's blocks
//! through the driver's own block map and entry parser instead. Bounded: at most
//! [`MAX_DIR_BLOCKS`] blocks and [`MAX_DIR_ENTRIES`] entries, whatever `i_size` claims.

use fs_ext4::dir::{DirBlockIter, DirEntry};
use fs_ext4::features::Incompat;
use fs_ext4::inode::Inode;
use fs_ext4::{Error, Filesystem, Result};

/// Largest directory listed: 64 Ki blocks (256 MiB of entries at 4 KiB blocks).
const MAX_DIR_BLOCKS: u64 = 1 << 16;
/// Most entries returned, as the driver's own cap.
const MAX_DIR_ENTRIES: usize = 1_000_000;

/// Every entry of the block-mapped directory `inode`, `.` and `..` included.
pub(super) fn read(fs: &Filesystem, inode: &Inode) -> Result<Vec<DirEntry>> {
    let block_size = u64::from(fs.sb.block_size());
    if block_size == 0 {
        return Err(Error::Corrupt("block size 0"));
    }
    let blocks = inode.size.div_ceil(block_size);
    if blocks > MAX_DIR_BLOCKS {
        return Err(Error::Corrupt("directory larger than ferry lists"));
    }
    let has_file_type = fs.sb.feature_incompat & Incompat::FILETYPE.bits() != 0;
    let mut entries = Vec::new();
    for logical in 0..blocks {
        let Some(physical) = fs.map_inode_logical(inode, logical)? else {
            continue; // a hole in a directory holds no entries
        };
        let block = fs.read_block(physical)?;
        for entry in DirBlockIter::new(&block, has_file_type) {
            if entries.len() >= MAX_DIR_ENTRIES {
                return Err(Error::Corrupt("directory has too many entries"));
            }
            entries.push(entry?);
        }
    }
    Ok(entries)
}
