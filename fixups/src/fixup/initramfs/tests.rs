//! Tests of the initramfs fixup on hand-built guests: fake `modules.dep`, fake modules,
//! small gzip, zstd and xz images built here.

use std::collections::BTreeMap;
use std::io::Write;

use super::cpio::{CpioLister, CpioWriter, EntryKind};
use super::decompress::{list_image, Listing};
use super::kmod_index::{lookup, Index};
use super::modules::{self, ModuleDb};
use super::*;
use crate::fixup::{apply, Target};
use crate::guestfs::memfs::MemFs;
use crate::inspect::inspect_filesystem;

const V: &str = "6.1.0-13-amd64";

const MODULES_DEP: &str = "\
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/scsi/scsi_common.ko:
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/virtio_scsi.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko.zst: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/net/vmxnet3/vmxnet3.ko:
kernel/drivers/scsi/vmw_pvscsi.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
../../../etc/shadow.ko:
";

const MODULES_ALIAS: &str = "\
# Aliases extracted from modules themselves.
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000002v* virtio_blk
alias virtio:d00000008v* virtio_scsi
alias virtio:d00000001v* virtio_net
alias pci:v000015ADd000007B0sv*sd*bc*sc*i* vmxnet3
alias pci:v000015ADd000007C0sv*sd*bc*sc*i* vmw_pvscsi
alias virtio:d00000004v* virtio_rng
alias scsi-disk-[a-b] scsi_mod
";

const MODULES_SYMBOLS: &str = "\
# Aliases for symbols, used by symbol_request().
alias symbol:register_virtio_driver virtio
alias symbol:scsi_add_host scsi_mod
alias symbol:vmxnet3_thing vmxnet3
";

fn p(s: &str) -> GuestPath {
    GuestPath::new(s).unwrap()
}

fn module_bytes(path: &str) -> Vec<u8> {
    format!("\x7fELF fake module {path}\n").into_bytes()
}

/// A newc archive of `files` (directories first as the tools write them), starting at 0.
fn archive(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut w = CpioWriter::new(0);
    for (name, data) in entries {
        if let Some(data) = data {
            w.file(name, data, 0o644).unwrap();
        }
    }
    w.finish()
}

