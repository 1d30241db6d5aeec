from __future__ import annotations

from pathlib import Path

import pytest

from ratbench.config import RunConfig, check_override_keys, config_hash, parse_overrides, resolve
from ratbench.errors import RatbenchError


def test_profile_layers_and_overrides():
    cfg = resolve("paper", "ver", "beer-appearance", {"p_flip": 0.3, "count_mode": "batch_mean"})
    assert cfg.method_params["p_flip"] == 0.5 and cfg.epochs == 300 and cfg.alpha == 0.125
    cfg = resolve("paper", "ver", "hotel-service", {"p_flip": 0.3, "count_mode": "batch_mean"})
    assert cfg.method_params["p_flip"] == 0.3 and cfg.batch_size == 1024 and cfg.epochs == 200
    cfg = resolve("paper", "rnp", "beer-aroma", {}, parse_overrides(["lr=1e-3", "ver.p_flip=0.9"]), epochs=7)
    assert cfg.lr == 1e-3 and cfg.epochs == 7 and cfg.method_params == {}


def test_unknown_override_key_suggests():
    with pytest.raises(RatbenchError, match="Did you mean 'lambda_sparsity'"):
        check_override_keys(parse_overrides(["lambda_sparsty=3"]), {"rnp": {}})
    with pytest.raises(RatbenchError, match="key=value"):
        parse_overrides(["lr"])
    with pytest.raises(RatbenchError, match="Unknown profile"):
        resolve("quik", "rnp", "synth-aroma", {})


def test_hash_ignores_threads_but_not_hyperparameters():
    a, b = RunConfig(), RunConfig(num_threads=4)
    assert config_hash(a, "rnp", "x") == config_hash(b, "rnp", "x")
    assert config_hash(a, "rnp", "x") != config_hash(RunConfig(lr=2e-4), "rnp", "x")
    assert config_hash(a, "rnp", "x") != config_hash(a, "ver", "x")


def test_ill_typed_settings_are_errors_and_numbers_are_converted():
    ver = {"p_flip": 0.3, "count_mode": "batch_mean"}
    with pytest.raises(RatbenchError, match="lr must be a number, got 'abc'"):
        resolve("quick", "rnp", "synth-aroma", {}, parse_overrides(["lr=abc"]))
    with pytest.raises(RatbenchError, match="epochs must be a whole number, got 2.5"):
        resolve("quick", "rnp", "synth-aroma", {}, parse_overrides(["epochs=2.5"]))
    with pytest.raises(RatbenchError, match="ver.p_flip must be a number"):
        resolve("quick", "ver", "synth-aroma", ver, parse_overrides(["p_flip=high"]))
    with pytest.raises(RatbenchError, match="faithfulness must be true/false"):
        resolve("quick", "rnp", "synth-aroma", {}, parse_overrides(["faithfulness=3"]))
    cfg = resolve("quick", "ver", "synth-aroma", ver, parse_overrides(["lr=1", "epochs=4.0", "p_flip=1",
                                                                       "target_sparsity=null"]))
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.epochs == 4 and isinstance(cfg.epochs, int)
    assert cfg.method_params["p_flip"] == 1.0 and cfg.target_sparsity is None


def test_profile_from_a_users_file_and_malformed_yaml(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("defaults:\n  lr: 2.0e-3\n  epochs: 3\nmethods:\n  ver:\n    defaults: {p_flip: 0.4}\n")
    cfg = resolve(str(mine), "ver", "synth-aroma", {"p_flip": 0.3, "count_mode": "batch_mean"})
    assert cfg.lr == 2e-3 and cfg.epochs == 3 and cfg.method_params["p_flip"] == 0.4
    bad = tmp_path / "bad.yaml"
    bad.write_text("defaults:\n  lr: 1e-3\n  epochs: [3\n")
    with pytest.raises(RatbenchError, match=r"not valid YAML at line 4"):
        resolve(str(bad), "rnp", "synth-aroma", {})
    bad.write_text("defaults:\n  lamda_sparsity: 3\n")
    with pytest.raises(RatbenchError, match="Did you mean 'lambda_sparsity'"):
        resolve(str(bad), "rnp", "synth-aroma", {})
    bad.write_text("- just\n- a list\n")
    with pytest.raises(RatbenchError, match="must be a YAML mapping"):
        resolve(str(bad), "rnp", "synth-aroma", {})
    with pytest.raises(RatbenchError, match="Cannot read the profile file"):
        resolve(str(tmp_path / "missing.yaml"), "rnp", "synth-aroma", {})


def test_options_added_later_stay_out_of_the_hash_at_their_default():
    """A new setting whose default is the old behaviour must not orphan finished runs."""
    base = RunConfig()
    assert config_hash(base, "rnp", "x") != config_hash(RunConfig(precision="bf16"), "rnp", "x")
    from ratbench.plan import plan

    reference = Path(__file__).resolve().parents[1] / "results" / "synth-quick"
    committed = sorted((reference / "runs" / "synth-appearance" / "rnp").glob("seed1-*.json"))
    assert committed, "the reference records are missing"
    job = plan(["rnp"], ["synth-appearance"], [1], "quick", {}, None, "cpu", reference, reference)[0]
    assert job.path == committed[0], "the quick profile no longer resumes the committed reference runs"
