//! ext2/3/4 backend (in progress).
