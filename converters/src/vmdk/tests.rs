//! Tests against qemu: images made with `qemu-img` / `qemu-io`, every byte read through the
//! VMDK source compared with qemu's view (`qemu-img compare` on a raw copy, and byte for
//! byte with `qemu-img convert -O raw` for small disks), Data bytes with `qemu-img map`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

pub(super) use crate::testutil::have_qemu;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::descriptor::{Access, Descriptor, ExtentType};
use crate::probe::{self, Format, OpenOptions};
use crate::source::{DiskSource, ExtentIter, ExtentKind};

pub(super) const MIB: u64 = 1 << 20;

pub(super) fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(super) fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// `qemu-io -c 'write -P pattern off len'` (or any qemu-io command) on a vmdk.
pub(super) fn qemu_io(img: &Path, cmd: &str) {
    run("qemu-io", &["-f", "vmdk", "-c", cmd, p(img)]);
}

pub(super) fn open(path: &Path) -> crate::Result<Box<dyn DiskSource>> {
    probe::open(path, Some(Format::Vmdk), &OpenOptions::default())
}

/// The one-line error opening `path` gives (panics when it opens).
pub(super) fn open_err(path: &Path) -> String {
    match open(path) {
        Ok(_) => panic!("{} opened, expected an error", path.display()),
        Err(e) => e.to_string(),
    }
}

/// Bytes qemu reports as non-zero data (`"data": true, "zero": false`) in
/// `qemu-img map --output=json` (qemu reports the holes of a flat extent file as data that
/// reads as zero; ferry reports them as not data).
pub(super) fn qemu_data_bytes(path: &Path) -> u64 {
    let json = run("qemu-img", &["map", "--output=json", "-f", "vmdk", p(path)]);
    json.split('}')
        .filter(|entry| entry.contains("\"data\": true") && entry.contains("\"zero\": false"))
        .filter_map(|entry| {
            let rest = entry.split("\"length\":").nth(1)?;
            rest.split(',').next()?.trim().parse::<u64>().ok()
        })
        .sum()
}

/// Copies the source into a sparse raw file, writing only non-Unallocated/Zero extents.
pub(super) fn write_sparse_raw(src: &dyn DiskSource, out: &Path) {
    let f = File::create(out).unwrap();
    f.set_len(src.size()).unwrap();
    let mut buf = Vec::new();
    for e in ExtentIter::new(src, 0, src.size()) {
        let e = e.unwrap();
        if !e.kind.is_data() {
            continue;
        }
        let mut pos = e.offset;
        while pos < e.end() {
            let n = (e.end() - pos).min(4 * MIB);
            buf.resize(n as usize, 0);
            src.read_exact_at(&mut buf, pos).unwrap();
            f.write_all_at(&buf, pos).unwrap();
            pos += n;
        }
    }
}

/// Asserts our reading of `img` equals qemu's, byte for byte, and that our Data extents
/// add up to qemu's data bytes.
pub(super) fn assert_matches_qemu(img: &Path) {
    let src = open(img).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours.raw");
    write_sparse_raw(src.as_ref(), &ours);
    let out = Command::new("qemu-img")
        .args(["compare", "-q", "-f", "raw", "-F", "vmdk", p(&ours), p(img)])
        .status()
        .unwrap();
    assert!(
        out.success(),
        "qemu-img compare differs for {}",
        img.display()
    );
    if src.size() <= 64 * MIB {
        let theirs = dir.path().join("theirs.raw");
        run(
            "qemu-img",
            &["convert", "-f", "vmdk", "-O", "raw", p(img), p(&theirs)],
        );
        let expect = std::fs::read(&theirs).unwrap();
        let mut got = vec![0u8; src.size() as usize];
        src.read_exact_at(&mut got, 0).unwrap();
        assert!(got == expect, "bytes differ from qemu-img convert");
        check_odd_reads(src.as_ref(), &expect);
    }
    let ours_data = crate::source::allocated_bytes(src.as_ref()).unwrap();
    assert_eq!(
        ours_data,
        qemu_data_bytes(img),
        "data bytes differ from qemu-img map"
    );
}