/// The archive an initramfs-tools image of a merged-/usr guest holds: `lib -> usr/lib`,
/// the listed modules under `usr/lib/modules/V`.
fn image_cpio(modules: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    // A symlink entry, written by hand: the writer makes only files and directories.
    let target = b"usr/lib";
    let name = b"lib\0";
    out.extend_from_slice(b"070701");
    for field in [1u32, 0o120777, 0, 0, 1, 0, 7, 0, 0, 0, 0, 4, 0] {
        out.extend_from_slice(format!("{field:08X}").as_bytes());
    }
    out.extend_from_slice(name);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out.extend_from_slice(target);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    let mut files: Vec<(String, Vec<u8>)> = vec![("init".into(), b"#!/bin/sh\n".to_vec())];
    for m in modules {
        files.push((format!("usr/lib/modules/{V}/{m}"), module_bytes(m)));
    }
    files.push((format!("usr/lib/modules/{V}/modules.dep"), b"x".to_vec()));
    let mut w = CpioWriter::new(out.len() as u64);
    for (name, data) in &files {
        w.file(name, data, 0o644).unwrap();
    }
    out.extend_from_slice(&w.finish());
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// Debian 12 on VMware: initramfs-tools, merged /usr, an image without virtio.
fn debian_guest(image: Vec<u8>) -> MemFs {
    let fs = MemFs::new();
    fs.add_file("/etc/os-release", "ID=debian\nVERSION_ID=12\n")
        .unwrap();
    fs.add_file("/etc/fstab", "/dev/sda1 / ext4 defaults 0 1\n")
        .unwrap();
    fs.add_dir("/usr/lib").unwrap();
    fs.add_symlink("/lib", "usr/lib").unwrap();
    fs.add_file("/usr/sbin/update-initramfs", "#!/bin/sh\n")
        .unwrap();
    fs.add_file(
        "/etc/initramfs-tools/modules",
        "# List of modules\n# raid1\nvmw_pvscsi",
    )
    .unwrap();
    fs.add_file(&format!("/boot/vmlinuz-{V}"), "kernel")
        .unwrap();
    fs.add_file(&format!("/boot/initrd.img-{V}"), image)
        .unwrap();
    let dir = format!("/usr/lib/modules/{V}");
    fs.add_file(&format!("{dir}/modules.dep"), MODULES_DEP)
        .unwrap();
    fs.add_file(&format!("{dir}/modules.alias"), MODULES_ALIAS)
        .unwrap();
    fs.add_file(&format!("{dir}/modules.symbols"), MODULES_SYMBOLS)
        .unwrap();
    fs.add_file(
        &format!("{dir}/modules.builtin"),
        "kernel/drivers/virtio/virtio_mmio.ko\n",
    )
    .unwrap();
    fs.add_file(&format!("{dir}/modules.builtin.bin"), "builtin-bin")
        .unwrap();
    fs.add_file(&format!("{dir}/modules.dep.bin"), "guest-dep-bin")
        .unwrap();
    fs.add_file(
        &format!("{dir}/modules.softdep"),
        "# Soft dependencies extracted from modules themselves.\n\
         softdep virtio_net pre: failover\nsoftdep vmw_pvscsi post: x\n",
    )
    .unwrap();
    for line in MODULES_DEP.lines() {
        let path = line.split(':').next().unwrap();
        if modules::valid_module_path(path) {
            fs.add_file(&format!("{dir}/{path}"), module_bytes(path))
                .unwrap();
        }
    }
    fs.add_file(
        "/etc/systemd/network/10-ferry-eth0.link",
        "[Match]\nMACAddress=00:50:56:8a:3c:01\n[Link]\nName=eth0\n",
    )
    .unwrap();
    fs.add_file("/etc/systemd/network/README", "not a link file")
        .unwrap();
    fs
}

fn plan(fs: &MemFs) -> Plan {
    let os = inspect_filesystem(fs).unwrap().unwrap();
    let ctx = GuestContext {
        fs,
        os: &os,
        partitions: &[],
        nics: &[],
        target: Target::Kvm,
    };
    Initramfs.plan(&ctx).unwrap()
}

fn changes(plan: Plan) -> Vec<Change> {
    match plan {
        Plan::Changes(c) => c,
        Plan::Skip(why) => panic!("skipped: {why}"),
    }
}

/// Entries of a raw archive (as appended), read with the lister.
fn list_cpio(data: &[u8]) -> BTreeMap<Vec<u8>, EntryKind> {
    let mut l = CpioLister::new();
    let start = data.iter().take_while(|&&b| b == 0).count();
    l.feed(&data[start..], false).unwrap();
    l.finish_stream().unwrap();
    l.into_entries()
}

/// File contents of a raw archive, by name.
fn cpio_files(data: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    // The archive proper starts after the padding that aligns it in the file.
    let data = &data[data.iter().take_while(|&&b| b == 0).count()..];
    let mut at = 0;
    loop {
        let h = &data[at..at + 110];
        assert!(h.starts_with(b"070701"));
        let field = |i: usize| {
            usize::from_str_radix(std::str::from_utf8(&h[6 + i * 8..14 + i * 8]).unwrap(), 16)
                .unwrap()
        };
        let (mode, size, namesize) = (field(1), field(6), field(11));
        let name = String::from_utf8(data[at + 110..at + 110 + namesize - 1].to_vec()).unwrap();
        at = (at + 110 + namesize + 3) & !3;
        if name == cpio::TRAILER {
            return out;
        }
        if mode & 0o170000 == 0o100000 {
            out.insert(name, data[at..at + size].to_vec());
        }
        at = (at + size + 3) & !3;
    }
}

#[test]
fn module_names_follow_kmod() {
    assert_eq!(
        modules::module_name("kernel/a/virtio-rng.ko.zst"),
        "virtio_rng"
    );
    assert_eq!(modules::module_name("virtio_blk.ko"), "virtio_blk");
    assert!(!modules::valid_module_path("../x.ko"));
    assert!(!modules::valid_module_path("/abs/x.ko"));
    assert!(!modules::valid_module_path("kernel/x.txt"));
    assert_eq!(
        modules::normalize_alias("pci:v-d[a-b]-x").as_deref(),
        Some("pci:v_d[a-b]_x")
    );
    assert_eq!(modules::normalize_alias("bad]"), None);
    assert_eq!(modules::normalize_alias("bad[open"), None);
}

#[test]
fn closure_follows_modules_dep_and_skips_unsafe_lines() {
    let db = ModuleDb::parse(MODULES_DEP);
    assert!(db.find("shadow").is_none(), "a path leaving the directory");
    let wanted: Vec<usize> = modules::wanted(crate::fixup::Target::Kvm)
        .iter()
        .filter_map(|w| db.find(w))
        .collect();
    let names: Vec<&str> = db
        .closure(&wanted)
        .iter()
        .map(|&i| db.modules[i].name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "virtio",
            "virtio_ring",
            "virtio_pci_modern_dev",
            "virtio_pci_legacy_dev",
            "virtio_pci",
            "virtio_blk",
            "scsi_common",
            "scsi_mod",
            "virtio_scsi",
            "failover",
            "net_failover",
            "virtio_net"
        ]
    );
}

