//! `ferry p2v`: image a physical machine and run it as a KVM guest.

pub mod inventory;
