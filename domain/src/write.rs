//! The XML writer: walks a [`Domain`] and emits libvirt's `<domain>` through
//! quick-xml's `Writer`, which escapes every attribute value and text node. No markup
//! is ever assembled from strings here.
//!
//! Element order follows what `virsh dumpxml` prints, so a define/dumpxml round trip
//! is easy to diff.

use std::io::{self, Write};

use quick_xml::events::BytesText;
use quick_xml::Writer;

use crate::model::{Bus, ClockOffset, Disk, Firmware, Interface, NicModel};
use crate::{Domain, NetTarget};

type W<T> = Writer<T>;

impl Domain {
    /// The domain as libvirt XML, ready for `virsh define`.
    pub fn to_xml(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = self.write_xml(&mut buf) {
            // A Vec<u8> sink has no failure mode, so this cannot happen.
            unreachable!("writing XML to memory failed: {e}");
        }
        // Everything written came from `&str`s, so the bytes are UTF-8.
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Writes the domain XML, indented by two spaces, with a final newline.
    pub fn write_xml<T: Write>(&self, out: T) -> io::Result<()> {
        let mut w = Writer::new_with_indent(out, b' ', 2);
        w.create_element("domain")
            .with_attribute(("type", self.virt_type.as_str()))
            .write_inner_content(|w| self.write_body(w))?;
        w.get_mut().write_all(b"\n")
    }

    fn write_body<T: Write>(&self, w: &mut W<T>) -> io::Result<()> {
        text(w, "name", &self.name)?;
        if let Some(uuid) = &self.uuid {
            text(w, "uuid", uuid)?;
        }
        w.create_element("memory")
            .with_attribute(("unit", "KiB"))
            .write_text_content(BytesText::new(&self.memory_kib.to_string()))?;
        w.create_element("currentMemory")
            .with_attribute(("unit", "KiB"))
            .write_text_content(BytesText::new(&self.current_memory_kib.to_string()))?;
        w.create_element("vcpu")
            .with_attribute(("placement", "static"))
            .write_text_content(BytesText::new(&self.vcpus.to_string()))?;
        self.write_os(w)?;
        self.write_features(w)?;
        self.write_cpu(w)?;
        let offset = match self.clock {
            ClockOffset::Utc => "utc",
            ClockOffset::Localtime => "localtime",
        };
        w.create_element("clock")
            .with_attribute(("offset", offset))
            .write_empty()?;
        text(w, "on_poweroff", "destroy")?;
        text(w, "on_reboot", "restart")?;
        text(w, "on_crash", "destroy")?;
        w.create_element("devices")
            .write_inner_content(|w| self.write_devices(w))?;
        Ok(())
    }

    fn write_os<T: Write>(&self, w: &mut W<T>) -> io::Result<()> {
        let mut os = w.create_element("os");
        // Firmware autoselection: libvirt picks the OVMF build and NVRAM template that
        // offer the requested features, so no host-specific loader path is written.
        if let Firmware::Efi { .. } = self.os.firmware {
            os = os.with_attribute(("firmware", "efi"));
        }
        os.write_inner_content(|w| {
            w.create_element("type")
                .with_attributes([("arch", "x86_64"), ("machine", self.os.machine.as_str())])
                .write_text_content(BytesText::new("hvm"))?;
            if let Firmware::Efi { secure_boot } = self.os.firmware {
                let enabled = if secure_boot { "yes" } else { "no" };
                w.create_element("firmware").write_inner_content(|w| {
                    for name in ["secure-boot", "enrolled-keys"] {
                        w.create_element("feature")
                            .with_attributes([("enabled", enabled), ("name", name)])
                            .write_empty()?;
                    }
                    Ok(())
                })?;
            }
            // One boot order for all guests: the first hard disk. Per-device
            // `<boot order>` would conflict with this, so it is never written.
            w.create_element("boot")
                .with_attribute(("dev", "hd"))
                .write_empty()?;
            Ok(())
        })?;
        Ok(())
    }

    fn write_features<T: Write>(&self, w: &mut W<T>) -> io::Result<()> {
        w.create_element("features").write_inner_content(|w| {
            w.create_element("acpi").write_empty()?;
            w.create_element("apic").write_empty()?;
            if self.os.smm() {
                w.create_element("smm")
                    .with_attribute(("state", "on"))
                    .write_empty()?;
            }
            Ok(())
        })?;
        Ok(())
    }

    fn write_cpu<T: Write>(&self, w: &mut W<T>) -> io::Result<()> {
        let topology = self.cpu.topology;
        if !self.cpu.host_model && topology.is_none() {
            // TCG with nothing to say: libvirt's default CPU model is right.
            return Ok(());
        }
        let mut cpu = w.create_element("cpu");
        if self.cpu.host_model {
            cpu = cpu.with_attribute(("mode", "host-model"));
        }
        let Some(t) = topology else {
            cpu.write_empty()?;
            return Ok(());
        };
        cpu.write_inner_content(|w| {
            w.create_element("topology")
                .with_attributes([
                    ("sockets", t.sockets.to_string().as_str()),
                    ("cores", t.cores.to_string().as_str()),
                    ("threads", t.threads.to_string().as_str()),
                ])
                .write_empty()?;
            Ok(())
        })?;
        Ok(())
    }

    fn write_devices<T: Write>(&self, w: &mut W<T>) -> io::Result<()> {
        for disk in &self.disks {
            write_disk(w, disk)?;
        }
        for nic in &self.interfaces {
            write_interface(w, nic)?;
        }
        self.write_console(w)?;
        if self.virtio {
            // libvirt fills in the socket path itself.
            w.create_element("channel")
                .with_attribute(("type", "unix"))
                .write_inner_content(|w| {
                    w.create_element("target")
                        .with_attributes([("type", "virtio"), ("name", "org.qemu.guest_agent.0")])
                        .write_empty()?;
                    Ok(())
                })?;
        }
        // Listen on loopback only: a converted guest's console is not for the network.
        w.create_element("graphics")
            .with_attributes([("type", "vnc"), ("port", "-1"), ("autoport", "yes")])
            .write_inner_content(|w| {
                w.create_element("listen")
                    .with_attributes([("type", "address"), ("address", "127.0.0.1")])
                    .write_empty()?;
                Ok(())
            })?;
        let (video, balloon) = if self.virtio {
            ("virtio", "virtio")
        } else {
            ("vga", "none")
        };
        w.create_element("video").write_inner_content(|w| {
            w.create_element("model")
                .with_attribute(("type", video))
                .write_empty()?;
            Ok(())
        })?;
        w.create_element("memballoon")
            .with_attribute(("model", balloon))
            .write_empty()?;
        if self.virtio {
            w.create_element("rng")
                .with_attribute(("model", "virtio"))
                .write_inner_content(|w| {
                    w.create_element("backend")
                        .with_attribute(("model", "random"))
                        .write_text_content(BytesText::new("/dev/urandom"))?;
                    Ok(())
                })?;
        }
        Ok(())
    }

    fn write_console<T: Write>(&self, w: &mut W<T>) -> io::Result<()> {
        w.create_element("serial")
            .with_attribute(("type", "pty"))
            .write_inner_content(|w| {
                if let Some(log) = &self.serial.log {
                    w.create_element("log")
                        .with_attributes([("file", log.as_str()), ("append", "on")])
                        .write_empty()?;
                }
                w.create_element("target")
                    .with_attribute(("port", "0"))
                    .write_empty()?;
                Ok(())
            })?;
        w.create_element("console")
            .with_attribute(("type", "pty"))
            .write_inner_content(|w| {
                w.create_element("target")
                    .with_attributes([("type", "serial"), ("port", "0")])
                    .write_empty()?;
                Ok(())
            })?;
        Ok(())
    }
}

fn text<T: Write>(w: &mut W<T>, name: &str, value: &str) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

fn bus_name(bus: Bus) -> &'static str {
    match bus {
        Bus::Virtio => "virtio",
        Bus::Sata => "sata",
    }
}