#[test]
fn index_lookups_find_every_value_in_depmod_order() {
    let mut index = Index::new();
    for (key, value, prio) in [
        ("virtio_blk", "a", 3),
        ("virtio", "b", 1),
        ("virtio_net", "c", 2),
        ("virt", "d", 0),
        ("virtio", "e", 0),
        ("virtio", "f", 1),
        ("zz", "g", 9),
    ] {
        assert!(index.insert(key.as_bytes(), value.as_bytes(), prio));
    }
    assert!(!index.insert("caf\u{e9}".as_bytes(), b"x", 0));
    let bytes = index.write().unwrap();
    assert_eq!(&bytes[..8], &[0xB0, 0x07, 0xF4, 0x57, 0, 2, 0, 1]);
    let get = |k: &str| lookup(&bytes, k.as_bytes()).unwrap();
    assert_eq!(get("virtio_blk"), vec![(3, b"a".to_vec())]);
    // Ascending priority; of equal ones the later insert first, as depmod.
    assert_eq!(
        get("virtio"),
        vec![(0, b"e".to_vec()), (1, b"f".to_vec()), (1, b"b".to_vec())]
    );
    assert_eq!(get("virt"), vec![(0, b"d".to_vec())]);
    assert_eq!(get("zz"), vec![(9, b"g".to_vec())]);
    assert!(get("virtio_").is_empty());
    assert!(get("v").is_empty());
    assert!(get("virtio_blkx").is_empty());
    assert!(lookup(b"garbage", b"x").is_none());
    // An empty index is a header and an empty root.
    assert_eq!(Index::new().write().unwrap().len(), 12);
}

#[test]
fn cpio_writer_aligns_to_the_file_and_lister_reads_it_in_any_pieces() {
    let mut w = CpioWriter::new(1001);
    w.file("usr/lib/modules/x/a.ko", b"abc", 0o644).unwrap();
    w.file("usr/lib/modules/x/b.ko", b"", 0o644).unwrap();
    w.file("etc/stamp", b"12345", 0o644).unwrap();
    assert!(w.file("../etc/shadow", b"", 0o644).is_err());
    assert!(w.file("/abs", b"", 0o644).is_err());
    assert!(w.file("a//b", b"", 0o644).is_err());
    let data = w.finish();
    assert_eq!((1001 + data.iter().take_while(|&&b| b == 0).count()) % 4, 0);
    assert_eq!(data.iter().take_while(|&&b| b == 0).count(), 3);
    // Two archives with zero padding between, fed one byte at a time.
    let mut both = data[3..].to_vec();
    both.extend_from_slice(&[0; 8]);
    both.extend_from_slice(&archive(&[("usr/lib/modules/x/a.ko", Some(b"new"))]));
    let mut l = CpioLister::new();
    for b in &both {
        assert_eq!(l.feed(std::slice::from_ref(b), false).unwrap(), 1);
    }
    l.finish_stream().unwrap();
    let entries = l.into_entries();
    let names: Vec<String> = entries
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "etc",
            "etc/stamp",
            "usr",
            "usr/lib",
            "usr/lib/modules",
            "usr/lib/modules/x",
            "usr/lib/modules/x/a.ko",
            "usr/lib/modules/x/b.ko"
        ]
    );
    assert_eq!(entries[b"usr/lib".as_slice()], EntryKind::Dir);
    assert_eq!(cpio_files(&data)["usr/lib/modules/x/a.ko"], b"abc".to_vec());
    // Truncated: not a complete archive.
    let mut l = CpioLister::new();
    l.feed(&data[3..data.len() - 20], false).unwrap();
    assert!(l.finish_stream().is_err());
}

#[test]
fn lister_refuses_garbage_without_panicking() {
    for junk in [
        b"0707010000000G".to_vec(),
        vec![b'0'; 300],
        b"070701".iter().copied().chain([b'F'; 200]).collect(),
    ] {
        let mut l = CpioLister::new();
        let r = l.feed(&junk, false).and_then(|_| l.finish_stream());
        assert!(r.is_err());
    }
}

