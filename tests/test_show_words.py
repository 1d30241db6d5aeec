"""`ratbench show` for transformer runs: sub-word selections shown as the dataset's words (a word is selected if
any of its pieces is) beside the word-level human rationale, and every class's rationale for methods that have
one per class (RTP). GRU runs are covered by tests/test_show.py."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import torch
from rich.console import Console
from typer.testing import CliRunner

from ratbench.cli.app import app
from ratbench.data.corpus import Split, TextSplit
from ratbench.data.families.toy import toy_reviews
from ratbench.results.rationales import example_views, render_html, render_rich

# two test examples as pieces: [CLS] hel ##lo world [SEP] (words hello, world) and [CLS] hi [SEP]
PIECE_SPLIT = Split(
    ids=np.array([2, 10, 11, 12, 3, 2, 13, 3]), offsets=np.array([0, 5, 8]), labels=np.array([1, 0]),
    gold=np.array([0, 0, 0, 1, 0, 0, 1, 0], np.uint8), forced=np.array([1, 0, 0, 0, 1, 1, 0, 1], np.uint8),
    token_type=np.zeros(8, np.int8), word_index=np.array([-1, 0, 0, 1, -1, -1, 0, -1], np.int32),
    word_offsets=np.array([0, 2, 3]), word_gold=np.array([0, 1, 1], np.uint8))
TEXTS = TextSplit(tokens=[["hello", "world"], ["hi"]], labels=[1, 0])


class StandInMethod:
    """Selects the second piece of "hello" in example 0 and nothing in example 1; class-wise: class 0 selects
    "world", class 1 "hello" (through its first piece)."""

    config = SimpleNamespace(eval_seed=0)

    def __init__(self, class_wise: bool):
        self.class_wise = class_wise

    def rationale(self, model, batch, generator):
        z = torch.zeros(batch.ids.shape)
        z[0, 2] = 1.0
        z[:, 0] = 1.0  # a [CLS] "selection" must not show: only selectable pieces count
        return z, torch.tensor([[0.0, 1.0], [2.0, 0.0]]), z

    def class_rationales(self, model, batch, generator):
        if not self.class_wise:
            return None
        per = torch.zeros(*batch.ids.shape, 2)
        per[0, 3, 0] = 1.0
        per[0, 1, 1] = 1.0
        return per


def views(class_wise: bool):
    corpus = SimpleNamespace(test=PIECE_SPLIT, label_names=["neg", "pos"])
    return example_views(StandInMethod(class_wise), None, corpus, TEXTS, n=2)


def plain(renderable) -> str:
    console = Console(width=100, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_pieces_are_shown_as_words_beside_the_word_level_gold():
    v = views(class_wise=False)
    assert [x.tokens for x in v] == [["hello", "world"], ["hi"]]
    assert v[0].selected.tolist() == [1, 0] and v[1].selected.tolist() == [0]  # "hello": one of its pieces
    assert v[0].gold.tolist() == [0, 1] and v[1].gold.tolist() == [1]  # the word-level human rationale
    assert (v[0].label, v[0].predicted, v[1].predicted) == (1, 1, 0)
    assert v[0].classes == [] and v[0].prf() == (0.0, 0.0, 0.0)
    text = plain(render_rich(v, "t"))
    assert "selected 1/2" in text and "selected 0/1" in text and "hel" not in text.replace("hello", "")
    assert "class 0" not in text


def test_class_wise_rationales_are_shown_per_class():
    v = views(class_wise=True)
    first = v[0]
    assert [(c.index, c.name, c.selected.tolist()) for c in first.classes] == [(0, "neg", [0, 1]), (1, "pos", [1, 0])]
    assert first.class_prf(first.classes[0]) == (100.0, 100.0, 100.0)  # "world" is the gold word
    assert first.role(first.classes[1]) == "predicted = gold" and first.role(first.classes[0]) == ""
    text = plain(render_rich(v, "t"))
    assert text.count("class 0 (neg)") == 2 and text.count("class 1 (pos) [predicted = gold]") == 1
    page = render_html(v, "t")
    assert page.count("class='cls'") == 4 and "class 1 (pos) [predicted = gold]" in page
    assert re.search(r"class 0 \(neg\).*?<span class=\"both\">world</span>", page)




def test_show_on_a_transformer_run_counts_words_not_pieces(tmp_path, monkeypatch):
    monkeypatch.setenv("RATBENCH_DATA", str(tmp_path / "data"))
    out = tmp_path / "res"
    r = CliRunner().invoke(app, ["run", "--methods", "rnp", "--datasets", "toy", "--seeds", "1", "--profile", "smoke",
                                 "--set", "backbone=transformer", "--set", "local_mlm_steps=0", "--set", "epochs=1",
                                 "--set", "train_limit=64", "--set", "num_threads=1", "--results", str(out)])
    assert r.exit_code == 0, r.output
    html = tmp_path / "view.html"
    shown = CliRunner().invoke(app, ["show", "--method", "rnp", "--dataset", "toy", "--seed", "1", "--n", "3",
                                     "--results", str(out), "--html", str(html)])
    assert shown.exit_code == 0, shown.output
    reviews = toy_reviews(100, 3)[:3]  # the toy test set's first reviews: [CLS]/[SEP] must not shift or pad them
    totals = [int(t) for t in re.findall(r"selected \d+/(\d+)", shown.output)]
    assert totals == [len(words) for words, _, _ in reviews]
    page = html.read_text()
    for words, _, _ in reviews:
        assert " ".join(words[:3]) in re.sub(r"<[^>]+>", "", page)
    assert "class 0" not in shown.output  # RNP has one rationale
