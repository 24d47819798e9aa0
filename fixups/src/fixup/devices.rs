//! Device names: `/dev/sda1`, `/dev/hda1`, `/dev/xvda1`, `/dev/cciss/c0d0p1` and
//! `/dev/nvme0n1p1` name disks on the source's bus; under KVM the disks are virtio-blk
//! (`/dev/vda`). Edited: `/etc/fstab` (first field), `/etc/crypttab` (second field),
//! `root=` and `resume=` on the kernel command lines of `grub.cfg`, `/etc/default/grub`,
//! BootLoaderSpec entries and `grubenv`'s `kernelopts`, and initramfs-tools'
//! `RESUME=` (`/etc/initramfs-tools/conf.d/resume`).
//!
//! # DESIGN NOTE: `UUID=` first, the virtio name second
//!
//! A partition of the disk being fixed that carries a filesystem or swap UUID is named
//! `UUID=…`: that survives any later bus change (virtio-scsi names disks `sd*` again, the
//! SATA fallback too, and V2P puts the guest on real controllers). The virtio name
//! (`/dev/vdb2` for `/dev/sdb2`: same disk order, same partition number) is used where no
//! UUID is known: partitions of other disks (the fixup sees one disk), partitions without a
//! filesystem, whole disks, and `root=` when some kernel has no initramfs (the kernel alone
//! cannot resolve `UUID=`). LVM and `/dev/mapper` names are bus-independent and kept.
//!
//! For [`Target::Physical`] there is no name to fall back on: the real controller may
//! call the disk `sda` or `nvme0n1`. Every source name, the VM's own `vd*` included,
//! becomes `UUID=` where one is known and is otherwise kept as it is, listed in the
//! fixup's notes so the user can check it on the machine.

use std::cell::RefCell;

use crate::guestfs::GuestPath;

use super::cmdline::{plan_cmdline_edits, replace_words};
use super::guestio;
use super::{Change, DiskPartition, FixupError, GuestContext, GuestFixup, Plan, Target};

pub struct DeviceNames;

/// A rewrite of one configuration file's text.
type Rewrite = fn(&Names<'_>, &str) -> String;

impl GuestFixup for DeviceNames {
    fn id(&self) -> &'static str {
        "devices"
    }

    fn description(&self, target: Target) -> &'static str {
        match target {
            Target::Kvm => {
                "device names (sd*, hd*, xvd*, cciss, nvme) replaced by UUID= or the virtio name"
            }
            Target::Physical => "device names (sd*, hd*, xvd*, vd*, cciss, nvme) replaced by UUID=",
        }
    }

    fn plan(&self, ctx: &GuestContext<'_>) -> Result<Plan, FixupError> {
        plan_names(ctx).map(|(changes, _)| Plan::Changes(changes))
    }

    fn notes(&self, ctx: &GuestContext<'_>) -> Result<Vec<String>, FixupError> {
        plan_names(ctx).map(|(_, notes)| notes)
    }
}

/// The changes, and the names kept because they could not be replaced (Physical only).
fn plan_names(ctx: &GuestContext<'_>) -> Result<(Vec<Change>, Vec<String>), FixupError> {
    let names = Names {
        partitions: ctx.partitions,
        uuid_on_cmdline: !ctx.os.kernels.is_empty()
            && ctx.os.kernels.iter().all(|k| k.initramfs.is_some()),
        target: ctx.target,
        kept: RefCell::new(Vec::new()),
    };
    let mut changes = plan_cmdline_edits(ctx.fs, ctx.os, &|args| names.fix_device_args(args))?;
    let edits: [(&str, Rewrite); 3] = [
        ("/etc/fstab", fix_fstab),
        ("/etc/crypttab", fix_crypttab),
        ("/etc/initramfs-tools/conf.d/resume", fix_resume_conf),
    ];
    for (path, fix) in edits {
        let path = GuestPath::new(path)?;
        let Some(before) = read_text_config(ctx, &path)? else {
            continue;
        };
        let text = String::from_utf8_lossy(&before);
        let after = fix(&names, &text);
        if after != text {
            changes.push(Change::WriteFile {
                path,
                before: Some(before),
                after: after.into_bytes(),
            });
        }
    }
    let notes = names
        .kept
        .into_inner()
        .into_iter()
        .map(|name| format!("{name} kept: no UUID known for it, check it on the machine"))
        .collect();
    Ok((changes, notes))
}