/// Image listings: early uncompressed archive + zstd, gzip + appended raw archive, xz,
/// and an unsupported compression.
#[test]
fn images_are_listed_across_concatenated_pieces() {
    let fs = MemFs::new();
    let early = archive(&[("kernel/x86/microcode/GenuineIntel.bin", Some(b"ucode"))]);
    let mut img = early.clone();
    img.extend_from_slice(&zstd(&image_cpio(&["kernel/drivers/block/virtio_blk.ko"])));
    fs.add_file("/a", &img).unwrap();
    let Listing::Listed(entries) = list_image(&fs, &p("/a"), img.len() as u64).unwrap() else {
        panic!("not listed");
    };
    assert!(entries.contains_key(b"kernel/x86/microcode/GenuineIntel.bin".as_slice()));
    assert_eq!(
        entries[b"lib".as_slice()],
        EntryKind::Symlink(Some(b"usr/lib".to_vec()))
    );
    let blk = format!("usr/lib/modules/{V}/kernel/drivers/block/virtio_blk.ko");
    assert!(entries.contains_key(blk.as_bytes()));

    let mut img = gzip(&image_cpio(&[]));
    let mut tail = CpioWriter::new(img.len() as u64);
    tail.file("etc/late", b"x", 0o644).unwrap();
    img.extend_from_slice(&tail.finish());
    fs.add_file("/b", &img).unwrap();
    let Listing::Listed(entries) = list_image(&fs, &p("/b"), img.len() as u64).unwrap() else {
        panic!("not listed");
    };
    assert!(entries.contains_key(b"etc/late".as_slice()));
    assert!(entries.contains_key(b"init".as_slice()));

    // ferry has no xz encoder: a fixture made with the xz tool.
    let xz = XZ_FIXTURE;
    fs.add_file("/c", xz).unwrap();
    let Listing::Listed(entries) = list_image(&fs, &p("/c"), xz.len() as u64).unwrap() else {
        panic!("xz not listed");
    };
    assert!(entries.contains_key(b"hello".as_slice()), "{entries:?}");

    fs.add_file("/d", [0x02, 0x21, 0x4c, 0x18, 1, 2, 3])
        .unwrap();
    match list_image(&fs, &p("/d"), 7).unwrap() {
        Listing::Unlisted(why) => assert!(why.contains("lz4"), "{why}"),
        Listing::Listed(_) => panic!("lz4 listed"),
    }
    let mut corrupt = gzip(&image_cpio(&[]));
    corrupt.truncate(corrupt.len() / 2);
    fs.add_file("/e", &corrupt).unwrap();
    assert!(matches!(
        list_image(&fs, &p("/e"), corrupt.len() as u64).unwrap(),
        Listing::Unlisted(_)
    ));
}

/// `printf 'hi\n' > hello; echo hello | cpio -o -H newc | xz --check=crc32`.
const XZ_FIXTURE: &[u8] = &[
    0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x01, 0x69, 0x22, 0xde, 0x36, 0x02, 0x00, 0x21, 0x01,
    0x16, 0x00, 0x00, 0x00, 0x74, 0x2f, 0xe5, 0xa3, 0xe0, 0x01, 0xff, 0x00, 0x4e, 0x5d, 0x00, 0x18,
    0x0d, 0xdd, 0x04, 0x63, 0x83, 0x21, 0xaa, 0xba, 0xc2, 0xba, 0x3f, 0xcc, 0x8b, 0x62, 0xf3, 0xb3,
    0x99, 0x6a, 0x99, 0xe6, 0x7d, 0x50, 0x81, 0x45, 0x51, 0xd8, 0xa8, 0x63, 0xff, 0x58, 0x66, 0x5f,
    0x7f, 0x16, 0x6b, 0xb6, 0xe1, 0xda, 0x57, 0xdf, 0x79, 0x45, 0x2c, 0x70, 0xa3, 0x7d, 0x7f, 0xc3,
    0x4e, 0xaa, 0x26, 0x10, 0x82, 0x42, 0x3e, 0x89, 0xfd, 0x14, 0xd1, 0x74, 0xfe, 0xde, 0x44, 0x41,
    0xec, 0x33, 0x47, 0x62, 0xe9, 0xf7, 0x95, 0x58, 0x62, 0x6a, 0x76, 0x86, 0x00, 0x00, 0x00, 0x00,
    0x06, 0x0a, 0xc6, 0x10, 0x00, 0x01, 0x66, 0x80, 0x04, 0x00, 0x00, 0x00, 0x5f, 0x1f, 0x7c, 0x23,
    0x3e, 0x30, 0x0d, 0x8b, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x59, 0x5a,
];

