"""The training loop every GRU method shares (methods.md §0.4-0.6, §12.1-12.3).

Per epoch: one pass over the balanced training set, then dev and test evaluation with a fixed sampling
seed. Model selection uses dev accuracy only (first epoch reaching the maximum), restricted to epochs
whose dev sparsity is within `selection_tolerance` of the target when a target is set; alpha is
calibrated on dev between epochs. Test numbers are those of the selected epoch.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ratbench.config import RunConfig
from ratbench.data.batching import Batch, eval_batches, make_batch, train_batches
from ratbench.data.corpus import BALANCE_SEED, Corpus, Split
from ratbench.methods.base import Method
from ratbench.metrics import AOPC_BINS, Accuracy, TokenOverlap, aopc, auprc, iou_f1, topk_select

EVAL_BATCH = 256


def seed_everything(seed: int) -> None:
    """One integer seeds python, numpy and torch (and CUDA when present)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def resolve_device(name: str) -> torch.device:
    from ratbench.errors import RatbenchError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RatbenchError(f"--device {name} was requested but CUDA is not available here; use --device cpu or auto.")
    try:
        return torch.device(name)
    except RuntimeError:
        raise RatbenchError(f"Unknown device {name!r}; use auto, cpu, cuda or cuda:N.") from None


def limit_split(split: Split, limit: int | None) -> Split:
    """A fixed subset (same for every seed) of at most `limit` examples."""
    if limit is None or limit >= len(split):
        return split
    index = np.sort(np.random.default_rng(BALANCE_SEED).permutation(len(split))[:limit])
    return split.subset(index)


@dataclass
class RunResult:
    curves: list[dict[str, Any]] = field(default_factory=list)
    selected_epoch: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    selection: str = "dev_acc"
    final_alpha: float = 0.0


