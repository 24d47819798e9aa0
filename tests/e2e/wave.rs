//! `ferry wave`: an inventory of VMs (VMDK exports, one VM with two disks, one whose
//! export is missing) moved two at a time; the failure is reported and the others done;
//! a rerun skips what is done and retries the rest; a wave killed with SIGKILL midway
//! resumes and leaves no temporary files; bad inventories and a folder in use are refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// A VMDK export of `size` bytes with data at a few places, and the raw it came from.
fn export(dir: &Path, name: &str, size: u64, writes: &[(u64, usize)]) -> (PathBuf, PathBuf) {
    let raw = dir.join(format!("{name}.raw"));
    pattern_raw(&raw, size, writes);
    let vmdk = dir.join(format!("{name}.vmdk"));
    vmdk_of(&raw, &vmdk);
    (raw, vmdk)
}

fn status_of<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["vms"]
        .as_array()
        .expect("vms")
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {report:#}"))
}

#[test]
fn wave_moves_every_vm_reports_failures_and_resumes() {
    if !have_tool("qemu-img") {
        return;
    }
    let dir = tmpdir();
    let d = dir.path();
    let (web_raw, _) = export(d, "web01", 64 << 20, &[(0, 1 << 20), (40 << 20, 3 << 20)]);
    let (db_a_raw, _) = export(d, "db01-a", 32 << 20, &[(1 << 20, 2 << 20)]);
    let (db_b_raw, _) = export(d, "db01-b", 16 << 20, &[(8 << 20, 4096)]);
    let inventory = d.join("wave1.toml");
    std::fs::write(
        &inventory,
        "# exports of the first wave\n[defaults]\nfixups = false\n\n\
         [[vm]]\nsource = \"web01.vmdk\"\nname = \"web01\"\n\n\
         [[vm]]\nsource = [\"db01-a.vmdk\", \"db01-b.vmdk\"]\nname = \"db01\"\n\n\
         [[vm]]\nsource = \"app01.vmdk\"\nname = \"app01\"\n",
    )
    .expect("inventory");
    let out = d.join("out");

    // The plan writes nothing, not even the output folder.
    let dry = run_ferry([
        "wave",
        "--dry-run",
        p(&inventory),
        "--out",
        p(&out),
        "--json",
    ]);
    assert_eq!(dry.status.code(), Some(9), "{}", stderr(&dry));
    let plan = json_of(&dry);
    assert_eq!(status_of(&plan, "web01")["status"], "planned", "{plan:#}");
    assert!(status_of(&plan, "web01")["bytes_to_copy"].as_u64() >= Some(4 << 20));
    assert!(!out.exists(), "--dry-run created {}", out.display());

    let first = run_ferry([
        "wave",
        p(&inventory),
        "--out",
        p(&out),
        "--parallel",
        "2",
        "--json",
    ]);
    assert_eq!(first.status.code(), Some(9), "{}", stderr(&first));
    let err = stderr(&first);
    assert!(err.contains("1 of 3 VMs failed"), "{err}");
    let report = json_of(&first);
    assert_eq!(report["done"], 2, "{report:#}");
    assert_eq!(report["failed"], 1, "{report:#}");
    assert_eq!(report["parallel"], 2, "{report:#}");
    let app = status_of(&report, "app01");
    assert_eq!(app["status"], "failed");
    assert_eq!(app["error_kind"], "bad-input");
    assert!(
        app["error"]
            .as_str()
            .is_some_and(|e| e.contains("app01.vmdk")),
        "{app:#}"
    );
    assert_qemu_identical(&web_raw, "raw", &out.join("web01-disk1.qcow2"), "qcow2");
    assert_qemu_identical(&db_a_raw, "raw", &out.join("db01-disk1.qcow2"), "qcow2");
    assert_qemu_identical(&db_b_raw, "raw", &out.join("db01-disk2.qcow2"), "qcow2");
    assert!(out.join("web01.xml").is_file() && out.join("db01.report.json").is_file());
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("wave-state.json")).expect("state"))
            .expect("state JSON");
    assert_eq!(state["vms"]["web01"]["status"], "done", "{state:#}");
    assert_eq!(state["vms"]["app01"]["status"], "failed", "{state:#}");

    // The missing export arrives; the rerun moves only it.
    let web_out = out.join("web01-disk1.qcow2");
    let web_mtime = std::fs::metadata(&web_out)
        .and_then(|m| m.modified())
        .expect("mtime");
    let (app_raw, _) = export(d, "app01", 8 << 20, &[(0, 512 << 10)]);
    let second = run_ferry(["wave", p(&inventory), "--out", p(&out)]);
    assert!(second.status.success(), "{}", stderr(&second));
    let text = stdout(&second);
    assert!(
        text.contains("1 done, 2 skipped (done before), 0 failed"),
        "{text}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("wave-report.json")).expect("report"))
            .expect("report JSON");
    assert_eq!(status_of(&report, "web01")["status"], "skipped");
    assert_eq!(status_of(&report, "app01")["status"], "done");
    assert_qemu_identical(&app_raw, "raw", &out.join("app01-disk1.qcow2"), "qcow2");
    assert_eq!(
        std::fs::metadata(&web_out)
            .and_then(|m| m.modified())
            .expect("mtime"),
        web_mtime,
        "a VM done before was written again"
    );

    // Another inventory into the same folder reuses the id web01 for another export: it
    // is not taken for done, and the earlier web01's files are not replaced.
    let other = d.join("wave2.toml");
    std::fs::write(
        &other,
        "[defaults]\nfixups = false\n\n[[vm]]\nsource = \"app01.vmdk\"\nname = \"web01\"\n",
    )
    .expect("inventory");
    let third = run_ferry(["wave", p(&other), "--out", p(&out), "--json"]);
    assert_eq!(third.status.code(), Some(9), "{}", stderr(&third));
    let web = json_of(&third);
    let web = status_of(&web, "web01");
    assert_eq!(web["status"], "failed", "{web:#}");
    assert!(
        web["error"]
            .as_str()
            .is_some_and(|e| e.contains("already exists")),
        "{web:#}"
    );
    assert_qemu_identical(&web_raw, "raw", &web_out, "qcow2");
}

