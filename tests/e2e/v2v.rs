//! Issue 4's acceptance: `ferry v2v` end to end. A VMware guest given as `.vmx` + VMDK and
//! a Xen guest given as `xl.cfg` + raw disk go through `ferry v2v --start` into the tests'
//! own libvirtd (TCG), boot to their marker on the serial log libvirt keeps, and
//! `virsh domiflist` shows the source MAC. OVAs are read in place; a corrupted manifest,
//! an existing domain, a missing daemon and `--dry-run` are checked too.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::guest::{self, GuestSpec, MARKER};
use crate::libvirtd::{local_libvirtd, LocalLibvirtd};
use crate::util::*;

/// A boot to the marker takes 40–90 s under TCG alone; other tests share the two cores.
const BOOT_TIMEOUT: Duration = Duration::from_secs(420);

fn virsh(uri: &str, args: &[&str]) -> std::process::Output {
    Command::new("virsh")
        .arg("-c")
        .arg(uri)
        .args(args)
        .output()
        .expect("run virsh")
}

/// Destroys and undefines the domain however the test ends.
struct Defined<'a> {
    uri: &'a str,
    name: String,
}

impl Drop for Defined<'_> {
    fn drop(&mut self) {
        let _ = virsh(self.uri, &["destroy", &self.name]);
        let _ = virsh(self.uri, &["undefine", "--nvram", &self.name]);
    }
}

/// Waits for the boot marker in the serial log virtlogd writes for `name`.
fn wait_for_marker(d: &LocalLibvirtd, name: &str) -> Result<String, String> {
    let log = d.log_dir.join("qemu").join(format!("{name}-serial0.log"));
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(MARKER)) {
            return Ok(line.to_string());
        }
        if started.elapsed() > BOOT_TIMEOUT {
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            return Err(format!(
                "no marker in {} after {:?}:\n{tail}",
                log.display(),
                started.elapsed()
            ));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// How a test guest is handed to `ferry v2v`.
struct Move<'a> {
    source: &'a Path,
    out: &'a Path,
    name: &'a str,
    mac: &'a str,
    /// The source network the NIC is mapped from (to QEMU's user network).
    net: &'a str,
    /// Put the disk in this storage pool of `d` instead of `out`.
    pool: Option<&'a str>,
}

/// Runs `ferry v2v --start` on the source into `d`, then checks boot, MAC and outputs.
fn v2v_boots(d: &LocalLibvirtd, m: &Move<'_>) {
    let (source, out, name, mac, net) = (m.source, m.out, m.name, m.mac, m.net);
    let _guard = Defined {
        uri: &d.uri,
        name: name.to_string(),
    };
    let mut args = vec![
        "v2v",
        "--json",
        p(source),
        "--out",
        p(out),
        "--name",
        name,
        "--start",
        "--connect",
        &d.uri,
        "--virt-type",
        "qemu",
        "--network-map",
        &format!("{net}=user"),
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    if let Some(pool) = m.pool {
        args.extend(["--pool".to_string(), pool.to_string()]);
    }
    let run = run_ferry(&args);
    assert!(run.status.success(), "v2v: {}", stderr(&run));
    let report = json_of(&run);
    assert_eq!(report["libvirt"]["started"], true, "{report:#}");
    for stage in [
        "read", "fixup", "convert", "verify", "domain", "define", "start",
    ] {
        assert!(
            report["stages"]
                .as_array()
                .expect("stages")
                .iter()
                .any(|s| s["stage"] == stage),
            "stage {stage} missing: {report:#}"
        );
    }
    let disk_dir = match m.pool {
        Some(_) => d.images_dir.clone(),
        None => out.to_path_buf(),
    };
    let disk = disk_dir.join(format!("{name}-disk1.qcow2"));
    assert!(disk.is_file(), "{report:#}");
    assert!(out.join(format!("{name}.xml")).is_file());
    let saved: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join(format!("{name}.report.json"))).expect("report file"),
    )
    .expect("report json");
    assert_eq!(saved["name"], name);

    let iflist = virsh(&d.uri, &["domiflist", name]);
    assert!(iflist.status.success(), "{}", stderr(&iflist));
    assert!(stdout(&iflist).contains(mac), "{}", stdout(&iflist));

    let line = wait_for_marker(d, name).unwrap_or_else(|e| panic!("{e}"));
    assert!(line.contains("root=rw"), "root not read-write: {line}");
    eprintln!("{name}: booted through libvirt: {line}");
}

