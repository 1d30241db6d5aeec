"""`ratbench export --format eraser`: finished runs' test predictions in ERASER's results format.

Each finished run on an ERASER task is restored from its checkpoint and evaluated once more on its test set,
exactly as the run's final evaluation did (the same examples, batches and sampling seed), and written as
`<out>/<dataset>/<method>/seed<k>-<hash>.jsonl` (ratbench/results/export.py has the fields). `export.json` beside
them lists every file, the gold and documents to score it against, and whether the recomputed faithfulness
numbers equal the record's. Score an export with `ratbench score --predictions FILE --gold GOLD`, or with
ERASER's own `rationale_benchmark/metrics.py`.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from rich.console import Console

from ratbench import api
from ratbench.atomic import write_json
from ratbench.cli.common import DataRootOpt, ResultsOpt, parse_int_list
from ratbench.config import config_of
from ratbench.data.batching import eval_batches
from ratbench.data.catalog import DATASETS, expand_datasets
from ratbench.data.loading import load_text_corpus, source_files
from ratbench.engine import limit_split
from ratbench.engine.evaluation import EVAL_BATCH, eval_generator, faithfulness
from ratbench.errors import RatbenchError
from ratbench.methods.catalog import expand_methods
from ratbench.paths import data_root as _data_root
from ratbench.paths import results_root
from ratbench.results.export import UNANNOTATED, eraser_rows, write_export
from ratbench.results.record import RunRecord, load_record

app = typer.Typer(add_completion=False)

# recomputed numbers that must equal the record's (a different data copy or ratbench version would change them)
CHECKED = ("comprehensiveness", "sufficiency", "comp_aopc", "suff_aopc", "iou_f1", "auprc", "full_text_acc")


def _records(results: Path, methods: str | None, datasets: str | None, seeds: str | None
             ) -> list[tuple[Path, RunRecord]]:
    wanted_m = set(expand_methods(methods)) if methods else None
    wanted_d = set(expand_datasets(datasets)) if datasets else None
    wanted_s = set(parse_int_list(seeds)) if seeds else None
    out = []
    for path in sorted(Path(results).glob("runs/*/*/*.json")):
        try:
            record = load_record(path)
        except (OSError, ValueError, TypeError):
            continue
        if not record.finished:
            continue
        if (wanted_m and record.method not in wanted_m) or (wanted_d and record.dataset not in wanted_d) or \
                (wanted_s and int(record.seed) not in wanted_s):
            continue
        out.append((path, record))
    return out


def predict(path: Path, root: Path) -> tuple[list[dict[str, Any]], dict[str, float], Any]:
    """The run's final test evaluation once more, with every example's outputs collected."""
    run = api.restore(path, root)
    config = config_of(run.record.config)
    test = limit_split(run.corpus.test, config.test_limit)
    width = config.max_len if config.pad_to == "max_len" else None
    device = torch.device("cpu")
    batches = eval_batches(test, EVAL_BATCH, device, config.eval_order, width)
    precision = torch.autocast("cpu", dtype=torch.bfloat16) if config.precision == "bf16" else \
        contextlib.nullcontext()
    collected: list[dict[str, Any]] = []
    with precision:
        metrics = faithfulness(run.method, run.model, batches, eval_generator(device, config.eval_seed), collected)
    return collected, metrics, run


def _differences(recomputed: dict[str, float], recorded: dict[str, Any]) -> dict[str, list[float]]:
    out = {}
    for key in CHECKED:
        a, b = recomputed.get(key), recorded.get(key)
        if isinstance(a, float) and isinstance(b, (int, float)) and not (math.isnan(a) and math.isnan(b)):
            if not math.isclose(a, float(b), rel_tol=1e-6, abs_tol=1e-9):
                out[key] = [a, float(b)]
    return out


@app.command("export")
def export_cmd(
    fmt: Annotated[str, typer.Option("--format", help="eraser (ERASER's results JSONL).")] = "eraser",
    results: ResultsOpt = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Where exports go (default: <results>/export/eraser).")] = None,
    methods: Annotated[str | None, typer.Option(
        "--methods", "-m", help="Only these methods (comma list or group).")] = None,
    datasets: Annotated[str | None, typer.Option(
        "--datasets", "-d", help="Only these datasets (comma list or group, e.g. eraser).")] = None,
    seeds: Annotated[str | None, typer.Option("--seeds", help="Only these seeds, e.g. 1-5.")] = None,
    unannotated: Annotated[str, typer.Option(
        "--unannotated", help="Test examples without gold evidence: omit their rationales (ERASER's scorer then "
                              "skips them, as ratbench does) or include them (the scorer counts their selected "
                              "tokens as false positives).")] = "omit",
    data_root: DataRootOpt = None,
) -> None:
    """Write finished runs' test predictions (hard and soft rationales, classification scores, comprehensiveness,
    sufficiency and thresholded scores) in ERASER's results format."""
    if fmt != "eraser":
        raise RatbenchError(f"Unknown --format {fmt!r}; the only export format is eraser.")
    if unannotated not in UNANNOTATED:
        raise RatbenchError(f"--unannotated must be one of {', '.join(UNANNOTATED)}, got {unannotated!r}.")
    res, root = results_root(results), _data_root(data_root)
    target = Path(out) if out else res / "export" / "eraser"
    console = Console(stderr=True)
    found = _records(res, methods, datasets, seeds)
    eraser = [(p, r) for p, r in found if r.dataset in DATASETS and DATASETS.get(r.dataset).extra.get("task")]
    skipped = sorted({r.dataset for _, r in found} - {r.dataset for _, r in eraser})
    if skipped:
        console.print(f"Not exported (not ERASER tasks): {', '.join(skipped)}.", highlight=False)
    if not eraser:
        raise RatbenchError(f"No finished runs on an ERASER task under {res / 'runs'}"
                            f"{' matching the filters' if methods or datasets or seeds else ''}. Train one, e.g. "
                            f"`ratbench run --methods rnp --datasets eraser-movies --results {res}`.")
    entries = []
    texts: dict[str, Any] = {}
    for path, record in eraser:
        collected, metrics, _ = predict(path, root)
        if record.dataset not in texts:
            texts[record.dataset] = load_text_corpus(record.dataset, root, config_of(record.config).splits)
        text = texts[record.dataset]
        rows = eraser_rows(collected, text.test, list(text.label_names), unannotated)
        test_file = source_files(record.dataset, root)["test"]
        predictions = target / record.dataset / record.method / path.name.replace(".json", ".jsonl")
        gold = write_export(predictions, rows, test_file)
        docs = source_files(record.dataset, root)["docs"]
        differ = _differences(metrics, record.metrics)
        if differ:
            console.print(f"[yellow]Warning:[/] {record.label}: the recomputed {', '.join(differ)} differ from the "
                          "record (another data copy or ratbench version?); the export holds the recomputed ones.")
        gold_arg = f"--gold {gold or test_file}" + (f" --docs {docs}" if gold else "")
        entries.append({
            "record": str(path), "dataset": record.dataset, "method": record.method, "seed": record.seed,
            "predictions": str(predictions), "gold": str(gold or test_file), "docs": str(docs),
            "n_predictions": len(rows), "with_rationales": sum(bool(r["rationales"]) for r in rows),
            "unannotated": unannotated, "matches_record": not differ, "differences": differ,
            "score": f"ratbench score --predictions {predictions} {gold_arg}",
        })
        console.print(f"{record.label}: {len(rows)} predictions -> {predictions}", highlight=False)
    write_json(target / "export.json", {
        "format": "eraser",
        "classification": "the predictor on the full text (its accuracy is the run's full_text_acc), the "
                          "reference point of comprehensiveness and sufficiency",
        "unannotated": {"omit": "examples without gold evidence have no rationales (left out of rationale "
                                "metrics, as in ratbench's own numbers)",
                        "include": "examples without gold evidence keep their rationales"}[unannotated],
        "exports": entries,
    })
    console.print(f"Wrote {len(entries)} export(s) and {target / 'export.json'}. Score one with: {entries[0]['score']}",
                  highlight=False)
