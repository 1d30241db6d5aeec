"""Metrics: plausibility (token P/R/F1, IOU-F1, AUPRC on masks and on spans as given), faithfulness (comp, suff,
AOPC), accuracy, NRG; names and directions in `names`."""

from ratbench.metrics.accuracy import Accuracy
from ratbench.metrics.faithfulness import AOPC_BINS, aopc, comprehensiveness, sufficiency, topk_select
from ratbench.metrics.nrg import nrg
from ratbench.metrics.plausibility import (
    TokenOverlap,
    auprc,
    auprc_spans,
    class_macro_token_f1,
    iou_f1,
    iou_f1_spans,
    span_prf,
    spans,
    token_prf,
    token_prf_spans,
)

__all__ = [
    "AOPC_BINS", "Accuracy", "TokenOverlap", "aopc", "auprc", "auprc_spans", "class_macro_token_f1",
    "comprehensiveness", "iou_f1", "iou_f1_spans", "nrg", "span_prf", "spans", "sufficiency", "token_prf",
    "token_prf_spans", "topk_select",
]
