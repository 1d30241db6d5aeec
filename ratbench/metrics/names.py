"""The metric vocabulary: every key a RunRecord's `metrics` may hold, and the per-epoch curve keys.

One list, read by the engine (which writes these names), `report` (which ranks columns by
`higher_is_better`), `check` and `list metrics` (docs/metrics.md explains each one at length). The
table's headline metrics keep the papers' spelling (`S`, `Acc`, `P`, `R`, `F1`); every other name is lower
case; a per-epoch value is `<split>_<name>` with the headline names as in the table, except accuracy, which
curves spell `acc` (`train_acc`, `dev_acc`, `test_acc`, as published logs do).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    name: str
    description: str
    higher_is_better: bool | None  # None: not ranked (sparsity, a count, a setting's realised value)
    unit: str = "%"  # "%" (0-100), "prob" (a probability difference), "ratio" (0-1)
    group: str = "plausibility"  # task | sparsity | plausibility | faithfulness | reference | selection | baseline


_M = MetricInfo
METRICS: dict[str, MetricInfo] = {m.name: m for m in [
    _M("S", "realised sparsity: selected real tokens / real tokens, pooled over the test set", None, group="sparsity"),
    _M("Acc", "test accuracy of the method's prediction (rationalizers: the predictor on its own rationale)", True,
       group="task"),
    _M("P", "token precision against the human rationale, micro (pooled over the test set)", True),
    _M("R", "token recall against the human rationale, micro", True),
    _M("F1", "token F1 against the human rationale, micro", True),
    _M("p_macro", "token precision, macro (mean of per-example values)", True),
    _M("r_macro", "token recall, macro", True),
    _M("f1_macro", "token F1, macro", True),
    _M("s_ref", "S with selected padding counted, as the published code does (its number only with pad_to=max_len: "
       "otherwise a batch has only its own padding)", None, group="reference"),
    _M("p_ref", "P with selected padding counted, as the published code does (its number only with pad_to=max_len)",
       True, group="reference"),
    _M("p_random", "expected P of uniform random selection at the run's own S (the gold share)", True,
       group="baseline"),
    _M("r_random", "expected R of uniform random selection at the run's own S (= S)", True, group="baseline"),
    _M("f1_random", "expected F1 of uniform random selection at the run's own S", True, group="baseline"),
    _M("iou_f1", "ERASER IOU-F1: predicted spans matching a gold span at IOU >= 0.5, micro", True, unit="ratio"),
    _M("iou_p", "ERASER IOU precision, micro", True, unit="ratio"),
    _M("iou_r", "ERASER IOU recall, micro", True, unit="ratio"),
    _M("auprc", "AUPRC of the soft token scores against the gold tokens, mean over examples with both classes", True,
       unit="ratio"),
    _M("average_precision", "average precision of the soft token scores, mean over examples", True, unit="ratio"),
    _M("comprehensiveness", "p(y|x) - p(y|x without the rationale), mean over test examples", True, unit="prob",
       group="faithfulness"),
    _M("sufficiency", "p(y|x) - p(y|rationale only), mean over test examples", False, unit="prob",
       group="faithfulness"),
    _M("comp_aopc", "comprehensiveness averaged over top-k% bins {1,5,10,20,50}, divided by |B|+1 (ERASER paper)",
       True, unit="prob", group="faithfulness"),
    _M("suff_aopc", "sufficiency averaged over the same bins, divided by |B|+1", False, unit="prob",
       group="faithfulness"),
    _M("comp_aopc_eraser_script", "comp_aopc divided by |B| instead, as ERASER's scoring script does", True,
       unit="prob", group="faithfulness"),
    _M("suff_aopc_eraser_script", "suff_aopc divided by |B|, as ERASER's scoring script does", False, unit="prob",
       group="faithfulness"),
    _M("full_text_acc", "test accuracy of the predictor reading the whole text", True, group="task"),
    _M("classifier_acc", "post-hoc explainers: test accuracy of the explained full-text classifier (shown instead "
       "of Acc, which would not be a rationale's accuracy)", True, group="task"),
    _M("rationale_acc", "post-hoc explainers: the classifier's accuracy on its top-k rationale alone", True,
       group="task"),
    _M("dev_acc", "dev accuracy of the selected epoch (what model selection maximised)", True, group="selection"),
    _M("dev_S", "dev sparsity of the selected epoch (what calibration steered)", None, group="selection"),
]}

# per-epoch curve keys every record has (probes add their own, listed by the probe)
CURVE_KEYS = ["epoch", "train_seconds", "eval_seconds", "train_loss", "train_acc", "train_S", "alpha", "dev_acc",
              "dev_S", "test_acc", "test_S", "test_P", "test_R", "test_F1", "test_s_ref", "test_p_ref"]


def higher_is_better(name: str) -> bool | None:
    """True / False for ranked metrics, None for unranked or unknown ones (never bolded as best)."""
    info = METRICS.get(name)
    return info.higher_is_better if info else None