#[test]
fn vmware_vmx_guest_boots_through_libvirt() {
    let Some(d) = local_libvirtd() else {
        return;
    };
    let Some(g) = guest::build(&GuestSpec::vmware()) else {
        return;
    };
    let dir = tmpdir();
    let vmdk = dir.path().join("web01.vmdk");
    vmdk_of(&g.disk, &vmdk);
    let vmx = dir.path().join("web01.vmx");
    std::fs::write(
        &vmx,
        format!(
            ".encoding = \"UTF-8\"\nconfig.version = \"8\"\nvirtualHW.version = \"19\"\n\
             displayName = \"web01\"\nguestOS = \"debian12-64\"\nfirmware = \"bios\"\n\
             numvcpus = \"2\"\ncpuid.coresPerSocket = \"2\"\nmemsize = \"1024\"\n\
             scsi0.present = \"TRUE\"\nscsi0.virtualDev = \"pvscsi\"\n\
             scsi0:0.present = \"TRUE\"\nscsi0:0.fileName = \"web01.vmdk\"\n\
             ide1:0.present = \"TRUE\"\nide1:0.deviceType = \"cdrom-raw\"\n\
             ide1:0.startConnected = \"FALSE\"\n\
             ethernet0.present = \"TRUE\"\nethernet0.virtualDev = \"vmxnet3\"\n\
             ethernet0.networkName = \"VM Network\"\nethernet0.addressType = \"static\"\n\
             ethernet0.address = \"{}\"\n",
            g.spec.mac
        ),
    )
    .expect("write vmx");
    let out = dir.path().join("out");
    v2v_boots(
        d,
        &Move {
            source: &vmx,
            out: &out,
            name: "ferry-e2e-web01",
            mac: &g.spec.mac,
            net: "VM Network",
            pool: None,
        },
    );
}

#[test]
fn xen_xl_cfg_guest_boots_through_libvirt() {
    let Some(d) = local_libvirtd() else {
        return;
    };
    let Some(g) = guest::build(&GuestSpec::xen()) else {
        return;
    };
    let dir = tmpdir();
    let raw = dir.path().join("db01.img");
    std::fs::copy(&g.disk, &raw).expect("copy disk");
    let cfg = dir.path().join("db01.cfg");
    std::fs::write(
        &cfg,
        format!(
            "# xl.cfg of a PV guest booted by pygrub\nname = \"db01\"\nbootloader = \"pygrub\"\n\
             memory = 1024\nmaxmem = 1024\nvcpus = 2\n\
             disk = [ 'format=raw, vdev=xvda, access=rw, target={}' ]\n\
             vif = [ 'mac={},bridge=xenbr0' ]\non_reboot = \"restart\"\n",
            raw.display(),
            g.spec.mac
        ),
    )
    .expect("write xl.cfg");
    let before = std::fs::read(&raw).expect("read");
    let out = dir.path().join("out");
    let name = "ferry-e2e-db01";
    // A run that was interrupted earlier may have left its disk in the pool.
    let _ = std::fs::remove_file(d.images_dir.join(format!("{name}-disk1.qcow2")));
    v2v_boots(
        d,
        &Move {
            source: &cfg,
            out: &out,
            name,
            mac: &g.spec.mac,
            net: "xenbr0",
            pool: Some("default"),
        },
    );
    let _ = std::fs::remove_file(d.images_dir.join(format!("{name}-disk1.qcow2")));
    assert!(
        std::fs::read(&raw).expect("read") == before,
        "the source disk was written"
    );
}

