"""Engine speed against two references on the same data (prints figures; never asserts on time).

    python benchmarks/speed.py                                   # RNP, synth-appearance, paper width, 2 epochs
    python benchmarks/speed.py --dataset beer-appearance --epochs 3 --threads 2

For each epoch of RNP trained by ratbench in each of VARIANTS (GRU mode, batch composition):
training and evaluation seconds, examples per second and peak memory. Then, over the same examples and batch size:
- `padded-256`: the published practice (every batch padded to 256 tokens, random composition, GRUs over the
  padding), one epoch of the same model and loss;
- `floor`: only the forward and backward passes of the same two bidirectional GRUs (selector and predictor,
  whose input gradient the model needs too) over batches composed as the engine's, with nothing else (no
  embedding lookup, heads, losses, sampling, optimizer, evaluation). engine/floor: what the rest costs.

The length bound: removing padding can save at most 256 / (mean length) of a padded-256 epoch's arithmetic.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from ratbench import api
from ratbench.data.batching import make_batch, train_batches
from ratbench.engine import Engine
from ratbench.paths import data_root

# (gru_mode, batching): the default (`auto` is `masked` on CPU, `packed` on CUDA), bucketing, PackedSequence
VARIANTS = [("auto", "random"), ("auto", "bucketed"), ("packed", "random")]


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def padded_epoch(engine: Engine, batch_size: int, max_len: int = 256) -> float:
    """One training epoch with the published batching: random composition, every batch padded to max_len."""
    method, model, split = engine.method, engine.model, engine.train
    model.train()
    t0 = time.perf_counter()
    for index in train_batches(split, batch_size, np.random.default_rng(0)):
        b = make_batch(split, index, engine.device)
        pad = max_len - b.ids.shape[1]
        b.ids = torch.nn.functional.pad(b.ids, (0, pad))
        b.mask = torch.nn.functional.pad(b.mask, (0, pad))
        method.train_step(model, b, engine.optimizers)
    if engine.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def floor_epoch(engine: Engine, batch_size: int, bucketed: bool) -> float:
    """Forward + backward of the selector's and predictor's BiGRUs alone over batches composed as the engine's."""
    model, split = engine.model, engine.train
    selector, predictor = model.selector.encoder, model.predictor.encoder
    order = train_batches(split, batch_size, np.random.default_rng(0), bucketed=bucketed)
    batches = [make_batch(split, idx, engine.device) for idx in order]
    embs = [model.embed(b.ids, b.mask) for b in batches]
    t0 = time.perf_counter()
    for b, emb in zip(batches, embs):
        # the predictor reads e*z, so its backward pass also computes the gradient for its input
        rationale = emb.detach().requires_grad_(True)
        out = selector(emb, b).sum() + predictor(rationale, b).sum()
        out.backward()
    if engine.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="synth-appearance")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=200, help="both directions together (paper: 200)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--train-limit", type=int, default=None, help="first N training reviews (a quick check)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    root = data_root(args.data_root)
    corpus = api.corpus(args.dataset, str(root))
    n = min(len(corpus.train), args.train_limit or len(corpus.train))
    print(f"{args.dataset}: {n} training reviews, mean length {corpus.train.lengths.mean():.0f} tokens; "
          f"batch {args.batch_size}, hidden {args.hidden}, device {device}, threads {torch.get_num_threads()}")
    base = dict(batch_size=args.batch_size, hidden_size=args.hidden, lr=1e-4, faithfulness=False,
                train_limit=args.train_limit)

    def engine_for(**settings) -> Engine:
        """RNP as `ratbench run --profile paper --set ...` builds it."""
        spec = api.plan(["rnp"], [args.dataset], [1], "paper", {**base, **settings}, None, str(device), root,
                        root / "unused")[0]
        return api.build(spec)

    medians = {}
    for gru_mode, batching in VARIANTS:
        engine = engine_for(epochs=args.epochs, batching=batching, gru_mode=gru_mode)
        res = engine.fit()
        print(f"\nratbench engine: RNP, GRU mode {gru_mode}, {batching} batches")
        print(f"{'epoch':>5} {'train s':>8} {'eval s':>7} {'eval %':>6} {'train ex/s':>10} {'peak MB':>8}")
        for row in res.curves:
            total = row["train_seconds"] + row["eval_seconds"]
            print(f"{row['epoch']:>5} {row['train_seconds']:>8.2f} {row['eval_seconds']:>7.2f} "
                  f"{100 * row['eval_seconds'] / total:>6.1f} {n / row['train_seconds']:>10.0f} "
                  f"{peak_memory_mb(device):>8.0f}")
        engine_s = float(np.median([r["train_seconds"] for r in res.curves]))
        medians[f"{gru_mode}/{batching}"] = (engine_s, floor_epoch(engine, args.batch_size, batching == "bucketed"))
    padded = engine_for(epochs=1, gru_mode="padded", batching="random")
    padded_s = padded_epoch(padded, args.batch_size)
    bound = 256 / float(np.mean(np.minimum(padded.train.lengths, 256)))  # the examples the engines trained on
    print(f"\npadded-256 (published practice): {padded_s:8.2f} s/epoch; removing padding saves at most "
          f"{bound:.2f}x (256 / mean length)")
    print(f"{'GRU mode/batches':<18} {'engine s':>9} {'floor s':>8} {'padded/engine':>13} {'engine/floor':>12}")
    for variant, (engine_s, floor_s) in medians.items():
        print(f"{variant:<18} {engine_s:>9.2f} {floor_s:>8.2f} {padded_s / engine_s:>13.2f} "
              f"{engine_s / floor_s:>12.2f}")

if __name__ == "__main__":
    main()
