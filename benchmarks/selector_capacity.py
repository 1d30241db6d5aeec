"""How well can a backbone's selector represent the human rationale at all? A supervised ceiling.

A select-then-predict method trains its selector only through the predictor's loss. Before blaming a method for
a weak rationale on a backbone, this script asks what the same selector architecture reaches when it is told
the answer: the selector player (`SelectorPlayer` over the backbone's encoder, exactly as the methods build it)
is trained with token-level cross-entropy against the gold rationale of the first `--train` annotated test
reviews and scored on the remaining ones by test-style F1 of its top-k pieces at `--sparsity` percent.

The annotated test split is the only one with gold in the synthetic corpus, so this uses test gold for
training: it is a diagnostic of capacity, never a result, and nothing it produces enters a table.

    python benchmarks/selector_capacity.py                                   # GRU and the local transformer
    python benchmarks/selector_capacity.py --backbones transformer --mlm-steps 400 --epochs 5
    python benchmarks/selector_capacity.py --backbones transformer --local-layers 4
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from ratbench import api
from ratbench.config import RunConfig
from ratbench.data.batching import make_batch
from ratbench.data.pieces import resolve_encoder
from ratbench.metrics import token_prf, topk_select
from ratbench.models.local_encoder import LocalEncoderConfig
from ratbench.models.players import SelectorPlayer

DEFAULT_LR = {"gru": 6e-3, "transformer": 1e-3}  # the quick profile's rates for each backbone


def run(backbone: str, args: argparse.Namespace) -> list[tuple[int, float, float]]:
    torch.manual_seed(args.seed)
    encoder = "default"
    variant = {k: v for k, v in (("num_layers", args.local_layers), ("num_heads", args.local_heads)) if v}
    if backbone == "transformer" and variant:
        # run settings do not reach the local encoder's architecture: build the variant (cached under its own
        # key) and hand its directory over as the encoder
        local = LocalEncoderConfig(mlm_steps=args.mlm_steps, **variant)
        encoder = resolve_encoder(args.dataset, args.data_root, "local", "published", args.mlm_steps, local)
    config = RunConfig(backbone=backbone, encoder=encoder, local_mlm_steps=args.mlm_steps, hidden_size=args.hidden)
    data = api.corpus_of(config, args.dataset, str(args.data_root))
    bb = api.backbone_of(config, data)
    embed, selector = bb.embedding(), SelectorPlayer(bb.encoder(), bb.width, 0.2)
    lr = args.lr if args.lr is not None else DEFAULT_LR[backbone]
    opt = torch.optim.Adam([p for p in selector.parameters() if p.requires_grad], lr=lr)
    test = data.test
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(test))
    train, held = order[: args.train], order[args.train:]
    held_batch = make_batch(test, held)
    rows = []
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        selector.train()
        shuffled = rng.permutation(train)
        for i in range(0, len(shuffled), args.batch_size):
            batch = make_batch(test, shuffled[i : i + args.batch_size])
            logits = selector(embed(batch.ids, batch.mask), batch)
            token_loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch.gold.long(), reduction="none")
            loss = (token_loss * batch.mask).sum() / batch.mask.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        selector.eval()
        with torch.inference_mode():
            scores = selector(embed(held_batch.ids, held_batch.mask), held_batch).softmax(-1)[..., 1]
            z = topk_select(scores, held_batch.mask, args.sparsity / 100.0)
            f1 = token_prf(z.numpy(), held_batch.gold.numpy(), held_batch.mask.numpy())["F1"]
            rows.append((epoch, f1, time.perf_counter() - start))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synth-appearance")
    parser.add_argument("--backbones", default="gru,transformer")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train", type=int, default=600, help="annotated reviews to train on; the rest score")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=None, help="default: the quick profile's rate per backbone")
    parser.add_argument("--sparsity", type=float, default=15.0)
    parser.add_argument("--hidden", type=int, default=64, help="GRU width (the quick profile's)")
    parser.add_argument("--mlm-steps", type=int, default=0, help="local encoder's MLM pretraining (quick: 0)")
    parser.add_argument("--local-layers", type=int, default=None, help="local encoder variant (default: 2)")
    parser.add_argument("--local-heads", type=int, default=None, help="local encoder variant (default: 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", type=Path, default=Path(os.environ.get("RATBENCH_DATA", "~/.cache/ratbench")))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.data_root = args.data_root.expanduser()
    print(f"supervised selector ceiling on {args.dataset}: {args.train} annotated reviews to train, top-"
          f"{args.sparsity:g}% scored on the rest; {args.threads} thread(s)")
    print(f"{'backbone':<12} {'epoch':>5} {'F1':>6} {'seconds':>8}")
    for backbone in args.backbones.split(","):
        for epoch, f1, seconds in run(backbone, args):
            print(f"{backbone:<12} {epoch:>5} {f1:>6.1f} {seconds:>8.1f}")


if __name__ == "__main__":
    main()