/// A configuration file's bytes, `None` when absent, unusable or not UTF-8 (lossy
/// decoding would rewrite the invalid bytes).
fn read_text_config(
    ctx: &GuestContext<'_>,
    path: &GuestPath,
) -> Result<Option<Vec<u8>>, FixupError> {
    let bytes = guestio::read_config(ctx.fs, path)?;
    Ok(bytes.filter(|b| std::str::from_utf8(b).is_ok()))
}

/// How device names are rewritten for this guest.
struct Names<'a> {
    partitions: &'a [DiskPartition],
    /// Whether `root=`/`resume=` may say `UUID=` (every kernel has an initramfs).
    uuid_on_cmdline: bool,
    target: Target,
    /// Source names left as they are for want of a UUID, once each, for the notes.
    /// A `RefCell` because the command line editor takes a `Fn`.
    kept: RefCell<Vec<String>>,
}

/// A disk or partition named on the source's bus.
#[derive(Debug, PartialEq, Eq)]
struct SourceDevice {
    /// 0 for the first disk (`sda`, `xvda`, `c0d0`, `nvme0n1`).
    disk: usize,
    partition: Option<u32>,
}

impl Names<'_> {
    /// The replacement for `spec` (`/dev/sda1`), or `None` to keep it.
    fn replace(&self, spec: &str, uuid_allowed: bool) -> Option<String> {
        let name = spec.strip_prefix("/dev/")?;
        let dev = match self.target {
            Target::Kvm => parse_device(name)?,
            // The VM's disks are virtio: `vda` is a source name here.
            Target::Physical => parse_device(name).or_else(|| parse_virtio(name))?,
        };
        if uuid_allowed && dev.disk == 0 {
            if let Some(uuid) = dev.partition.and_then(|n| self.uuid_of(n)) {
                return Some(format!("UUID={uuid}"));
            }
        }
        if self.target == Target::Physical {
            // No bus-independent name is known and the real controller's name is not:
            // keep it, and say so.
            let mut kept = self.kept.borrow_mut();
            if !kept.iter().any(|k| k == spec) {
                kept.push(spec.to_string());
            }
            return None;
        }
        let mut name = format!("/dev/vd{}", disk_letters(dev.disk));
        if let Some(n) = dev.partition {
            name.push_str(&n.to_string());
        }
        Some(name)
    }

    fn uuid_of(&self, number: u32) -> Option<&str> {
        self.partitions
            .iter()
            .find(|p| p.number == number)
            .filter(|p| p.kind.as_deref() != Some("LVM2_member"))
            .and_then(|p| p.uuid.as_deref())
    }

    /// Command line arguments with the devices of `root=` and `resume=` replaced.
    fn fix_device_args(&self, args: &[u8]) -> Option<Vec<u8>> {
        replace_words(args, |word| {
            let word = std::str::from_utf8(word).ok()?;
            let (key, value) = word.split_once('=')?;
            if !matches!(key, "root" | "resume") {
                return None;
            }
            let new = self.replace(value, self.uuid_on_cmdline)?;
            Some(format!("{key}={new}").into_bytes())
        })
    }
}

/// The partition of the first disk a source device name (`/dev/sda2`, `/dev/xvda2`,
/// `/dev/vda2`, `/dev/nvme0n1p2`) names, as the guest saw it; `None` for other disks,
/// whole disks and other names.
pub fn first_disk_partition(spec: &str) -> Option<u32> {
    let name = spec.strip_prefix("/dev/")?;
    let dev = match name.strip_prefix("vd") {
        Some(rest) => parse_device(&format!("sd{rest}"))?,
        None => parse_device(name)?,
    };
    (dev.disk == 0).then_some(dev.partition).flatten()
}

