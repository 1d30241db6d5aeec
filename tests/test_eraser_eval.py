"""ERASER evaluation pieces against hand computations: the GRU query layout, evidence as given, examples without
evidence, ERASER's span and AUPRC definitions inside a run, the multi-class post-hoc head, and export rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ratbench.data.batching import make_batch
from ratbench.data.corpus import Split, TextSplit, build_split, corpus_words, with_evidence
from ratbench.data.evidence import Evidence, evidence_of
from ratbench.engine.evaluation import evaluate, faithfulness
from ratbench.methods.posthoc import AttentionClassifier
from ratbench.models.backbones import GruBackbone
from ratbench.models.rationalizer import Rationalizer
from ratbench.results.export import eraser_rows

INDEX = {"a": 1, "b": 2, "c": 3, "d": 4, "q1": 5, "q2": 6, "q3": 7}


def _text(**kw) -> TextSplit:
    base = dict(tokens=[["a", "b", "c"], ["d"]], labels=[0, 1], gold=[np.array([0, 1, 0], np.uint8),
                                                                     np.array([1], np.uint8)],
                queries=[["q1", "q2"], ["q3"]], spans=[[(1, 2)], [(0, 1)]],
                documents=[[("d0", 0, 3)], [("d1", 0, 1)]], ids=["x0", "x1"])
    base.update(kw)
    return TextSplit(**base)


def test_query_layout_by_hand():
    s = build_split(_text(), INDEX)
    # query, the zero-vector separator, then the document; query and separator forced, gold only on the document
    assert s.ids.tolist() == [5, 6, 0, 1, 2, 3, 7, 0, 4]
    assert s.offsets.tolist() == [0, 6, 9]
    assert s.forced.tolist() == [1, 1, 1, 0, 0, 0, 1, 1, 0]
    assert s.gold.tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 1]
    b = make_batch(s, np.arange(2))
    assert b.mask.tolist() == [[0, 0, 0, 1, 1, 1], [0, 0, 1, 0, 0, 0]]  # what S and the regularisers count
    assert b.attention.tolist() == [[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]]
    assert b.has_gold.tolist() == [1.0, 1.0] and b.evidence[0].spans == ((0, 1, 2),)
    # only the document is cut; the query is kept whole
    cut = build_split(_text(), INDEX, max_len=2)
    assert cut.ids.tolist() == [5, 6, 0, 1, 2, 7, 0, 4] and cut.forced.tolist() == [1, 1, 1, 0, 0, 1, 1, 0]
    assert corpus_words(type("C", (), {"splits": lambda self: {"t": _text()}})()) >= {"q1", "q2", "q3"}
    # a split without queries is built exactly as before (no forced positions, gold over the tokens)
    plain = build_split(_text(queries=None, spans=None, documents=None), INDEX)
    assert plain.ids.tolist() == [1, 2, 3, 4] and plain.forced is None and plain.evidence is None


@pytest.mark.xfail(strict=True, reason="models/encoders.py FrozenEmbedding zeroes every position outside batch.mask, "
                   "the query included; the fix (keep vectors where mask > 0 or ids > 0) is in the ERASER report")
def test_the_gru_predictor_reads_the_query_but_never_unselected_words():
    torch.manual_seed(0)
    s = build_split(_text(), INDEX)
    vectors = torch.randn(8, 6)
    vectors[0] = 0
    model = Rationalizer(GruBackbone(vectors, 8, "auto")).eval()
    b = make_batch(s, np.arange(2))
    z = torch.zeros_like(b.mask)  # nothing selected: the predictor sees the query alone
    with torch.no_grad():
        base = model.predict(model.embed(b.ids, b.mask), z, b)
        other_query = b.ids.clone()
        other_query[0, 0] = 7
        moved = model.predict(model.embed(other_query, b.mask), z, b)
        other_word = b.ids.clone()
        other_word[0, 4] = 3
        same = model.predict(model.embed(other_word, b.mask), z, b)
    assert not torch.allclose(moved[0], base[0])
    assert torch.equal(same, base)


def test_evidence_subset_examples_and_cache_arrays():
    ev = evidence_of([[(1, 2), (4, 6)], [], [(0, 3)]], [[("p", 0, 3), ("h", 3, 7)], [("x", 0, 2)], [("y", 0, 5)]],
                     [7, 2, 5])
    assert ev.has_gold.tolist() == [1, 0, 1]
    assert ev.spans(0) == [(0, 1, 2), (1, 1, 3)]  # the second span is on the hypothesis, document-local
    sub = ev.subset(np.array([2, 0]))
    assert sub.example.tolist() == [2, 0] and sub.documents(1) == [(0, 3), (3, 7)] and sub.spans(0) == [(0, 0, 3)]
    again = Evidence.from_arrays(sub.to_arrays("test"), "test")
    assert again.spans(1) == sub.spans(1) and again.words(1) == 7
    (one,) = ev.examples([1])
    assert one.example == 1 and not one.has_gold and one.words == 2


class _Fixed:
    """A method whose rationale, scores and predictions are given per batch row (by example id)."""

    post_hoc = False
    info = None

    def __init__(self, z: dict[int, list[float]], scores: dict[int, list[float]], classes: int = 2):
        self.z, self.scores, self.classes = z, scores, classes

    def _rows(self, table, batch):
        out = torch.zeros_like(batch.mask)
        for r, i in enumerate(batch.index):
            out[r, : len(table[int(i)])] = torch.tensor(table[int(i)])
        return out

    def rationale(self, model, batch, generator):
        return self._rows(self.z, batch), self.predict_with(model, batch, None), self._rows(self.scores, batch)

    def classify(self, model, batch):
        return self.predict_with(model, batch, None)

    def predict_with(self, model, batch, keep):
        kept = batch.mask if keep is None else keep * batch.mask
        logits = torch.zeros(len(batch), self.classes)
        logits[:, 1] = kept.sum(1)  # the more tokens kept, the surer of class 1
        return logits


def _split(tokens: list[int], gold: list[list[int]], spans, documents) -> Split:
    ids = np.concatenate([np.arange(1, n + 1) for n in tokens]).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(tokens)]).astype(np.int64)
    text = TextSplit(tokens=[["w"] * n for n in tokens], labels=[1] * len(tokens), spans=spans, documents=documents)
    return Split(ids, offsets, np.ones(len(tokens), np.int64), np.concatenate(gold).astype(np.uint8),
                 evidence=build_split(text, {"w": 1}).evidence)


def test_run_metrics_follow_erasers_scorer_and_skip_examples_without_evidence():
    # example 0: 10 words, two touching gold spans [2,4) and [4,6) as given; selected [2,6) (one run)
    # example 1: 4 words, no evidence, 2 selected: counts in S only
    # example 2: two documents of 4 words each, gold [0,1) on the first; selected word 0 and word 5
    split = _split([10, 4, 8], [[0, 0, 1, 1, 1, 1, 0, 0, 0, 0], [0] * 4, [1, 0, 0, 0, 0, 0, 0, 0]],
                   [[(2, 4), (4, 6)], [], [(0, 1)]], [[("m", 0, 10)], [("n", 0, 4)], [("p", 0, 4), ("h", 4, 8)]])
    z = {0: [0, 0, 1, 1, 1, 1, 0, 0, 0, 0], 1: [1, 1, 0, 0], 2: [1, 0, 0, 0, 0, 1, 0, 0]}
    scores = {0: [0.0, 0.0, 0.9, 0.8, 0.7, 0.6, 0.1, 0.1, 0.1, 0.1], 1: [0.5] * 4,
              2: [0.9, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]}
    method = _Fixed(z, scores)
    batches = [make_batch(split, np.arange(3))]
    out = evaluate(method, torch.nn.Module(), batches, True, torch.Generator())
    assert out["S"] == pytest.approx(100 * 8 / 22)  # every example
    # token level over the examples with evidence: keys (0, m), (2, p), (2, h); tp 4 + 1, predicted 4 + 2, gold 4 + 1
    assert out["P"] == pytest.approx(100 * 5 / 6) and out["R"] == pytest.approx(100.0)
    # macro over the three keys: P (1, 1, 0), R (1, 1, 0) -> F1 (1, 1, 0)
    assert out["p_macro"] == pytest.approx(100 * 2 / 3) and out["f1_macro"] == pytest.approx(100 * 2 / 3)
    assert out["p_random"] == pytest.approx(100 * 5 / 18)  # gold share over the examples with evidence
    f = faithfulness(method, torch.nn.Module(), batches, torch.Generator())
    # IOU as given: [2,6) vs [2,4) has IOU 0.5 -> a match; two gold spans on m, one on p; h's [1,2) matches none
    assert (f["iou_p"], f["iou_r"]) == pytest.approx((2 / 3, 2 / 3))
    # AUPRC over every (example, document) key: m perfect (1.0), p perfect (1.0), h has no gold (0.5)
    assert f["auprc"] == pytest.approx((1.0 + 1.0 + 0.5) / 3)
    # without the example lacking evidence, every rationale number is the same
    two = make_batch(split, np.array([0, 2]))
    assert evaluate(method, torch.nn.Module(), [two], True, torch.Generator())["P"] == pytest.approx(out["P"])


def test_attention_classifier_has_one_output_per_class():
    vectors = torch.randn(5, 4)
    assert AttentionClassifier(vectors, hidden=8).head.out_features == 2
    assert AttentionClassifier(vectors, hidden=8, num_classes=5).head.out_features == 5


def test_export_rows_by_hand():
    split = _split([3, 2], [[0, 1, 0], [0, 0]], [[(1, 2)], []], [[("doc-a", 0, 3)], [("doc-b", 0, 2)]])
    text = TextSplit(tokens=[["x"] * 3, ["y"] * 2], labels=[1, 0], ids=["A", "B"],
                     documents=[[("doc-a", 0, 3)], [("doc-b", 0, 2)]])
    ev = split.evidence.examples([1, 0])  # a batch in another order than the file
    dist = np.array([[0.2, 0.8], [0.6, 0.4]])
    collected = [{"evidence": ev, "predicted": np.array([1, 0]), "labels": np.array([0, 1]), "full": dist,
                  "comprehensiveness": dist[::-1], "sufficiency": dist,
                  "bins": {0.5: (dist, dist), 0.1: (dist[::-1], dist)},
                  # rows are B, then A (whose third word a truncation cut)
                  "selection": [np.array([1.0, 1.0]), np.array([0.0, 1.0])],
                  "scores": [np.array([0.3, 0.7]), np.array([0.1, 0.9])]}]
    rows = eraser_rows(collected, text, ["NEG", "POS"])
    assert [r["annotation_id"] for r in rows] == ["A", "B"]  # file order
    a, b = rows
    assert a["rationales"] == [{"docid": "doc-a", "hard_rationale_predictions": [{"start_token": 1, "end_token": 2}],
                                "soft_rationale_predictions": [0.1, 0.9, 0.0]}]
    assert b["rationales"] == []  # no evidence: left out of the scorer's rationale metrics
    assert a["classification"] == "NEG" and a["classification_scores"] == {"NEG": 0.6, "POS": 0.4}
    assert [t["threshold"] for t in a["thresholded_scores"]] == [0.1, 0.5]
    included = eraser_rows(collected, text, ["NEG", "POS"], unannotated="include")
    assert included[1]["rationales"][0]["hard_rationale_predictions"] == [{"start_token": 0, "end_token": 2}]


def test_with_evidence_attaches_to_evaluation_splits_only():
    text = _text(queries=None)
    corpus = type("C", (), {})()
    corpus.train = corpus.dev = corpus.test = build_split(_text(queries=None, spans=None), INDEX)
    holder = type("T", (), {"splits": lambda self: {}, "train": text, "dev": text, "test": text})()
    out = with_evidence(corpus, holder)
    assert out.train.evidence is None and out.test.evidence.has_gold.tolist() == [1, 1]
