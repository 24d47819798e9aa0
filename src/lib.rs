//! ferry: move machines into KVM and back out. This crate is the command line and the
//! glue between stages; disk formats live in the `converters` crate.

pub mod cli;
pub mod demo;
pub mod layout;