#[test]
fn a_debian_guest_gets_the_drivers_once() {
    let image = gzip(&image_cpio(&["kernel/drivers/net/vmxnet3/vmxnet3.ko"]));
    let image_len = image.len() as u64;
    let fs = debian_guest(image.clone());
    let changes = changes(plan(&fs));
    assert_eq!(changes.len(), 2, "{changes:#?}");
    let Change::AppendFile {
        path,
        before_len,
        data,
        summary,
    } = &changes[0]
    else {
        panic!("{:?}", changes[0]);
    };
    assert_eq!(path, &p(&format!("/boot/initrd.img-{V}")));
    assert_eq!(*before_len, image_len);
    assert!(summary.contains("virtio_pci, virtio_blk"), "{summary}");
    assert!(
        summary.contains("indexes rebuilt for the 13 modules"),
        "{summary}"
    );
    assert_eq!(
        (image_len + data.iter().take_while(|&&b| b == 0).count() as u64) % 4,
        0
    );

    let entries = list_cpio(data);
    // Under the image's real directory: a `lib` entry would replace its symlink.
    assert!(!entries.contains_key(b"lib".as_slice()));
    assert!(!entries.keys().any(|k| k.starts_with(b"lib/")));
    let files = cpio_files(data);
    let dir = format!("usr/lib/modules/{V}");
    let zst = format!("{dir}/kernel/drivers/net/virtio_net.ko.zst");
    assert_eq!(
        files[&zst],
        module_bytes("kernel/drivers/net/virtio_net.ko.zst")
    );
    assert!(!files.contains_key(&format!("{dir}/kernel/drivers/net/vmxnet3/vmxnet3.ko")));
    assert!(!files.contains_key(&format!(
        "{dir}/kernel/drivers/char/hw_random/virtio-rng.ko"
    )));
    // Indexes hold the image's modules: the added ones and vmxnet3 it had.
    let dep = String::from_utf8(files[&format!("{dir}/modules.dep")].clone()).unwrap();
    assert!(dep.contains("kernel/drivers/net/vmxnet3/vmxnet3.ko:\n"));
    assert!(!dep.contains("vmw_pvscsi"));
    assert_eq!(dep.lines().count(), 13);
    let dep_bin = &files[&format!("{dir}/modules.dep.bin")];
    assert_eq!(
        lookup(dep_bin, b"virtio_blk").unwrap(),
        vec![(
            5,
            b"kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko"
                .to_vec()
        )]
    );
    assert!(lookup(dep_bin, b"vmw_pvscsi").unwrap().is_empty());
    let alias_bin = &files[&format!("{dir}/modules.alias.bin")];
    assert_eq!(
        lookup(alias_bin, b"pci:v00001AF4d*sv*sd*bc*sc*i*").unwrap(),
        vec![(4, b"virtio_pci".to_vec())]
    );
    assert_eq!(
        lookup(alias_bin, b"scsi_disk_[a-b]").unwrap(),
        vec![(7, b"scsi_mod".to_vec())]
    );
    assert!(lookup(alias_bin, b"virtio:d00000004v*").unwrap().is_empty());
    let alias = String::from_utf8(files[&format!("{dir}/modules.alias")].clone()).unwrap();
    assert!(alias.starts_with("# Aliases"));
    assert!(alias.contains("vmxnet3\n") && !alias.contains("vmw_pvscsi"));
    let symbols_bin = &files[&format!("{dir}/modules.symbols.bin")];
    assert_eq!(
        lookup(symbols_bin, b"symbol:scsi_add_host").unwrap(),
        vec![(7, b"scsi_mod".to_vec())]
    );
    assert_eq!(files[&format!("{dir}/modules.builtin.bin")], b"builtin-bin");
    assert_eq!(
        String::from_utf8_lossy(&files[&format!("{dir}/modules.softdep")]),
        "# Soft dependencies extracted from modules themselves.\n\
         softdep virtio_net pre: failover\n"
    );
    assert!(files.contains_key("etc/systemd/network/10-ferry-eth0.link"));
    assert!(!files.contains_key("etc/systemd/network/README"));
    assert!(!files.contains_key(DRACUT_CMDLINE));
    let stamp = String::from_utf8(files[STAMP].clone()).unwrap();
    assert!(stamp.contains("virtio_net"), "{stamp}");
    assert_eq!(
        files.keys().last().map(String::as_str),
        Some("usr/lib/modules/6.1.0-13-amd64/modules.symbols.bin")
    );

    let Change::WriteFile { path, after, .. } = &changes[1] else {
        panic!("{:?}", changes[1]);
    };
    assert_eq!(path, &p(INITRAMFS_TOOLS_MODULES));
    assert_eq!(
        String::from_utf8_lossy(after),
        "# List of modules\n# raid1\nvmw_pvscsi\n# virtio drivers for KVM, added by ferry\n\
         virtio_pci\nvirtio_blk\nvirtio_scsi\nvirtio_net\n"
    );

    apply::apply_changes(&fs, &changes).unwrap();
    let new_image = fs.read_file(&p(&format!("/boot/initrd.img-{V}"))).unwrap();
    assert_eq!(&new_image[..image.len()], image.as_slice());
    // Listed again, the whole image has the drivers, and the stamp is found.
    let Listing::Listed(all) = list_image(
        &fs,
        &p(&format!("/boot/initrd.img-{V}")),
        new_image.len() as u64,
    )
    .unwrap() else {
        panic!("not listed");
    };
    assert!(all.contains_key(zst.as_bytes()));
    assert_eq!(changes_after(&fs), Vec::new());
}

fn changes_after(fs: &MemFs) -> Vec<Change> {
    changes(plan(fs))
}

#[test]
fn the_stamp_alone_makes_the_image_done() {
    let mut image = gzip(&image_cpio(&[]));
    let mut w = CpioWriter::new(image.len() as u64);
    w.file(STAMP, b"modules: x\n", 0o644).unwrap();
    image.extend_from_slice(&w.finish());
    let fs = debian_guest(image);
    fs.write_file(
        &p(INITRAMFS_TOOLS_MODULES),
        b"virtio_pci\nvirtio-blk\nvirtio_scsi # disks\nvirtio_net\n",
    )
    .unwrap();
    assert_eq!(changes_after(&fs), Vec::new());
}

