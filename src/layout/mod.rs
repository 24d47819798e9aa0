//! What is on a disk, read from its first sectors: the partition table (MBR via mbrman,
//! GPT via gptman) and each partition's filesystem, recognised by its superblock.

mod cursor;
pub mod filesystems;
pub mod partitions;

pub use cursor::SourceCursor;
pub use filesystems::{classify, detect_filesystem, Filesystem};
pub use partitions::{read_layout, DiskLayout, LayoutError, Partition, TableKind};
