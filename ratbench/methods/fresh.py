"""FRESH (Jain et al., ACL 2020; docs/methods.md#fresh): a predictor trained only on the highlights of another,
already trained run (the *explainer*: Attention, LIME, an explained classifier, or any rationalizer).

FRESH separates explaining from predicting: a support model is trained on the full text, a scorer ranks its
tokens, the top-k tokens are extracted, and a fresh classifier is trained and evaluated on the extracted snippets
alone, so its prediction is faithful to the snippet by construction. REGEX (Li et al. 2023) uses it to show that
its highlights support a select-then-predict model about as accurate as the full-text classifier.

Here the explainer is a finished run of the same dataset, seed and settings (`explainer=attention` by default;
the planner trains it first, docs/methods.md#post-hoc for what it reads itself). Its trained model comes through
the dependency record's `restore()` (ratbench.api), frozen inside this method's model, so the checkpoint holds
it and a restored FRESH run needs no other file. Highlights: the explainer's top-k_b real tokens by its own soft
scores, k_b = max(1, round(S * len_b)) with S the target sparsity (`highlight_sparsity=target`), or the
explainer's own hard rationale (`highlight_sparsity=explainer`). The training set's highlights are computed once
before the first epoch (the explainer never changes); dev and test highlights are memoised per evaluation batch.

The predictor is the select-then-predict predictor of the run's backbone (BiGRU or transformer, max-pooled). It
reads the snippet (`predictor_input=extract`, FRESH's input: the highlighted tokens re-packed from position 0,
the others gone; [CLS], [SEP] and a query kept), or the full-length text with the other tokens blanked
(`predictor_input=mask`, how the rationalizers' predictors read a rationale).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ratbench.config import RunConfig, config_of
from ratbench.data.batching import Batch, padded_view
from ratbench.data.corpus import Corpus, Split
from ratbench.errors import RatbenchError
from ratbench.methods.base import Method, register_method, step_stats
from ratbench.methods.catalog import MethodInfo, method_class
from ratbench.metrics import topk_select
from ratbench.models.backbones import GruBackbone
from ratbench.models.players import PredictorPlayer
from ratbench.models.state import load_trainable_state, trainable_state

HIGHLIGHT_SPARSITY = ("target", "explainer")
PREDICTOR_INPUTS = ("extract", "mask")
# settings that decide the token ids a run reads: the explainer's must equal FRESH's, or its highlights would
# index other tokens
DATA_KEYS = ("backbone", "encoder", "vectors", "splits", "max_len", "max_query_len", "local_mlm_steps")


def extracted(batch: Batch, keep: torch.Tensor) -> Batch:
    """The batch reduced to its kept selectable positions plus the forced ones ([CLS], [SEP], a query), in their
    order and re-packed from position 0: FRESH's snippet, the dropped tokens gone rather than blanked. A row that
    keeps nothing becomes one blank padding position (its predictor sees no token)."""
    kept = (keep * batch.mask) > 0.5
    if batch.forced is not None:
        kept = kept | (batch.forced > 0.5)
    counts = kept.sum(1)
    width = max(int(counts.max()) if len(batch) else 1, 1)
    order = torch.argsort((~kept).to(torch.uint8), dim=1, stable=True)[:, :width]  # kept positions first
    valid = torch.arange(width, device=kept.device)[None, :] < counts[:, None]

    def take(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else torch.where(valid, t.gather(1, order), torch.zeros((), dtype=t.dtype,
                                                                                          device=t.device))

    mask = take(batch.mask)
    forced = take(batch.forced)
    return Batch(ids=take(batch.ids), mask=mask, lengths=counts.clamp_min(1).cpu(), labels=batch.labels,
                 gold=take(batch.gold), index=batch.index,
                 attention=None if forced is None else valid.to(mask.dtype), forced=forced,
                 token_type=take(batch.token_type))


class FreshModel(nn.Module):
    """The frozen explainer's model beside a fresh embedding + predictor over the run's backbone."""

    def __init__(self, explainer: nn.Module, backbone: Any, dropout: float):
        super().__init__()
        self.explainer = explainer
        for p in self.explainer.parameters():
            p.requires_grad_(False)
        self.embed = backbone.embedding()
        self.predictor = PredictorPlayer(backbone.encoder(), backbone.width, dropout, backbone.num_classes)

    def train(self, mode: bool = True) -> FreshModel:
        super().train(mode)
        self.explainer.eval()  # a fixed explainer: its highlights never see dropout
        return self


INFO = MethodInfo(
    name="fresh",
    title="FRESH",
    description="FRESH: a predictor trained only on a trained explainer's top-k highlights (default: Attention)",
    family="select-then-predict on post-hoc highlights",
    citation="Jain et al. 2020, ACL (FRESH); used by REGEX (Li et al. 2023, TrustNLP)",
    order=25,
    backbones=("gru", "transformer"),
    kind="rationalizer",
    runs_after=("attention",),
    provenance="adaptation",
    sparsity="top-k",
)


@register_method(INFO)
class Fresh(Method):
    """FRESH: a predictor trained only on a trained explainer's top-k highlights."""

    defaults: ClassVar[dict[str, Any]] = {"explainer": "attention", "highlight_sparsity": "target",
                                          "predictor_input": "extract"}
    pools_over_positions: ClassVar[bool] = False  # the gold probe's pooled reading does not apply to a snippet

    def __init__(self, config: RunConfig):
        super().__init__(config)
        for key, choices in (("highlight_sparsity", HIGHLIGHT_SPARSITY), ("predictor_input", PREDICTOR_INPUTS)):
            if self.params[key] not in choices:
                raise RatbenchError(f"fresh: {key} must be one of {', '.join(choices)}, got {self.params[key]!r}.")
        if self.params["explainer"] == self.name:
            raise RatbenchError("fresh: the explainer must be another method's run (e.g. attention, lime).")
        self.explainer: Method | None = None  # the explainer run's method, prepared (set by prepare)
        self._explainer_state: dict[str, torch.Tensor] | None = None  # its trained weights, until build_model
        self.sparsity: float | None = None  # highlight fraction (None: the explainer's own hard rationale)
        self.train_split: Split | None = None
        self._train_highlights: np.ndarray | None = None  # flat, aligned with train_split.ids
        self._memo: dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def dependencies(cls, config: RunConfig) -> tuple[str, ...]:
        """The explainer's run of the same dataset, seed and settings."""
        return (str({**cls.defaults, **config.method_params}["explainer"]),)

    # -- the explainer ---------------------------------------------------------------------------------
    def prepare(self, corpus: Corpus, train: Split, context: dict[str, Any]) -> None:
        """Take the explainer from its finished run (`context["records"][explainer]["restore"]`), or, when a
        finished FRESH run is restored (`own_notes`), rebuild it from the configuration this run recorded (its
        weights are in this run's checkpoint)."""
        self.train_split = train
        seed = int(context.get("seed", 0))
        name = str(self.params["explainer"])
        own = context.get("own_notes") or {}
        if own.get("explainer_config"):
            self.explainer = method_class(str(own["explainer"]))(config_of(own["explainer_config"]))
            self.explainer.prepare(corpus, train, {"seed": seed, "dataset": context.get("dataset"),
                                                   "own_notes": own.get("explainer_notes") or {}})
            if own.get("explainer_alpha") is not None:
                self.explainer.alpha = float(own["explainer_alpha"])
            self._set_sparsity(own.get("highlight_sparsity"))
            self.notes = dict(own)
            return
        dep = (context.get("records") or {}).get(name)
        if dep is None or "restore" not in dep:
            raise RatbenchError(
                f"fresh trains on the highlights of {name}'s run on {context.get('dataset')} seed {seed} with the same "
                f"settings, and that run has not finished. Train it first (`ratbench run --methods {name},fresh` "
                "trains it in the same grid), or name another explainer with --set explainer=<method>.")
        restored = dep["restore"]()
        self._check_same_data(name, restored.record.config)
        self.explainer = restored.method
        self._explainer_state = trainable_state(restored.model)
        if self.params["highlight_sparsity"] == "target":
            if self.config.target_sparsity is None:
                raise RatbenchError("fresh with highlight_sparsity=target needs target_sparsity (--set "
                                    "target_sparsity=15), or use highlight_sparsity=explainer.")
            percent = float(self.config.target_sparsity)
        else:
            percent = None
        self._set_sparsity(percent)
        metrics = restored.record.metrics or {}
        self.notes = {
            "explainer": name, "record": str(dep["path"]), "highlight_sparsity": percent,
            "explainer_config": dict(restored.record.config),
            "explainer_notes": dict(restored.record.method_notes or {}),
            "explainer_alpha": restored.record.final_alpha,
            # the explained classifier's own accuracy, for the comparison FRESH is about
            "explainer_acc": metrics.get("classifier_acc", metrics.get("Acc")),
        }

    def label_leak(self) -> str | None:
        """An explainer whose test rationales read the test labels passes that on to FRESH's highlights."""
        leak = self.explainer.label_leak() if self.explainer is not None else None
        return f"its explainer {self.params['explainer']}: {leak}" if leak else None

    def _set_sparsity(self, percent: float | None) -> None:
        if percent is not None and not 0.0 < float(percent) <= 100.0:
            raise RatbenchError(f"fresh: the highlight sparsity {percent} % is outside (0, 100].")
        self.sparsity = None if percent is None else float(percent) / 100.0

    def _check_same_data(self, name: str, explainer_config: dict[str, Any]) -> None:
        theirs = config_of(explainer_config)
        differ = [k for k in DATA_KEYS if getattr(theirs, k) != getattr(self.config, k)]
        if differ:
            pairs = ", ".join(f"{k}: {getattr(theirs, k)!r} vs {getattr(self.config, k)!r}" for k in differ)
            raise RatbenchError(f"fresh reads {name}'s highlights, but that run read other data ({pairs}); give both "
                                "the same settings.")

    def _explainer_backbone(self, backbone: Any) -> Any:
        """The explainer's own backbone: a GRU's width is a setting of the explainer's run; a transformer's
        pretrained encoder is the same for both."""
        if isinstance(backbone, GruBackbone):
            c = self._explainer().config
            return GruBackbone(backbone.vectors, c.hidden_size, c.gru_mode, backbone.num_classes)
        return backbone

    def _explainer(self) -> Method:
        if self.explainer is None:
            raise RuntimeError("fresh: prepare() must run before the model is built (no explainer yet).")
        return self.explainer

    def highlight(self, model: FreshModel, batch: Batch, generator: torch.Generator | None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """(0/1 highlight, explainer's soft scores) of a batch, from the frozen explainer."""
        explainer = self._explainer()
        z, _, scores = explainer.rationale(model.explainer, batch, generator)
        if self.sparsity is None:
            return (z > 0.5).to(batch.mask.dtype) * batch.mask, scores
        return topk_select(scores, batch.mask, self.sparsity), scores

    # -- model and training ------------------------------------------------------------------------------
    def build_model(self, backbone: Any) -> nn.Module:
        explainer = self._explainer().build_model(self._explainer_backbone(backbone))
        if self._explainer_state is not None:  # training: the explainer run's weights (restored: our checkpoint's)
            load_trainable_state(explainer, self._explainer_state)
            self._explainer_state = None
        return FreshModel(explainer, backbone, self.config.dropout)

    def build_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        """One Adam over the predictor (the explainer is frozen); `encoder_lr` as for the rationalizers."""
        return [torch.optim.Adam(self.param_groups("predictor", model.predictor, self.config.lr))]

    def pretrain(self, model: nn.Module, epoch_batches: Callable[[], Iterator[Batch]]) -> None:
        """The training set's highlights, once (the explainer is fixed), with the evaluation seed for sampling."""
        split = self.train_split
        if split is None:
            raise RuntimeError("fresh: prepare() must run before training.")
        values = np.zeros(len(split.ids), np.float32)
        generator = None
        was_training = model.training
        model.eval()
        with torch.inference_mode():
            for batch in epoch_batches():
                if generator is None:
                    generator = torch.Generator(device=batch.ids.device).manual_seed(self.config.eval_seed)
                h, _ = self.highlight(model, batch, generator)
                cols = np.arange(h.shape[1])
                valid = cols[None, :] < split.lengths[batch.index][:, None]
                positions = split.offsets[batch.index][:, None] + cols[None, :]
                values[positions[valid]] = h.float().cpu().numpy()[valid]
        model.train(was_training)
        self._train_highlights = values

    def _training_highlight(self, batch: Batch) -> torch.Tensor:
        if self._train_highlights is None or self.train_split is None:
            raise RuntimeError("fresh: the training highlights are computed in pretrain(), before the first step.")
        h, _ = padded_view(self.train_split, batch.index, self._train_highlights, batch.ids.shape[1])
        return torch.from_numpy(h.astype(np.float32)).to(batch.mask.device) * batch.mask

    def train_step(self, model: nn.Module, batch: Batch, optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
        """Cross-entropy of the predictor on the batch's (precomputed) highlights."""
        h = self._training_highlight(batch)
        logits = self._predict(model, batch, h, remove=False)
        loss = nn.functional.cross_entropy(logits, batch.labels)
        self.backward_step(loss, optimizers)
        return step_stats(loss, loss, logits, h, batch)

    def _predict(self, model: FreshModel, batch: Batch, keep: torch.Tensor, remove: bool) -> torch.Tensor:
        if self.params["predictor_input"] == "extract":
            snippet = extracted(batch, keep)
            return model.predictor(model.embed(snippet.ids, snippet.mask), None, snippet).float()
        return model.predictor(model.embed(batch.ids, batch.mask), keep * batch.mask, batch, None, remove).float()

    # -- evaluation -------------------------------------------------------------------------------------
    def rationale(
        self, model: nn.Module, batch: Batch, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The explainer's highlight, the predictor's logits on it, the explainer's soft scores. A batch's
        highlight is memoised (the explainer is frozen, and evaluation batches are built once per run)."""
        key = (id(batch), batch.index.tobytes(), hash(batch.ids.cpu().numpy().tobytes()))
        cached = self._memo.get(key)
        if cached is None:
            cached = self.highlight(model, batch, generator)
            self._memo[key] = cached
        h, scores = cached
        return h, self._predict(model, batch, h, remove=False), scores

    def predict_with(self, model: nn.Module, batch: Batch, keep: torch.Tensor) -> torch.Tensor:
        """The predictor reading only `keep` (comprehensiveness/sufficiency): extracted, or blanked and removed
        from a transformer's attention."""
        return self._predict(model, batch, keep, remove=True)

