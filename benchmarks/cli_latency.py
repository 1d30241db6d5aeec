"""Latency of the commands people run most: `ratbench --help`, and `ratbench report` over a large grid.

    python benchmarks/cli_latency.py                 # 600 records cloned from results/synth-quick
    python benchmarks/cli_latency.py --records 3000

The records are copies of the committed reference records with other seeds and method labels (a full
6 datasets x 12 methods x 5 seeds table is 360 records; 600 leaves room for hyperparameter variants).
Prints wall-clock seconds of fresh processes, as a user sees them; never asserts.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ratbench.results.record import record_path, write_record

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "synth-quick" / "runs"


def clone_records(out: Path, n: int) -> int:
    """Write `n` records: the reference ones relabelled as methods m0, m1, ... and seeds 1..5."""
    refs = [json.loads(p.read_text()) for p in sorted(REFERENCE.glob("*/*/*.json"))]
    if not refs:
        sys.exit(f"no reference records under {REFERENCE}; run the README's main command first")
    written = 0
    while written < n:
        rec = dict(refs[written % len(refs)])
        variant, seed = divmod(written // len(refs), 5)
        rec["method"] = f"{rec['method']}{variant}"
        rec["seed"] = seed + 1
        write_record(record_path(out, rec["dataset"], rec["method"], rec["seed"], rec["config_hash"]), rec)
        written += 1
    return written


def timed(cmd: list[str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=600)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    exe = shutil.which("ratbench") or sys.exit("ratbench is not on PATH (pip install -e .)")
    help_times = timed([exe, "--help"], args.repeat)
    print(f"ratbench --help: median {statistics.median(help_times):.2f} s over {args.repeat} runs")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        n = clone_records(out, args.records)
        report_times = timed([exe, "report", "--results", str(out)], args.repeat)
        print(f"ratbench report over {n} records: median {statistics.median(report_times):.2f} s "
              f"over {args.repeat} runs")


if __name__ == "__main__":
    main()
