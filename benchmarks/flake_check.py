"""Flake check: the example suite must pass N times in a row, serial and under xdist,
with byte-identical snapshots every time.

    python benchmarks/flake_check.py            # 20 serial runs + 20 runs with -n 2
    python benchmarks/flake_check.py --runs 3   # the reduced form CI runs

Exit status 0 only if every run passed and no snapshot file changed.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def snapshot_digest() -> dict[str, str]:
    return {
        str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(EXAMPLES.rglob("__snapshots__/*"))
        if p.is_file()
    }


def run_once(extra: list[str]) -> tuple[bool, float, str]:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "--agentsim",
        str(EXAMPLES),
        "-q",
        "-p",
        "no:cacheprovider",
        *extra,
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    last = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    return proc.returncode == 0, elapsed, last if proc.returncode == 0 else proc.stdout[-3000:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per mode (default 20)")
    args = parser.parse_args()
    before = snapshot_digest()
    if not before:
        print("no example snapshots found", file=sys.stderr)
        return 2
    failures = 0
    for label, extra in (("serial", []), ("xdist -n 2", ["-n", "2"])):
        times = []
        for i in range(1, args.runs + 1):
            ok, elapsed, detail = run_once(extra)
            times.append(elapsed)
            changed = snapshot_digest() != before
            if not ok or changed:
                failures += 1
                why = "snapshots changed" if changed else "run failed"
                print(f"{label} run {i}: {why}\n{detail}")
        times.sort()
        print(
            f"{label}: {args.runs} runs, median {times[len(times) // 2]:.2f}s, max {times[-1]:.2f}s"
        )
    print(f"snapshot files checked: {len(before)}; flaky runs: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
