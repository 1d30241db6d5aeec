from __future__ import annotations

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
