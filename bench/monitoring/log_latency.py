#!/usr/bin/python3
"""Arrival latency of a job's log lines at a follower (bench/monitoring/log_latency.sh).

    log_latency.py LABEL EXPECTED < follower-output

Reads a follower's output on stdin (`neuro logs -f`, `podman logs -f`), one line at a time
as it arrives, and stamps each with the wall clock. The job prints lines
"L <seq> <its wall clock in µs>" (busybox adjtimex, taken just before the echo), so
latency = arrival - printed, on the same host clock. Prints one Markdown table row:
label, lines received, missing/duplicate/out-of-order counts, p50, p90, p99, max (ms).
Standard library only.
"""
import os
import sys
import time


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def main():
    label, expected = sys.argv[1], int(sys.argv[2])
    lat, seqs = [], []
    fd = sys.stdin.fileno()
    buf = b""
    while True:
        chunk = os.read(fd, 65536)
        now_us = time.time_ns() // 1000
        if not chunk:
            break
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            parts = line.decode(errors="replace").split()
            if len(parts) != 3 or parts[0] != "L":
                continue
            seqs.append(int(parts[1]))
            lat.append((now_us - int(parts[2])) / 1000.0)
    missing = len(set(range(1, expected + 1)) - set(seqs))
    dups = len(seqs) - len(set(seqs))
    disorder = sum(1 for a, b in zip(seqs, seqs[1:]) if b < a)
    raw = os.environ.get("RAW_OUT")
    if raw:
        with open(raw, "w") as f:
            f.write("\n".join(f"{s} {l:.3f}" for s, l in zip(seqs, lat)) + "\n")
    print(f"| {label} | {len(seqs)} | {missing} / {dups} / {disorder} | {pct(lat, 50):.1f} | {pct(lat, 90):.1f} "
          f"| {pct(lat, 99):.1f} | {max(lat) if lat else float('nan'):.1f} |")


if __name__ == "__main__":
    main()
