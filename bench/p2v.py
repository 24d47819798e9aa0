#!/usr/bin/env python3
"""`ferry p2v --used-only` against `qemu-img convert` on the same "physical" raw disk, in
one run: the VMware-style Debian test guest, put on a larger disk with `ferry v2p --grow`
(6 GiB by default, as a server's disk is larger than its OS), whose ext4 root was then
filled with non-zero files and had half of them deleted. Prints wall time and bytes written
(qcow2 data) of each and the ratios (goal: ferry <= 0.6x qemu-img's time).

qemu-img's time includes an fsync of its output (ferry syncs before its rename). ferry
writes data clusters with O_DIRECT, so `qemu-img convert -t none` (the same choice) is run
too and its ratio printed; the goal is against the default `qemu-img convert`.
ferry runs twice: imaging only (--no-fixups --no-verify, what qemu-img does) and the full
pipeline (fixups and verification included).

Usage: bench/p2v.py [--disk-gib 6] [--fill-mib 4096] [--runs 3] [--work DIR]
The guest comes from the e2e test cache (target/guest-cache); it is never modified.
"""
import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FERRY = os.path.join(ROOT, "target", "release", "ferry")
CACHE = os.path.join(ROOT, "target", "guest-cache")
PART_OFFSET_MIB = 1


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def build_disk(work, fill_mib, disk_gib):
    guests = sorted(glob.glob(os.path.join(CACHE, "vmware-*.raw")), key=os.path.getmtime)
    if not guests:
        sys.exit("no VMware test guest in target/guest-cache: run "
                 "`cargo test --release --test e2e guest_images` first")
    disk = os.path.join(work, "sda.img")
    sh("truncate", "-s", f"{disk_gib}G", disk)
    sh(FERRY, "v2p", "--no-fixups", "--grow", "-f", "raw", guests[-1], "--to", disk)
    part = os.path.join(work, "part.ext4")
    sh("dd", f"if={disk}", f"of={part}", "bs=1M", f"skip={PART_OFFSET_MIB}", "conv=sparse", "status=none")
    files = fill_mib // 16
    cmds = ["mkdir /fill"]
    blob = os.path.join(work, "blob")
    for i in range(files):
        sh("dd", "if=/dev/urandom", f"of={blob}.{i}", "bs=1M", "count=16", "status=none")
        cmds.append(f"write {blob}.{i} /fill/f{i}")
    script = os.path.join(work, "cmds")
    with open(script, "w") as f:
        f.write("\n".join(cmds) + "\n")
    sh("debugfs", "-w", "-f", script, part)
    with open(script, "w") as f:
        f.write("".join(f"rm /fill/f{i}\n" for i in range(1, files, 2)))
    sh("debugfs", "-w", "-f", script, part)
    sh("dd", f"if={part}", f"of={disk}", "bs=1M", f"seek={PART_OFFSET_MIB}", "conv=notrunc,sparse", "status=none")
    for i in range(files):
        os.remove(f"{blob}.{i}")
    os.remove(part)
    return disk


def data_bytes(image, fmt):
    out = sh("qemu-img", "map", "--output=json", "-f", fmt, image).stdout
    return sum(e["length"] for e in json.loads(out) if e.get("data"))


def timed(cmd):
    subprocess.run(["sync"])
    start = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr.decode(errors='replace')}")
    return elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fill-mib", type=int, default=4096)
    ap.add_argument("--disk-gib", type=int, default=6)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench", "p2v"))
    args = ap.parse_args()
    subprocess.check_call(["cargo", "build", "--release", "-q"], cwd=ROOT)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    disk = build_disk(args.work, args.fill_mib, args.disk_gib)
    print(f"source: {disk}: {args.disk_gib} GiB raw, {data_bytes(disk, 'raw') / 2**20:.0f} MiB allocated "
          f"({args.fill_mib // 2} MiB of it deleted files)")

    def run_qemu(*cache):
        out = os.path.join(args.work, "qemu.qcow2")
        if os.path.exists(out):
            os.remove(out)
        # qemu-img's default cache mode never flushes; ferry syncs its output before the
        # rename, so qemu-img's time includes an fsync of its output too.
        start = time.monotonic()
        t = timed(["qemu-img", "convert", *cache, "-f", "raw", "-O", "qcow2", disk, out])
        fd = os.open(out, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        t = time.monotonic() - start
        return t, data_bytes(out, "qcow2")

    def run_ferry(extra):
        out = os.path.join(args.work, "ferry")
        shutil.rmtree(out, ignore_errors=True)
        t = timed([FERRY, "p2v", "--used-only", "--disk", disk, "--out", out, "--name", "phys", *extra])
        return t, data_bytes(os.path.join(out, "phys-disk1.qcow2"), "qcow2")

    # ferry writes data with O_DIRECT; `-t none` is qemu-img's same choice, shown for
    # comparison (the goal is against the default).
    cases = [("qemu-img convert", run_qemu),
             ("qemu-img convert -t none", lambda: run_qemu("-t", "none")),
             ("ferry p2v (image only)", lambda: run_ferry(["--no-fixups", "--no-verify"])),
             ("ferry p2v (fixups+verify)", lambda: run_ferry([]))]
    results = {}
    for name, fn in cases:
        runs = [fn() for _ in range(args.runs)]
        results[name] = (statistics.median(r[0] for r in runs), runs[-1][1])
    q_t, q_b = results["qemu-img convert"]
    print(f"{'tool':<28} {'seconds':>8} {'data MiB':>9} {'time ratio':>11} {'bytes ratio':>12}")
    for name, (t, b) in results.items():
        print(f"{name:<28} {t:>8.2f} {b / 2**20:>9.0f} {t / q_t:>11.2f} {b / q_b:>12.2f}")
    t, _ = results["ferry p2v (image only)"]
    print(f"goal ferry <= 0.6x qemu-img time: {'met' if t / q_t <= 0.6 else 'missed'} ({t / q_t:.2f})")


if __name__ == "__main__":
    main()