#[test]
fn an_image_that_has_the_drivers_gets_nothing() {
    let all: Vec<&str> = MODULES_DEP
        .lines()
        .map(|l| l.split(':').next().unwrap())
        .filter(|m| modules::valid_module_path(m))
        .collect();
    let fs = debian_guest(zstd(&image_cpio(&all)));
    let changes = changes_after(&fs);
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0].path(), &p(INITRAMFS_TOOLS_MODULES));
}

#[test]
fn an_unreadable_image_gets_the_guest_s_full_indexes() {
    let fs = debian_guest(vec![0x02, 0x21, 0x4c, 0x18, 0, 0, 0, 0, 9]);
    let changes = changes_after(&fs);
    let Change::AppendFile { data, summary, .. } = &changes[0] else {
        panic!("{changes:?}");
    };
    assert!(summary.contains("full module indexes"), "{summary}");
    assert!(summary.contains("lz4"), "{summary}");
    let files = cpio_files(data);
    // Placed where the guest keeps them, since the image's layout is unknown.
    let dir = format!("usr/lib/modules/{V}");
    assert_eq!(files[&format!("{dir}/modules.dep")], MODULES_DEP.as_bytes());
    assert_eq!(files[&format!("{dir}/modules.dep.bin")], b"guest-dep-bin");
    assert!(files.contains_key(&format!("{dir}/kernel/drivers/virtio/virtio.ko")));
    // 9 bytes: three zero bytes align the archive.
    assert_eq!(&data[..4], &[0, 0, 0, b'0']);
}

#[test]
fn dracut_guests_get_a_command_line_and_a_conf_file() {
    let fs = debian_guest(zstd(&image_cpio(&[])));
    fs.remove(&p("/usr/sbin/update-initramfs")).unwrap();
    fs.add_file("/usr/bin/dracut", "#!/bin/bash\n").unwrap();
    // RHEL names its images differently.
    let image = fs.read_file(&p(&format!("/boot/initrd.img-{V}"))).unwrap();
    fs.remove(&p(&format!("/boot/initrd.img-{V}"))).unwrap();
    fs.add_file(&format!("/boot/initramfs-{V}.img"), image)
        .unwrap();
    let changes = changes_after(&fs);
    assert_eq!(changes.len(), 2, "{changes:#?}");
    let Change::AppendFile { data, summary, .. } = &changes[0] else {
        panic!("{changes:?}");
    };
    assert!(summary.contains("dracut"), "{summary}");
    let files = cpio_files(data);
    assert_eq!(
        String::from_utf8_lossy(&files[DRACUT_CMDLINE]),
        "rd.driver.pre=virtio_pci rd.driver.pre=virtio_blk rd.driver.pre=virtio_scsi \
         rd.driver.pre=virtio_net\n"
    );
    let Change::WriteFile {
        path,
        after,
        before,
    } = &changes[1]
    else {
        panic!("{changes:?}");
    };
    assert_eq!(path, &p(DRACUT_CONF));
    assert!(before.is_none());
    assert_eq!(
        String::from_utf8_lossy(after),
        "# virtio drivers for KVM, added by ferry\n\
         add_drivers+=\" virtio_pci virtio_blk virtio_scsi virtio_net \"\n"
    );
    apply::apply_changes(&fs, &changes).unwrap();
    assert_eq!(changes_after(&fs), Vec::new());
}

#[test]
fn kernels_without_modules_are_skipped_with_a_reason() {
    let fs = debian_guest(gzip(&image_cpio(&[])));
    fs.remove(&p(&format!("/usr/lib/modules/{V}/modules.dep")))
        .unwrap();
    match plan(&fs) {
        Plan::Skip(why) => assert!(why.contains("modules.dep is missing"), "{why}"),
        other => panic!("{other:?}"),
    }
    let fs = MemFs::new();
    fs.add_file("/etc/os-release", "ID=debian\n").unwrap();
    fs.add_file(&format!("/boot/vmlinuz-{V}"), "kernel")
        .unwrap();
    assert!(matches!(plan(&fs), Plan::Skip(_)));
}

