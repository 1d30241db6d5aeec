"""`data info`: the numbers of the VER paper's Table 4 for a local copy (counts, lengths, gold sparsity)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ratbench.data.catalog import DATASETS
from ratbench.data.corpus import MAX_LEN, TextSplit
from ratbench.data.formats.eraser import corpus_statistics
from ratbench.data.leakage import audit
from ratbench.data.loading import load_text_corpus


def split_stats(name: str, split: TextSplit, max_len: int = MAX_LEN) -> dict[str, Any]:
    """n, class counts, mean whitespace length before truncation, gold sparsity after truncation (test)."""
    lengths = np.array([len(t) for t in split.tokens], dtype=np.float64)
    labels = np.asarray(split.labels)
    out: dict[str, Any] = {
        "split": name,
        "n": int(len(labels)),
        "n_pos": int((labels == 1).sum()),
        "n_neg": int((labels == 0).sum()),
        "avg_len": float(lengths.mean()) if len(lengths) else 0.0,
        "avg_len_truncated": float(np.minimum(lengths, max_len).mean()) if len(lengths) else 0.0,
    }
    if split.gold is not None:
        gold_t = sum(int(g[:max_len].sum()) for g in split.gold)
        tok_t = sum(min(len(g), max_len) for g in split.gold)
        gold_u = sum(int(g.sum()) for g in split.gold)
        out["gold_sparsity"] = 100.0 * gold_t / tok_t if tok_t else 0.0
        out["gold_sparsity_untruncated"] = 100.0 * gold_u / lengths.sum() if lengths.sum() else 0.0
    out["counts"] = dict(split.counts)
    return out


NO_EVIDENCE_NOTE = ("examples without evidence are kept: they count for classification (Acc, class counts) and are "
                    "left out of every rationale metric (P/R/F1, IOU-F1, AUPRC) and of the evidence sparsity here")


def dataset_info(name: str, root: Path, splits: str = "published") -> dict[str, Any]:
    """Per split statistics of the splits a run would see, and their duplicate / leakage audit. ERASER tasks
    add, per split, their class counts, document and query lengths, evidence sparsity and examples without
    evidence, next to the published numbers (`eraser`)."""
    spec = DATASETS.get(name)
    corpus = load_text_corpus(name, root, splits)
    report = audit(corpus)
    out = {
        "dataset": name,
        "title": spec.title,
        "variant": splits,
        "splits": [split_stats(k, v, spec.max_len) for k, v in corpus.splits().items()],
        "leakage": report.to_dict(),
        "leakage_summary": report.summary(),
        "files": corpus.files,
    }
    if spec.extra.get("task"):
        stats = corpus_statistics(corpus, str(spec.extra["task"]))
        for row in out["splits"]:
            row.update({k: v for k, v in stats["splits"][row["split"]].items() if k != "counts"})
        out["eraser"] = {"task": stats["task"], "scored_as": stats["scored_as"], "published": stats["published"],
                         "comparison": stats["comparison"], "no_evidence": NO_EVIDENCE_NOTE}
    return out


def leakage_lines(name: str, root: Path) -> list[str]:
    """The audit's summary of a dataset's published splits (printed by `data import`)."""
    return audit(load_text_corpus(name, root)).summary()
