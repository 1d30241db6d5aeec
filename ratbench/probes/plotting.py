"""Shared matplotlib set-up: every probe figure has a title, labelled axes, a legend and a settings caption."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def figure(nrows: int, ncols: int, title: str, width: float = 5.0, height: float = 3.6) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    fig.suptitle(title, fontsize=12)
    return fig, axes


def save(fig: Any, png: Path, caption: str) -> None:
    import matplotlib.pyplot as plt

    fig.text(0.01, 0.005, caption, fontsize=7, color="#555555", ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.04, 1, 0.95))
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)
