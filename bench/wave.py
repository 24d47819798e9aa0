#!/usr/bin/env python3
"""`ferry wave` against a shell loop of `qemu-img convert` on the same exports, in one run.

The wave: VMS exports (monolithicSparse VMDKs of SIZE MiB, 40% allocated, made by
make_input.py + qemu-img), each a VM of its own. Compared:
  - qemu-img convert, one export after another (what a script does), plus an fsync of
    each output (ferry syncs before its renames);
  - qemu-img convert, PARALLEL at a time (xargs -P), same fsyncs;
  - ferry wave --parallel PARALLEL, without verification (what qemu-img does) and with it
    (the default: every output re-read and compared with its export).
Prints wall time and ratios to the sequential loop and to the parallel qemu-img run.

Usage: bench/wave.py [--vms 6] [--size-mib 1024] [--parallel 2] [--runs 2] [--work DIR]
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


def sh(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def timed(fn):
    subprocess.run(["sync"])
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def build_exports(work, vms, size_mib):
    exports = []
    for i in range(vms):
        raw = os.path.join(work, f"vm{i}.raw")
        vmdk = os.path.join(work, f"vm{i}.vmdk")
        sh(sys.executable, os.path.join(ROOT, "bench", "make_input.py"), raw,
           str(size_mib << 20), "0.4")
        sh("qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o",
           "subformat=monolithicSparse", raw, vmdk)
        os.remove(raw)
        exports.append(vmdk)
    return exports


def fsync(path):
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=6)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench", "wave"))
    args = ap.parse_args()
    subprocess.check_call(["cargo", "build", "--release", "-q"], cwd=ROOT)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    exports = build_exports(args.work, args.vms, args.size_mib)
    out = os.path.join(args.work, "out")

    def fresh_out():
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)

    def qemu_one(vmdk):
        dst = os.path.join(out, os.path.basename(vmdk) + ".qcow2")
        sh("qemu-img", "convert", "-f", "vmdk", "-O", "qcow2", vmdk, dst)
        fsync(dst)

    def qemu_sequential():
        fresh_out()
        for vmdk in exports:
            qemu_one(vmdk)

    def qemu_parallel():
        fresh_out()
        # xargs -P, as a script would; each job converts and syncs its output.
        script = 'qemu-img convert -f vmdk -O qcow2 "$1" "$2/$(basename "$1").qcow2" && sync "$2/$(basename "$1").qcow2"'
        proc = subprocess.run(
            ["xargs", "-P", str(args.parallel), "-I{}", "sh", "-c", script, "sh", "{}", out],
            input="\n".join(exports).encode(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            sys.exit(proc.stderr.decode(errors="replace"))

    def ferry_wave(verify):
        def run():
            shutil.rmtree(out, ignore_errors=True)
            inventory = os.path.join(args.work, "wave.toml")
            with open(inventory, "w") as f:
                f.write(f"[defaults]\nfixups = false\nverify = {'true' if verify else 'false'}\n")
                for vmdk in exports:
                    f.write(f'\n[[vm]]\nsource = "{os.path.basename(vmdk)}"\n')
            sh(FERRY, "wave", inventory, "--out", out, "--parallel", str(args.parallel))
        return run

    cases = [("qemu-img convert, sequential", qemu_sequential),
             (f"qemu-img convert, xargs -P {args.parallel}", qemu_parallel),
             (f"ferry wave --parallel {args.parallel} (no verify)", ferry_wave(False)),
             (f"ferry wave --parallel {args.parallel} (verified)", ferry_wave(True))]
    results = {name: statistics.median(timed(fn) for _ in range(args.runs)) for name, fn in cases}
    seq = results[cases[0][0]]
    par = results[cases[1][0]]
    print(f"wave: {args.vms} VMs, {args.size_mib} MiB VMDK each (40% allocated), "
          f"median of {args.runs} runs")
    print(f"{'tool':<42} {'seconds':>8} {'vs sequential':>14} {'vs xargs -P':>12}")
    for name, t in results.items():
        print(f"{name:<42} {t:>8.2f} {t / seq:>14.2f} {t / par:>12.2f}")


if __name__ == "__main__":
    main()
