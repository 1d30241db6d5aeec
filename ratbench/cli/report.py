"""`ratbench report`: tables (md, csv, tex) from run records, mean (std) over seeds, paired tests; a second table of
faithfulness, plausibility and NRG."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ratbench.cli.common import ResultsOpt, parse_name_list
from ratbench.config import PRIMARY_SELECTION
from ratbench.results.report import FAITHFULNESS_COLUMNS, build_report

app = typer.Typer(add_completion=False)
DEFAULT_COLUMNS = ",".join(FAITHFULNESS_COLUMNS)


@app.command("report")
def report_cmd(
    results: ResultsOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Where tables go (default: the results dir).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Comma list of md, csv, tex.")] = "md,csv",
    baseline: Annotated[str | None, typer.Option("--baseline", help="Paired tests against this method.")] = None,
    published: Annotated[bool, typer.Option("--published", help="Show the papers' numbers and deltas.")] = False,
    metrics: Annotated[str, typer.Option("--metrics", help="Table columns.")] = "S,Acc,P,R,F1",
    selection: Annotated[str, typer.Option(
        "--selection", help="Which model-selection rule's epoch to report: dev_acc_matched_s (ratbench's, best dev "
                            "accuracy among epochs near the sparsity target) or dev_acc (the published rule). "
                            "Every run records both.")] = PRIMARY_SELECTION,
    faithfulness: Annotated[bool, typer.Option(
        "--faithfulness/--no-faithfulness",
        help="Also write the faithfulness and plausibility table with NRG (faithfulness.md, nrg.csv).")] = True,
    columns: Annotated[str, typer.Option(
        "--columns", help="Columns of the faithfulness table (metric names; classifier_acc is 'Acc (full text)', "
                          "nrg_faithfulness, nrg_plausibility, nrg_task the NRG parts).")] = DEFAULT_COLUMNS,
) -> None:
    """Aggregate RunRecords into summary.csv, runs.csv and table.md (table.tex with --format tex), and the
    faithfulness and plausibility table with NRG into faithfulness.md and nrg.csv (faithfulness.tex)."""
    build_report(results, out, parse_name_list(fmt), baseline, published, parse_name_list(metrics), selection,
                 faithfulness, parse_name_list(columns))
