#!/usr/bin/env python3
"""ferry vs qemu-img convert on the same inputs, in one run: median wall time over
several runs (page cache warm), peak RSS, and the ratio ferry/qemu-img.

Usage: bench/run.py [--size-gib N] [--runs N] [--work DIR]
Inputs are built once under DIR (default target/bench) with qemu-img from a raw disk
made by make_input.py, 40% allocated.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FERRY = os.path.join(ROOT, "target", "release", "ferry")


def run_measured(cmd):
    """Runs cmd, returns (seconds, peak RSS in MiB) of the child."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - start
    err = proc.stderr.read().decode(errors="replace")
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    return elapsed, usage.ru_maxrss / 1024


def median_run(cmd, out, runs):
    times, rss = [], []
    for _ in range(runs):
        if os.path.exists(out):
            os.remove(out)
        t, m = run_measured(cmd)
        times.append(t)
        rss.append(m)
    os.remove(out)
    return statistics.median(times), max(rss)


def ensure_inputs(work, size):
    raw = os.path.join(work, "src.raw")
    if not os.path.exists(raw) or os.path.getsize(raw) != size:
        subprocess.check_call([sys.executable, os.path.join(ROOT, "bench", "make_input.py"), raw, str(size), "0.4"])
    inputs = {}
    for name, opts in [
        ("monolithicSparse", "subformat=monolithicSparse"),
        ("streamOptimized", "subformat=streamOptimized"),
        ("monolithicFlat", "subformat=monolithicFlat"),
    ]:
        path = os.path.join(work, f"src-{name}.vmdk")
        if not os.path.exists(path):
            subprocess.check_call(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", opts, raw, path])
        inputs[name] = path
    return inputs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-gib", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench"))
    args = ap.parse_args()
    if not shutil.which("qemu-img"):
        sys.exit("qemu-img is needed for the benchmark (apt-get install qemu-utils)")
    subprocess.check_call(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
    os.makedirs(args.work, exist_ok=True)
    inputs = ensure_inputs(args.work, args.size_gib << 30)
    out_q = os.path.join(args.work, "out-qemu.qcow2")
    out_f = os.path.join(args.work, "out-ferry.qcow2")
    cases = [
        ("monolithicSparse 40% -> qcow2", inputs["monolithicSparse"], [], [], 1.0),
        ("streamOptimized -> qcow2", inputs["streamOptimized"], [], [], 0.7),
        ("monolithicFlat -> qcow2", inputs["monolithicFlat"], [], [], 1.0),
        ("compressed (zlib) -> qcow2", inputs["monolithicSparse"], ["-c"], ["--compress", "zlib"], 0.55),
    ]
    print(f"input: {args.size_gib} GiB virtual, 40% allocated; median of {args.runs} runs, page cache warm")
    print(f"{'case':34} {'qemu-img s':>10} {'ferry s':>9} {'ratio':>6} {'target':>7} {'qemu MiB':>9} {'ferry MiB':>10}")
    ok = True
    for name, src, qopts, fopts, target in cases:
        # Warm the page cache with one untimed read.
        subprocess.run(["cat", src], stdout=subprocess.DEVNULL, check=True)
        tq, mq = median_run(["qemu-img", "convert", *qopts, "-O", "qcow2", src, out_q], out_q, args.runs)
        tf, mf = median_run([FERRY, "convert", *fopts, src, out_f], out_f, args.runs)
        ratio = tf / tq
        met = ratio <= target and mf <= 256
        ok &= met
        print(f"{name:34} {tq:10.2f} {tf:9.2f} {ratio:6.2f} {'<=' + str(target):>7} {mq:9.0f} {mf:10.0f} {'ok' if met else 'MISSED'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