/// `sda1` → disk 0 partition 1; `xvdb` → disk 1; `cciss/c0d1p2`, `nvme0n1p3`. `vd*` is
/// already virtio and is not a source device.
fn parse_device(name: &str) -> Option<SourceDevice> {
    if let Some(rest) = name.strip_prefix("cciss/c0d") {
        let (disk, part) = split_number(rest)?;
        let partition = match part {
            "" => None,
            p => Some(p.strip_prefix('p')?.parse().ok()?),
        };
        return Some(SourceDevice {
            disk: usize::try_from(disk).ok()?,
            partition,
        });
    }
    if let Some(rest) = name.strip_prefix("nvme") {
        let (disk, rest) = split_number(rest)?;
        let rest = rest.strip_prefix("n1")?;
        let partition = match rest {
            "" => None,
            p => Some(p.strip_prefix('p')?.parse().ok()?),
        };
        return Some(SourceDevice {
            disk: usize::try_from(disk).ok()?,
            partition,
        });
    }
    let rest = ["xvd", "sd", "hd"]
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix))?;
    let letters_end = rest
        .find(|c: char| !c.is_ascii_lowercase())
        .unwrap_or(rest.len());
    let (letters, digits) = rest.split_at(letters_end);
    let disk = disk_index(letters)?;
    let partition = match digits {
        "" => None,
        d if d.bytes().all(|b| b.is_ascii_digit()) => Some(d.parse().ok()?),
        _ => return None,
    };
    Some(SourceDevice { disk, partition })
}

/// `vda1` → disk 0 partition 1, as [`parse_device`] reads `sda1`.
fn parse_virtio(name: &str) -> Option<SourceDevice> {
    parse_device(&format!("sd{}", name.strip_prefix("vd")?))
}

/// Leading decimal number of `s` and the rest.
fn split_number(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, rest) = s.split_at(end);
    Some((digits.parse().ok()?, rest))
}

/// `a` → 0, `z` → 25, `aa` → 26 (the kernel's `sd_format_disk_name` in reverse).
fn disk_index(letters: &str) -> Option<usize> {
    if letters.is_empty() || letters.len() > 3 {
        return None;
    }
    let mut index = 0usize;
    for b in letters.bytes() {
        index = index * 26 + usize::from(b - b'a') + 1;
    }
    index.checked_sub(1)
}

/// The inverse of [`disk_index`].
fn disk_letters(mut index: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + u8::try_from(index % 26).unwrap_or(0));
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Applies `f` to every whitespace-separated word of `text`, keeping the whitespace.
fn map_words(text: &str, mut f: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let ws = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..ws]);
        rest = &rest[ws..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..end];
        match f(word) {
            Some(new) => out.push_str(&new),
            None => out.push_str(word),
        }
        rest = &rest[end..];
    }
    out
}

/// Applies `f` to each line that is not a comment, keeping line endings.
fn map_lines(text: &str, f: impl Fn(&str) -> String) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            let body = line.trim_end_matches(['\n', '\r']);
            let ending = &line[body.len()..];
            if body.trim_start().starts_with('#') {
                line.to_string()
            } else {
                format!("{}{ending}", f(body))
            }
        })
        .collect()
}

/// Replaces field `index` (0-based, whitespace-separated) of each line when it names a
/// source device.
fn fix_field(names: &Names<'_>, text: &str, index: usize, uuid_allowed: bool) -> String {
    map_lines(text, |line| {
        let mut n = 0usize;
        map_words(line, |word| {
            let this = n;
            n += 1;
            (this == index)
                .then(|| names.replace(word, uuid_allowed))
                .flatten()
        })
    })
}

fn fix_fstab(names: &Names<'_>, text: &str) -> String {
    fix_field(names, text, 0, true)
}

/// crypttab's second field is the backing device; `UUID=` is valid there too.
fn fix_crypttab(names: &Names<'_>, text: &str) -> String {
    fix_field(names, text, 1, true)
}

