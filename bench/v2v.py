#!/usr/bin/env python3
"""`ferry v2v` against `virt-v2v` on the same VMware guest (.vmx + monolithicSparse VMDK,
the issue-3 VMware-style Debian test guest), in one run: end-to-end wall time of each, the
ratio ferry/virt-v2v (goal: <= 0.1), and whether each result boots under QEMU (TCG) on
virtio with the source MAC to the guest's boot marker.

Usage: bench/v2v.py [--work DIR] [--boot-timeout S]
The guest comes from the e2e test cache (target/guest-cache, built by
`cargo test --release --test e2e guest_images`); it is never modified.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixup import appliance_kernel  # noqa: E402  (same libguestfs set-up as bench/fixup.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FERRY = os.path.join(ROOT, "target", "release", "ferry")
CACHE = os.path.join(ROOT, "target", "guest-cache")
MAC = "00:50:56:8a:3c:01"
MARKER = "FERRY-BOOT-MARKER"

VMX = f""".encoding = "UTF-8"
config.version = "8"
virtualHW.version = "19"
displayName = "web01"
guestOS = "debian12-64"
numvcpus = "2"
memsize = "1024"
scsi0.present = "TRUE"
scsi0.virtualDev = "pvscsi"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "web01.vmdk"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.networkName = "VM Network"
ethernet0.addressType = "static"
ethernet0.address = "{MAC}"
"""


def newest_vmware_guest():
    disks = sorted(glob.glob(os.path.join(CACHE, "vmware-*.raw")), key=os.path.getmtime)
    if not disks:
        sys.exit("no VMware test guest in target/guest-cache: run "
                 "`cargo test --release --test e2e guest_images` first")
    return disks[-1]


def timed(cmd, env=None):
    start = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    return time.monotonic() - start, proc


def boots(disk, fmt, work, timeout):
    """Boots `disk` on virtio (disk and NIC, source MAC) and waits for the marker."""
    log = os.path.join(work, "serial.log")
    if os.path.exists(log):
        os.remove(log)
    qemu = subprocess.Popen(
        ["qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-m", "1024",
         "-nodefaults", "-nographic", "-no-reboot", "-monitor", "none",
         "-serial", f"file:{log}",
         "-drive", f"file={disk},format={fmt},if=virtio,snapshot=on",
         "-netdev", "user,id=net0",
         "-device", f"virtio-net-pci,netdev=net0,mac={MAC},romfile="],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.monotonic()
    try:
        while time.monotonic() - start < timeout:
            try:
                with open(log, errors="replace") as f:
                    if MARKER in f.read():
                        return True
            except FileNotFoundError:
                pass
            if qemu.poll() is not None:
                return False
            time.sleep(1)
        return False
    finally:
        qemu.kill()
        qemu.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench", "v2v"))
    ap.add_argument("--boot-timeout", type=int, default=400)
    args = ap.parse_args()
    subprocess.check_call(["cargo", "build", "--release", "-q"], cwd=ROOT)
    shutil.rmtree(args.work, ignore_errors=True)
    src = os.path.join(args.work, "src")
    os.makedirs(src)
    guest = newest_vmware_guest()
    vmdk = os.path.join(src, "web01.vmdk")
    subprocess.check_call(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o",
                           "subformat=monolithicSparse", guest, vmdk])
    vmx = os.path.join(src, "web01.vmx")
    with open(vmx, "w") as f:
        f.write(VMX)
    size = os.path.getsize(vmdk)
    print(f"source: {vmx} + {os.path.basename(vmdk)} ({size / 2**20:.0f} MiB on disk)")

    out = os.path.join(args.work, "ferry")
    ferry_s, proc = timed([FERRY, "v2v", vmx, "--out", out, "--json"])
    if proc.returncode != 0:
        sys.exit(f"ferry v2v failed: {proc.stderr.decode(errors='replace')}")
    ferry_disk = os.path.join(out, "web01-disk1.qcow2")
    ferry_boots = boots(ferry_disk, "qcow2", args.work, args.boot_timeout)

    v2v_s = v2v_ok = v2v_boots = None
    if shutil.which("virt-v2v"):
        v2v_out = os.path.join(args.work, "virt-v2v")
        os.makedirs(v2v_out)
        env = dict(os.environ, LIBGUESTFS_BACKEND="direct")
        env.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
        env.update(appliance_kernel())
        v2v_s, proc = timed(["virt-v2v", "-i", "vmx", vmx, "-o", "local", "-os", v2v_out,
                             "-of", "qcow2"], env=env)
        v2v_ok = proc.returncode == 0
        if not v2v_ok:
            lines = proc.stderr.decode(errors="replace").strip().splitlines()
            err = next((l for l in lines if "error" in l), lines[-1] if lines else "")
            print(f"virt-v2v failed after {v2v_s:.1f} s: {err}")
        else:
            disks = glob.glob(os.path.join(v2v_out, "*-sda"))
            v2v_boots = bool(disks) and boots(disks[0], "qcow2", args.work, args.boot_timeout)

    print(f"{'tool':<10} {'seconds':>9} {'boots':>6}")
    print(f"{'ferry':<10} {ferry_s:>9.2f} {str(ferry_boots):>6}")
    if v2v_s is None:
        print("virt-v2v is not installed here: no ratio (apt-get install virt-v2v nbdkit libnbd-bin)")
        return
    shown = f"{v2v_s:.2f}" if v2v_ok else f">{v2v_s:.2f}"
    print(f"{'virt-v2v':<10} {shown:>9} {str(v2v_boots):>6}")
    ratio = ferry_s / v2v_s
    bound = "" if v2v_ok else "< "
    verdict = "meets" if ratio <= 0.1 else "misses"
    print(f"ratio ferry/virt-v2v: {bound}{ratio:.4f} ({verdict} the 0.1 goal)")


if __name__ == "__main__":
    main()
