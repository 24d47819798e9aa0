//! A configured tree → a raw MBR disk that boots through BIOS GRUB, with no loop mount.
//!
//! ```text
//!  sector 0        1 .. (< 2048)          2048 (1 MiB) ..                      end
//!  ┌─────────────┬───────────────────────┬─────────────────────────────────────┐
//!  │ boot.img    │ core.img (grub-mkimage│ partition 1: ext4 from mkfs.ext4 -d │
//!  │ 440 B + MBR │ biosdisk part_msdos   │ (bootable, type 83)                 │
//!  │ table       │ ext2 normal linux ...)│                                     │
//!  └─────────────┴───────────────────────┴─────────────────────────────────────┘
//! ```
//!
//! `boot.img` loads `core.img` from sector 1 (its default); `core.img` carries the modules
//! it needs and reads `(hd0,msdos1)/boot/grub/grub.cfg`. GRUB's modules are also copied to
//! `/boot/grub/i386-pc` in the guest, as `grub-install` would, so an inspector finds a
//! normal BIOS GRUB layout.

use super::GRUB_I386_PC;
use crate::util::run_ok;
use std::path::Path;
use std::process::Command;

/// The whole disk; the ext4 root fills it from 1 MiB. Sparse, so it costs only what the
/// tree holds (~700 MiB), and leaves room for fixups to grow an initramfs.
pub const DISK_MIB: u64 = 2048;
const PART_START_SECTOR: u64 = 2048;

const CORE_MODULES: &[&str] = &[
    "biosdisk",
    "part_msdos",
    "ext2",
    "normal",
    "linux",
    "serial",
    "terminal",
    "echo",
    "test",
    "configfile",
    "search",
];

/// Builds `out` (raw) from `root`.
pub fn assemble(root: &Path, out: &Path) {
    copy_grub_modules(root);
    let dir = out.with_extension("parts");
    std::fs::create_dir_all(&dir).expect("create parts dir");
    let fs_image = dir.join("root.ext4");
    let fs_mib = DISK_MIB - 1;
    run_ok(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "root", "-d"])
            .arg(root)
            .arg(&fs_image)
            .arg(format!("{fs_mib}M")),
    );
    let _ = std::fs::remove_file(out);
    let f = std::fs::File::create(out).expect("create disk");
    f.set_len(DISK_MIB << 20).expect("size disk");
    drop(f);
    partition(out);
    dd(
        &fs_image,
        out,
        &format!("seek={}", PART_START_SECTOR / 2048),
        "1M",
    );
    let core = dir.join("core.img");
    run_ok(
        Command::new("grub-mkimage")
            .args(["-O", "i386-pc", "-p", "(hd0,msdos1)/boot/grub", "-o"])
            .arg(&core)
            .args(CORE_MODULES),
    );
    let core_len = std::fs::metadata(&core).expect("core.img").len();
    assert!(
        core_len < (PART_START_SECTOR - 1) * 512,
        "core.img too big: {core_len}"
    );
    dd(
        &Path::new(GRUB_I386_PC).join("boot.img"),
        out,
        "count=1",
        "440",
    );
    dd(&core, out, "seek=1", "512");
    std::fs::remove_dir_all(&dir).expect("remove parts dir");
}

/// One bootable Linux partition from 1 MiB to the end of the disk.
fn partition(disk: &Path) {
    use std::io::Write;
    let mut child = Command::new("sfdisk")
        .args(["--quiet", "--no-reread", "--no-tell-kernel"])
        .arg(disk)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("run sfdisk");
    let script = format!("label: dos\nstart={PART_START_SECTOR}, type=83, bootable\n");
    child
        .stdin
        .take()
        .expect("sfdisk stdin")
        .write_all(script.as_bytes())
        .expect("write sfdisk script");
    assert!(child.wait().expect("sfdisk").success(), "sfdisk failed");
}

/// `dd if=from of=to bs=BS <extra> conv=notrunc,sparse`: writes into the disk in place.
fn dd(from: &Path, to: &Path, extra: &str, bs: &str) {
    run_ok(
        Command::new("dd")
            .arg(format!("if={}", from.display()))
            .arg(format!("of={}", to.display()))
            .arg(format!("bs={bs}"))
            .arg(extra)
            .args(["conv=notrunc,sparse", "status=none"]),
    );
}

/// `/boot/grub/i386-pc/*.mod` and `*.lst`, as grub-install leaves them.
fn copy_grub_modules(root: &Path) {
    let dest = root.join("boot/grub/i386-pc");
    std::fs::create_dir_all(&dest).expect("create boot/grub/i386-pc");
    for entry in std::fs::read_dir(GRUB_I386_PC).expect("read grub dir") {
        let path = entry.expect("grub entry").path();
        let keep = path.extension().is_some_and(|e| e == "mod" || e == "lst");
        if keep {
            std::fs::copy(&path, dest.join(path.file_name().expect("name")))
                .expect("copy grub module");
        }
    }
}