/// initramfs-tools' `RESUME=/dev/sda2`.
fn fix_resume_conf(names: &Names<'_>, text: &str) -> String {
    map_lines(text, |line| {
        let Some(value) = line.trim_start().strip_prefix("RESUME=") else {
            return line.to_string();
        };
        let unquoted = value.trim_matches(['"', '\'']);
        match names.replace(unquoted, true) {
            Some(new) => line.replacen(unquoted, &new, 1),
            None => line.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixup::{apply, run_fixups, Target};
    use crate::guestfs::memfs::MemFs;
    use crate::guestfs::GuestFs;

    fn parts() -> Vec<DiskPartition> {
        vec![
            DiskPartition {
                number: 1,
                uuid: Some("1111-aaaa".into()),
                kind: Some("ext4".into()),
            },
            DiskPartition {
                number: 2,
                uuid: Some("2222-bbbb".into()),
                kind: Some("swap".into()),
            },
            DiskPartition {
                number: 3,
                uuid: Some("lvm-pv".into()),
                kind: Some("LVM2_member".into()),
            },
        ]
    }

    fn names(p: &[DiskPartition]) -> Names<'_> {
        Names {
            partitions: p,
            uuid_on_cmdline: true,
            target: Target::Kvm,
            kept: RefCell::new(Vec::new()),
        }
    }

    #[test]
    fn device_names_parse() {
        let dev = |disk, partition| Some(SourceDevice { disk, partition });
        assert_eq!(parse_device("sda1"), dev(0, Some(1)));
        assert_eq!(parse_device("hdb"), dev(1, None));
        assert_eq!(parse_device("xvda12"), dev(0, Some(12)));
        assert_eq!(parse_device("sdaa3"), dev(26, Some(3)));
        assert_eq!(parse_device("cciss/c0d0p2"), dev(0, Some(2)));
        assert_eq!(parse_device("nvme1n1p3"), dev(1, Some(3)));
        assert_eq!(parse_device("nvme0n1"), dev(0, None));
        for keep in [
            "vda1",
            "mapper/vg-root",
            "sda1x",
            "nvme0n2p1",
            "sr0",
            "md0",
            "dm-0",
        ] {
            assert_eq!(parse_device(keep), None, "{keep}");
        }
        assert_eq!(first_disk_partition("/dev/vda2"), Some(2));
        assert_eq!(first_disk_partition("/dev/xvda1"), Some(1));
        assert_eq!(first_disk_partition("/dev/sdb1"), None);
        assert_eq!(first_disk_partition("UUID=x"), None);
        for i in [0, 1, 25, 26, 27, 701, 702] {
            assert_eq!(disk_index(&disk_letters(i)), Some(i), "{i}");
        }
        assert_eq!(disk_letters(26), "aa");
    }

    #[test]
    fn fstab_gets_uuids_and_virtio_names() {
        let p = parts();
        let fstab = "# /etc/fstab\n/dev/sda1  /     ext4 errors=remount-ro 0 1\n\
                     /dev/sda2 none swap sw 0 0\n/dev/sdb1 /data xfs defaults 0 2\n\
                     /dev/mapper/vg-home /home ext4 defaults 0 2\n\
                     /dev/sda4 /srv ext4 defaults 0 2 # no uuid\n\
                     #/dev/sda1 / ext4 0 1\n";
        assert_eq!(
            fix_fstab(&names(&p), fstab),
            "# /etc/fstab\nUUID=1111-aaaa  /     ext4 errors=remount-ro 0 1\n\
             UUID=2222-bbbb none swap sw 0 0\n/dev/vdb1 /data xfs defaults 0 2\n\
             /dev/mapper/vg-home /home ext4 defaults 0 2\n\
             /dev/vda4 /srv ext4 defaults 0 2 # no uuid\n\
             #/dev/sda1 / ext4 0 1\n"
        );
    }

    #[test]
    fn command_lines_keep_everything_else() {
        let p = parts();
        let n = names(&p);
        let fix = |args: &str| {
            n.fix_device_args(args.as_bytes())
                .map(|b| String::from_utf8(b).unwrap())
        };
        assert_eq!(
            fix("/boot/vmlinuz-6.1 root=/dev/xvda1 ro resume=/dev/xvda2 console=hvc0").as_deref(),
            Some("/boot/vmlinuz-6.1 root=UUID=1111-aaaa ro resume=UUID=2222-bbbb console=hvc0")
        );
        assert_eq!(
            fix("\"resume=/dev/sda2 quiet\"").as_deref(),
            Some("\"resume=UUID=2222-bbbb quiet\"")
        );
        assert_eq!(fix("root=/dev/mapper/vg-root ro"), None);
        let no_initramfs = Names {
            partitions: &p,
            uuid_on_cmdline: false,
            target: Target::Kvm,
            kept: RefCell::new(Vec::new()),
        };
        assert_eq!(
            no_initramfs
                .fix_device_args(b"root=/dev/sda1 ro")
                .as_deref(),
            Some(&b"root=/dev/vda1 ro"[..])
        );
        assert_eq!(
            fix_resume_conf(&n, "RESUME=/dev/sda2\n"),
            "RESUME=UUID=2222-bbbb\n"
        );
        assert_eq!(
            fix_crypttab(&n, "luks /dev/sda1 none luks\n"),
            "luks UUID=1111-aaaa none luks\n"
        );
    }

    fn guest() -> MemFs {
        let fs = MemFs::new();
        fs.add_file("/etc/os-release", "ID=debian\nVERSION_ID=12\n")
            .unwrap();
        fs.add_file("/etc/fstab", "/dev/sda1 / ext4 errors=remount-ro 0 1\n")
            .unwrap();
        fs.add_file("/boot/vmlinuz-6.1.0-50-amd64", "k").unwrap();
        fs.add_file("/boot/initrd.img-6.1.0-50-amd64", "i").unwrap();
        fs.add_dir("/lib/modules/6.1.0-50-amd64").unwrap();
        fs.add_file(
            "/boot/grub/grub.cfg",
            "menuentry 'Debian' {\n\tlinux /boot/vmlinuz-6.1.0-50-amd64 root=/dev/sda1 ro\n\tinitrd /boot/initrd.img-6.1.0-50-amd64\n}\n",
        )
        .unwrap();
        fs
    }

    #[test]
    fn plan_apply_and_a_second_plan_changes_nothing() {
        let fs = guest();
        let p = parts();
        let plan = |fs: &MemFs| {
            let os = crate::inspect::inspect_filesystem(fs).unwrap().unwrap();
            let ctx = GuestContext {
                fs,
                os: &os,
                partitions: &p,
                nics: &[],
                target: Target::Kvm,
            };
            match DeviceNames.plan(&ctx).unwrap() {
                Plan::Changes(c) => c,
                Plan::Skip(why) => panic!("skipped: {why}"),
            }
        };
        let changes = plan(&fs);
        let paths: Vec<String> = changes.iter().map(|c| c.path().to_string()).collect();
        assert_eq!(paths, ["/boot/grub/grub.cfg", "/etc/fstab"]);
        apply::apply_changes(&fs, &changes).unwrap();
        let cfg = fs
            .read_file(&GuestPath::new("/boot/grub/grub.cfg").unwrap())
            .unwrap();
        assert!(String::from_utf8(cfg)
            .unwrap()
            .contains("root=UUID=1111-aaaa ro"));
        assert!(plan(&fs).is_empty());
        // The whole run reports the devices fixup as applied, then skipped on a rerun.
        let fs = guest();
        let first = run_fixups(&fs, &p, &[], Target::Kvm, true).unwrap();
        assert_eq!(first[0].id, "devices");
        assert_eq!(first[0].outcome, crate::fixup::Outcome::Applied);
        let second = run_fixups(&fs, &p, &[], Target::Kvm, true).unwrap();
        assert_eq!(second[0].outcome, crate::fixup::Outcome::Skipped);
    }

    /// Debian that ran on KVM: virtio names, one kernel without an initramfs when asked.
    fn kvm_guest(initramfs: bool) -> MemFs {
        let fs = MemFs::new();
        fs.add_file("/etc/os-release", "ID=debian\nVERSION_ID=12\n")
            .unwrap();
        fs.add_file(
            "/etc/fstab",
            "/dev/vda1 / ext4 errors=remount-ro 0 1\n/dev/vda2 none swap sw 0 0\n\
             /dev/vdb1 /data xfs defaults 0 2\n/dev/vda4 /srv ext4 defaults 0 2\n",
        )
        .unwrap();
        fs.add_file("/boot/vmlinuz-6.1.0-50-amd64", "k").unwrap();
        if initramfs {
            fs.add_file("/boot/initrd.img-6.1.0-50-amd64", "i").unwrap();
        }
        fs.add_dir("/lib/modules/6.1.0-50-amd64").unwrap();
        fs.add_file(
            "/boot/grub/grub.cfg",
            "menuentry 'Debian' {\n\tlinux /boot/vmlinuz-6.1.0-50-amd64 root=/dev/vda1 ro\n}\n",
        )
        .unwrap();
        fs
    }

    fn text_of(fs: &MemFs, path: &str) -> String {
        String::from_utf8(fs.read_file(&GuestPath::new(path).unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn physical_uses_uuids_and_keeps_the_rest_with_notes() {
        let fs = kvm_guest(true);
        let p = parts();
        let first = run_fixups(&fs, &p, &[], Target::Physical, true).unwrap();
        assert_eq!(first[0].id, "devices");
        assert_eq!(first[0].outcome, crate::fixup::Outcome::Applied);
        assert_eq!(
            text_of(&fs, "/etc/fstab"),
            "UUID=1111-aaaa / ext4 errors=remount-ro 0 1\nUUID=2222-bbbb none swap sw 0 0\n\
             /dev/vdb1 /data xfs defaults 0 2\n/dev/vda4 /srv ext4 defaults 0 2\n"
        );
        assert!(text_of(&fs, "/boot/grub/grub.cfg").contains("root=UUID=1111-aaaa ro"));
        assert_eq!(
            first[0].notes,
            [
                "/dev/vdb1 kept: no UUID known for it, check it on the machine",
                "/dev/vda4 kept: no UUID known for it, check it on the machine",
            ]
        );
        // The whole chain runs for Physical: without --mac the network is left to udev.
        let network = first.iter().find(|r| r.id == "network").unwrap();
        assert_eq!(
            network.reason.as_deref(),
            Some("no --mac given: NIC names follow the physical machine's udev rules")
        );
        // A second run changes nothing, and still says what it kept.
        let second = run_fixups(&fs, &p, &[], Target::Physical, true).unwrap();
        assert_eq!(second[0].outcome, crate::fixup::Outcome::Skipped);
        let reason = second[0].reason.clone().unwrap();
        assert!(
            reason.starts_with("nothing to change; /dev/vdb1 kept"),
            "{reason}"
        );
    }

    #[test]
    fn physical_never_writes_virtio_names() {
        // Without an initramfs the kernel cannot resolve `root=UUID=`: KVM falls back on
        // the virtio name, bare metal keeps the name and says so.
        let p = parts();
        let fs = kvm_guest(false);
        fs.remove(&GuestPath::new("/etc/fstab").unwrap()).unwrap();
        fs.add_file("/etc/fstab", "/dev/sda1 / ext4 defaults 0 1\n")
            .unwrap();
        let cfg = text_of(&fs, "/boot/grub/grub.cfg").replace("/dev/vda1", "/dev/sda1");
        fs.remove(&GuestPath::new("/boot/grub/grub.cfg").unwrap())
            .unwrap();
        fs.add_file("/boot/grub/grub.cfg", cfg.as_str()).unwrap();
        let reports = run_fixups(&fs, &p, &[], Target::Physical, true).unwrap();
        assert_eq!(
            text_of(&fs, "/etc/fstab"),
            "UUID=1111-aaaa / ext4 defaults 0 1\n"
        );
        assert_eq!(text_of(&fs, "/boot/grub/grub.cfg"), cfg);
        assert_eq!(
            reports[0].notes,
            ["/dev/sda1 kept: no UUID known for it, check it on the machine"]
        );
        // KVM on the same guest: the virtio name, no notes.
        let fs = kvm_guest(false);
        fs.remove(&GuestPath::new("/boot/grub/grub.cfg").unwrap())
            .unwrap();
        fs.add_file("/boot/grub/grub.cfg", cfg.as_str()).unwrap();
        let reports = run_fixups(&fs, &p, &[], Target::Kvm, true).unwrap();
        assert!(text_of(&fs, "/boot/grub/grub.cfg").contains("root=/dev/vda1 ro"));
        assert!(reports[0].notes.is_empty());
    }
}
