"""RNP training on the transformer backbone, through the engine's own train step, against the bare-model floor.

On synth-appearance's real training batches (the pieces the run reads, in the quick profile's length-bucketed
order), one training step is timed two ways:
- `ratbench`: `RNP.train_step` as `ratbench run` calls it (selector encoder -> Gumbel straight-through ->
  predictor encoder on the masked embedding output -> CE + regulariser -> backward -> Adam);
- `floor`: forward + backward of the same two Hugging Face encoders on the same batches (`AutoModel` on the
  input ids with the padding mask, a sum over the last hidden states), with Adam over the same parameters.
Reported: real (non-padding) pieces per second, ratbench / floor time, and peak memory (ru_maxrss of a fresh
subprocess per configuration on CPU, which includes ~450 MB of Python, torch and transformers; max allocated
on CUDA). On CUDA both run under bf16 autocast unless --no-bf16.

    python benchmarks/transformer_training.py                      # local encoder, CPU, 1 thread
    python benchmarks/transformer_training.py --encoders local,minilm --steps 8
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ratbench import api
from ratbench.data.batching import make_batch, train_batches
from ratbench.plan import plan


def engine_for(encoder: str, device: str, data_root: Path):
    overrides = {"backbone": "transformer", "encoder": encoder, "batch_size": 32}
    spec = plan(["rnp"], ["synth-appearance"], [1], "quick", overrides, None, device, data_root,
                Path(os.environ.get("TMPDIR", "/tmp")) / "rb-bench-results")[0]
    return api.build(spec)


def run_one(encoder: str, mode: str, steps: int, warmup: int, device: str, bf16: bool, data_root: Path) -> dict:
    eng = engine_for(encoder, device, data_root)
    model, method = eng.model, eng.method
    index = train_batches(eng.train, eng.config.batch_size, np.random.default_rng(0), bucketed=True)
    batches = [make_batch(eng.train, i, eng.device) for i in index[: warmup + steps]]
    model.train()
    if mode == "floor":
        players = [model.selector.encoder.transformer.model, model.predictor.encoder.transformer.model]
        opt = torch.optim.Adam([p for m in players for p in m.parameters() if p.requires_grad], lr=1e-4)

        def step(b) -> None:
            loss = sum(m(input_ids=b.ids, attention_mask=b.attention,
                         token_type_ids=b.token_type).last_hidden_state.float().sum() for m in players)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    else:
        def step(b) -> None:
            method.train_step(model, b, eng.optimizers)

    autocast = torch.autocast(eng.device.type, dtype=torch.bfloat16, enabled=bf16 and eng.device.type == "cuda")
    times, pieces = [], 0
    for i, b in enumerate(batches):
        if eng.device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with autocast:
            step(b)
        if eng.device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t)
            pieces += int(b.attention.sum())
    peak = (torch.cuda.max_memory_allocated() / 2**20 if eng.device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"encoder": encoder, "mode": mode, "seconds": float(np.sum(times)), "pieces": pieces,
            "pieces_per_s": pieces / float(np.sum(times)), "peak_mb": peak,
            "width": float(np.mean([b.ids.shape[1] for b in batches[warmup:]])),
            "describe": eng.backbone.describe()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoders", default="local", help="local (the synthetic corpus's), minilm, or a directory")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-bf16", action="store_true")
    ap.add_argument("--data-root", default=None, help="default: $RATBENCH_DATA or the user cache")
    ap.add_argument("--one", nargs=2, metavar=("ENCODER", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(args.data_root or os.environ.get("RATBENCH_DATA") or Path.home() / ".cache" / "ratbench")
    if args.one:
        out = run_one(args.one[0], args.one[1], args.steps, args.warmup, args.device, not args.no_bf16, root)
        print(json.dumps(out))
        return
    print(f"RNP train step vs bare encoders, synth-appearance quick batches (32, length-bucketed), device "
          f"{args.device}, {args.threads} thread(s), {args.steps} timed steps after {args.warmup} warm-up")
    print(f"{'encoder':>10} {'mode':>9} {'width':>6} {'pieces/s':>9} {'s/step':>7} {'vs floor':>8} {'peak MB':>8}")
    for enc in args.encoders.split(","):
        rows = {}
        for mode in ("floor", "ratbench"):
            cmd = [sys.executable, __file__, "--one", enc, mode, "--steps", str(args.steps), "--warmup",
                   str(args.warmup), "--threads", str(args.threads), "--device", args.device, "--data-root",
                   str(root)] + (["--no-bf16"] if args.no_bf16 else [])
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows[mode] = json.loads(res.stdout.strip().splitlines()[-1])
        for mode, r in rows.items():
            ratio = r["seconds"] / rows["floor"]["seconds"]
            print(f"{enc:>10} {mode:>9} {r['width']:6.0f} {r['pieces_per_s']:9.0f} {r['seconds'] / args.steps:7.2f} "
                  f"{ratio:8.2f} {r['peak_mb']:8.0f}")
        d = rows["floor"]["describe"]
        print(f"{'':>10} ({d.get('model_type')}, {d.get('num_layers')} layers, hidden {d.get('hidden_size')}, "
              f"{d.get('num_heads')} heads, {d.get('parameters')} parameters per copy)")


if __name__ == "__main__":
    main()