class Engine:
    def __init__(
        self,
        method: Method,
        corpus: Corpus,
        config: RunConfig,
        seed: int,
        device: torch.device,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
        on_step: Callable[[int, int], None] | None = None,
        context: dict[str, Any] | None = None,
    ):
        self.method = method
        self.config = config
        self.seed = seed
        self.device = device
        self.on_epoch = on_epoch
        self.on_step = on_step
        self.train = limit_split(corpus.train, config.train_limit)
        self.dev = limit_split(corpus.dev, config.dev_limit)
        self.test = limit_split(corpus.test, config.test_limit)
        method.prepare(corpus, self.train, {"seed": seed, **(context or {})})
        seed_everything(seed)
        self.model = method.build_model(torch.from_numpy(corpus.vectors)).to(device)
        self.optimizers = method.build_optimizers(self.model)
        self.dev_batches = eval_batches(self.dev, EVAL_BATCH, device)
        self.test_batches = eval_batches(self.test, EVAL_BATCH, device)

    # -- evaluation ------------------------------------------------------------------------------------
    def _generator(self) -> torch.Generator:
        gen = torch.Generator(device=self.device)
        gen.manual_seed(self.config.eval_seed)
        return gen

    @torch.inference_mode()
    def full_text_accuracy(self, batches: list[Batch]) -> float:
        """The predictor on the whole text (every real token selected)."""
        self.model.eval()
        acc = Accuracy()
        for batch in batches:
            logits = self.method.predict_with(self.model, batch, torch.ones_like(batch.mask))
            acc.update(logits.argmax(-1).cpu().numpy(), batch.labels.cpu().numpy())
        return acc.compute()

    @torch.inference_mode()
    def evaluate(
        self, batches: list[Batch], gold: bool, explain: bool = True
    ) -> dict[str, float]:
        """One pass: accuracy, sparsity and (with `gold`) overlap with the human rationale. Without `explain`
        only the classification is computed and rationale metrics are NaN (costly post-hoc explainers)."""
        self.model.eval()
        gen = self._generator()
        post_hoc = self.method.post_hoc
        acc, rat_acc, overlap = Accuracy(), Accuracy(), TokenOverlap()
        for batch in batches:
            if explain:
                z, logits, _ = self.method.rationale(self.model, batch, gen)
            else:
                logits, z = self.method.classify(self.model, batch), None
            acc.update(logits.argmax(-1).cpu().numpy(), batch.labels.cpu().numpy())
            if post_hoc and explain:
                on_rationale = self.method.predict_with(self.model, batch, z)
                rat_acc.update(on_rationale.argmax(-1).cpu().numpy(), batch.labels.cpu().numpy())
            if z is not None:
                mask = batch.mask.cpu().numpy()
                g = batch.gold.cpu().numpy() if (gold and batch.gold is not None) else np.zeros_like(mask)
                overlap.update(z.float().cpu().numpy(), g, mask)
        out = {"Acc": acc.compute()}
        ov = overlap.compute() if explain else dict.fromkeys(TokenOverlap.KEYS, float("nan"))
        out["S"] = ov["S"]
        out["s_ref"] = ov["S_ref"]
        if gold:
            out.update(P=ov["P"], R=ov["R"], F1=ov["F1"], p_ref=ov["P_ref"])
            out.update(p_macro=ov["P_macro"], r_macro=ov["R_macro"], f1_macro=ov["F1_macro"])
            out.update(p_random=ov["P_random"], r_random=ov["R_random"], f1_random=ov["F1_random"])
        if post_hoc and explain:
            out["rationale_acc"] = rat_acc.compute()
        return out

    @torch.inference_mode()
    def faithfulness(self, batches: list[Batch]) -> dict[str, float]:
        """ERASER comprehensiveness/sufficiency of the hard rationale, their AOPC over top-k% of the
        selector's soft scores, IOU-F1 and AUPRC (methods.md §12.3-12.4), and the predictor's full-text
        accuracy, all from one pass over the batches."""
        self.model.eval()
        gen = self._generator()
        comp, suff = [], []
        comp_bins: dict[float, list[np.ndarray]] = {k: [] for k in AOPC_BINS}
        suff_bins: dict[float, list[np.ndarray]] = {k: [] for k in AOPC_BINS}
        full_acc = Accuracy()
        spans: list[tuple[torch.Tensor, ...]] = []

        def prob(keep: torch.Tensor, batch: Batch, cls: torch.Tensor) -> np.ndarray:
            p = self.method.predict_with(self.model, batch, keep).float().softmax(-1)
            return p.gather(1, cls[:, None]).squeeze(1).cpu().numpy()

        for batch in batches:
            z, _, scores = self.method.rationale(self.model, batch, gen)
            zm = z * batch.mask
            full_logits = self.method.predict_with(self.model, batch, torch.ones_like(batch.mask))
            cls = full_logits.argmax(-1)
            full_acc.update(cls.cpu().numpy(), batch.labels.cpu().numpy())
            p_full = full_logits.float().softmax(-1).gather(1, cls[:, None]).squeeze(1).cpu().numpy()
            comp.append(p_full - prob(1.0 - zm, batch, cls))
            suff.append(p_full - prob(zm, batch, cls))
            for k in AOPC_BINS:
                top = topk_select(scores, batch.mask, k)
                comp_bins[k].append(p_full - prob(1.0 - top, batch, cls))
                suff_bins[k].append(p_full - prob(top, batch, cls))
            if batch.gold is not None:
                spans.append((zm, batch.gold, batch.mask, scores))
        comp_a = aopc({k: np.concatenate(v) for k, v in comp_bins.items()})
        suff_a = aopc({k: np.concatenate(v) for k, v in suff_bins.items()})
        out = {
            "comprehensiveness": float(np.concatenate(comp).mean()),
            "sufficiency": float(np.concatenate(suff).mean()),
            "comp_aopc": comp_a["aopc"],
            "suff_aopc": suff_a["aopc"],
            "comp_aopc_eraser_script": comp_a["aopc_eraser_script"],
            "suff_aopc_eraser_script": suff_a["aopc_eraser_script"],
            "full_text_acc": full_acc.compute(),
        }
        if spans and len(spans) == len(batches):
            out.update(self._span_metrics(spans))
        return out

    @staticmethod
    def _span_metrics(spans: list[tuple[torch.Tensor, ...]]) -> dict[str, float]:
        """IOU-F1 and AUPRC over the whole test set from per-batch (selection, gold, mask, soft score),
        padded to the longest test example."""
        width = max(t[0].shape[1] for t in spans)
        cols = [np.concatenate([torch.nn.functional.pad(t[i], (0, width - t[i].shape[1])).float().cpu().numpy()
                                for t in spans]) for i in range(4)]
        sel_a, gold_a, mask_a, score_a = cols
        iou = iou_f1(sel_a, gold_a, mask_a)
        pr = auprc(score_a, gold_a, mask_a)
        return {
            "iou_f1": iou["F1"],
            "iou_p": iou["P"],
            "iou_r": iou["R"],
            "auprc": pr["auprc"],
            "average_precision": pr.get("average_precision", float("nan")),
        }

    # -- training ----------------------------------------------------------------------------------------
    def model_state(self) -> dict[str, torch.Tensor]:
        """The current weights without the frozen word vectors (after `fit`: the selected epoch's)."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items() if not k.startswith("embed.")}

    def _epoch_batches(self, rng: np.random.Generator) -> Iterator[Batch]:
        for index in self._batch_indices(rng):
            yield make_batch(self.train, index, self.device)

    def _batch_indices(self, rng: np.random.Generator) -> list[np.ndarray]:
        return train_batches(self.train, self.config.batch_size, rng, bucketed=self.config.batching == "bucketed")

    def _training_hooks(self) -> list[Any]:
        names = [n.strip() for n in self.config.probes.split(",") if n.strip()]
        if not names:
            return []
        from ratbench.probes import TRAINING_HOOKS

        return [TRAINING_HOOKS.get(n)(self) for n in names]

    def precision(self) -> contextlib.AbstractContextManager:
        """`precision=bf16`: autocast matrix products and GRUs to bfloat16 (meant for CUDA, where it roughly
        halves memory traffic; CPU autocast works too but is rarely faster). Losses, softmax and the
        selection stay float32; `Method.backward_step` runs the backward pass outside autocast."""
        if self.config.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def fit(self) -> RunResult:
        with self.precision():
            return self._fit()

    def _fit(self) -> RunResult:
        c = self.config
        # pretraining (e.g. a teacher) draws its own data order, so it leaves the main epochs' order alone
        pre_rng = np.random.default_rng([self.seed, 1])
        self.method.pretrain(self.model, lambda: self._epoch_batches(pre_rng))
        rng = np.random.default_rng(self.seed)
        explain = self.method.explain_every_epoch
        hooks = self._training_hooks()
        result = RunResult()
        best: dict[str, Any] = {"eligible": None, "any": None}
        target = c.target_sparsity
        for epoch in range(1, c.epochs + 1):
            self.model.train()
            t0 = time.perf_counter()
            batches = self._batch_indices(rng)
            totals = {"loss": 0.0, "correct": 0.0, "selected": 0.0, "tokens": 0.0, "selected_ref": 0.0, "n": 0}
            for i, index in enumerate(batches):
                batch = make_batch(self.train, index, self.device)
                for hook in hooks:
                    hook.before_step(batch)
                stats = self.method.train_step(self.model, batch, self.optimizers)
                for hook in hooks:
                    hook.after_step(batch)
                totals["loss"] += stats["loss"] * len(batch)
                totals["n"] += len(batch)
                for key in ("correct", "selected", "tokens", "selected_ref"):
                    totals[key] += stats[key]
                if self.on_step:
                    self.on_step(i + 1, len(batches))
            train_seconds = time.perf_counter() - t0
            t1 = time.perf_counter()
            dev = self.evaluate(self.dev_batches, gold=False, explain=explain)
            test = self.evaluate(self.test_batches, gold=True, explain=explain)
            eval_seconds = time.perf_counter() - t1
            row = {
                "epoch": epoch,
                "train_seconds": train_seconds,
                "eval_seconds": eval_seconds,
                "train_loss": totals["loss"] / max(totals["n"], 1),
                "train_acc": 100.0 * totals["correct"] / max(totals["n"], 1),
                "train_S": 100.0 * totals["selected"] / max(totals["tokens"], 1),
                "alpha": self.method.alpha,
                "dev_acc": dev["Acc"],
                "dev_S": dev["S"],
                "test_acc": test["Acc"],
                "test_S": test["S"],
                "test_P": test["P"],
                "test_R": test["R"],
                "test_F1": test["F1"],
                "test_S_ref": test["s_ref"],
                "test_P_ref": test["p_ref"],
            }
            for hook in hooks:
                row.update(hook.epoch_values())
            result.curves.append(row)
            # post-hoc explainers select at a fixed (matched) sparsity: nothing to calibrate or filter on
            post_hoc = self.method.post_hoc
            eligible = (target is None or c.calibrate == "none" or post_hoc
                        or abs(dev["S"] - target) <= c.selection_tolerance)
            for key, ok in (("eligible", eligible), ("any", True)):
                if ok and (best[key] is None or dev["Acc"] > best[key]["dev_acc"]):
                    best[key] = {"epoch": epoch, "dev_acc": dev["Acc"], "dev_S": dev["S"], "test": test,
                                 "state": self.model_state()}
            if target is not None and c.calibrate == "dev" and not post_hoc:
                # move alpha so that dev S approaches the target (never looks at test)
                step = c.calibration_gain * (target - dev["S"]) / 100.0
                self.method.alpha = float(min(max(self.method.alpha + step, 0.005), 0.95))
            self.method.on_epoch_end(epoch, self.optimizers)
            if self.on_epoch:
                self.on_epoch(row)
        chosen = best["eligible"]
        if chosen is None:
            chosen, result.selection = best["any"], "dev_acc (no epoch within tolerance of the target)"
        self.model.load_state_dict(chosen["state"], strict=False)
        result.selected_epoch = chosen["epoch"]
        result.final_alpha = self.method.alpha
        if not explain:  # rationales of the selected model only
            chosen["test"] = self.evaluate(self.test_batches, gold=True)
        metrics = dict(chosen["test"])
        # the predictor on the whole text, once for the selected model (one evaluation pass per split per epoch)
        if c.faithfulness:
            metrics.update(self.faithfulness(self.test_batches))
        else:
            metrics["full_text_acc"] = self.full_text_accuracy(self.test_batches)
        if self.method.post_hoc:
            # the paper's table shows no Acc for post-hoc explainers: the number would be the full-text
            # classifier's, not a rationale's
            metrics["classifier_acc"] = metrics.pop("Acc")
        metrics["dev_acc"] = chosen["dev_acc"]
        metrics["dev_S"] = chosen["dev_S"]
        result.metrics = metrics
        return result
