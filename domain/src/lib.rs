//! A libvirt `<domain>` as a typed model, built from a [`vmdesc::VmDescription`].
