//! libvirt through the `virt` crate.