#[test]
fn built_in_drivers_are_not_copied() {
    let fs = debian_guest(gzip(&image_cpio(&[])));
    fs.write_file(
        &p(&format!("/usr/lib/modules/{V}/modules.builtin")),
        b"kernel/drivers/block/virtio_blk.ko\nkernel/drivers/scsi/virtio_scsi.ko\n",
    )
    .unwrap();
    // A modules.dep that lists only what is not built in, as depmod writes it.
    let dep: String = MODULES_DEP
        .lines()
        .filter(|l| !l.contains("virtio_blk.ko:") && !l.contains("virtio_scsi.ko:"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs.write_file(
        &p(&format!("/usr/lib/modules/{V}/modules.dep")),
        dep.as_bytes(),
    )
    .unwrap();
    let changes = changes_after(&fs);
    let Change::AppendFile { data, .. } = &changes[0] else {
        panic!("{changes:?}");
    };
    let names: Vec<String> = cpio_files(data).into_keys().collect();
    assert!(!names.iter().any(|n| n.contains("virtio_blk")));
    assert!(!names.iter().any(|n| n.contains("scsi_mod")));
    let Change::WriteFile { after, .. } = &changes[1] else {
        panic!("{changes:?}");
    };
    assert!(String::from_utf8_lossy(after).ends_with("virtio_pci\nvirtio_net\n"));
}

#[test]
fn oversized_modules_are_refused_by_name() {
    let fs = debian_guest(gzip(&image_cpio(&[])));
    let big = vec![0u8; usize::try_from(MAX_MODULE_FILE + 1).unwrap()];
    fs.write_file(
        &p(&format!(
            "/usr/lib/modules/{V}/kernel/drivers/virtio/virtio.ko"
        )),
        &big,
    )
    .unwrap();
    let os = inspect_filesystem(&fs).unwrap().unwrap();
    let ctx = GuestContext {
        fs: &fs,
        os: &os,
        partitions: &[],
        nics: &[],
        target: Target::Kvm,
    };
    let err = Initramfs.plan(&ctx).unwrap_err();
    assert!(err.to_string().contains("virtio.ko"), "{err}");
}

/// The fixup on a copy of a real converted guest disk, when one is given: set
/// `FERRY_INITRAMFS_RAW` to a raw disk whose first partition (at 1 MiB) is an ext4 root.
/// The disk is changed: use a copy.
#[test]
#[ignore]
fn real_guest_disk() {
    use std::sync::Arc;

    use crate::blockdev::FileRange;
    use crate::guestfs::ext4::{Access, Ext4Fs};

    let Ok(raw) = std::env::var("FERRY_INITRAMFS_RAW") else {
        eprintln!("FERRY_INITRAMFS_RAW not set: skipped");
        return;
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&raw)
        .unwrap();
    let len = file.metadata().unwrap().len() - (1 << 20);
    let range = FileRange::new(file, 1 << 20, len, true).unwrap();
    let fs = Ext4Fs::open(Arc::new(range), Access::ReadWrite).unwrap();
    for round in 0..2 {
        let os = inspect_filesystem(&fs).unwrap().unwrap();
        let ctx = GuestContext {
            fs: &fs,
            os: &os,
            partitions: &[],
            nics: &[],
            target: Target::Kvm,
        };
        let planned = Initramfs.plan(&ctx).unwrap();
        for change in match &planned {
            Plan::Changes(c) => c.clone(),
            Plan::Skip(why) => panic!("skipped: {why}"),
        } {
            eprintln!(
                "round {round}: {}",
                crate::fixup::diff::report(&change).diff
            );
        }
        if round == 1 {
            assert_eq!(planned, Plan::Changes(Vec::new()));
        } else if let Plan::Changes(c) = &planned {
            Initramfs.apply(&ctx, c).unwrap();
        }
    }
    fs.close().unwrap();
}

/// Modules of real machines' drivers, as a distribution kernel has them (some of
/// `PHYSICAL_WANTED` only: the others are skipped without a word).
const PHYSICAL_DEP: &str = "\
kernel/drivers/ata/libata.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/ata/libahci.ko: kernel/drivers/ata/libata.ko kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/ata/ahci.ko: kernel/drivers/ata/libahci.ko kernel/drivers/ata/libata.ko kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/nvme/host/nvme-core.ko.xz:
kernel/drivers/nvme/host/nvme.ko.xz: kernel/drivers/nvme/host/nvme-core.ko.xz
kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko:
";

/// [`debian_guest`] whose kernel has [`PHYSICAL_DEP`] too.
fn physical_guest(image: Vec<u8>) -> MemFs {
    let fs = debian_guest(image);
    let dir = format!("/usr/lib/modules/{V}");
    fs.remove(&p(&format!("{dir}/modules.dep"))).unwrap();
    fs.add_file(
        &format!("{dir}/modules.dep"),
        format!("{MODULES_DEP}{PHYSICAL_DEP}"),
    )
    .unwrap();
    for line in PHYSICAL_DEP.lines() {
        let path = line.split(':').next().unwrap();
        fs.add_file(&format!("{dir}/{path}"), module_bytes(path))
            .unwrap();
    }
    fs
}

fn plan_target(fs: &MemFs, target: Target) -> Plan {
    let os = inspect_filesystem(fs).unwrap().unwrap();
    let ctx = GuestContext {
        fs,
        os: &os,
        partitions: &[],
        nics: &[],
        target,
    };
    Initramfs.plan(&ctx).unwrap()
}

#[test]
fn wanted_drivers_follow_the_target() {
    assert_eq!(modules::wanted(Target::Kvm), modules::KVM_WANTED);
    let physical = modules::wanted(Target::Physical);
    assert!(physical.contains(&"ahci") && physical.contains(&"e1000e"));
    assert!(!physical
        .iter()
        .any(|m| m.starts_with("virtio") || *m == "ena"));
    assert!(!PHYSICAL_STAMP.contains(STAMP) && !STAMP.contains(PHYSICAL_STAMP));
}

#[test]
fn physical_after_kvm_adds_the_physical_set_once() {
    let fs = physical_guest(gzip(&image_cpio(&[])));
    let kvm = changes(plan_target(&fs, Target::Kvm));
    apply::apply_changes(&fs, &kvm).unwrap();

    let physical = changes(plan_target(&fs, Target::Physical));
    assert_eq!(physical.len(), 2, "{physical:#?}");
    let Change::AppendFile { data, summary, .. } = &physical[0] else {
        panic!("{physical:?}");
    };
    // What was added is reported: the wanted drivers the kernel has, and their needs.
    assert!(
        summary.contains("adding libata, libahci, ahci, nvme_core, nvme, e1000e;"),
        "{summary}"
    );
    assert!(!summary.contains("virtio"), "{summary}");
    let files = cpio_files(data);
    let dir = format!("usr/lib/modules/{V}");
    assert!(files.contains_key(&format!("{dir}/kernel/drivers/ata/ahci.ko")));
    assert!(files.contains_key(&format!("{dir}/kernel/drivers/nvme/host/nvme-core.ko.xz")));
    // scsi_mod came with virtio_scsi in the KVM run: it is in the image already.
    assert!(!files.contains_key(&format!("{dir}/kernel/drivers/scsi/scsi_mod.ko")));
    let dep = String::from_utf8(files[&format!("{dir}/modules.dep")].clone()).unwrap();
    assert!(
        dep.contains("virtio_blk.ko:") && dep.contains("ahci.ko:"),
        "{dep}"
    );
    assert!(!files.contains_key(DRACUT_CMDLINE));
    let stamp = String::from_utf8(files[PHYSICAL_STAMP].clone()).unwrap();
    assert!(
        stamp.contains("bare metal") && stamp.contains("e1000e"),
        "{stamp}"
    );

    let Change::WriteFile { path, after, .. } = &physical[1] else {
        panic!("{physical:?}");
    };
    assert_eq!(path, &p(INITRAMFS_TOOLS_MODULES));
    assert!(String::from_utf8_lossy(after).ends_with(
        "virtio_net\n# storage and NIC drivers for bare metal, added by ferry\n\
         ahci\nlibahci\nnvme\nnvme_core\ne1000e\n"
    ));
    apply::apply_changes(&fs, &physical).unwrap();
    // A second Physical run changes nothing, nor does KVM's again.
    assert_eq!(changes(plan_target(&fs, Target::Physical)), Vec::new());
    assert_eq!(changes(plan_target(&fs, Target::Kvm)), Vec::new());
}

#[test]
fn physical_dracut_guests_get_their_own_conf_and_no_forced_drivers() {
    let fs = physical_guest(zstd(&image_cpio(&[])));
    fs.remove(&p("/usr/sbin/update-initramfs")).unwrap();
    fs.add_file("/usr/bin/dracut", "#!/bin/bash\n").unwrap();
    let image = fs.read_file(&p(&format!("/boot/initrd.img-{V}"))).unwrap();
    fs.remove(&p(&format!("/boot/initrd.img-{V}"))).unwrap();
    fs.add_file(&format!("/boot/initramfs-{V}.img"), image)
        .unwrap();
    let changes_made = changes(plan_target(&fs, Target::Physical));
    assert_eq!(changes_made.len(), 2, "{changes_made:#?}");
    let Change::AppendFile { data, .. } = &changes_made[0] else {
        panic!("{changes_made:?}");
    };
    assert!(!cpio_files(data).contains_key(DRACUT_CMDLINE));
    let Change::WriteFile { path, after, .. } = &changes_made[1] else {
        panic!("{changes_made:?}");
    };
    assert_eq!(path, &p(PHYSICAL_DRACUT_CONF));
    assert_eq!(
        String::from_utf8_lossy(after),
        "# storage and NIC drivers for bare metal, added by ferry\n\
         add_drivers+=\" ahci libahci nvme nvme_core e1000e \"\n"
    );
    apply::apply_changes(&fs, &changes_made).unwrap();
    assert_eq!(changes(plan_target(&fs, Target::Physical)), Vec::new());
}
