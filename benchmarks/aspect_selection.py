"""Which aspects' sentences a selector keeps while it trains on the synthetic corpus, and what pushes it.

    python benchmarks/aspect_selection.py --dataset synth-aroma --seed 1
    python benchmarks/aspect_selection.py --dataset synth-palate --set lambda_sparsity=11 --set lambda_continuity=12

Every `--every` updates it prints, over the first `--reviews` test reviews (argmax selection), the share of
each aspect's sentence tokens and of the filler tokens that the selector keeps ("rate"), and how its
selection divides among them ("share"). After each epoch it prints the mean gradient of the classification
loss and of the regulariser with respect to each token's selection z (negative: "select more"), and the
mean |dCE/dz|, by sentence class: the measurement behind the quick profile's regulariser weights
(results/synth-quick/README.md). A sentence's class is the aspect of its content words (nouns, descriptors,
judgement words), filler if it has none. The probes draw their own random numbers, so the run trains exactly
as `ratbench run` would. Never asserts.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

from ratbench import api
from ratbench.config import parse_overrides
from ratbench.data.batching import eval_batches
from ratbench.data.synthetic import ASPECTS, aspect_words
from ratbench.engine import Callback, Engine
from ratbench.models.gumbel import sample_st
from ratbench.paths import data_root

CLASSES = ["appearance", "aroma", "palate", "taste", "overall", "filler"]
FILLER = len(ASPECTS)
PADDING = -1


def word_classes(words: list[str]) -> np.ndarray:
    """Vocabulary row -> aspect index of the words only that aspect uses, -1 for every other word."""
    out = np.full(len(words), -1)
    index = {w: i for i, w in enumerate(words)}
    for k, aspect in enumerate(ASPECTS):
        for w in aspect_words(aspect):
            if w in index:
                out[index[w]] = k
    return out


def sentence_classes(ids: np.ndarray, word_class: np.ndarray, full_stop: int) -> np.ndarray:
    """Class of every token of one review: the aspect whose words its sentence holds most, else filler."""
    out = np.full(len(ids), FILLER)
    cuts = np.flatnonzero(ids == full_stop) + 1
    for a, b in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(ids)]])):
        found = word_class[ids[a:b]]
        found = found[found >= 0]
        if len(found):
            out[a:b] = np.bincount(found).argmax()
    return out


class AspectProbe:
    """Keep-rates and selection gradients by sentence class on a fixed set of test reviews."""

    def __init__(self, engine: Engine, corpus, n_reviews: int):
        self.engine = engine
        split = corpus.test.subset(np.arange(min(n_reviews, len(corpus.test))))
        self.batches = eval_batches(split, 200, engine.device)
        word_class = word_classes(corpus.words)
        full_stop = corpus.words.index(".")
        self.classes = []  # (B, L) per batch, PADDING beyond each review
        for b in self.batches:
            ids, lengths = b.ids.cpu().numpy(), b.lengths.cpu().numpy()
            grid = np.full(ids.shape, PADDING)
            for r, n in enumerate(lengths):
                grid[r, :n] = sentence_classes(ids[r, :n], word_class, full_stop)
            self.classes.append(grid)
        self.sizes = np.array([sum(int((g == k).sum()) for g in self.classes) for k in range(len(CLASSES))])

    def _by_class(self, values: list[np.ndarray]) -> np.ndarray:
        total = np.array([sum(float(v[g == k].sum()) for v, g in zip(values, self.classes))
                          for k in range(len(CLASSES))])
        return total / np.maximum(self.sizes, 1)

    def keep_rates(self) -> str:
        model = self.engine.model
        was_training = model.training
        model.eval()
        kept = []
        with torch.inference_mode():
            for b in self.batches:
                logits = model.select_logits(model.embed(b.ids, b.mask), b)
                kept.append((logits[..., 1] > logits[..., 0]).float().cpu().numpy())
        model.train(was_training)
        rate = self._by_class(kept)
        share = 100 * rate * self.sizes / max(float((rate * self.sizes).sum()), 1e-9)
        return ("rate " + " ".join(f"{c[:4]} {100 * r:3.0f}" for c, r in zip(CLASSES, rate))
                + " | share " + " ".join(f"{s:3.0f}" for s in share))

    def gradients(self) -> str:
        """d(loss)/dz per token, summed over the batch so each review counts once (the training loss averages
        over the batch; dividing by the batch size scales all terms alike)."""
        engine, model, method = self.engine, self.engine.model, self.engine.method
        was_training = model.training
        model.eval()
        gen = torch.Generator(device=engine.device)
        gen.manual_seed(0)
        ce_grad, reg_grad, ce_abs = [], [], []
        for b in self.batches:
            emb = model.embed(b.ids, b.mask).detach()
            with torch.no_grad():
                logits = model.select_logits(emb, b)
            z = sample_st(logits, engine.config.tau, gen)[0].detach().requires_grad_(True)
            ce = nn.functional.cross_entropy(model.predict(emb, z, b), b.labels, reduction="sum")
            (g_ce,) = torch.autograd.grad(engine.config.cls_weight * ce, z)
            z2 = z.detach().requires_grad_(True)
            (g_reg,) = torch.autograd.grad(method.regulariser(z2, b.mask) * len(b.labels), z2)
            ce_grad.append(-g_ce.cpu().numpy())
            ce_abs.append(g_ce.abs().cpu().numpy())
            reg_grad.append(-g_reg.cpu().numpy())
        model.train(was_training)
        fmt = lambda v: " ".join(f"{c[:4]} {x:+.3f}" for c, x in zip(CLASSES, v))  # noqa: E731
        return (f"-dCE/dz  {fmt(self._by_class(ce_grad))}\n  |dCE/dz| {fmt(self._by_class(ce_abs))}\n"
                f"  -dReg/dz {fmt(self._by_class(reg_grad))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="synth-aroma")
    parser.add_argument("--method", default="rnp")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--set", action="append", default=[], help="run setting key=value (repeatable)")
    parser.add_argument("--every", type=int, default=16, help="updates between keep-rate lines")
    parser.add_argument("--reviews", type=int, default=400, help="test reviews the probes read")
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    if not args.dataset.startswith("synth-"):
        parser.error("the sentence classes come from the synthetic corpus's word lists: use a synth-* dataset")

    root = data_root(args.data_root)
    spec = api.plan([args.method], [args.dataset], [args.seed], args.profile, parse_overrides(args.set), None, "cpu",
                    root, root / "unused")[0]
    if spec.config.num_threads:
        torch.set_num_threads(spec.config.num_threads)
    corpus = api.corpus(args.dataset, str(root), spec.config.vectors)
    state = {"epoch": 1}

    class Watch(Callback):
        def after_step(self, engine, batch, stats, step: int, n_steps: int) -> None:
            if step % args.every == 0 or step == n_steps:
                print(f"epoch {state['epoch']} update {step:3d}/{n_steps}  {probe.keep_rates()}", flush=True)

        def on_epoch_end(self, engine, row: dict) -> None:
            print(f"epoch {row['epoch']}: dev acc {row['dev_acc']:.1f}, test S {row['test_S']:.1f}, "
                  f"test F1 {row['test_F1']:.1f}\n  {probe.gradients()}", flush=True)
            state["epoch"] += 1

    engine = api.build(spec, [Watch()])  # exactly the run `ratbench run` would train
    probe = AspectProbe(engine, corpus, args.reviews)
    print(f"{args.method} on {args.dataset}, seed {args.seed}, profile {args.profile} {args.set}")
    print(f"at initialisation         {probe.keep_rates()}")
    result = engine.fit()
    m = result.metrics
    print(f"selected epoch {result.selected_epoch}: S {m['S']:.1f}, Acc {m['Acc']:.1f}, F1 {m['F1']:.1f}")


if __name__ == "__main__":
    main()
