"""Rationales of a finished run next to the human ones, per example: the data behind `ratbench show`."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np

from ratbench.data.batching import make_batch
from ratbench.data.corpus import TextSplit
from ratbench.errors import RatbenchError

# token class -> (rich style, html background, legend text)
STYLES = {
    "both": ("bold black on green", "#8fd694", "selected and gold"),
    "selected": ("bold white on red", "#f4a6a6", "selected only"),
    "gold": ("black on yellow", "#fbe58a", "gold only"),
}


@dataclass
class ExampleView:
    index: int
    tokens: list[str]
    selected: np.ndarray  # 0/1 per token
    gold: np.ndarray  # 0/1 per token
    label: int
    predicted: int

    def prf(self) -> tuple[float, float, float]:
        """Per-example precision, recall, F1 in percent (0 when nothing is selected or nothing is gold)."""
        tp = float((self.selected * self.gold).sum())
        p = tp / self.selected.sum() if self.selected.sum() else 0.0
        r = tp / self.gold.sum() if self.gold.sum() else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return 100 * p, 100 * r, 100 * f

    def token_class(self, i: int) -> str | None:
        s, g = bool(self.selected[i]), bool(self.gold[i])
        return "both" if s and g else "selected" if s else "gold" if g else None


def example_views(method: Any, model: Any, corpus: Any, texts: TextSplit, n: int, start: int = 0,
                  ) -> list[ExampleView]:
    """Selections of a restored run's model on test examples start..start+n-1, with the evaluation seed;
    `texts` is the test split as read from its files (the words to show)."""
    import torch

    test = corpus.test
    if start >= len(test):
        raise RatbenchError(f"--start {start} is past the end of the test set ({len(test)} examples).")
    index = np.arange(start, min(start + n, len(test)))
    batch = make_batch(test, index)
    gen = torch.Generator().manual_seed(method.config.eval_seed)
    with torch.inference_mode():
        z, logits, _ = method.rationale(model, batch, gen)
    z = (z * batch.mask).numpy()
    pred = logits.argmax(-1).numpy()
    views = []
    for row, i in enumerate(index):
        length = int(test.lengths[i])
        gold = test.gold[test.offsets[i]: test.offsets[i] + length] if test.gold is not None else np.zeros(length)
        views.append(ExampleView(int(i), list(texts.tokens[i][:length]), z[row, :length].astype(np.uint8),
                                 np.asarray(gold, dtype=np.uint8), int(test.labels[i]), int(pred[row])))
    return views


def render_rich(views: list[ExampleView], title: str):
    """A rich renderable: one panel per example, tokens coloured by class."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.text import Text

    legend = Text("legend: ")
    for style, _, name in STYLES.values():
        legend.append(f" {name} ", style=style)
        legend.append(" ")
    panels = [Text(title, style="bold"), legend]
    for v in views:
        text = Text()
        for i, tok in enumerate(v.tokens):
            cls = v.token_class(i)
            text.append(tok, style=STYLES[cls][0] if cls else "")
            text.append(" ")
        p, r, f = v.prf()
        head = (f"test #{v.index}  label {v.label}  predicted {v.predicted}  "
                f"P {p:.1f}  R {r:.1f}  F1 {f:.1f}  selected {int(v.selected.sum())}/{len(v.tokens)}")
        panels.append(Panel(text, title=head, title_align="left"))
    return Group(*panels)


def render_html(views: list[ExampleView], title: str) -> str:
    """A self-contained HTML page (inline CSS, no scripts) with the same view."""
    css = "".join(f".{name}{{background:{bg};border-radius:3px}}" for name, (_, bg, _) in STYLES.items())
    legend = " ".join(f'<span class="{name}">{label}</span>' for name, (_, _, label) in STYLES.items())
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}"
        f".ex{{border:1px solid #ccc;padding:.6em;margin:1em 0;line-height:1.8}}.head{{color:#555;font-size:90%}}"
        f"{css}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p>{legend}</p>",
    ]
    for v in views:
        p, r, f = v.prf()
        words = []
        for i, tok in enumerate(v.tokens):
            cls = v.token_class(i)
            word = html.escape(tok)
            words.append(f'<span class="{cls}">{word}</span>' if cls else word)
        parts.append(
            f"<div class='ex'><div class='head'>test #{v.index} &middot; label {v.label} &middot; predicted "
            f"{v.predicted} &middot; P {p:.1f} R {r:.1f} F1 {f:.1f} &middot; selected "
            f"{int(v.selected.sum())}/{len(v.tokens)}</div>{' '.join(words)}</div>")
    parts.append("</body></html>")
    return "\n".join(parts)