/// Reads at odd offsets and lengths, across grain and extent boundaries.
fn check_odd_reads(src: &dyn DiskSource, expect: &[u8]) {
    let size = expect.len() as u64;
    let mut x = 0x9e37_79b9_u64;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let off = x % size;
        let len = (x >> 20) % (size - off).min(300_000) + 1;
        let mut buf = vec![0u8; len as usize];
        src.read_exact_at(&mut buf, off).unwrap();
        assert!(
            buf == expect[off as usize..(off + len) as usize],
            "odd read at {off:#x}+{len:#x}"
        );
        let e = src.extent_at(off, len).unwrap();
        assert!(e.len > 0 && e.len <= len && e.offset == off);
    }
}

/// Writes data at the first and last sector, odd offsets, and across grain boundaries.
pub(super) fn scribble(img: &Path, size: u64) {
    for cmd in [
        "write -P 0x11 0 512".to_string(),
        format!("write -P 0x22 {} 512", size - 512),
        "write -P 0x33 65024 1024".to_string(),
        "write -P 0x44 1048576 196608".to_string(),
        format!("write -P 0x55 {} 4096", (size / 2) & !511),
        "write -P 0x66 3145728 65536".to_string(),
    ] {
        qemu_io(img, &cmd);
    }
}

fn create(dir: &Path, name: &str, opts: &str, size: u64) -> PathBuf {
    let img = dir.join(name);
    let size = size.to_string();
    let mut args = vec!["create", "-q", "-f", "vmdk"];
    if !opts.is_empty() {
        args.extend(["-o", opts]);
    }
    args.extend([p(&img), &size]);
    run("qemu-img", &args);
    img
}

/// Odd size: not a multiple of the 64 KiB grain.
const ODD_SIZE: u64 = 10 * MIB + 3 * 512;

#[test]
fn monolithic_sparse_matches_qemu() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = create(dir.path(), "mono.vmdk", "", ODD_SIZE);
    scribble(&img, ODD_SIZE);
    assert_matches_qemu(&img);
    let src = open(&img).unwrap();
    let layers = src.layers();
    assert_eq!(layers[0].subformat.as_deref(), Some("monolithicSparse"));
    assert_eq!(layers[0].files, vec![img.clone()]);
}

#[test]
fn zeroed_grains_are_zero_not_unallocated() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = create(dir.path(), "z.vmdk", "zeroed_grain=on", 4 * MIB);
    qemu_io(&img, "write -P 0x77 0 1M");
    qemu_io(&img, "write -z 65536 131072");
    assert_matches_qemu(&img);
    let src = open(&img).unwrap();
    let e = src.extent_at(65536, MIB).unwrap();
    assert_eq!((e.kind, e.len), (ExtentKind::Zero, 131072));
    let e = src.extent_at(0, 4 * MIB).unwrap();
    assert_eq!((e.kind, e.len), (ExtentKind::Data, 65536));
    let e = src.extent_at(MIB, 4 * MIB).unwrap();
    assert_eq!((e.kind, e.len), (ExtentKind::Unallocated, 3 * MIB));
}

#[test]
fn stream_optimized_matches_qemu() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = create(dir.path(), "src.vmdk", "", ODD_SIZE);
    scribble(&base, ODD_SIZE);
    let img = dir.path().join("stream.vmdk");
    run(
        "qemu-img",
        &[
            "convert",
            "-f",
            "vmdk",
            "-O",
            "vmdk",
            "-o",
            "subformat=streamOptimized",
            p(&base),
            p(&img),
        ],
    );
    assert_matches_qemu(&img);
    let layers = open(&img).unwrap().layers();
    assert_eq!(layers[0].subformat.as_deref(), Some("streamOptimized"));
}

