//! ferry: move machines into KVM and back out. This crate is the command line and the
//! glue between stages; disk formats live in the `converters` crate.

// Test code builds fixtures with plain casts; the cast lints guard production code.
#![cfg_attr(
    test,
    allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_possible_wrap
    )
)]

pub mod cli;
pub mod demo;
pub mod guest;
pub mod layout;
pub mod p2v;
pub mod v2p;
pub mod v2v;
pub mod wave;
