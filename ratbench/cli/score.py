"""`ratbench score`: ERASER-format rationales from any code, scored with ratbench's metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

# the printed rows, grouped by the definition (results.eraser.DEFINITIONS) each number follows
ROWS = {
    "token_p/r/f1 (micro)": ("token_p", "token_r", "token_f1"),
    "token_p/r/f1 (macro)": ("token_p_macro", "token_r_macro", "token_f1_macro"),
    "sparsity": ("sparsity",),
    "iou_f1": ("iou_p", "iou_r", "iou_f1", "iou_f1_macro"),
    "auprc": ("auprc",),
    "accuracy": ("accuracy",),
    "comprehensiveness": ("comprehensiveness",),
    "sufficiency": ("sufficiency",),
    "aopc": ("comprehensiveness_aopc", "sufficiency_aopc", "comprehensiveness_aopc_eraser_script",
             "sufficiency_aopc_eraser_script"),
}


def register(app: typer.Typer) -> None:
    @app.command("score")
    def score_cmd(
        predictions: Annotated[Path, typer.Option("--predictions", help="ERASER predictions JSONL.")],
        gold: Annotated[Path, typer.Option("--gold", help="ERASER annotations JSONL (e.g. test.jsonl).")],
        docs: Annotated[Path | None, typer.Option(
            "--docs", help="ERASER docs/ folder or docs.jsonl (default: beside --gold); needed for sparsity.")] = None,
        fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    ) -> None:
        """Token P/R/F1, IOU-F1, AUPRC, comprehensiveness, sufficiency and AOPC, as ERASER's scorer prints
        them, computed by ratbench's own metrics (the table says which definition each follows)."""
        from ratbench.errors import RatbenchError
        from ratbench.results.eraser import DEFINITIONS, score

        if fmt not in ("table", "json"):
            raise RatbenchError(f"Unknown --format {fmt!r}; use table or json.")
        out = score(predictions, gold, docs)
        if fmt == "json":
            typer.echo(json.dumps(out, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"ratbench score: {out['n_predictions']} predictions, {out['n_instances']} documents")
        table.add_column("metric")
        table.add_column("value", justify="right")
        table.add_column("definition")
        keys: dict[str, int] = {}
        for definition, names in ROWS.items():
            for key in names:
                if key in out:
                    number = keys.setdefault(definition, len(keys) + 1)
                    table.add_row(key, f"{out[key]:.4f}", f"[{number}]")
        console = Console(soft_wrap=True)
        console.print(table)
        for definition, number in keys.items():
            console.print(f"\\[{number}] {definition}: {DEFINITIONS[definition]}", highlight=False)
        if "aopc_note" in out:
            console.print(f"Note: {out['aopc_note']}.")
