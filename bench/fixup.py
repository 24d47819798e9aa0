#!/usr/bin/env python3
"""`ferry fixup` on the issue-3 test guests (VMware-style and Xen-style Debian), in one run:
wall time on a raw disk (written in place) and on a qcow2 (rewritten), median over several
runs on fresh copies, and — where virt-v2v is installed — `virt-v2v -i disk` on the same raw
source with the ratio ferry/virt-v2v. Goal: ferry fixup under 5 s.

Usage: bench/fixup.py [--runs N] [--work DIR]
The guests come from the e2e test cache (target/guest-cache, built by
`cargo test --release --test e2e guest_images`); they are never modified.
"""
import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FERRY = os.path.join(ROOT, "target", "release", "ferry")
CACHE = os.path.join(ROOT, "target", "guest-cache")


def timed(cmd):
    start = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr.decode(errors='replace')}")
    return elapsed, proc.stdout.decode(errors="replace")


def fresh_copy(src, dst, fmt):
    if os.path.exists(dst):
        os.remove(dst)
    if fmt == "raw":
        subprocess.check_call(["cp", "--sparse=always", src, dst])
    else:
        subprocess.check_call([FERRY, "convert", "-f", "raw", src, dst], stdout=subprocess.DEVNULL)


def bench_ferry(guest, work, fmt, runs):
    times, applied = [], None
    disk = os.path.join(work, f"fixup.{fmt}")
    for _ in range(runs):
        fresh_copy(guest, disk, fmt)
        subprocess.run(["sync"])
        t, out = timed([FERRY, "fixup", "--json", "-f", fmt, disk])
        times.append(t)
        report = json.loads(out)
        applied = [f["id"] for f in report["fixups"] if f["outcome"] == "applied"]
    os.remove(disk)
    return statistics.median(times), applied


def bench_virt_v2v(guest, work):
    if shutil.which("virt-v2v") is None:
        return None
    out = os.path.join(work, "v2v-out")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    # The appliance hangs trying KVM where /dev/kvm exists but nested KVM aborts.
    env = dict(os.environ, LIBGUESTFS_BACKEND="direct")
    env.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
    env.update(appliance_kernel())
    start = time.monotonic()
    proc = subprocess.run(
        ["virt-v2v", "-i", "disk", guest, "-o", "local", "-os", out, "-of", "raw"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.monotonic() - start
    shutil.rmtree(out, ignore_errors=True)
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        error = next((l for l in lines if l.startswith("virt-v2v: error")), lines[-1:] or "")
        print(f"  virt-v2v failed after {elapsed:.1f} s: {error}")
        return elapsed, False
    return elapsed, True


def appliance_kernel():
    """libguestfs builds its appliance from the host's kernel; a container has none in
    /boot, so point supermin at the test guests' Debian kernel (same distribution)."""
    if glob.glob("/boot/vmlinuz-*") or "SUPERMIN_KERNEL" in os.environ:
        return {}
    bases = sorted(glob.glob(os.path.join(CACHE, "base-*")), key=os.path.getmtime)
    if not bases:
        return {}
    base = bases[-1]
    kernels = sorted(glob.glob(os.path.join(base, "boot", "vmlinuz-*")))
    if not kernels:
        return {}
    version = os.path.basename(kernels[-1])[len("vmlinuz-"):]
    os.makedirs("/lib/modules", exist_ok=True)  # supermin lstat()s it even when told where modules are
    return {"SUPERMIN_KERNEL": kernels[-1],
            "SUPERMIN_MODULES": os.path.join(base, "lib", "modules", version)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench", "fixup"))
    args = ap.parse_args()
    if not os.path.exists(FERRY):
        subprocess.check_call(["cargo", "build", "--release"], cwd=ROOT)
    # The newest disk of each flavour (older recipes may linger in the cache).
    newest = {}
    for path in glob.glob(os.path.join(CACHE, "*.raw")):
        flavour = os.path.basename(path).split("-", 1)[0]
        if flavour not in newest or os.path.getmtime(path) > os.path.getmtime(newest[flavour]):
            newest[flavour] = path
    guests = sorted(newest.values())
    if not guests:
        sys.exit("no test guests in target/guest-cache: run "
                 "`cargo test --release --test e2e guest_images` first")
    os.makedirs(args.work, exist_ok=True)
    print(f"{'guest':<28} {'raw s':>7} {'qcow2 s':>8} {'virt-v2v s':>11} {'ratio':>7}  fixups applied")
    for guest in guests:
        name = os.path.basename(guest).rsplit(".", 1)[0]
        raw_s, applied = bench_ferry(guest, args.work, "raw", args.runs)
        qcow_s, _ = bench_ferry(guest, args.work, "qcow2", args.runs)
        v2v = bench_virt_v2v(guest, args.work)
        if v2v is None:
            v2v_s = ratio = "n/a"
        else:
            # A failed virt-v2v ran at least this long: the ratio is an upper bound.
            seconds, ok = v2v
            v2v_s = f"{seconds:.1f}" if ok else f">{seconds:.1f}"
            ratio = f"{raw_s / seconds:.3f}" if ok else f"<{raw_s / seconds:.3f}"
        print(f"{name:<28} {raw_s:>7.2f} {qcow_s:>8.2f} {v2v_s:>11} {ratio:>7}  {','.join(applied)}")
        for t in (raw_s, qcow_s):
            if t >= 5.0:
                print(f"  over the 5 s goal: {t:.2f} s")
    if shutil.which("virt-v2v") is None:
        print("virt-v2v is not installed here: no ratio (apt-get install virt-v2v)")


if __name__ == "__main__":
    main()
