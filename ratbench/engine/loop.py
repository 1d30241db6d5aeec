"""The training loop every method shares: named phases over one Method (docs/engine.md).

Per epoch: one pass over the (balanced) training set, then dev and test evaluation with a fixed sampling
seed; the model selector sees the epoch (dev numbers only), the calibrator moves alpha toward the sparsity
target on dev, the method's schedules step. After the last epoch the selected epoch's weights are
restored and its test metrics, faithfulness included, become the run's metrics.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ratbench.config import RunConfig
from ratbench.data.batching import Batch, eval_batches, make_batch, train_batches
from ratbench.data.corpus import Corpus
from ratbench.engine.calibration import SparsityCalibrator
from ratbench.engine.callbacks import Callback, CallbackList
from ratbench.engine.evaluation import EVAL_BATCH, eval_generator, evaluate, faithfulness, full_text_accuracy
from ratbench.engine.runtime import limit_split, rng_state, seed_everything, set_rng_state
from ratbench.engine.selection import PRIMARY_RULE, RULES, Candidate, ModelSelector
from ratbench.methods.base import Method
from ratbench.models.backbones import gru_backbone
from ratbench.models.state import load_trainable_state, trainable_state


@dataclass
class RunResult:
    curves: list[dict[str, Any]] = field(default_factory=list)
    selected_epoch: int = 0  # under the configured selection rule
    metrics: dict[str, Any] = field(default_factory=dict)  # of that epoch
    selection: str = PRIMARY_RULE
    final_alpha: float = 0.0
    # every selection rule's epoch and metrics ({rule: {"epoch", "how", "metrics"}}), so a report can show either
    selections: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the selected model evaluated under a method's alternative evaluation rules ({name: metrics}, e.g. DMR's)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)


class Engine:
    def __init__(
        self,
        method: Method,
        corpus: Corpus,
        config: RunConfig,
        seed: int,
        device: torch.device,
        callbacks: Sequence[Callback] = (),
        context: dict[str, Any] | None = None,
        backbone: Any = None,
    ):
        """`backbone` (models/backbones.py) defaults to the GRU over the corpus's vectors."""
        self.method = method
        self.config = config
        self.seed = seed
        self.device = device
        self.callbacks = CallbackList(callbacks)
        self.train = limit_split(corpus.train, config.train_limit)
        self.dev = limit_split(corpus.dev, config.dev_limit)
        self.test = limit_split(corpus.test, config.test_limit)
        method.prepare(corpus, self.train, {"seed": seed, **(context or {})})
        seed_everything(seed)
        self.backbone = backbone if backbone is not None else gru_backbone(corpus, config)
        self.model = method.build_model(self.backbone).to(device)
        self.optimizers = method.build_optimizers(self.model)
        # the published code pads every review to max_len; ratbench pads a batch to its longest review
        self.width = config.max_len if config.pad_to == "max_len" else None
        self.dev_batches = eval_batches(self.dev, EVAL_BATCH, device, config.eval_order, self.width)
        self.test_batches = eval_batches(self.test, EVAL_BATCH, device, config.eval_order, self.width)
        # post-hoc explainers and top-k methods select at a fixed (matched) sparsity: nothing to calibrate or filter
        calibrate = config.calibrate == "dev" and method.info.calibrates_alpha
        self.selector = ModelSelector(config.target_sparsity, config.selection_tolerance, restrict=calibrate)
        self.calibrator = SparsityCalibrator(config.target_sparsity, config.calibration_gain, enabled=calibrate)
        # training draws from the global generators; `fit` starts from their state here, so whatever runs between
        # building and fitting (another engine, a probe) cannot change the run
        self._rng_at_build = rng_state()

    # -- evaluation ------------------------------------------------------------------------------------
    def generator(self) -> torch.Generator:
        return eval_generator(self.device, self.config.eval_seed)

    def evaluate(self, batches: list[Batch], gold: bool, explain: bool = True) -> dict[str, float]:
        return evaluate(self.method, self.model, batches, gold, self.generator(), explain)

    def faithfulness(self, batches: list[Batch]) -> dict[str, float]:
        return faithfulness(self.method, self.model, batches, self.generator())

    def full_text_accuracy(self, batches: list[Batch]) -> float:
        return full_text_accuracy(self.method, self.model, batches)

    # -- state ---------------------------------------------------------------------------------------
    def model_state(self) -> dict[str, torch.Tensor]:
        """The weights a checkpoint holds (after `fit`: the selected epoch's); frozen vectors are left out."""
        return trainable_state(self.model)

    def precision(self) -> contextlib.AbstractContextManager:
        """`precision=bf16`: autocast matrix products and GRUs to bfloat16 (meant for CUDA, where it roughly
        halves memory traffic; CPU autocast works too but is rarely faster). Losses, softmax and the
        selection stay float32; `Method.backward_step` runs the backward pass outside autocast."""
        if self.config.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- the phases ------------------------------------------------------------------------------------
    def fit(self) -> RunResult:
        set_rng_state(self._rng_at_build)
        with self.precision():
            self.callbacks.on_fit_start(self)
            self._pretrain()
            rng = np.random.default_rng(self.seed)
            result = RunResult()
            for epoch in range(1, self.config.epochs + 1):
                t0 = time.perf_counter()
                totals = self._train_epoch(rng)
                train_seconds = time.perf_counter() - t0
                t1 = time.perf_counter()
                dev, test = self._evaluate_epoch()
                row = _curve_row(epoch, totals, train_seconds, time.perf_counter() - t1, self.method.alpha, dev, test)
                row.update(self.callbacks.epoch_values(self, epoch))
                result.curves.append(row)
                if self.method.selectable_epoch(epoch):  # e.g. not an RTP warm-up epoch
                    self.selector.offer(epoch, dev, test, self.model_state)
                self.method.alpha = self.calibrator.update(self.method.alpha, dev["S"])  # dev only, never test
                self.method.on_epoch_end(epoch, self.optimizers)
                self.callbacks.on_epoch_end(self, row)
            result.final_alpha = self.method.alpha
            self._select(result)
            self.callbacks.on_fit_end(self, result)
            return result

    def _pretrain(self) -> None:
        """Anything a method trains before the first epoch (DMR's teacher); it draws its own data order, so the
        main epochs' order is the same with or without it."""
        pre_rng = np.random.default_rng([self.seed, 1])
        self.method.pretrain(self.model, lambda: self._epoch_batches(pre_rng))

    def _epoch_batches(self, rng: np.random.Generator) -> Iterator[Batch]:
        for index in self._batch_indices(rng):
            yield make_batch(self.train, index, self.device, self.width)

    def _batch_indices(self, rng: np.random.Generator) -> list[np.ndarray]:
        return train_batches(self.train, self.config.batch_size, rng, bucketed=self.config.batching == "bucketed")

    def _train_epoch(self, rng: np.random.Generator) -> dict[str, float]:
        self.model.train()
        batches = self._batch_indices(rng)
        totals = {"loss": 0.0, "correct": 0.0, "selected": 0.0, "tokens": 0.0, "selected_ref": 0.0, "n": 0}
        for i, index in enumerate(batches):
            batch = make_batch(self.train, index, self.device, self.width)
            self.callbacks.before_step(self, batch)
            stats = self.method.train_step(self.model, batch, self.optimizers)
            totals["loss"] += stats["loss"] * len(batch)
            totals["n"] += len(batch)
            for key in ("correct", "selected", "tokens", "selected_ref"):
                totals[key] += stats[key]
            self.callbacks.after_step(self, batch, stats, i + 1, len(batches))
        return totals

    def _evaluate_epoch(self) -> tuple[dict[str, float], dict[str, float]]:
        explain = self.method.explain_every_epoch
        dev = self.evaluate(self.dev_batches, gold=False, explain=explain)
        test = self.evaluate(self.test_batches, gold=True, explain=explain)
        return dev, test

    def _select(self, result: RunResult) -> None:
        """Every rule's selected epoch with its final metrics; the model ends with the configured rule's weights
        (what the checkpoint holds), evaluated under the method's alternative rules too."""
        primary = PRIMARY_RULE
        by_epoch: dict[int, dict[str, Any]] = {}
        for rule in sorted(RULES, key=lambda r: r != primary):  # the configured rule last, so its weights stay
            chosen, how = self.selector.chosen(rule)
            if chosen.epoch not in by_epoch:
                by_epoch[chosen.epoch] = self._final_metrics(chosen)
            result.selections[rule] = {"epoch": chosen.epoch, "how": how, "metrics": by_epoch[chosen.epoch]}
        chosen, result.selection = self.selector.chosen(primary)
        load_trainable_state(self.model, chosen.state)
        result.selected_epoch = chosen.epoch
        result.metrics = result.selections[primary]["metrics"]
        for name, params in self.method.evaluation_variants().items():
            with self.method.using(params):
                result.variants[name] = self.evaluate(self.test_batches, gold=True)

    def _final_metrics(self, chosen: Candidate) -> dict[str, Any]:
        """Test metrics of the selected epoch, its faithfulness, and its dev numbers."""
        load_trainable_state(self.model, chosen.state)
        metrics = dict(chosen.test)
        if not self.method.explain_every_epoch:  # rationales of the selected model only
            metrics = self.evaluate(self.test_batches, gold=True)
        # the predictor on the whole text, once for the selected model (one evaluation pass per split per epoch)
        if self.config.faithfulness:
            metrics.update(self.faithfulness(self.test_batches))
        else:
            metrics["full_text_acc"] = self.full_text_accuracy(self.test_batches)
        if self.method.post_hoc:
            # the paper's table shows no Acc for post-hoc explainers: the number would be the full-text
            # classifier's, not a rationale's
            metrics["classifier_acc"] = metrics.pop("Acc")
        metrics["dev_acc"] = chosen.dev_acc
        metrics["dev_S"] = chosen.dev_S
        return metrics


def _curve_row(epoch: int, totals: dict[str, float], train_seconds: float, eval_seconds: float, alpha: float,
               dev: dict[str, float], test: dict[str, float]) -> dict[str, Any]:
    """One epoch's curve row (field names: docs/records.md)."""
    n = max(totals["n"], 1)
    return {
        "epoch": epoch,
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "train_loss": totals["loss"] / n,
        "train_acc": 100.0 * totals["correct"] / n,
        "train_S": 100.0 * totals["selected"] / max(totals["tokens"], 1),
        "alpha": alpha,
        "dev_acc": dev["Acc"],
        "dev_S": dev["S"],
        "test_acc": test["Acc"],
        "test_S": test["S"],
        "test_P": test["P"],
        "test_R": test["R"],
        "test_F1": test["F1"],
        "test_s_ref": test["s_ref"],
        "test_p_ref": test["p_ref"],
    }
