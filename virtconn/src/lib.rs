//! libvirt through the `virt` crate: ferry's only door to a hypervisor.
//!
//! DESIGN: one [`Connection`] wraps one read-write `virConnect`. Every call looks its
//! domain or pool up by name, does one thing and maps any libvirt failure into
//! [`ConnError`], whose messages are one line and name the URI, so a user who sees only
//! the message knows which daemon said no and what to try next. Facts about domains
//! (name, UUID, interfaces, pool paths, capabilities) come from libvirt's XML, parsed
//! with roxmltree, rather than from extra libvirt calls that not every driver offers.
//! [`Connection::define`] never overwrites: libvirt would silently replace a domain with
//! the same name and UUID, and a conversion must not clobber a machine already there.
//! (The check and the define are two calls; a domain defined by someone else in between
//! is not caught.) virt 0.4.3 marks its handles `Send + Sync`
//! (libvirt connections are thread-safe), so a migration's worker and its job-stats
//! poller share one connection.
//! There are no `virsh` subprocesses here; the e2e tests use their own libvirtd.

mod classify;
mod connection;
mod error;
pub mod migrate;
mod model;
mod xml;

pub use connection::Connection;
pub use error::ConnError;
pub use model::{DomainInfo, DomainState, InterfaceInfo, VirtTypeSupport};
