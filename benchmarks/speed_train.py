"""Training and evaluation throughput of the shared engine (prints figures; never asserts on time).

    python benchmarks/speed_train.py                # the three GRU modes on the synthetic corpus
    python benchmarks/speed_train.py --dataset synth-palate --epochs 2 --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch

from ratbench.config import RunConfig
from ratbench.data.prepare import load_corpus
from ratbench.engine import Engine
from ratbench.methods import METHODS
from ratbench.paths import data_root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="synth-aroma")
    ap.add_argument("--method", default="rnp")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    t = time.perf_counter()
    corpus = load_corpus(args.dataset, data_root(args.data_root))
    print(f"corpus load: {time.perf_counter() - t:.2f} s ({len(corpus.train)} train, {len(corpus.dev)} dev, "
          f"{len(corpus.test)} test; mean train length {corpus.train.lengths.mean():.0f})")
    for mode in ("masked", "padded", "packed"):
        cfg = RunConfig(epochs=args.epochs, batch_size=args.batch_size, lr=1e-3, faithfulness=False, gru_mode=mode)
        engine = Engine(METHODS.get(args.method)(cfg), corpus, cfg, seed=1, device=torch.device("cpu"))
        res = engine.fit()
        train_s = sum(r["train_seconds"] for r in res.curves) / len(res.curves)
        eval_s = sum(r["eval_seconds"] for r in res.curves) / len(res.curves)
        print(f"gru_mode={mode:7} train {train_s:6.2f} s/epoch ({len(engine.train) / train_s:7.0f} ex/s)  "
              f"eval dev+test {eval_s:5.2f} s/epoch  threads={torch.get_num_threads()}")


if __name__ == "__main__":
    main()
