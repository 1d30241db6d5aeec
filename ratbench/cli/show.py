"""`ratbench show`: a finished run's rationales next to the human ones, in the terminal and as HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ratbench import api
from ratbench.atomic import write_text
from ratbench.cli.common import DataRootOpt, ResultsOpt
from ratbench.data.loading import load_text_corpus
from ratbench.errors import RatbenchError
from ratbench.paths import data_root as _data_root
from ratbench.paths import results_root
from ratbench.results.rationales import example_views, render_html, render_rich
from ratbench.results.store import find_record

app = typer.Typer(add_completion=False)


@app.command("show")
def show_cmd(
    method: Annotated[str, typer.Option("--method", "-m", help="A trained method, e.g. rnp.")],
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="e.g. synth-appearance.")],
    seed: Annotated[int, typer.Option("--seed", help="Which seed's run.")] = 1,
    n: Annotated[int, typer.Option("--n", help="How many test examples.")] = 5,
    start: Annotated[int, typer.Option("--start", help="First test example (0-based).")] = 0,
    html_file: Annotated[Path | None, typer.Option("--html", help="Also write a self-contained HTML file.")] = None,
    data_root: DataRootOpt = None,
    results: ResultsOpt = None,
) -> None:
    """Colour each token: selected and gold, selected only, gold only; with per-example P/R/F1."""
    if n < 1:
        raise RatbenchError("--n must be at least 1.")
    root = _data_root(data_root)
    path, record = find_record(results_root(results), dataset, method, seed)
    run = api.restore(path, root)
    views = example_views(run.method, run.model, run.corpus, load_text_corpus(dataset, root).test, n, start)
    title = (f"{method} on {dataset}, seed {seed} (epoch {record.selected_epoch}, "
             f"test F1 {record.metrics.get('F1', float('nan')):.1f}); {path.name}")
    Console().print(render_rich(views, title))
    if html_file is not None:
        write_text(html_file, render_html(views, title))
        Console(stderr=True).print(f"Wrote {html_file}")
