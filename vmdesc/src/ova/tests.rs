use std::io::Write;

use sha2::{Digest, Sha256};

use super::*;

use crate::testutil::{corpus, tempdir};

/// One ustar header + padded data. `kind` is the typeflag.
fn entry(out: &mut Vec<u8>, name: &str, kind: u8, data: &[u8]) {
    let mut h = [0u8; 512];
    let n = name.as_bytes();
    h[..n.len().min(100)].copy_from_slice(&n[..n.len().min(100)]);
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(512), 0);
}

fn pax(out: &mut Vec<u8>, path: &str) {
    let body = format!(" path={path}\n");
    // The length prefix counts itself.
    let mut len = body.len() + 1;
    while format!("{len}{body}").len() != len {
        len += 1;
    }
    entry(out, "PaxHeaders/x", b'x', format!("{len}{body}").as_bytes());
}

const OVF: &str = r#"<?xml version="1.0"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf">
<References><File ovf:id="f1" ovf:href="disk1.vmdk" ovf:size="4096"/></References>
<DiskSection><Info/><Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^30"/></DiskSection>
<NetworkSection><Info/><Network ovf:name="lan"/></NetworkSection>
<VirtualSystem ovf:id="built"><Info/><Name>built-vm</Name>
<VirtualHardwareSection><Info/>
<Item><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>4</rasd:VirtualQuantity></Item>
<Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>2048</rasd:VirtualQuantity></Item>
<Item><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>
<Item><rasd:InstanceID>4</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:HostResource>ovf:/disk/d1</rasd:HostResource><rasd:ResourceType>17</rasd:ResourceType></Item>
<Item><rasd:Address>00:50:56:AA:BB:CC</rasd:Address><rasd:Connection>lan</rasd:Connection><rasd:InstanceID>5</rasd:InstanceID><rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></Item>
<vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>
<vmw:Config ovf:required="false" vmw:key="uefi.secureBoot.enabled" vmw:value="true"/>
</VirtualHardwareSection></VirtualSystem></Envelope>"#;

fn disk() -> Vec<u8> {
    (0..4096u32).map(|i| (i % 251) as u8).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An OVA as ovftool lays it out: OVF first, then the manifest, then the disk.
fn build(dir: &Path, manifest: Option<&str>, disk: &[u8]) -> PathBuf {
    let mut tar = Vec::new();
    entry(&mut tar, "built.ovf", b'0', OVF.as_bytes());
    if let Some(mf) = manifest {
        entry(&mut tar, "built.mf", b'0', mf.as_bytes());
    }
    entry(&mut tar, "disk1.vmdk", b'0', disk);
    tar.extend_from_slice(&[0u8; 1024]);
    let path = dir.join("built.ova");
    let mut f = File::create(&path).expect("create");
    f.write_all(&tar).expect("write");
    path
}

fn good_manifest() -> String {
    format!(
        "SHA256(built.ovf)= {}\nSHA256(disk1.vmdk)= {}\n",
        sha256_hex(OVF.as_bytes()),
        sha256_hex(&disk())
    )
}

#[test]
fn built_ova_verifies_and_locates_members() {
    let dir = tempdir();
    let path = build(dir.path(), Some(&good_manifest()), &disk());
    let ova = read_ova(&path).expect("reads");
    let d = &ova.description;
    assert_eq!(d.name, "built-vm");
    assert_eq!(d.vcpus, 4);
    assert_eq!(d.memory_bytes, 2 << 30);
    assert_eq!(d.firmware, crate::Firmware::Uefi { secure_boot: true });
    assert_eq!(d.disks.len(), 1);
    assert_eq!(d.disks[0].path, Some(PathBuf::from("disk1.vmdk")));
    assert_eq!(d.disks[0].target, "scsi3:0");
    assert_eq!(d.disks[0].capacity_bytes, Some(1 << 30));
    assert_eq!(d.nics[0].mac.as_deref(), Some("00:50:56:aa:bb:cc"));
    assert_eq!(d.nics[0].model.as_deref(), Some("vmxnet3"));
    assert!(
        d.warnings.iter().all(|w| !w.contains("manifest")),
        "{:?}",
        d.warnings
    );
    let names: Vec<&str> = ova.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["built.ovf", "built.mf", "disk1.vmdk"]);
    // The recorded offset really is where the disk's bytes are.
    let m = &ova.members[2];
    let bytes = std::fs::read(&path).expect("read");
    assert_eq!(
        &bytes[usize::try_from(m.offset).expect("fits")..]
            [..usize::try_from(m.size).expect("fits")],
        &disk()[..]
    );
}

#[test]
fn flipped_disk_byte_is_refused() {
    let dir = tempdir();
    let mut bad = disk();
    bad[100] ^= 0x40;
    let path = build(dir.path(), Some(&good_manifest()), &bad);
    let e = read_ova(&path).expect_err("tampered").to_string();
    assert!(
        e.contains("manifest: SHA256 of disk1.vmdk does not match"),
        "{e}"
    );
    assert!(!e.contains('\n'));
}

#[test]
fn manifest_naming_a_missing_member_is_refused() {
    let dir = tempdir();
    let mf = format!("{}SHA1(disk2.vmdk)= {}\n", good_manifest(), "0".repeat(40));
    let path = build(dir.path(), Some(&mf), &disk());
    let e = read_ova(&path).expect_err("missing").to_string();
    assert!(e.contains("names disk2.vmdk, not in the archive"), "{e}");
}

