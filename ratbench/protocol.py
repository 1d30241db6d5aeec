"""Which evaluation protocol produced a run's numbers, item by item against the published code's protocol.

Every run records this (`RunRecord.protocol`) and `report` prints, in the table's caption, every item where
ratbench's choice differs from the published one, so a reader can tell exactly how each number was made.
The decisions and their measurements are in docs/decisions/.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ratbench.config import RunConfig


@dataclass(frozen=True)
class Item:
    name: str
    used: str  # what this run did
    published: str  # what the published code does
    differs: bool
    decision: str = ""  # docs/decisions/ record explaining the choice


def protocol(config: RunConfig, calibrates_alpha: bool = True) -> list[Item]:
    """`calibrates_alpha`: the method's sparsity comes from a regulariser's alpha (not a fixed top-k)."""
    c = config
    calibrated = c.calibrate == "dev" and c.target_sparsity is not None and calibrates_alpha
    ref_padding = c.pad_to == "max_len"
    items = [
        Item("model selection",
             f"dev accuracy among epochs with dev S within {c.selection_tolerance:g} of {c.target_sparsity}"
             if calibrated else "dev accuracy", "dev accuracy over all epochs", calibrated, "0001-model-selection"),
        Item("sparsity target", f"alpha calibrated on dev toward S = {c.target_sparsity}" if calibrated
             else f"alpha fixed at {c.alpha}", "alpha set by hand (the READMEs tune it against test S)",
             calibrated, "0002-sparsity-calibration"),
        Item("evaluation sampling", "argmax selection" if c.eval_mode == "argmax" else
             f"Gumbel noise from a fixed seed ({c.eval_seed})", "Gumbel noise, unseeded", True,
             "0002-sparsity-calibration"),
        Item("padding", "every review padded to max_len; selected padding counted in regularisers, S_ref, P_ref"
             if ref_padding else "batches padded to their longest review; regularisers, S and P over real tokens",
             "every review padded to 256; selected padding counted in the regulariser, S and P",
             not ref_padding, "0005-padding"),
        *([Item("GRU over padding", "backward GRU reads the batch's trailing padding" if c.gru_mode == "padded"
                else "GRUs never read padding", "backward GRU reads the trailing padding", c.gru_mode != "padded",
                "0005-padding")] if c.backbone == "gru" else []),  # a transformer masks padding keys
        Item("training batches", "length-bucketed" if c.batching == "bucketed" else "random composition",
             "random composition", c.batching == "bucketed", "0003-quick-profile"),
        Item("evaluation batches", "sorted by length" if c.eval_order == "length" else "file order", "file order",
             c.eval_order == "length", "0005-padding"),
        Item("splits", "repaired (no review of test in dev or train, none of dev in train)"
             if c.splits == "repaired" else "as published", "as published", c.splits == "repaired", "../leakage"),
        Item("word vectors", "the dataset's default" if c.vectors == "default" else f"imported resource {c.vectors!r}",
             "the dataset's default (GloVe 6B-100d for Beer and Hotel)", c.vectors != "default"),
    ]
    return items


def as_record(items: list[Item]) -> list[dict[str, Any]]:
    return [asdict(i) for i in items]