#[test]
fn flat_and_split_layouts_match_qemu() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (sub, extents) in [
        ("monolithicFlat", 1),
        ("twoGbMaxExtentFlat", 1),
        ("twoGbMaxExtentSparse", 1),
    ] {
        let name = format!("{sub}.vmdk");
        let img = create(dir.path(), &name, &format!("subformat={sub}"), ODD_SIZE);
        scribble(&img, ODD_SIZE);
        assert_matches_qemu(&img);
        let layers = open(&img).unwrap().layers();
        assert_eq!(layers[0].subformat.as_deref(), Some(sub));
        assert_eq!(layers[0].files.len(), 1 + extents, "{sub}");
    }
}

#[test]
fn split_sparse_across_2g_boundaries() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let size = 5 * 1024 * MIB - 7 * 512;
    for sub in ["twoGbMaxExtentSparse", "twoGbMaxExtentFlat"] {
        let img = create(
            dir.path(),
            &format!("{sub}.vmdk"),
            &format!("subformat={sub}"),
            size,
        );
        let two_g = 2048 * MIB;
        for (pat, off, len) in [
            (1, two_g - 512, 1024),
            (2, 2 * two_g - 65536, 131072),
            (3, size - 4096, 4096),
        ] {
            qemu_io(&img, &format!("write -P {pat} {off} {len}"));
        }
        assert_matches_qemu(&img);
        let src = open(&img).unwrap();
        assert_eq!(src.layers()[0].files.len(), 4);
        // One read spanning the extent boundary.
        let mut buf = vec![0u8; 1024];
        src.read_exact_at(&mut buf, two_g - 512).unwrap();
        assert!(buf.iter().all(|&b| b == 1));
    }
}

#[test]
fn runs_merge_across_grains_and_extents() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = create(dir.path(), "m.vmdk", "", 64 * MIB);
    qemu_io(&img, "write -P 1 0 8M");
    let src = open(&img).unwrap();
    let e = src.extent_at(0, u64::MAX).unwrap();
    assert_eq!((e.kind, e.len), (ExtentKind::Data, 8 * MIB));
    let e = src.extent_at(8 * MIB, u64::MAX).unwrap();
    assert_eq!((e.kind, e.len), (ExtentKind::Unallocated, 56 * MIB));
    let e = src.extent_at(100, 1000).unwrap();
    assert_eq!((e.offset, e.len), (100, 1000));
    assert!(src.extent_at(64 * MIB, 1).is_err());
    let mut b = [0u8; 2];
    assert!(src.read_exact_at(&mut b, 64 * MIB - 1).is_err());
}

