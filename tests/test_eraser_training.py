"""ERASER end to end through the CLI: train rnp and ver on a Movies-format fixture with the quick profile, report
the rationale and faithfulness columns, export in ERASER's results format, and score the export with `ratbench
score`: every number the scorer shares with the run must be the run's. Also a transformer run (truncation) and a
three-class, two-document task."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ratbench import api
from ratbench.cli.app import app
from ratbench.data.loading import load_text_corpus
from ratbench.models.transformer import build_encoder, tiny_config, wordpiece_tokenizer
from ratbench.results.rationales import example_views
from tests.fixtures_eraser import (
    ESNLI_WORDS,
    MOVIES_WORDS,
    esnli_task,
    movies_task,
    tar_tree,
    write_task_dir,
    write_vectors,
)

runner = CliRunner()
QUICK = ["--profile", "quick", "--seeds", "1", "--set", "vectors=fixture", "--set", "epochs=8", "--set",
         "batch_size=16", "--set", "lr=3e-3", "--set", "hidden_size=16", "--set", "num_threads=1"]
# scorer key -> (record key, factor to the record's unit)
SHARED = {"token_p": ("P", 100), "token_r": ("R", 100), "token_f1": ("F1", 100), "token_p_macro": ("p_macro", 100),
          "token_r_macro": ("r_macro", 100), "token_f1_macro": ("f1_macro", 100), "iou_p": ("iou_p", 1),
          "iou_r": ("iou_r", 1), "iou_f1": ("iou_f1", 1), "auprc": ("auprc", 1),
          "average_precision": ("average_precision", 1), "comprehensiveness": ("comprehensiveness", 1),
          "sufficiency": ("sufficiency", 1), "comprehensiveness_aopc": ("comp_aopc", 1),
          "sufficiency_aopc": ("suff_aopc", 1), "comprehensiveness_aopc_eraser_script": ("comp_aopc_eraser_script", 1),
          "accuracy": ("full_text_acc", 100)}


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eraser")
    root = tmp / "root"
    splits, docs = movies_task()
    archive = tar_tree(tmp / "movies.tar.gz", write_task_dir(tmp / "src" / "movies", splits, docs, "docs").parent)
    esnli, esnli_docs = esnli_task(n_train=60, n_val=15, n_test=15)
    write_task_dir(tmp / "src2" / "esnli", esnli, esnli_docs, "docs.jsonl")
    for path in (archive, tmp / "src2"):
        assert _invoke("data", "import", "eraser", path, "--data-root", root).exit_code == 0
    vectors = write_vectors(tmp / "fixture.txt", sorted(set(MOVIES_WORDS + ESNLI_WORDS)))
    assert _invoke("data", "import", "vectors", vectors, "--name", "fixture", "--data-root", root).exit_code == 0
    return tmp, root


def _records(res):
    return {p.parent.name: json.loads(p.read_text()) for p in res.glob("runs/*/*/*.json")}


def _scored_as_recorded(tmp, root, res, records):
    r = _invoke("export", "--results", res, "--data-root", root, "--out", tmp / "export")
    assert r.exit_code == 0, r.output
    manifest = json.loads((tmp / "export" / "export.json").read_text())
    assert {e["method"] for e in manifest["exports"]} == set(records)
    for entry in manifest["exports"]:
        assert entry["matches_record"], entry["differences"]
        args = ["score", "--predictions", entry["predictions"], "--gold", entry["gold"], "--format", "json"]
        r = _invoke(*args, "--docs", entry["docs"])
        assert r.exit_code == 0, r.output
        scored = json.loads(r.output)
        metrics = records[entry["method"]]["metrics"]
        for key, (ours, factor) in SHARED.items():
            assert scored[key] * factor == pytest.approx(metrics[ours], rel=1e-6, abs=1e-7), (entry["method"], key)
    return manifest


def test_rnp_and_ver_train_report_export_and_score_the_same(data):
    tmp, root = data
    res = tmp / "res"
    r = _invoke("run", "--methods", "rnp,ver", "--datasets", "eraser-movies", *QUICK, "--data-root", root,
                "--results", res)
    assert r.exit_code == 0, r.output
    records = _records(res)
    assert set(records) == {"rnp", "ver"}
    for method, rec in records.items():
        assert rec["status"] == "finished", rec.get("error")
        m = rec["metrics"]
        assert m["Acc"] > 65, (method, m["Acc"])  # chance is 50 on the balanced test set
        assert abs(m["S"] - 15.0) < 5, (method, m["S"])  # calibrated toward the target
        assert m["P"] > m["p_random"], method  # above what random selection at the same S scores
        for key in ("iou_f1", "auprc", "comprehensiveness", "sufficiency", "comp_aopc", "class_f1_macro"):
            assert key in m, (method, key)
    r = _invoke("report", "--results", res, "--out", tmp / "tables",
                "--metrics", "S,Acc,P,R,F1,iou_f1,auprc,comprehensiveness,sufficiency")
    assert r.exit_code == 0, r.output
    table = (tmp / "tables" / "table.md").read_text()
    assert "ERASER-Movies" in table and "iou_f1" in table and "comprehensiveness" in table
    manifest = _scored_as_recorded(tmp, root, res, records)
    assert {e["gold"] for e in manifest["exports"]} == {str(root / "eraser" / "movies" / "movies" / "test.jsonl")}
    # with the rationales of the review without evidence included, ERASER's scorer counts them against precision
    r = _invoke("export", "--results", res, "--data-root", root, "--out", tmp / "all", "--unannotated", "include",
                "--methods", "rnp")
    assert r.exit_code == 0, r.output
    entry = json.loads((tmp / "all" / "export.json").read_text())["exports"][0]
    assert entry["with_rationales"] == entry["n_predictions"] == 40
    scored = json.loads(_invoke("score", "--predictions", entry["predictions"], "--gold", entry["gold"],
                                "--format", "json").output)
    assert scored["token_r"] * 100 == pytest.approx(records["rnp"]["metrics"]["R"])  # recall: the same gold
    assert scored["token_p"] * 100 <= records["rnp"]["metrics"]["P"] + 1e-9


def test_transformer_and_three_classes_export_and_score_the_same(data):
    tmp, root = data
    tok = wordpiece_tokenizer(sorted(set(MOVIES_WORDS + ESNLI_WORDS)))
    encoder = build_encoder(tiny_config(vocab_size=len(tok), hidden_size=16, num_heads=2, intermediate_size=32),
                            tok, seed=0).save(tmp / "encoder")
    res = tmp / "res-tr"
    # documents average ~38 words: max_len 24 cuts most of them, and the cut evidence counts as missed
    r = _invoke("run", "--methods", "rnp", "--datasets", "eraser-movies", "--profile", "smoke", "--seeds", "1",
                "--set", "backbone=transformer", "--set", f"encoder={encoder}", "--set", "max_len=24",
                "--set", "epochs=1", "--set", "train_limit=48", "--set", "test_limit=24", "--set", "faithfulness=true",
                "--set", "num_threads=1", "--data-root", root, "--results", res)
    assert r.exit_code == 0, r.output
    records = _records(res)
    rec = records["rnp"]
    assert rec["status"] == "finished", rec.get("error")
    assert rec["metrics"]["R"] < rec["metrics"]["R_subword"]  # word level counts the evidence truncation cut
    manifest = _scored_as_recorded(tmp / "tr", root, res, records)
    assert manifest["exports"][0]["gold"].endswith(".gold.jsonl")  # test_limit: the gold subset beside it
    # three classes, two documents per example, a query (GRU)
    res3 = tmp / "res-esnli"
    r = _invoke("run", "--methods", "rnp,attention", "--datasets", "eraser-esnli", "--profile", "smoke", "--seeds",
                "1", "--set", "vectors=fixture", "--set", "epochs=2", "--set", "faithfulness=true",
                "--set", "num_threads=1", "--data-root", root, "--results", res3)
    assert r.exit_code == 0, r.output
    records = _records(res3)
    assert all(rec["status"] == "finished" for rec in records.values()), [r.get("error") for r in records.values()]
    _scored_as_recorded(tmp / "esnli", root, res3, records)
    # show pairs each document word with its own selection and gold (the GRU reads `query SEP document`)
    texts = load_text_corpus("eraser-esnli", root).test
    run = api.restore(next(res3.glob("runs/*/rnp/*.json")), root)
    views = example_views(run.method, run.model, run.corpus, texts, 5)
    for v in views:
        assert v.tokens == list(texts.tokens[v.index])
        assert len(v.selected) == len(v.tokens) and v.gold.tolist() == texts.gold[v.index].tolist()
