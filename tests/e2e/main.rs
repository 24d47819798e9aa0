//! ferry's end-to-end tests: one binary, run against real tools (qemu-img, qemu-io,
//! mkfs.ext4) and the shared corpus of images written by other projects.

#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

mod cli;
mod convert_formats;
mod corpus;
mod demo;
mod fixup;
mod guest;
mod guest_images;
mod inspect;
mod libvirtd;
mod migrate;
mod p2v;
mod separate_boot;
mod tiny_guest;
mod util;
mod v2p;
mod v2v;
mod wave;
mod xfs_guest;