fn chain(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let base = create(dir, "l0.vmdk", "", ODD_SIZE);
    scribble(&base, ODD_SIZE);
    let mut layers = vec![base];
    for i in 1..depth {
        let img = dir.join(format!("l{i}.vmdk"));
        let parent = layers[i - 1]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let out = Command::new("qemu-img")
            .current_dir(dir)
            .args([
                "create",
                "-q",
                "-f",
                "vmdk",
                "-b",
                &parent,
                "-F",
                "vmdk",
                p(&img),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        qemu_io(
            &img,
            &format!("write -P 0x{i}a {} 70000", i as u64 * 1_000_448),
        );
        qemu_io(&img, &format!("write -P 0x{i}b {} 512", ODD_SIZE - 512));
        layers.push(img);
    }
    layers
}

#[test]
fn snapshot_chains_read_through_parents() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layers = chain(dir.path(), 3);
    for img in &layers[1..] {
        let src = open(img).unwrap();
        let dir2 = tempfile::tempdir().unwrap();
        let ours = dir2.path().join("ours.raw");
        write_sparse_raw(src.as_ref(), &ours);
        let theirs = dir2.path().join("theirs.raw");
        run(
            "qemu-img",
            &["convert", "-f", "vmdk", "-O", "raw", p(img), p(&theirs)],
        );
        assert!(std::fs::read(&ours).unwrap() == std::fs::read(&theirs).unwrap());
    }
    let top = open(&layers[2]).unwrap();
    let infos = top.layers();
    assert_eq!(infos.len(), 3);
    assert_eq!(infos[2].path, layers[0]);
}

#[test]
fn chain_errors_are_clean() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layers = chain(dir.path(), 3);
    // A loop: the base now names the top as its parent.
    let mut base = std::fs::read(&layers[0]).unwrap();
    let region = &base[512..512 + 10240];
    let end = region.iter().position(|&b| b == 0).unwrap();
    let text = std::str::from_utf8(&region[..end]).unwrap().replace(
        "parentCID=ffffffff",
        &format!(
            "parentCID={}\nparentFileNameHint=\"l2.vmdk\"",
            read_cid(&layers[2])
        ),
    );
    assert!(text.len() <= 10240 && text.contains("l2.vmdk"));
    base[512..512 + text.len()].copy_from_slice(text.as_bytes());
    std::fs::write(&layers[0], &base).unwrap();
    let err = open_err(&layers[2]);
    assert!(err.contains("loops"), "{err}");

    // A CID mismatch.
    let dir = tempfile::tempdir().unwrap();
    let layers = chain(dir.path(), 2);
    run(
        "qemu-io",
        &["-f", "vmdk", "-c", "write 0 512", p(&layers[0])],
    );
    let err = open_err(&layers[1]);
    assert!(err.contains("parentCID"), "{err}");

    // A missing parent.
    let dir = tempfile::tempdir().unwrap();
    let layers = chain(dir.path(), 2);
    std::fs::remove_file(&layers[0]).unwrap();
    let err = open_err(&layers[1]);
    assert!(err.contains("l0.vmdk") && err.contains("parent"), "{err}");
}

fn read_cid(img: &Path) -> String {
    let bytes = std::fs::read(img).unwrap();
    let text = String::from_utf8_lossy(&bytes[512..]).into_owned();
    let line = text.lines().find(|l| l.starts_with("CID=")).unwrap();
    line[4..].trim().to_string()
}

pub(super) fn write_file(path: &Path, bytes: &[u8]) {
    File::create(path).unwrap().write_all(bytes).unwrap();
}

