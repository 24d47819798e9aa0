//! The consoles fixup on `MemFs` guests: Debian on Xen (grub.cfg, /etc/default/grub, an
//! enabled `serial-getty@hvc0`), an old Xen guest with inittab, RHEL with BLS and grubenv.

use super::super::cmdline::{default_grub_value, edit_lines, fix_grubenv};
use super::super::guestio::testing::{change_at, fix, fix_for, p, plan, text};
use super::*;
use crate::guestfs::memfs::MemFs;
use crate::guestfs::GuestFs;

const XEN_GRUB_CFG: &str = "menuentry 'Debian' {\n\tlinux /boot/vmlinuz-6.1.0-50-amd64 root=/dev/xvda1 ro console=hvc0\n\tinitrd /boot/initrd.img-6.1.0-50-amd64\n}\n";

const DEFAULT_GRUB_TEXT: &str = "\
# If you change this file, run 'update-grub' afterwards.
GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`
GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"
GRUB_CMDLINE_LINUX=\"console=hvc0\"
#GRUB_TERMINAL=console
";

fn debian_xen() -> MemFs {
    let fs = MemFs::new();
    fs.add_file("/usr/lib/os-release", "ID=debian\nVERSION_ID=12\n")
        .unwrap();
    fs.add_file("/etc/fstab", "/dev/xvda1 / ext4 errors=remount-ro 0 1\n")
        .unwrap();
    fs.add_symlink("/lib", "usr/lib").unwrap();
    fs.add_file("/usr/lib/systemd/system/serial-getty@.service", "[Unit]\n")
        .unwrap();
    fs.add_file("/usr/lib/systemd/system/getty@.service", "[Unit]\n")
        .unwrap();
    fs.add_file("/boot/grub/grub.cfg", XEN_GRUB_CFG).unwrap();
    fs.add_file("/etc/default/grub", DEFAULT_GRUB_TEXT).unwrap();
    fs.add_symlink(
        "/etc/systemd/system/getty.target.wants/serial-getty@hvc0.service",
        "/lib/systemd/system/serial-getty@.service",
    )
    .unwrap();
    fs.add_symlink(
        "/etc/systemd/system/getty.target.wants/getty@tty1.service",
        "/lib/systemd/system/getty@.service",
    )
    .unwrap();
    fs
}

#[test]
fn xen_guest_moves_to_ttys0() {
    let fs = debian_xen();
    let made = fix(&Consoles, &fs, &[]);
    assert_eq!(
        text(&fs, "/boot/grub/grub.cfg"),
        XEN_GRUB_CFG.replace("console=hvc0", "console=ttyS0,115200")
    );
    assert_eq!(
        text(&fs, "/etc/default/grub"),
        DEFAULT_GRUB_TEXT.replace("console=hvc0", "console=ttyS0,115200")
    );
    let wants = "/etc/systemd/system/getty.target.wants";
    assert_eq!(
        change_at(&made, &format!("{wants}/serial-getty@hvc0.service")),
        &Change::RemoveSymlink {
            path: p(&format!("{wants}/serial-getty@hvc0.service")),
            target: "/lib/systemd/system/serial-getty@.service".into(),
        }
    );
    assert!(!fs
        .exists(&p(&format!("{wants}/serial-getty@hvc0.service")))
        .unwrap());
    assert_eq!(
        fs.read_link(&p(&format!("{wants}/serial-getty@ttyS0.service")))
            .unwrap(),
        b"/lib/systemd/system/serial-getty@.service"
    );
    assert!(fs
        .exists(&p(&format!("{wants}/getty@tty1.service")))
        .unwrap());
    assert_eq!(made.len(), 4, "{made:#?}");
}

#[test]
fn unknown_lines_are_kept_byte_for_byte() {
    let fs = debian_xen();
    let mut cfg: Vec<u8> = b"# DO NOT EDIT console=hvc0\r\nset timeout=5\r\n".to_vec();
    cfg.extend_from_slice(b"menuentry '\xe9\xff Debian' {\r\n");
    cfg.extend_from_slice(b"\techo 'console=hvc0 is used'\r\n");
    cfg.extend_from_slice(
        b"\tlinux\t/boot/vmlinuz root=/dev/xvda1  ro\tconsole=hvc0  quiet console=hvc0x\r\n",
    );
    cfg.extend_from_slice(b"  linux16 /vmlinuz \"console=hvc0\" 'console=xvc0,9600'\r\n");
    cfg.extend_from_slice(b"linuxefi /vmlinuz console=hvc1 xconsole=hvc0\n}");
    fs.add_file("/boot/grub/grub.cfg", &cfg).unwrap();
    fix(&Consoles, &fs, &[]);
    let mut expected: Vec<u8> = b"# DO NOT EDIT console=hvc0\r\nset timeout=5\r\n".to_vec();
    expected.extend_from_slice(b"menuentry '\xe9\xff Debian' {\r\n");
    expected.extend_from_slice(b"\techo 'console=hvc0 is used'\r\n");
    expected.extend_from_slice(
        b"\tlinux\t/boot/vmlinuz root=/dev/xvda1  ro\tconsole=ttyS0,115200  quiet console=hvc0x\r\n",
    );
    expected.extend_from_slice(b"  linux16 /vmlinuz \"console=ttyS0,115200\" ''\r\n");
    expected.extend_from_slice(b"linuxefi /vmlinuz console=hvc1 xconsole=hvc0\n}");
    assert_eq!(
        String::from_utf8_lossy(&fs.read_file(&p("/boot/grub/grub.cfg")).unwrap()),
        String::from_utf8_lossy(&expected)
    );
}

#[test]
fn an_existing_serial_console_absorbs_the_xen_one() {
    for (before, after) in [
        (
            "ro console=hvc0 console=ttyS0,115200n8",
            "ro console=ttyS0,115200n8",
        ),
        (
            "ro console=tty0 console=hvc0",
            "ro console=tty0 console=ttyS0,115200",
        ),
        ("console=hvc0 ro", "console=ttyS0,115200 ro"),
        (
            "\"console=hvc0 console=xvc0 console=ttyS0\"",
            "\"console=ttyS0\"",
        ),
        ("console=ttyS0 console=hvc0", "console=ttyS0"),
        ("console=hvc0,9600 console=hvc0", "console=ttyS0,115200"),
    ] {
        let fixed = fix_console_args(before.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(fixed).unwrap(), after, "{before}");
    }
    assert_eq!(fix_console_args(b"ro console=ttyS0 quiet"), None);
    assert_eq!(fix_console_args(b""), None);
}

#[test]
fn default_grub_only_touches_kernel_command_lines() {
    let text = b"#GRUB_CMDLINE_LINUX=\"console=hvc0\"\n\
                 export GRUB_CMDLINE_LINUX_DEFAULT='quiet console=hvc0'\n\
                 GRUB_CMDLINE_XEN=\"console=hvc0\"\n\
                 GRUB_CMDLINE_LINUX_XEN_REPLACE=\"console=hvc0\"\n";
    let fixed = edit_lines(text, &fix_console_args, default_grub_value).unwrap();
    assert_eq!(
        String::from_utf8(fixed).unwrap(),
        "#GRUB_CMDLINE_LINUX=\"console=hvc0\"\n\
         export GRUB_CMDLINE_LINUX_DEFAULT='quiet console=ttyS0,115200'\n\
         GRUB_CMDLINE_XEN=\"console=hvc0\"\n\
         GRUB_CMDLINE_LINUX_XEN_REPLACE=\"console=ttyS0,115200\"\n"
    );
}

#[test]
fn inittab_getty_moves_or_is_disabled() {
    let fs = debian_xen();
    fs.remove(&p(
        "/etc/systemd/system/getty.target.wants/serial-getty@hvc0.service",
    ))
    .unwrap();
    fs.add_file("/boot/grub/grub.cfg", "menuentry 'x' {\n}\n")
        .unwrap();
    fs.add_file("/etc/default/grub", "GRUB_TIMEOUT=5\n")
        .unwrap();
    let inittab = "id:2:initdefault:\n\
                   1:2345:respawn:/sbin/getty 38400 tty1\n\
                   # co:2345:respawn:/sbin/getty hvc0 9600 linux\n\
                   co:2345:respawn:/sbin/agetty xvc0 9600 vt100-nav\n\
                   h1:2345:respawn:/sbin/agetty -L 9600 /dev/hvc0\n";
    fs.add_file("/etc/inittab", inittab).unwrap();
    fix(&Consoles, &fs, &[]);
    assert_eq!(
        text(&fs, "/etc/inittab"),
        "id:2:initdefault:\n\
         1:2345:respawn:/sbin/getty 38400 tty1\n\
         # co:2345:respawn:/sbin/getty hvc0 9600 linux\n\
         co:2345:respawn:/sbin/agetty ttyS0 9600 vt100-nav\n\
         h1:2345:respawn:/sbin/agetty -L 9600 /dev/ttyS0\n"
    );

    let with_serial = "T0:23:respawn:/sbin/getty -L ttyS0 9600 vt100\n\
                       co:2345:respawn:/sbin/agetty xvc0 9600 vt100-nav";
    fs.add_file("/etc/inittab", with_serial).unwrap();
    fix(&Consoles, &fs, &[]);
    assert_eq!(
        text(&fs, "/etc/inittab"),
        "T0:23:respawn:/sbin/getty -L ttyS0 9600 vt100\n\
         # ferry: co:2345:respawn:/sbin/agetty xvc0 9600 vt100-nav\n"
    );
}

#[test]
fn securetty_gains_ttys0_once() {
    let fs = debian_xen();
    fs.add_file("/etc/securetty", "console\nhvc0\nxvc0")
        .unwrap();
    fix(&Consoles, &fs, &[]);
    assert_eq!(text(&fs, "/etc/securetty"), "console\nhvc0\nxvc0\nttyS0\n");

    let fs = debian_xen();
    fs.add_file("/etc/securetty", "console\n ttyS0 \n").unwrap();
    let made = fix(&Consoles, &fs, &[]);
    assert!(made
        .iter()
        .all(|c| c.path().to_string() != "/etc/securetty"));
}

#[test]
fn getty_template_becomes_serial_getty() {
    let fs = debian_xen();
    fs.remove(&p(
        "/etc/systemd/system/getty.target.wants/serial-getty@hvc0.service",
    ))
    .unwrap();
    fs.add_symlink(
        "/etc/systemd/system/getty.target.wants/getty@xvc0.service",
        "/lib/systemd/system/getty@.service",
    )
    .unwrap();
    fix(&Consoles, &fs, &[]);
    assert_eq!(
        fs.read_link(&p(
            "/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"
        ))
        .unwrap(),
        b"/lib/systemd/system/serial-getty@.service"
    );
    assert_eq!(
        serial_getty_target("getty@.service"),
        "serial-getty@.service"
    );
    assert_eq!(serial_getty_target("../x@.service"), "../x@.service");
}

#[test]
fn an_existing_serial_getty_is_kept() {
    let fs = debian_xen();
    fs.add_symlink(
        "/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service",
        "/lib/systemd/system/serial-getty@.service",
    )
    .unwrap();
    let made = fix(&Consoles, &fs, &[]);
    assert!(!made
        .iter()
        .any(|c| matches!(c, Change::CreateSymlink { .. })));
}

const GRUBENV_VARS: &str =
    "# GRUB Environment Block\nsaved_entry=abc\nkernelopts=root=/dev/xvda2 ro console=hvc0 rhgb\n";

fn grubenv(vars: &str) -> Vec<u8> {
    let mut block = vars.as_bytes().to_vec();
    block.resize(1024, b'#');
    block
}

#[test]
fn rhel_bls_grubenv_and_kernel_cmdline() {
    let fs = MemFs::new();
    fs.add_file("/etc/os-release", "ID=rhel\nVERSION_ID=8.9\n")
        .unwrap();
    fs.add_file("/etc/fstab", "/dev/xvda2 / xfs defaults 0 0\n")
        .unwrap();
    fs.add_file(
        "/boot/grub2/grub.cfg",
        "blscfg\nif [ -z \"${kernelopts}\" ]; then\n  set kernelopts=\"root=/dev/xvda2 ro\"\nfi\n",
    )
    .unwrap();
    fs.add_file("/boot/efi/EFI/redhat/grubenv", grubenv(GRUBENV_VARS))
        .unwrap();
    fs.add_symlink("/boot/grub2/grubenv", "../efi/EFI/redhat/grubenv")
        .unwrap();
    fs.add_file(
        "/boot/loader/entries/abc-4.18.0.conf",
        "title Red Hat\nversion 4.18.0\nlinux /vmlinuz-4.18.0\noptions $kernelopts\n",
    )
    .unwrap();
    fs.add_file(
        "/boot/loader/entries/abc-0-rescue.conf",
        "title rescue\noptions\troot=/dev/xvda2 ro console=xvc0\n",
    )
    .unwrap();
    fs.add_file("/etc/kernel/cmdline", "root=/dev/xvda2 ro console=hvc0\n")
        .unwrap();
    let made = fix(&Consoles, &fs, &[]);
    assert_eq!(made.len(), 3, "{made:#?}");
    let env = fs.read_file(&p("/boot/efi/EFI/redhat/grubenv")).unwrap();
    assert_eq!(
        env,
        grubenv(&GRUBENV_VARS.replace("console=hvc0", "console=ttyS0,115200"))
    );
    assert_eq!(
        text(&fs, "/boot/loader/entries/abc-0-rescue.conf"),
        "title rescue\noptions\troot=/dev/xvda2 ro console=ttyS0,115200\n"
    );
    assert_eq!(
        text(&fs, "/etc/kernel/cmdline"),
        "root=/dev/xvda2 ro console=ttyS0,115200\n"
    );
}

#[test]
fn a_full_grubenv_is_left_alone() {
    let full = grubenv(GRUBENV_VARS);
    let mut no_room = full[..GRUBENV_VARS.len()].to_vec();
    no_room.extend(std::iter::repeat_n(b'x', 1024 - GRUBENV_VARS.len() - 2));
    no_room.extend_from_slice(b"\n#");
    assert_eq!(fix_grubenv(&no_room, &fix_console_args), None);
    let shorter = fix_grubenv(
        &grubenv("# GRUB Environment Block\nkernelopts=console=hvc0 console=ttyS0\n"),
        &fix_console_args,
    )
    .unwrap();
    assert_eq!(
        shorter,
        grubenv("# GRUB Environment Block\nkernelopts=console=ttyS0\n")
    );
}

#[test]
fn a_guest_without_xen_consoles_is_skipped() {
    let fs = debian_xen();
    fs.add_file(
        "/boot/grub/grub.cfg",
        XEN_GRUB_CFG.replace("console=hvc0", "quiet"),
    )
    .unwrap();
    fs.add_file("/etc/default/grub", "GRUB_CMDLINE_LINUX=\"\"\n")
        .unwrap();
    fs.remove(&p(
        "/etc/systemd/system/getty.target.wants/serial-getty@hvc0.service",
    ))
    .unwrap();
    fs.add_file("/etc/securetty", "console\n").unwrap();
    assert!(matches!(plan(&Consoles, &fs, &[]), Plan::Skip(_)));
}

#[test]
fn hostile_entries_are_left_alone() {
    let fs = debian_xen();
    fs.remove(&p("/etc/default/grub")).unwrap();
    fs.add_special("/etc/default/grub").unwrap();
    fs.add_symlink("/etc/inittab", "/nowhere").unwrap();
    fs.add_dir("/etc/securetty").unwrap();
    fs.add_symlink("/etc/kernel/cmdline", "/etc/kernel/cmdline")
        .unwrap();
    fs.add_dir("/boot/loader/entries/x.conf").unwrap();
    fs.add_file(
        "/boot/grub/grubenv",
        b"# GRUB Environment Block\nkernelopts=\xff console=hvc0\n".as_slice(),
    )
    .unwrap();
    fs.add_dir("/etc/systemd/system/getty.target.wants/getty@hvc0.service")
        .unwrap();
    let made = fix(&Consoles, &fs, &[]);
    let paths: Vec<String> = made.iter().map(|c| c.path().to_string()).collect();
    assert_eq!(
        paths,
        vec![
            "/boot/grub/grub.cfg",
            "/etc/systemd/system/getty.target.wants/serial-getty@hvc0.service",
            "/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service",
        ]
    );
}

#[test]
fn physical_adds_a_vga_console_before_ttys0() {
    let add = |args: &str| add_vga_console(args.as_bytes()).map(|b| String::from_utf8(b).unwrap());
    assert_eq!(
        add("root=UUID=x ro console=ttyS0,115200n8 quiet").as_deref(),
        Some("root=UUID=x ro console=tty0 console=ttyS0,115200n8 quiet")
    );
    assert_eq!(
        add("\"console=ttyS0 console=ttyS0,115200\"").as_deref(),
        Some("\"console=tty0 console=ttyS0 console=ttyS0,115200\"")
    );
    // A VGA console already, another console, or none: left alone.
    assert_eq!(add("console=tty0 console=ttyS0"), None);
    assert_eq!(add("console=ttyS0 console=tty1"), None);
    assert_eq!(add("console=ttyS1"), None);
    assert_eq!(add("root=/dev/sda1 quiet"), None);
    // A Xen console moves to ttyS0 first, then gets the VGA console.
    assert_eq!(
        fix_physical_console_args(b"ro console=hvc0").as_deref(),
        Some(&b"ro console=tty0 console=ttyS0,115200"[..])
    );
}

const KVM_GRUB_CFG: &str = "menuentry 'Debian' {\n\tlinux /boot/vmlinuz-6.1.0-50-amd64 root=UUID=1111 ro console=ttyS0,115200\n\tinitrd /boot/initrd.img-6.1.0-50-amd64\n}\n";

/// Debian that ran on KVM with its console on the serial port only.
fn debian_kvm() -> MemFs {
    let fs = debian_xen();
    fs.remove(&p(
        "/etc/systemd/system/getty.target.wants/serial-getty@hvc0.service",
    ))
    .unwrap();
    fs.remove(&p("/boot/grub/grub.cfg")).unwrap();
    fs.add_file("/boot/grub/grub.cfg", KVM_GRUB_CFG).unwrap();
    fs.remove(&p("/etc/default/grub")).unwrap();
    fs.add_file(
        "/etc/default/grub",
        DEFAULT_GRUB_TEXT.replace("console=hvc0", "console=ttyS0,115200"),
    )
    .unwrap();
    fs
}

#[test]
fn physical_kvm_guest_gets_tty0_once_and_kvm_is_unchanged() {
    let fs = debian_kvm();
    assert!(matches!(plan(&Consoles, &fs, &[]), Plan::Skip(_)));
    fix_for(&Consoles, &fs, &[], Target::Physical);
    assert_eq!(
        text(&fs, "/boot/grub/grub.cfg"),
        KVM_GRUB_CFG.replace("console=ttyS0", "console=tty0 console=ttyS0")
    );
    assert_eq!(
        text(&fs, "/etc/default/grub"),
        DEFAULT_GRUB_TEXT.replace("console=hvc0", "console=tty0 console=ttyS0,115200")
    );
}
