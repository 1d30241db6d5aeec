"""Rationales of a finished run next to the human ones, per example: the data behind `ratbench show`.

Transformer runs select sub-word pieces; they are shown as the dataset's words, a word selected if any of its
pieces is (the word-level metrics' rule), beside the word-level human rationale. Methods with one rationale per
class (RTP) also show every class's rationale under the one the method reports.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ratbench.data.batching import make_batch
from ratbench.data.corpus import TextSplit
from ratbench.data.subwords import pieces_to_words
from ratbench.errors import RatbenchError

# token class -> (rich style, html background, legend text)
STYLES = {
    "both": ("bold black on green", "#8fd694", "selected and gold"),
    "selected": ("bold white on red", "#f4a6a6", "selected only"),
    "gold": ("black on yellow", "#fbe58a", "gold only"),
}


def _prf(selected: np.ndarray, gold: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall, F1 in percent (0 when nothing is selected or nothing is gold)."""
    tp = float((selected * gold).sum())
    p = tp / selected.sum() if selected.sum() else 0.0
    r = tp / gold.sum() if gold.sum() else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return 100 * p, 100 * r, 100 * f


def _token_class(selected: np.ndarray, gold: np.ndarray, i: int) -> str | None:
    s, g = bool(selected[i]), bool(gold[i])
    return "both" if s and g else "selected" if s else "gold" if g else None


@dataclass
class ClassView:
    """One class's rationale of an example (methods with class-wise rationales)."""

    index: int
    name: str
    selected: np.ndarray  # 0/1 per token

    @property
    def title(self) -> str:
        return f"class {self.index}" if self.name == str(self.index) else f"class {self.index} ({self.name})"


@dataclass
class ExampleView:
    index: int
    tokens: list[str]  # words (for sub-word runs too)
    selected: np.ndarray  # 0/1 per token
    gold: np.ndarray  # 0/1 per token
    label: int
    predicted: int
    classes: list[ClassView] = field(default_factory=list)  # empty unless the method has class-wise rationales

    def prf(self) -> tuple[float, float, float]:
        """Per-example precision, recall, F1 in percent (0 when nothing is selected or nothing is gold)."""
        return _prf(self.selected, self.gold)

    def token_class(self, i: int) -> str | None:
        return _token_class(self.selected, self.gold, i)

    def class_prf(self, view: ClassView) -> tuple[float, float, float]:
        return _prf(view.selected, self.gold)

    def class_token_class(self, view: ClassView, i: int) -> str | None:
        return _token_class(view.selected, self.gold, i)

    def role(self, view: ClassView) -> str:
        """The class's role in the example for its heading: predicted, gold, both ("predicted = gold") or none."""
        tags = [t for t, c in (("predicted", self.predicted), ("gold", self.label)) if c == view.index]
        return " = ".join(tags)


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
        per_class = method.class_rationales(model, batch, torch.Generator().manual_seed(method.config.eval_seed))
    mask = batch.mask.numpy()
    z = z.float().numpy() * mask
    pred = logits.argmax(-1).numpy()
    sub_words = batch.word_index is not None and test.word_offsets is not None
    if sub_words:  # pieces -> the dataset's words: a word is selected if any of its pieces is
        word_index = batch.word_index.numpy()
        width = int(batch.word_mask.shape[1])
        z = pieces_to_words(z, word_index, width)
        gold_rows = batch.word_gold.numpy() if batch.word_gold is not None else np.zeros((len(index), width))
        lengths = test.word_lengths[index]
    classes: list[np.ndarray] = []
    if per_class is not None:
        for c in range(per_class.shape[-1]):
            sel = per_class[..., c].float().numpy() * mask
            classes.append(pieces_to_words(sel, word_index, width) if sub_words else sel)
    names = list(getattr(corpus, "label_names", None) or [])
    views = []
    for row, i in enumerate(index):
        if sub_words:
            length = int(lengths[row])
            keep = np.ones(length, bool)
            gold = gold_rows[row, :length]
        else:
            length = int(test.lengths[i])
            seg = slice(int(test.offsets[i]), int(test.offsets[i]) + length)
            # a query task's word ids are `query SEP document`: the document words are the unforced positions
            keep = test.forced[seg] == 0 if test.forced is not None else np.ones(length, bool)
            gold = (test.gold[seg] if test.gold is not None else np.zeros(length))[keep]
        n_doc = int(keep.sum())
        views.append(ExampleView(
            int(i), list(texts.tokens[i][:n_doc]), z[row, :length][keep].astype(np.uint8),
            np.asarray(gold, dtype=np.uint8), int(test.labels[i]), int(pred[row]),
            [ClassView(c, names[c] if c < len(names) else str(c), sel[row, :length][keep].astype(np.uint8))
             for c, sel in enumerate(classes)]))
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

    def coloured(view: ExampleView, cls_of: Any) -> Text:
        text = Text()
        for i, tok in enumerate(view.tokens):
            cls = cls_of(i)
            text.append(tok, style=STYLES[cls][0] if cls else "")
            text.append(" ")
        return text

    for v in views:
        text = coloured(v, v.token_class)
        p, r, f = v.prf()
        head = (f"test #{v.index}  label {v.label}  predicted {v.predicted}  "
                f"P {p:.1f}  R {r:.1f}  F1 {f:.1f}  selected {int(v.selected.sum())}/{len(v.tokens)}")
        body: Any = text
        if v.classes:  # every class's own rationale under the reported one
            rows: list[Any] = [text]
            for cv in v.classes:
                cp, cr, cf = v.class_prf(cv)
                role = v.role(cv)
                rows.append(Text(f"{cv.title}{f' [{role}]' if role else ''}  P {cp:.1f}  R {cr:.1f}  F1 {cf:.1f}  "
                                 f"selected {int(cv.selected.sum())}/{len(v.tokens)}", style="italic"))
                rows.append(coloured(v, lambda i, cv=cv, v=v: v.class_token_class(cv, i)))
            body = Group(*rows)
        panels.append(Panel(body, title=head, title_align="left"))
    return Group(*panels)


