#!/usr/bin/env python3
"""Writes a sparse raw disk of SIZE bytes with FRACTION of it allocated, in 1 MiB runs
spread over the disk: half of the allocated runs random (incompressible), half text-like
(compressible), the mix real guest disks have. Deterministic for a given seed."""
import os
import random
import sys

MIB = 1 << 20


def main():
    path, size, fraction = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    rng = random.Random(42)
    words = b"ferry moves machines into kvm and back out byte for byte ".split()
    text = b" ".join(rng.choice(words) for _ in range(MIB // 4))[:MIB]
    with open(path, "wb") as f:
        f.truncate(size)
        for block in range(size // MIB):
            if rng.random() >= fraction:
                continue
            f.seek(block * MIB)
            f.write(os.urandom(MIB) if block % 2 else text)


if __name__ == "__main__":
    main()
