"""Records -> pandas: one row per run and metric (`runs.csv`), then mean/std/n per cell (`summary.csv`)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ratbench.config import PRIMARY_SELECTION as PRIMARY_RULE
from ratbench.errors import RatbenchError
from ratbench.methods.catalog import method_info_or_none
from ratbench.results.nrg import TASK_ACC
from ratbench.results.record import RunRecord, SchemaError, backbone_label, encoder_key, environment, load_record

MAIN_METRICS = ["S", "Acc", "P", "R", "F1"]
# kinds whose prediction is a full-text classifier's (their accuracy is not a rationale's)
FULL_TEXT_KINDS = ("post-hoc", "explained-classifier")


def load_records(results: Path) -> list[RunRecord]:
    paths = sorted(Path(results).glob("runs/*/*/*.json"))
    if not paths:
        raise RatbenchError(f"No run records under {Path(results) / 'runs'}. Produce some with e.g. "
                            "`ratbench run --methods rnp,ver --datasets synth --seeds 1,2 --profile quick`, or point "
                            "--results at the directory that holds runs/.")
    records = []
    for p in paths:
        rec, problem = _read_usable(p)
        if problem:
            _warn(f"Skipping {p}: {problem}")
            continue
        records.append(rec)
    if not records:
        raise RatbenchError(f"None of the {len(paths)} run records under {Path(results) / 'runs'} could be read "
                            "(see the warnings above); rerun those runs with `ratbench run`.")
    return records


REQUIRED_FIELDS = ("dataset", "method", "seed", "config_hash", "status")


def _read_usable(path: Path) -> tuple[RunRecord | None, str | None]:
    """The record and None, or None and why it cannot be used: corrupt, from a newer ratbench, or incomplete."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        return None, f"cannot be read ({err}); delete it and rerun that run"
    except json.JSONDecodeError as err:
        return None, f"not valid JSON ({err.msg} at line {err.lineno}); delete it and rerun that run"
    if not isinstance(data, dict):
        return None, "not a RunRecord object; delete it and rerun that run"
    missing = [k for k in REQUIRED_FIELDS if k not in data]
    if missing and isinstance(data.get("schema_version", 1), int) and data.get("schema_version", 1) <= 2:
        return None, f"lacks the field(s) {', '.join(missing)}; delete it and rerun that run"
    try:
        return load_record(path), None
    except SchemaError as err:
        return None, f"{err}; upgrade ratbench (pip install -U ratbench) to read it"
    except TypeError as err:
        return None, f"is not a valid RunRecord ({err}); delete it and rerun that run"


def _warn(message: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, soft_wrap=True).print(f"[yellow]Warning:[/] {escape(message)}", highlight=False)


def _labels(records: list[RunRecord]) -> dict[tuple[str, str, str], str]:
    """Row label per (dataset, method, config_hash): the method, its backbone unless BiGRU ("rnp (MiniLM-L6)"),
    plus the hash when one method has several configurations on the same backbone."""
    hashes: dict[tuple[str, str, str], set[str]] = {}
    for r in records:
        label = r.method if backbone_label(r.backbone) == "BiGRU" else f"{r.method} ({backbone_label(r.backbone)})"
        hashes.setdefault((r.dataset, r.method, label), set()).add(r.config_hash)
    return {
        (d, m, h): (label if len(hs) == 1 else f"{label} [{h[:6]}]")
        for (d, m, label), hs in hashes.items()
        for h in hs
    }


def metrics_under(record: RunRecord, selection: str) -> dict | None:
    """The record's test metrics at the epoch `selection` chose (None: the record predates that rule)."""
    if selection == PRIMARY_RULE:
        return record.metrics
    chosen = (record.selections or {}).get(selection)
    return chosen["metrics"] if chosen else None


def runs_frame(records: list[RunRecord], selection: str = PRIMARY_RULE) -> pd.DataFrame:
    labels = _labels(records)
    rows = []
    for r in records:
        base = {
            "dataset": r.dataset, "method": r.method,
            "row": labels[(r.dataset, r.method, r.config_hash)],
            "seed": int(r.seed), "config_hash": r.config_hash, "profile": r.profile,
            "status": r.status, "device": r.device, "env": environment(r), "encoder": encoder_key(r.backbone),
            "n_expected": len(r.seeds_requested or []) or None,
        }
        metrics = (metrics_under(r, selection) if r.status == "finished" else None) or {}
        if r.status != "finished" or not metrics:
            error = r.error if r.status != "finished" else f"no {selection} selection recorded (retrain the run)"
            rows.append({**base, "status": r.status if r.status != "finished" else "failed", "metric": None,
                         "value": None, "error": error})
            continue
        for k, v in metrics.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                rows.append({**base, "metric": k, "value": float(v), "error": None})
    return pd.DataFrame(rows)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """mean, std (ddof=1; NaN for one seed), n finished, n failed, n expected per dataset x row x metric."""
    finished = runs[runs["status"] == "finished"].dropna(subset=["metric"])
    cells = (finished.groupby(["dataset", "row", "method", "encoder", "config_hash", "metric"])["value"]
             .agg(mean="mean", std=lambda s: s.std(ddof=1), n="count").reset_index())
    failed = (runs[runs["status"] != "finished"].groupby(["dataset", "row"])["seed"].nunique()
              .rename("n_failed").reset_index())
    cells = cells.merge(failed, on=["dataset", "row"], how="left")
    cells["n_failed"] = cells["n_failed"].fillna(0).astype(int)
    expected = runs.groupby(["dataset", "row"])["n_expected"].max().rename("n_req").reset_index()
    cells = cells.merge(expected, on=["dataset", "row"], how="left")
    most = runs.groupby("dataset")["seed"].nunique().rename("n_seen").reset_index()
    cells = cells.merge(most, on="dataset", how="left")
    cells["n_expected"] = cells["n_req"].fillna(cells["n_seen"]).astype(int)
    return cells.drop(columns=["n_req", "n_seen"])


def full_text_classifier(method: str) -> bool:
    """Whether the method's prediction reads the whole text (post-hoc explainers, explained classifiers)."""
    info = method_info_or_none(method)
    return bool(info and info.kind in FULL_TEXT_KINDS)


def faithfulness_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` as the faithfulness table reads it: a full-text classifier's accuracy only under `classifier_acc`
    (post-hoc explainers record it there; an explained classifier's `Acc` is moved there unless it recorded both),
    plus each run's task accuracy `task_acc` for NRG (Acc, else classifier_acc)."""
    full = runs["method"].map(full_text_classifier).astype(bool)
    key = ["dataset", "row", "seed"]
    with_cls = runs.loc[runs["metric"] == "classifier_acc", key].drop_duplicates()
    has_cls = runs[key].merge(with_cls.assign(_has=True), on=key, how="left")["_has"].fillna(False).to_numpy(bool)
    out = runs.copy()
    acc = (out["metric"] == "Acc").to_numpy()
    out.loc[acc & full.to_numpy() & ~has_cls, "metric"] = "classifier_acc"
    out = out[~(acc & full.to_numpy() & has_cls)]
    task = out[out["metric"].isin(["Acc", "classifier_acc"])]
    task = task.assign(_first=(task["metric"] != "Acc").astype(int)).sort_values("_first", kind="stable")
    task = task.drop_duplicates(key, keep="first").drop(columns="_first").assign(metric=TASK_ACC)
    return pd.concat([out, task], ignore_index=True)