#[test]
fn descriptor_parsing_is_tolerant() {
    let text = b"# Disk DescriptorFile\r\nversion=1\r\nencoding=\"windows-1252\"\r\nCID = 0000abcd \r\n\
parentCID=ffffffff\r\ncreateType=\"vmfs\"\r\n  # comment\r\n\r\nRW 4096 VMFS \"disk\xe9 flat.vmdk\"\r\n\
RDONLY 10 FLAT \"b.vmdk\" 7\r\nNOACCESS 5 SPARSE \"c.vmdk\"\r\nRW 8 ZERO\r\nddb.comment=\"caf\xe9\"\r\n\0\0garbage";
    let d = Descriptor::parse(Path::new("x"), text).unwrap();
    assert_eq!(d.create_type.as_deref(), Some("vmfs"));
    assert_eq!(d.cid, Some(0xabcd));
    assert_eq!(d.parent_cid, None);
    assert_eq!(d.extents.len(), 4);
    assert_eq!(
        d.extents[0].file.as_deref(),
        Some(&b"disk\xe9 flat.vmdk"[..])
    );
    assert_eq!(d.extents[0].kind, ExtentType::Vmfs);
    assert_eq!(
        (d.extents[1].access, d.extents[1].offset_sectors),
        (Access::ReadOnly, 7)
    );
    assert_eq!(d.extents[2].access, Access::Denied);
    assert_eq!(
        (d.extents[3].kind.clone(), d.extents[3].file.clone()),
        (ExtentType::Zero, None)
    );
    for bad in [
        &b"RW x FLAT \"a\" 0"[..],
        b"RW 5 FLAT a",
        b"RW 5 FLAT \"a\" 0 junk",
        b"CID=xyz",
    ] {
        assert!(
            Descriptor::parse(Path::new("x"), bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn zero_noaccess_and_offset_flat_extents() {
    let dir = tempfile::tempdir().unwrap();
    let flat: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
    write_file(&dir.path().join("d-flat.vmdk"), &flat);
    let desc = "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n\
createType=\"monolithicFlat\"\nRW 4 FLAT \"d-flat.vmdk\" 2\nRW 3 ZERO\nNOACCESS 2 FLAT \"absent.vmdk\" 0\n\
RDONLY 2 FLAT \"d-flat.vmdk\" 0\n";
    let path = dir.path().join("d.vmdk");
    write_file(&path, desc.as_bytes());
    let src = open(&path).unwrap();
    assert_eq!(src.size(), 11 * 512);
    let mut got = vec![0u8; 11 * 512];
    src.read_exact_at(&mut got, 0).unwrap();
    assert_eq!(&got[..2048], &flat[1024..3072]);
    assert!(got[2048..4608].iter().all(|&b| b == 0));
    assert_eq!(&got[4608..], &flat[..1024]);
    let e = src.extent_at(2048, u64::MAX).unwrap();
    assert_eq!((e.kind, e.len), (ExtentKind::Zero, 2560));
    assert_eq!(src.layers()[0].files.len(), 2);
}

#[test]
fn names_outside_the_folder_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["/etc/passwd", "../x.vmdk", "a/../../x.vmdk", ""] {
        let desc = format!(
            "CID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"{name}\" 0\n"
        );
        let path = dir.path().join("d.vmdk");
        write_file(&path, desc.as_bytes());
        let err = open_err(&path);
        assert!(err.contains("file name"), "{name}: {err}");
    }
    let desc = "CID=1\nparentCID=00000001\nparentFileNameHint=\"../p.vmdk\"\ncreateType=\"vmfs\"\nRW 1 ZERO\n";
    let path = dir.path().join("d.vmdk");
    write_file(&path, desc.as_bytes());
    let err = open_err(&path);
    assert!(
        err.contains("climbs out of the descriptor's folder"),
        "{err}"
    );
}

#[test]
fn missing_extent_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let desc = "CID=1\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\nRW 100 SPARSE \"gone-s001.vmdk\"\n";
    let path = dir.path().join("d.vmdk");
    write_file(&path, desc.as_bytes());
    let err = open(&path).err().expect("an error");
    assert!(err.to_string().contains("gone-s001.vmdk"), "{err}");
    assert!(!err.is_bad_input()); // an I/O error: the file is missing
}

#[test]
fn concurrent_reads_agree() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = create(dir.path(), "src.vmdk", "", ODD_SIZE);
    scribble(&base, ODD_SIZE);
    let img = dir.path().join("stream.vmdk");
    run(
        "qemu-img",
        &[
            "convert",
            "-O",
            "vmdk",
            "-o",
            "subformat=streamOptimized",
            p(&base),
            p(&img),
        ],
    );
    let theirs = dir.path().join("theirs.raw");
    run("qemu-img", &["convert", "-O", "raw", p(&img), p(&theirs)]);
    let expect = std::fs::read(&theirs).unwrap();
    let src = open(&img).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (src, expect) = (&src, &expect);
            s.spawn(move || {
                for i in 0..50u64 {
                    let off = (t * 7919 + i * 104_729) * 97 % ODD_SIZE;
                    let len = ((i * 31 + t) * 4099 % 200_000 + 1).min(ODD_SIZE - off);
                    let mut buf = vec![0u8; len as usize];
                    src.read_exact_at(&mut buf, off).unwrap();
                    assert!(buf == expect[off as usize..(off + len) as usize]);
                }
            });
        }
    });
}
