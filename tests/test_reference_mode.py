"""The reference protocol (`--profile reference`, `pad_to=max_len`): every review padded to 256 and selected padding
counted, checked on a small Beer-format fixture against numbers computed by hand from the published definitions
(sparsity loss |sum_t z_t / sum_t p_t - alpha| over all 256 positions, continuity as the mean over all B x 255
adjacent pairs, S and P with selected padding in the numerator / denominator)."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from ratbench import api
from ratbench.cli.app import app
from ratbench.methods.base import continuity_loss, sparsity_loss
from tests.fixtures_data import beer_line, write_beer_dir, write_glove

LENGTHS = [3, 5, 8, 4]  # test reviews
GOLD = [[0, 2], [1, 3], [0, 8], [2, 3]]  # one [start, end) span each: 2 + 2 + 8 + 1 = 13 gold tokens


def _fixture(tmp_path):
    words = ["good", "bad", "beer", "head", "w"]
    train = [beer_line([0.9 if i % 2 else 0.1, 0.5, 0.5, 0.5, 0.5], " ".join(["good" if i % 2 else "bad", "beer",
                                                                             "w", "head"])) for i in range(40)]
    dev = train[:10]
    annotations = [{"x": ["w"] * n, "y": [0.9, 0.5, 0.5, 0, 0], "0": [span], "1": [], "2": []}
                   for n, span in zip(LENGTHS, GOLD)]
    root = tmp_path / "root"
    assert CliRunner().invoke(app, ["data", "import", "beer", str(write_beer_dir(tmp_path / "lei", train, dev,
                                                                                 annotations)),
                                    "--data-root", str(root)]).exit_code == 0
    write_glove(tmp_path / "v.txt", words, dim=4)
    r = CliRunner().invoke(app, ["data", "import", "vectors", str(tmp_path / "v.txt"), "--name", "fx",
                                 "--data-root", str(root)])
    assert r.exit_code == 0, r.output
    return root


def _engine(tmp_path, profile: str):
    root = _fixture(tmp_path)
    spec = api.plan(["rnp"], ["beer-appearance"], [1], profile, {"vectors": "fx", "epochs": 1, "hidden_size": 8,
                                                                  "batch_size": 16}, None, "cpu", root,
                    tmp_path / "res")[0]
    engine = api.build(spec)
    head = engine.model.selector.head  # a selector that selects every position, padding included
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([-1e4, 1e4]))
    return engine


def test_reference_batches_are_256_wide_and_count_selected_padding_by_hand(tmp_path):
    engine = _engine(tmp_path, "reference")
    assert engine.config.pad_to == "max_len" and engine.config.gru_mode == "padded"
    assert engine.config.calibrate == "none" and engine.config.eval_order == "dataset"
    assert all(b.ids.shape[1] == 256 for b in engine.test_batches + engine.dev_batches)
    m = engine.evaluate(engine.test_batches, gold=True)
    real, gold = sum(LENGTHS), 13
    assert m["S"] == pytest.approx(100.0)  # ratbench: every real token selected
    assert m["P"] == pytest.approx(100.0 * gold / real)
    assert m["s_ref"] == pytest.approx(100.0 * 4 * 256 / real)  # published S: 1024 selected of 20 real tokens
    assert m["p_ref"] == pytest.approx(100.0 * gold / (4 * 256))  # published P: gold / all selected positions
    # without reference padding the same selector's S_ref only sees the batch's own padding (to length 8)
    plain = _engine(tmp_path / "plain", "paper")
    assert plain.test_batches[0].ids.shape[1] == 8
    assert plain.evaluate(plain.test_batches, gold=True)["s_ref"] == pytest.approx(100.0 * 4 * 8 / real)


def test_published_regularisers_on_a_256_wide_batch_by_hand():
    mask = torch.zeros(2, 256)
    mask[0, :3], mask[1, :5] = 1, 1  # 8 real tokens
    z = torch.zeros(2, 256)
    z[0, [0, 2, 10]] = 1  # two real selections and one at padding
    z[1, 100:104] = 1  # four padding selections
    alpha = 0.2
    # published: |(3 + 4) / 8 - 0.2| ; ratbench: |2 / 8 - 0.2|
    assert float(sparsity_loss(z, mask, alpha, count_padding=True)) == pytest.approx(abs(7 / 8 - alpha))
    assert float(sparsity_loss(z, mask, alpha)) == pytest.approx(abs(2 / 8 - alpha))
    # published continuity: switches over all 2 x 255 adjacent pairs, by hand: row 0 is 1 0 1 0 ... 0 1 0 ...
    # (switches at 0|1, 1|2, 2|3, 9|10, 10|11: 5), row 1 switches at 99|100 and 103|104 (2): 7 of 510 pairs
    assert float(continuity_loss(z, mask, 256, count_padding=True)) == pytest.approx(7 / (2 * 255))
    # ratbench: only real pairs (row 0: z = 1 0 1 over its 3 real tokens: 2 switches; row 1: none), same 2 x 255
    assert float(continuity_loss(z, mask, 256)) == pytest.approx(2 / (2 * 255))


def test_reference_profile_trains_a_run_end_to_end(tmp_path):
    root = _fixture(tmp_path)
    res = tmp_path / "res"
    r = CliRunner().invoke(app, ["run", "--methods", "rnp", "--datasets", "beer-appearance", "--seeds", "1",
                                 "--profile", "reference", "--set", "vectors=fx", "--set", "epochs=1",
                                 "--set", "hidden_size=8", "--data-root", str(root), "--results", str(res)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["report", "--results", str(res)])
    table = (res / "table.md").read_text()
    assert "padding: every review padded to max_len" not in table  # as published: not listed as a difference
    assert "model selection" not in table.split("Protocol")[1]  # no calibration: plain dev accuracy
