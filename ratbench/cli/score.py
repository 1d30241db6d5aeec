"""`ratbench score`: ERASER-format rationales from any code, scored as ERASER's script scores them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ratbench.errors import RatbenchError
from ratbench.results.eraser import DEFINITIONS, score

app = typer.Typer(add_completion=False)


@app.command("score")
def score_cmd(
    predictions: Annotated[Path, typer.Option("--predictions", help="ERASER predictions JSONL.")],
    gold: Annotated[Path, typer.Option("--gold", help="ERASER annotations JSONL (e.g. test.jsonl).")],
    docs: Annotated[Path | None, typer.Option(
        "--docs", help="ERASER docs/ folder or docs.jsonl (default: beside --gold); checks offsets and "
                       "lengths, needed for sparsity.")] = None,
    iou_threshold: Annotated[float, typer.Option(
        "--iou-threshold", help="IOU at which a predicted span matches a gold span (ERASER's default).")] = 0.5,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Token and span P/R/F1, IOU-F1, AUPRC, accuracy, comprehensiveness, sufficiency and AOPC as ERASER's
    scoring script computes them, plus ratbench's own forms where marked (see docs/scoring.md)."""
    if fmt not in ("table", "json"):
        raise RatbenchError(f"Unknown --format {fmt!r}; use table or json.")
    out = score(predictions, gold, docs, iou_threshold=iou_threshold)
    if fmt == "json":
        typer.echo(json.dumps(out, indent=2))
        return
    table = Table(title=f"ratbench score: {out['n_predictions']} predictions for {out['n_annotations']} "
                        f"annotations, {out['n_instances']} (annotation, document) pairs")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("computed as")
    table.add_column("definition")
    refs: dict[str, int] = {}
    for name, definition in DEFINITIONS.items():
        for key in definition.keys:
            if key in out:
                number = refs.setdefault(name, len(refs) + 1)
                table.add_row(key, f"{out[key]:.4f}", definition.source, f"[{number}]")
    console = Console(soft_wrap=True)
    console.print(table)
    for name, number in refs.items():
        text = DEFINITIONS[name].text.replace("the threshold", f"the threshold ({out['iou_threshold']:g})")
        console.print(f"\\[{number}] {name}: {text}", highlight=False)
    if out["n_unpredicted"]:
        console.print(f"Note: {out['n_unpredicted']} gold annotation(s) have no prediction; their evidence "
                      "counts as missed, as in ERASER's script.", highlight=False)
    if not out["documents_found"]:
        console.print(f"Note: no docs/ or docs.jsonl beside {gold} (see --docs); offsets and lengths are "
                      "unchecked and sparsity is not computed.", highlight=False)
    elif out["n_documents_missing"]:
        console.print(f"Note: {out['n_documents_missing']} document(s) were not found; their offsets and "
                      "lengths are unchecked.", highlight=False)
    if "aopc_note" in out:
        console.print(f"Note: {out['aopc_note']}.", highlight=False)
