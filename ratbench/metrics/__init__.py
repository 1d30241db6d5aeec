"""Metrics: plausibility (token P/R/F1, IOU-F1, AUPRC), faithfulness (comp, suff, AOPC), accuracy, NRG."""

from ratbench.metrics.accuracy import Accuracy
from ratbench.metrics.faithfulness import AOPC_BINS, aopc, comprehensiveness, sufficiency, topk_select
from ratbench.metrics.nrg import nrg
from ratbench.metrics.plausibility import TokenOverlap, auprc, class_macro_token_f1, iou_f1, spans, token_prf

__all__ = [
    "AOPC_BINS", "Accuracy", "TokenOverlap", "aopc", "auprc", "class_macro_token_f1", "comprehensiveness",
    "iou_f1", "nrg", "spans", "sufficiency", "token_prf", "topk_select",
]
