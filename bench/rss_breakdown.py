#!/usr/bin/env python3
"""bench/rss_breakdown.py PID BINARY: which code of BINARY is resident in process PID.

Reads /proc/PID/maps and /proc/PID/pagemap (root only) and attributes each resident page of
the binary's mappings to the symbol before it (`nm -n`), grouped by a name pattern. Used for
the serve-RSS paragraph of BENCHMARKS.md:
  release-agent serve ... & sleep 2; sudo python3 bench/rss_breakdown.py $! .build-static/release/release-agent-full
"""
import bisect
import os
import struct
import subprocess
import sys

GROUPS = [
    ("BoringSSL", lambda n: "BoringSSL" in n),
    ("ICU", lambda n: "icu_" in n or n.startswith("u_") or n.startswith("swift_u")),
    ("SwiftNIO", lambda n: "NIO" in n),
    ("Hummingbird", lambda n: "Hummingbird" in n),
    ("Foundation", lambda n: "Foundation" in n or n.startswith(("CF", "_CF", "__CF"))),
    ("release-agent's own code", lambda n: "ReleaseAgent" in n),
    ("other Swift code (standard library, packages)", lambda n: n.startswith(("$s", "_$s", "swift_"))),
    ("Swift runtime (C++)", lambda n: n.startswith("_ZN5swift")),
]


def group(name):
    for label, test in GROUPS:
        if test(name):
            return label
    return "other C and C++ code (toml++, libc++ pieces, ...)"


def main():
    pid, binary = int(sys.argv[1]), os.path.realpath(sys.argv[2])
    maps = []
    for line in open(f"/proc/{pid}/maps"):
        parts = line.split()
        if len(parts) >= 6 and os.path.realpath(parts[5]) == binary:
            start, end = (int(x, 16) for x in parts[0].split("-"))
            maps.append((start, end, int(parts[2], 16)))
    if not maps:
        sys.exit(f"{binary} is not mapped in process {pid}")
    base = maps[0][0] - maps[0][2]
    symbols = []
    for line in subprocess.run(["nm", "-n", "--defined-only", binary], capture_output=True, text=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            symbols.append((int(parts[0], 16), parts[2]))
    addresses = [a for a, _ in symbols]
    # The dynamic loader's tables (relocations of a PIE, dynamic symbols) hold no symbols.
    tables = []
    for line in subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True).stdout.splitlines():
        parts = line.replace("[ ", "[").split()
        if len(parts) > 5 and parts[1] in (".rela.dyn", ".relr.dyn", ".dynsym", ".dynstr", ".gnu.hash"):
            tables.append((int(parts[3], 16), int(parts[5], 16)))
    totals = {}
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for start, end, _ in maps:
            for page in range(start, end, 4096):
                pagemap.seek(page // 4096 * 8)
                if not (struct.unpack("Q", pagemap.read(8))[0] >> 63) & 1:
                    continue
                offset = page - base
                index = bisect.bisect_right(addresses, offset) - 1
                if any(start <= offset < start + size for start, size in tables):
                    label = "relocation and dynamic symbol tables"
                else:
                    label = group(symbols[index][1]) if index >= 0 else "ELF headers"
                totals[label] = totals.get(label, 0) + 4
    for label, kib in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"{kib / 1024:6.1f} MiB  {label}")
    print(f"{sum(totals.values()) / 1024:6.1f} MiB  resident of {binary}")


main()
