"""Train a method on a variant of the synthetic corpus and print how its selection develops, epoch by epoch.

    python benchmarks/corpus_variants.py --dataset synth-aroma --corpus aspect_template_share=0.5
    python benchmarks/corpus_variants.py --dataset synth-palate --seed 2 --set epochs=10 --set alpha=0.5

Used to measure what the synthetic corpus does to rationalizers (results/synth-quick/README.md, "What these
numbers say"): each `--corpus key=value` is a `SynthConfig` field; the variant is generated once into its own
data root under `--work` (default: a temporary directory) and trained with `ratbench run` (one thread, so
two variants can run side by side on two cores). Prints per-epoch test precision and dev accuracy, the
selected epoch's F1 and S. Never asserts.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ratbench.data.synthetic import SynthConfig, generate


def synth_config(pairs: list[str]) -> SynthConfig:
    """`key=value` pairs -> SynthConfig, each value converted to the field's type."""
    types = {f.name: f.type for f in dataclasses.fields(SynthConfig)}
    values = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types:
            sys.exit(f"unknown SynthConfig field {key!r}; fields: {', '.join(types)}")
        values[key] = int(value) if types[key] in ("int", int) else float(value)
    return SynthConfig(**values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="synth-aroma")
    parser.add_argument("--method", default="rnp")
    parser.add_argument("--seed", default="1")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--corpus", action="append", default=[], help="SynthConfig field=value (repeatable)")
    parser.add_argument("--set", action="append", default=[], help="run setting key=value (repeatable)")
    parser.add_argument("--work", type=Path, default=None, help="where corpora and results go")
    args = parser.parse_args()

    cfg = synth_config(args.corpus)
    work = args.work or Path(tempfile.mkdtemp(prefix="ratbench-variants-"))
    root = work / "data" / cfg.key()
    if not (root / "synth" / "vectors.txt").exists():
        generate(root / "synth", cfg)
    label = hashlib.sha256(json.dumps([args.dataset, args.method, args.seed, args.set]).encode()).hexdigest()[:8]
    results = work / "results" / cfg.key() / label
    cli = [sys.executable, "-c", "from ratbench.cli.app import app; app()"]
    cmd = [*cli, "run", "--methods", args.method, "--datasets", args.dataset, "--seeds", args.seed,
           "--profile", args.profile, "--data-root", str(root), "--results", str(results), "--set", "num_threads=1"]
    for setting in args.set:
        cmd += ["--set", setting]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    default = dataclasses.asdict(SynthConfig())
    changed = {k: v for k, v in dataclasses.asdict(cfg).items() if v != default[k]}
    for path in sorted(results.glob("runs/*/*/*.json")):
        record = json.loads(path.read_text())
        curves, metrics = record["curves"], record["metrics"]
        print(f"{args.dataset} {args.method} seed {record['seed']} corpus {changed or 'default'} set {args.set}")
        print("  test P  ", " ".join(f"{row['test_P']:4.0f}" for row in curves))
        print("  dev acc ", " ".join(f"{row['dev_acc']:4.0f}" for row in curves))
        print(f"  selected epoch {record['selected_epoch']}: F1 {metrics['F1']:.1f} at S {metrics['S']:.1f}, "
              f"{record['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