def render_html(views: list[ExampleView], title: str) -> str:
    """A self-contained HTML page (inline CSS, no scripts) with the same view."""
    css = "".join(f".{name}{{background:{bg};border-radius:3px}}" for name, (_, bg, _) in STYLES.items())
    if any(v.classes for v in views):
        css += ".cls{margin-top:.4em;padding-top:.3em;border-top:1px dashed #ddd}"
    legend = " ".join(f'<span class="{name}">{label}</span>' for name, (_, _, label) in STYLES.items())
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}"
        f".ex{{border:1px solid #ccc;padding:.6em;margin:1em 0;line-height:1.8}}.head{{color:#555;font-size:90%}}"
        f"{css}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p>{legend}</p>",
    ]
    def spans(view: ExampleView, cls_of: Any) -> str:
        words = []
        for i, tok in enumerate(view.tokens):
            cls = cls_of(i)
            word = html.escape(tok)
            words.append(f'<span class="{cls}">{word}</span>' if cls else word)
        return " ".join(words)

    for v in views:
        p, r, f = v.prf()
        extra = ""
        for cv in v.classes:  # every class's own rationale under the reported one
            cp, cr, cf = v.class_prf(cv)
            role = v.role(cv)
            extra += (f"<div class='cls'><div class='head'>{html.escape(cv.title)}"
                      f"{f' [{role}]' if role else ''} &middot; P {cp:.1f} R {cr:.1f} F1 {cf:.1f} &middot; selected "
                      f"{int(cv.selected.sum())}/{len(v.tokens)}</div>"
                      f"{spans(v, lambda i, cv=cv, v=v: v.class_token_class(cv, i))}</div>")
        parts.append(
            f"<div class='ex'><div class='head'>test #{v.index} &middot; label {v.label} &middot; predicted "
            f"{v.predicted} &middot; P {p:.1f} R {r:.1f} F1 {f:.1f} &middot; selected "
            f"{int(v.selected.sum())}/{len(v.tokens)}</div>{spans(v, v.token_class)}{extra}</div>")
    parts.append("</body></html>")
    return "\n".join(parts)
