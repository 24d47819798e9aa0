//! The two libvirt calls virt 0.4.3 does not wrap, made directly through virt-sys.
//! The only unsafe code in the crate; each call is a plain C call on a domain handle.
#![allow(unsafe_code)]

use virt::domain::Domain;
use virt::error::Error;
use virt::sys;

/// `virDomainAbortJob`: cancels the migration running on the source domain. The thread
/// blocked in `virDomainMigrate3` then returns an "operation aborted" error.
pub(crate) fn abort_job(dom: &Domain) -> Result<(), Error> {
    // SAFETY: `dom.as_ptr()` is the virDomainPtr that `dom` owns (a successful lookup,
    // so never null) and holds a reference on; the shared borrow keeps `dom` alive and
    // un-freed until the call returns. libvirt's domain handles are thread-safe
    // (refcounted, and the client serialises each RPC), so using the handle while another
    // thread is inside virDomainMigrate3 on it is the documented way to cancel that
    // migration. No Rust memory is passed, so nothing is aliased; the return value is
    // checked, and the error is read on this same thread (libvirt's is thread-local).
    let ret = unsafe { sys::virDomainAbortJob(dom.as_ptr()) };
    if ret < 0 {
        return Err(Error::last_error());
    }
    Ok(())
}

/// `virDomainMigrateStartPostCopy`: switches a running migration (started with
/// VIR_MIGRATE_POSTCOPY) to post-copy. The guest then resumes on the destination.
pub(crate) fn start_postcopy(dom: &Domain) -> Result<(), Error> {
    // SAFETY: as in `abort_job`: a live, owned, non-null virDomainPtr borrowed for the
    // whole call, a thread-safe libvirt handle, flags 0 (the only value libvirt defines),
    // no Rust memory passed; the return value is checked on this thread.
    let ret = unsafe { sys::virDomainMigrateStartPostCopy(dom.as_ptr(), 0) };
    if ret < 0 {
        return Err(Error::last_error());
    }
    Ok(())
}