#[test]
fn no_manifest_is_a_warning() {
    let dir = tempdir();
    let path = build(dir.path(), None, &disk());
    let ova = read_ova(&path).expect("reads");
    assert!(ova
        .description
        .warnings
        .iter()
        .any(|w| w.contains("no manifest")));
}

#[test]
fn long_names_and_subfolders() {
    // GNU `././@LongLink` and pax `path` both rename the next member; the OVF sits in a
    // subfolder (virt-v2v test-i-ova-subfolders), so its disk is `sub/disk1.vmdk`.
    let long = format!("sub/{}.ovf", "n".repeat(150));
    let mut tar = Vec::new();
    entry(&mut tar, "sub/", b'5', b"");
    entry(
        &mut tar,
        "././@LongLink",
        b'L',
        format!("{long}\0").as_bytes(),
    );
    entry(&mut tar, "truncated", b'0', OVF.as_bytes());
    pax(&mut tar, "sub/disk1.vmdk");
    entry(&mut tar, "ignored", b'0', &disk());
    let mf = format!("SHA256 (disk1.vmdk) = {}\n", sha256_hex(&disk()));
    entry(&mut tar, "./sub/x.mf", b'0', mf.as_bytes());
    tar.extend_from_slice(&[0u8; 1024]);
    let dir = tempdir();
    let path = dir.path().join("sub.ova");
    std::fs::write(&path, &tar).expect("write");
    let ova = read_ova(&path).expect("reads");
    let names: Vec<&str> = ova.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, [long.as_str(), "sub/disk1.vmdk", "sub/x.mf"]);
    assert_eq!(
        ova.description.disks[0].path,
        Some(PathBuf::from("sub/disk1.vmdk"))
    );
}

#[test]
fn not_a_tar() {
    let dir = tempdir();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "gz.ova",
            vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0],
            "gzip-compressed",
        ),
        ("junk.ova", vec![b'x'; 2048], "bad header checksum"),
        ("short.ova", vec![b'x'; 100], "truncated tar header"),
        ("empty.ova", vec![0u8; 1024], "no .ovf member"),
    ];
    for (name, bytes, word) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).expect("write");
        let e = read_ova(&p).expect_err(name).to_string();
        assert!(e.contains(word) && !e.contains('\n'), "{name}: {e}");
    }
    // A member claiming more data than the file holds.
    let mut tar = Vec::new();
    entry(&mut tar, "a.ovf", b'0', &[b' '; 600]);
    tar.truncate(1024);
    let p = dir.path().join("cut.ova");
    std::fs::write(&p, tar).expect("write");
    let e = read_ova(&p).expect_err("cut").to_string();
    assert!(e.contains("runs past the end"), "{e}");
}

#[test]
fn manifest_line_formats() {
    let text = "SHA1(a.ovf)= AB12AB12AB12AB12AB12AB12AB12AB12AB12AB12\n\nSHA256 (b (1).vmdk) = 0000000000000000000000000000000000000000000000000000000000000000\n";
    let e = manifest::parse("m", text).expect("parses");
    assert_eq!(e[0].algo, manifest::Algo::Sha1);
    assert_eq!(e[0].name, "a.ovf");
    assert_eq!(e[0].hex, "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12");
    assert_eq!(e[1].name, "b (1).vmdk");
    assert!(manifest::parse("m", "MD5(a)= 00").is_err());
    assert!(manifest::parse("m", "SHA1(a)= 00").is_err());
    assert!(manifest::parse("m", "garbage").is_err());
}

#[test]
fn corpus_ovas() {
    let Some(root) = corpus() else { return };
    // cdi/fake.ova: manifest last and named disk1.mf; its SHA1 matches. The OVF claims
    // a 50 GiB streamOptimized disk of 7.8 GB, the member is 64 KiB: said in warnings.
    let ova = read_ova(&root.join("cdi/fake.ova")).expect("fake.ova");
    assert_eq!(ova.description.name, "2K8R2EESP1_2_Medium");
    assert_eq!(ova.members.len(), 3);
    assert_eq!(
        ova.members[1],
        OvaMember {
            name: "disk1.vmdk".into(),
            offset: 9216,
            size: 65536
        }
    );
    assert_eq!(
        ova.description.disks[0].path,
        Some(PathBuf::from("disk1.vmdk"))
    );
    assert_eq!(ova.description.disks[0].capacity_bytes, Some(50 << 30));
    assert!(ova
        .description
        .warnings
        .iter()
        .any(|w| w.contains("65536 bytes in the archive, the OVF says 7804077568")));

    // govmomi: `SHA1 (name) = hex` manifest; the disk is truncated to 1 MiB.
    let ova = read_ova(&root.join("govmomi-ova/ttylinux-pc_i486-16.1.ova")).expect("govmomi");
    let d = &ova.description;
    assert_eq!(d.name, "ttylinux-pc_i486-16.1");
    assert_eq!(d.memory_bytes, 32 << 20);
    assert_eq!(d.disks[0].capacity_bytes, Some(30 << 20));
    assert_eq!(d.nics[0].model.as_deref(), Some("e1000"));
    assert!(d
        .warnings
        .iter()
        .any(|w| w.contains("1048576 bytes in the archive")));

    let e = read_ova(&root.join("cot/test.tar"))
        .expect_err("test.tar")
        .to_string();
    assert!(e.contains("no .ovf member"), "{e}");
}
