//! What `ferry v2v` was handed, resolved into one [`VmDescription`] and the disks to read:
//! a `.vmx`, an OVF, an OVA (disks read in place from the tar), a Xen config, a libvirt
//! XML, or bare disks.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use converters::{DiskSource, Format, OpenOptions};
use vmdesc::detect::{read_description, Described};
use vmdesc::{DiskDevice, SourceHypervisor, VmDescription};

use super::V2vError;

/// Where one source disk's bytes are.
#[derive(Debug, Clone)]
pub enum DiskLocation {
    File {
        path: PathBuf,
        format: Option<Format>,
        /// The description naming it and its slot there (`web01.vmx`, `scsi0:0`), for
        /// errors; `None` for a bare disk.
        named_by: Option<(PathBuf, String)>,
    },
    /// A member of an OVA, read in place.
    Member {
        archive: PathBuf,
        name: String,
        offset: u64,
        size: u64,
    },
}

impl DiskLocation {
    /// How the disk is named in messages and reports.
    pub fn shown(&self) -> PathBuf {
        match self {
            DiskLocation::File { path, .. } => path.clone(),
            DiskLocation::Member { archive, name, .. } => archive.join(name),
        }
    }
}

/// A description and its disks, in the description's order (CD-ROMs and floppies are not
/// disks to convert).
pub struct Resolved {
    pub description: VmDescription,
    /// `vmx`, `ovf`, `ova`, `xen`, `libvirt` or `disks`.
    pub kind: &'static str,
    pub disks: Vec<DiskLocation>,
}

/// Reads what the user named. One description file, or any number of disks.
pub fn resolve(sources: &[PathBuf]) -> Result<Resolved, V2vError> {
    let first = sources
        .first()
        .ok_or_else(|| V2vError::Usage("no SOURCE given".into()))?;
    let described = read_description(first).map_err(|e| V2vError::BadInput(e.to_string()))?;
    match described {
        Described::Disk => {
            for extra in &sources[1..] {
                if !matches!(
                    read_description(extra).map_err(|e| V2vError::BadInput(e.to_string()))?,
                    Described::Disk
                ) {
                    return Err(V2vError::Usage(format!(
                        "{}: a VM description must be the only SOURCE; disks alone may be several",
                        extra.display()
                    )));
                }
            }
            let description = VmDescription::from_disks(sources);
            let disks = sources
                .iter()
                .map(|p| DiskLocation::File {
                    path: p.clone(),
                    format: None,
                    named_by: None,
                })
                .collect();
            Ok(Resolved {
                description,
                kind: "disks",
                disks,
            })
        }
        _ if sources.len() > 1 => Err(V2vError::Usage(format!(
            "{}: a VM description must be the only SOURCE (its disks are read from it)",
            first.display()
        ))),
        Described::Vm(description) => {
            let kind = match description.hypervisor {
                SourceHypervisor::Vmware => "vmx",
                SourceHypervisor::Ovf => "ovf",
                SourceHypervisor::Xen => "xen",
                SourceHypervisor::Libvirt => "libvirt",
                SourceHypervisor::Unknown => "description",
            };
            let disks = file_disks(first, &description)?;
            Ok(Resolved {
                description,
                kind,
                disks,
            })
        }
        Described::Ova(ova) => {
            let disks = member_disks(first, &ova)?;
            Ok(Resolved {
                description: ova.description,
                kind: "ova",
                disks,
            })
        }
    }
}

fn disk_entries(description: &VmDescription) -> impl Iterator<Item = &vmdesc::DiskDesc> {
    description
        .disks
        .iter()
        .filter(|d| d.device == DiskDevice::Disk)
}

fn file_disks(source: &Path, description: &VmDescription) -> Result<Vec<DiskLocation>, V2vError> {
    disk_entries(description)
        .map(|d| {
            let path = d.path.clone().ok_or_else(|| {
                V2vError::BadInput(format!(
                    "{}: disk {} names no file",
                    source.display(),
                    d.target
                ))
            })?;
            let format = match d.format.as_deref() {
                None => None,
                Some(name) => Some(Format::from_name(name).ok_or_else(|| {
                    V2vError::BadInput(format!(
                        "{}: disk {} has format '{name}', which ferry does not read",
                        source.display(),
                        d.target
                    ))
                })?),
            };
            Ok(DiskLocation::File {
                path,
                format,
                named_by: Some((source.to_path_buf(), d.target.clone())),
            })
        })
        .collect()
}

fn member_disks(archive: &Path, ova: &vmdesc::ova::Ova) -> Result<Vec<DiskLocation>, V2vError> {
    disk_entries(&ova.description)
        .map(|d| {
            let wanted = d
                .path
                .as_ref()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| {
                    V2vError::BadInput(format!(
                        "{}: disk {} names no file",
                        archive.display(),
                        d.target
                    ))
                })?;
            let member = ova
                .members
                .iter()
                .find(|m| m.name == wanted)
                .ok_or_else(|| {
                    V2vError::BadInput(format!(
                        "{}: disk file '{wanted}' named by the OVF is not in the archive",
                        archive.display()
                    ))
                })?;
            Ok(DiskLocation::Member {
                archive: archive.to_path_buf(),
                name: member.name.clone(),
                offset: member.offset,
                size: member.size,
            })
        })
        .collect()
}

/// Opens a disk read-only. Disks of Xen and libvirt guests without a stated format are raw
/// when they carry no other format's magic, as those hypervisors assume.
pub fn open_disk(
    location: &DiskLocation,
    hypervisor: SourceHypervisor,
) -> Result<Box<dyn DiskSource>, V2vError> {
    let bad = |e: converters::Error| V2vError::BadInput(e.to_string());
    match location {
        DiskLocation::File {
            path,
            format,
            named_by,
        } => {
            if let (Some((description, slot)), Err(e)) = (named_by, std::fs::metadata(path)) {
                let why = match e.kind() {
                    std::io::ErrorKind::NotFound => "does not exist".to_string(),
                    _ => format!("cannot be read: {e}"),
                };
                return Err(V2vError::BadInput(format!(
                    "{}: disk {slot} is {}, which {why}",
                    description.display(),
                    path.display(),
                )));
            }
            let opts = OpenOptions::default();
            match converters::open(path, *format, &opts) {
                Err(converters::Error::UnknownFormat { .. })
                    if format.is_none()
                        && matches!(
                            hypervisor,
                            SourceHypervisor::Xen | SourceHypervisor::Libvirt
                        ) =>
                {
                    converters::open(path, Some(Format::Raw), &opts).map_err(bad)
                }
                other => other.map_err(bad),
            }
        }
        DiskLocation::Member {
            archive,
            name,
            offset,
            size,
        } => {
            let file = File::open(archive).map_err(|e| {
                V2vError::BadInput(format!("{}: cannot open: {e}", archive.display()))
            })?;
            converters::member::open_window(
                &archive.join(name),
                Arc::new(file),
                *offset,
                *size,
                None,
            )
            .map_err(bad)
        }
    }
}
