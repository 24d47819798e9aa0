#!/usr/bin/env bash
# Live moves by `ferry migrate` and by plain `virsh migrate --live` between the tests' two
# libvirtd instances (tests/e2e/libvirtd.rs), idle and memory-dirtying tiny guests, in one
# run: total time and libvirt's downtime side by side. Needs root, QEMU and libvirt (as
# installed by .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --release --test e2e -- --ignored --nocapture --test-threads 1 bench_migrate_ferry_vs_virsh