#[test]
fn v2v_dry_run_prints_the_plan_and_writes_nothing() {
    let Some(g) = guest::build(&GuestSpec::xen()) else {
        return;
    };
    let dir = tmpdir();
    let cfg = dir.path().join("db01.cfg");
    std::fs::write(
        &cfg,
        format!(
            "name = \"db01\"\nmemory = 512\nvcpus = 1\ndisk = [ 'file:{},xvda,w' ]\n\
             vif = [ 'mac={},bridge=xenbr0' ]\n",
            g.disk.display(),
            g.spec.mac
        ),
    )
    .expect("write cfg");
    let out = dir.path().join("out");
    let run = run_ferry(["v2v", "--dry-run", p(&cfg), "--out", p(&out)]);
    assert!(run.status.success(), "{}", stderr(&run));
    let text = stdout(&run);
    for want in [
        "+++ b/etc/fstab",
        "<domain type=",
        &g.spec.mac,
        "nothing written (--dry-run)",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    assert!(!out.exists(), "--dry-run created {}", out.display());
}

/// A tiny qcow2 with no filesystem: a data disk.
fn blank_disk(dir: &Path) -> PathBuf {
    let disk = dir.join("data.qcow2");
    qemu_img(&["create", "-f", "qcow2", p(&disk), "16M"]);
    disk
}

#[test]
fn v2v_bare_disk_needs_an_os_or_no_fixups() {
    if !have_tool("qemu-img") {
        return;
    }
    let dir = tmpdir();
    let disk = blank_disk(dir.path());
    let out = dir.path().join("out");
    let run = run_ferry(["v2v", p(&disk), "--out", p(&out)]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let err = stderr(&run);
    assert!(err.contains("--no-fixups"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        std::fs::read_dir(&out).map_or(0, |d| d.count()) == 0,
        "failed run left files"
    );

    let run = run_ferry(["v2v", "--no-fixups", "--json", p(&disk), "--out", p(&out)]);
    assert!(run.status.success(), "{}", stderr(&run));
    let report = json_of(&run);
    assert_eq!(report["name"], "data");
    let converted = out.join("data-disk1.qcow2");
    assert_qemu_identical(&disk, "qcow2", &converted, "qcow2");
    assert!(out.join("data.xml").is_file());
    // The domain XML ferry wrote is itself a source: a libvirt guest moved again.
    let out2 = dir.path().join("out2");
    let run = run_ferry([
        "v2v",
        "--no-fixups",
        "--json",
        p(&out.join("data.xml")),
        "--out",
        p(&out2),
        "-O",
        "raw",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let report = json_of(&run);
    assert_eq!(report["source_kind"], "libvirt", "{report:#}");
    assert_qemu_identical(&disk, "qcow2", &out2.join("data-disk1.raw"), "raw");
    // A second run never replaces the first one's results.
    let again = run_ferry(["v2v", "--no-fixups", p(&disk), "--out", p(&out)]);
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn v2v_libvirt_errors_are_clear() {
    if !have_tool("qemu-img") || !have_tool("virsh") {
        return;
    }
    let dir = tmpdir();
    let disk = blank_disk(dir.path());
    let out = dir.path().join("out");
    // No daemon behind the socket.
    let run = run_ferry([
        "v2v",
        "--no-fixups",
        p(&disk),
        "--out",
        p(&out),
        "--define",
        "--connect",
        "qemu:///system?socket=/nonexistent/libvirt-sock",
    ]);
    assert_eq!(run.status.code(), Some(6), "{}", stderr(&run));
    let err = stderr(&run);
    assert!(err.contains("no libvirt daemon"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!out.join("data-disk1.qcow2").exists());
    // libvirt's test driver always has a domain named "test": never replaced.
    let run = run_ferry([
        "v2v",
        "--no-fixups",
        p(&disk),
        "--out",
        p(&out),
        "--name",
        "test",
        "--define",
        "--connect",
        "test:///default",
    ]);
    assert_eq!(run.status.code(), Some(6), "{}", stderr(&run));
    assert!(stderr(&run).contains("already defined"), "{}", stderr(&run));
    // A new name is defined.
    let run = run_ferry([
        "v2v",
        "--no-fixups",
        "--json",
        p(&disk),
        "--out",
        p(&out),
        "--define",
        "--connect",
        "test:///default",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let report = json_of(&run);
    assert_eq!(report["libvirt"]["name"], "data", "{report:#}");
}

#[test]
fn v2v_reads_ova_disks_in_place_and_refuses_a_bad_manifest() {
    let Some(corpus) = corpus_dir() else {
        return;
    };
    let ova = corpus.join("cdi/fake.ova");
    let dir = tmpdir();
    let out = dir.path().join("out");
    let run = run_ferry([
        "v2v",
        "--no-fixups",
        "--json",
        "-O",
        "raw",
        p(&ova),
        "--out",
        p(&out),
        "--name",
        "fake",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    // The MANIFEST's raw SHA-256 of the member disk1.vmdk.
    assert_eq!(
        sha256_file(&out.join("fake-disk1.raw")),
        "84ff92691f909a05b224e1c56abb4864f01b4f8e3c854e4bb4c7baf1d3f6d652"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .expect("out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("fake"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The same OVA with one digit of the disk's SHA1 changed.
    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir(&unpacked).expect("mkdir");
    run_ok(Command::new("tar").args(["-xf", p(&ova), "-C", p(&unpacked)]));
    let mf = unpacked.join("disk1.mf");
    let text = std::fs::read_to_string(&mf).expect("mf");
    let eq = text.rfind("= ").expect("digest") + 2;
    let mut bad = text.clone().into_bytes();
    bad[eq] = if bad[eq] == b'0' { b'1' } else { b'0' };
    std::fs::write(&mf, bad).expect("write mf");
    let bad_ova = dir.path().join("bad.ova");
    run_ok(Command::new("tar").current_dir(&unpacked).args([
        "--format=ustar",
        "-cf",
        p(&bad_ova),
        "fake.ovf",
        "disk1.vmdk",
        "disk1.mf",
    ]));
    let out2 = dir.path().join("out2");
    let run = run_ferry(["v2v", "--no-fixups", p(&bad_ova), "--out", p(&out2)]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let err = stderr(&run);
    assert!(err.contains("bad.ova"), "{err}");
    assert!(
        err.to_lowercase().contains("digest") || err.contains("manifest"),
        "{err}"
    );
    assert!(!out2.exists() || std::fs::read_dir(&out2).expect("dir").count() == 0);
}