#[test]
fn wave_killed_midway_resumes_without_leftovers() {
    if !have_tool("qemu-img") {
        return;
    }
    let dir = tmpdir();
    let d = dir.path();
    let names = ["vm1", "vm2", "vm3"];
    let mut raws = Vec::new();
    for (i, name) in names.iter().enumerate() {
        // Large enough that each move takes a while with one copy thread.
        let (raw, _) = export(d, name, 512 << 20, &[(i as u64 * 4096, 320 << 20)]);
        raws.push(raw);
    }
    let inventory = d.join("wave.toml");
    let mut text = String::from("[defaults]\nfixups = false\n");
    for name in names {
        text.push_str(&format!(
            "\n[[vm]]\nsource = \"{name}.vmdk\"\nname = \"{name}\"\n"
        ));
    }
    std::fs::write(&inventory, text).expect("inventory");
    let out = d.join("out");

    let mut child = ferry()
        .args([
            "wave",
            p(&inventory),
            "--out",
            p(&out),
            "--parallel",
            "1",
            "-j",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ferry wave");
    let state_path = out.join("wave-state.json");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !state_path.exists() {
        assert!(Instant::now() < deadline, "no VM finished in time");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "wave ended early"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).expect("state")).expect("whole JSON");
    let done_before = state["vms"].as_object().expect("vms").len();
    assert!(
        (1..names.len()).contains(&done_before),
        "kill landed outside the wave: {state:#}"
    );

    let resumed = run_ferry(["wave", p(&inventory), "--out", p(&out), "--json"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let report = json_of(&resumed);
    assert_eq!(report["skipped"], done_before, "{report:#}");
    assert_eq!(report["done"], names.len() - done_before, "{report:#}");
    for (name, raw) in names.iter().zip(&raws) {
        assert_qemu_identical(
            raw,
            "raw",
            &out.join(format!("{name}-disk1.qcow2")),
            "qcow2",
        );
    }
    let leftovers: Vec<String> = std::fs::read_dir(&out)
        .expect("out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".ferry-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn wave_refuses_bad_inventories_and_a_folder_in_use() {
    let dir = tmpdir();
    let d = dir.path();
    let inventory = d.join("typo.toml");
    std::fs::write(&inventory, "[[vm]]\nsource = \"a.vmdk\"\nverfy = false\n").expect("write");
    let out = run_ferry(["wave", p(&inventory), "--out", p(&d.join("o"))]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("typo.toml") && err.contains("verfy"), "{err}");

    let good = d.join("good.toml");
    std::fs::write(&good, "[[vm]]\nsource = \"a.vmdk\"\n").expect("write");
    let busy = d.join("busy");
    std::fs::create_dir(&busy).expect("mkdir");
    let lock = std::fs::File::create(busy.join("wave.lock")).expect("lock file");
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).expect("hold the lock");
    let out = run_ferry(["wave", p(&good), "--out", p(&busy)]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("another ferry wave is running"),
        "{}",
        stderr(&out)
    );
    drop(lock);
    // Once free, the same wave runs (and fails on the missing export, as a VM).
    let out = run_ferry(["wave", p(&good), "--out", p(&busy)]);
    assert_eq!(out.status.code(), Some(9), "{}", stderr(&out));
}

#[test]
fn wave_defines_its_vms_in_libvirt_and_reports_a_refused_one() {
    let Some(d) = crate::libvirtd::local_libvirtd() else {
        return;
    };
    let dir = tmpdir();
    let dir = dir.path();
    let names: Vec<String> = ["a", "b"]
        .iter()
        .map(|s| crate::tiny_guest::unique_name(&format!("wave-{s}")))
        .collect();
    let _guards: Vec<_> = names
        .iter()
        .map(|n| crate::tiny_guest::DomainGuard::new(n, &[d]))
        .collect();
    let mut raws = Vec::new();
    let mut text = format!(
        "[defaults]\nfixups = false\ndefine = true\nconnect = \"{}\"\n",
        d.uri
    );
    for name in &names {
        let (raw, _) = export(dir, name, 16 << 20, &[(0, 1 << 20)]);
        raws.push(raw);
        text.push_str(&format!(
            "\n[[vm]]\nsource = \"{name}.vmdk\"\nname = \"{name}\"\n"
        ));
    }
    let inventory = dir.join("defined.toml");
    std::fs::write(&inventory, &text).expect("inventory");
    let out = dir.join("out");
    let run = run_ferry(["wave", p(&inventory), "--out", p(&out), "--json"]);
    assert!(run.status.success(), "{}", stderr(&run));
    for (name, raw) in names.iter().zip(&raws) {
        let blk = run_ok(Command::new("virsh").args(["-c", &d.uri, "domblklist", name]));
        let disk = out.join(format!("{name}-disk1.qcow2"));
        assert!(stdout(&blk).contains(p(&disk)), "{}", stdout(&blk));
        assert_qemu_identical(raw, "raw", &disk, "qcow2");
    }

    // The same names again, into another folder: libvirt already has them, so each VM
    // fails on its own with libvirt's reason, and nothing is replaced.
    let again = run_ferry([
        "wave",
        p(&inventory),
        "--out",
        p(&dir.join("out2")),
        "--json",
    ]);
    assert_eq!(again.status.code(), Some(9), "{}", stderr(&again));
    let report = json_of(&again);
    assert_eq!(report["failed"], 2, "{report:#}");
    for name in &names {
        let vm = status_of(&report, name);
        assert_eq!(vm["error_kind"], "libvirt", "{vm:#}");
        assert!(
            vm["error"]
                .as_str()
                .is_some_and(|e| e.contains("already defined")),
            "{vm:#}"
        );
    }
}

#[test]
fn two_vms_that_would_take_one_name_do_not_share_files() {
    if !have_tool("qemu-img") {
        return;
    }
    let dir = tmpdir();
    let d = dir.path();
    let mut raws = Vec::new();
    for site in ["dc1", "dc2"] {
        std::fs::create_dir(d.join(site)).expect("mkdir");
        // Both exports are called web01: a VM's name comes from its disk.
        let (raw, _) = export(&d.join(site), "web01", 8 << 20, &[(0, 1 << 20)]);
        raws.push(raw);
    }
    let inventory = d.join("wave.toml");
    std::fs::write(
        &inventory,
        "[defaults]\nfixups = false\n\n[[vm]]\nsource = \"dc1/web01.vmdk\"\n\n\
         [[vm]]\nsource = \"dc2/web01.vmdk\"\n",
    )
    .expect("inventory");
    let out = d.join("out");
    let run = run_ferry(["wave", p(&inventory), "--out", p(&out), "--json"]);
    assert_eq!(run.status.code(), Some(9), "{}", stderr(&run));
    let report = json_of(&run);
    assert_eq!(
        (report["done"].as_u64(), report["failed"].as_u64()),
        (Some(1), Some(1))
    );
    let failed = report["vms"]
        .as_array()
        .expect("vms")
        .iter()
        .find(|v| v["status"] == "failed")
        .expect("a failed VM");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("is taken by")),
        "{failed:#}"
    );
    let winner = report["vms"]
        .as_array()
        .expect("vms")
        .iter()
        .position(|v| v["status"] == "done")
        .expect("a done VM");
    assert_qemu_identical(
        &raws[winner],
        "raw",
        &out.join("web01-disk1.qcow2"),
        "qcow2",
    );
}