fn write_disk<T: Write>(w: &mut W<T>, disk: &Disk) -> io::Result<()> {
    match disk {
        Disk::Disk {
            source,
            format,
            target,
            bus,
            read_only,
        } => {
            w.create_element("disk")
                .with_attributes([("type", "file"), ("device", "disk")])
                .write_inner_content(|w| {
                    // cache='none' keeps the domain migratable; no io='native',
                    // which needs O_DIRECT and fails on tmpfs.
                    w.create_element("driver")
                        .with_attributes([
                            ("name", "qemu"),
                            ("type", format.as_str()),
                            ("cache", "none"),
                            ("discard", "unmap"),
                        ])
                        .write_empty()?;
                    w.create_element("source")
                        .with_attribute(("file", source.as_str()))
                        .write_empty()?;
                    w.create_element("target")
                        .with_attributes([("dev", target.as_str()), ("bus", bus_name(*bus))])
                        .write_empty()?;
                    if *read_only {
                        w.create_element("readonly").write_empty()?;
                    }
                    Ok(())
                })?;
        }
        Disk::Cdrom { target, bus } => {
            w.create_element("disk")
                .with_attributes([("type", "file"), ("device", "cdrom")])
                .write_inner_content(|w| {
                    w.create_element("driver")
                        .with_attributes([("name", "qemu"), ("type", "raw")])
                        .write_empty()?;
                    w.create_element("target")
                        .with_attributes([("dev", target.as_str()), ("bus", bus_name(*bus))])
                        .write_empty()?;
                    w.create_element("readonly").write_empty()?;
                    Ok(())
                })?;
        }
    }
    Ok(())
}

fn write_interface<T: Write>(w: &mut W<T>, nic: &Interface) -> io::Result<()> {
    let (kind, source) = match &nic.target {
        NetTarget::Network(name) => ("network", Some(("network", name.as_str()))),
        NetTarget::Bridge(name) => ("bridge", Some(("bridge", name.as_str()))),
        NetTarget::User => ("user", None),
    };
    let model = match nic.model {
        NicModel::Virtio => "virtio",
        NicModel::E1000 => "e1000",
    };
    w.create_element("interface")
        .with_attribute(("type", kind))
        .write_inner_content(|w| {
            if let Some(mac) = &nic.mac {
                w.create_element("mac")
                    .with_attribute(("address", mac.as_str()))
                    .write_empty()?;
            }
            if let Some(attr) = source {
                w.create_element("source")
                    .with_attribute(attr)
                    .write_empty()?;
            }
            w.create_element("model")
                .with_attribute(("type", model))
                .write_empty()?;
            Ok(())
        })?;
    Ok(())
}
