"""Typed run configuration, YAML profiles, `--set key=value` overrides and the config hash.

Resolution order (later wins): RunConfig defaults, the method's own defaults, profile `defaults`,
profile `datasets[<name>]`, profile `methods[<m>].defaults`, profile `methods[<m>].datasets[<name>]`,
`--epochs`, then `--set`. The hash covers everything that can change a number, not the device.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ratbench.errors import RatbenchError
from ratbench.registry import suggest


@dataclass
class RunConfig:
    """Every engine hyperparameter; defaults are the published GRU setting (docs/methods.md#shared-pipeline)."""

    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-4
    alpha: float = 0.125  # sparsity target of the regulariser (a fraction), calibrated on dev
    lambda_sparsity: float = 11.0
    lambda_continuity: float = 12.0
    cls_weight: float = 0.9
    tau: float = 1.0
    dropout: float = 0.2
    hidden_size: int = 200  # both directions together
    # Sparsity calibration on dev (docs/methods.md#shared-pipeline (dev calibration of alpha)): after each epoch alpha
    # moves toward the value that
    # makes dev S hit target_sparsity (percent). None disables it.
    target_sparsity: float | None = 15.0
    calibrate: str = "dev"  # "dev" | "none"
    calibration_gain: float = 0.8
    # model selection (engine/selection.py): the record's `metrics` are those of the epoch with the best dev
    # accuracy among epochs whose dev S is within this many points of the target; the published rule (best dev
    # accuracy over all epochs) is recorded beside it (`selections`, `report --selection dev_acc`)
    selection_tolerance: float = 3.0
    eval_mode: str = "sample"  # "sample": Gumbel noise with a fixed seed (reference); "argmax"
    # evaluation batches: "length" (sorted by length: less padding) or "dataset" (file order, as published code)
    eval_order: str = "length"
    eval_seed: int = 20240601
    gru_mode: str = "auto"  # masked|packed: padding never read; padded: the reference (docs/methods.md#quirks (Q27))
    # "random": the published composition (any lengths in a batch); "bucketed": similar lengths batched
    # together, fewer GRU steps per batch on CPU (opt-in; its effect on results is in results/README.md)
    batching: str = "random"
    precision: str = "fp32"  # "bf16": mixed precision (autocast) for CUDA; see Engine.precision
    # word vectors of the GRU methods: "default" (the dataset's own choice: GloVe 6B-100d for Beer/Hotel), or
    # the name of an imported vector resource (docs/datasets.md#word-vectors)
    vectors: str = "default"
    # the players' encoders (models/backbones.py): "gru" over frozen word vectors, or "transformer"
    backbone: str = "gru"
    # transformer backbone: "default" (the dataset's: `local` for the built-in corpora, bert-base-uncased
    # otherwise), `minilm` (the ratbench[minilm] extra), a hub name or a local directory
    encoder: str = "default"
    encoder_lr: float | None = None  # learning rate of the transformer encoders (None: `lr`); heads use `lr`
    local_mlm_steps: int = 400  # the `local` encoder's masked-LM pretraining budget (docs/transformers.md)
    max_query_len: int = 32  # query pieces kept (query tasks, transformer backbone)
    gradient_checkpointing: bool = False  # recompute transformer activations in backward: less memory, slower
    max_len: int = 256
    # "batch": batches padded to their own longest example, padding never counted (ratbench); "max_len": every
    # review padded to max_len and selected padding counted in the regularisers, as the published code does
    # (docs/decisions/0005-padding.md)
    pad_to: str = "batch"
    # "published": the splits as released; "repaired": test kept whole, dev and train without any review seen in
    # an earlier split (docs/leakage.md)
    splits: str = "published"
    train_limit: int | None = None  # keep the first N balanced training examples (after shuffling by seed)
    dev_limit: int | None = None
    test_limit: int | None = None
    faithfulness: bool = True  # comprehensiveness/sufficiency/AOPC at the selected epoch
    num_threads: int | None = None  # torch CPU threads; not part of the hash
    # training hooks of diagnostic probes, comma-separated (e.g. "nonoverlap,lipschitz"); they never change a
    # run's numbers (their sampling runs under fork_rng), so they are not part of the hash either
    probes: str = ""
    method_params: dict[str, Any] = field(default_factory=dict)


# model-selection rules, all computed in every run (engine/selection.py); the first gives a record's `metrics`
SELECTION_RULES = ("dev_acc_matched_s", "dev_acc")
PRIMARY_SELECTION = SELECTION_RULES[0]

ENGINE_KEYS = [f.name for f in dataclasses.fields(RunConfig) if f.name != "method_params"]
_CHOICES = {"calibrate": ("dev", "none"), "eval_mode": ("sample", "argmax"),
            "gru_mode": ("auto", "masked", "packed", "padded"), "batching": ("random", "bucketed"),
            "precision": ("fp32", "bf16"),
            "eval_order": ("length", "dataset"), "pad_to": ("batch", "max_len"), "splits": ("published", "repaired"),
            "backbone": ("gru", "transformer")}
_UNHASHED = {"num_threads", "probes", "gradient_checkpointing"}
# Settings added after results existed, whose default is the earlier behaviour: at the default they stay out
# of the hash, so adding an option never orphans finished runs (resume and diagnose still find them).
_HASHED_WHEN_SET = {"precision": "fp32", "vectors": "default",
                    "eval_order": "length", "pad_to": "batch", "splits": "published", "backbone": "gru",
                    "encoder": "default", "encoder_lr": None, "local_mlm_steps": 400, "max_query_len": 32}


def _profile_text(name: str) -> str:
    """A packaged profile by name, or the user's own YAML file by path (`--profile my-profile.yaml`)."""
    path = Path(name).expanduser()
    if name.endswith((".yaml", ".yml")) or path.is_file():
        try:
            return path.read_text(encoding="utf-8")
        except OSError as err:
            raise RatbenchError(f"Cannot read the profile file {path}: {err.strerror}. Check the path, or use "
                                "a packaged profile (ratbench list profiles).") from None
    try:
        return resources.files("ratbench.profiles").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    except FileNotFoundError:
        known = [n for n, _ in list_profiles()]
        raise RatbenchError(f"Unknown profile {name!r}.{suggest(name, known)} Known: {', '.join(known)}.") from None


def load_profile(name: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(_profile_text(name)) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise RatbenchError(f"The profile {name} is not valid YAML{where}: {problem}. Fix that line; the "
                            "packaged profiles (ratbench/profiles/*.yaml) show the expected layout.") from None
    if not isinstance(data, dict):
        raise RatbenchError(f"The profile {name} must be a YAML mapping with `defaults`, `datasets` and "
                            f"`methods` sections, got {type(data).__name__}.")
    for section in ("defaults", "datasets", "methods", "backbones"):
        data[section] = data.get(section) or {}
        if not isinstance(data[section], dict):
            raise RatbenchError(f"The profile {name}: `{section}` must be a mapping, got "
                                f"{type(data[section]).__name__}.")
    base = data.get("extends")
    if base:
        if base == name:
            raise RatbenchError(f"The profile {name} extends itself.")
        data = _merged(load_profile(str(base)), data)
    return data


def _merged(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """`extends: <profile>`: the base profile, overridden key by key (recursively, mapping by mapping) by this one."""
    out = dict(base)
    for key, value in own.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = _merged(base[key], value)
        else:
            out[key] = value
    return out


def list_profiles() -> list[tuple[str, str]]:
    out = []
    for entry in sorted(resources.files("ratbench.profiles").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            data = yaml.safe_load(entry.read_text(encoding="utf-8")) or {}
            out.append((entry.name[: -len(".yaml")], str(data.get("description", ""))))
    return out


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`key=value` strings -> dict; values are read as YAML scalars (1e-4, true, null, 3)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise RatbenchError(f"--set expects key=value, got {item!r} (e.g. --set lr=1e-3).")
        key, value = item.split("=", 1)
        parsed = yaml.safe_load(value) if value.strip() else None
        if isinstance(parsed, str):  # YAML 1.1 reads 1e-3 as a string
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        out[key.strip()] = parsed
    return out


def check_override_keys(overrides: dict[str, Any], method_defaults: dict[str, dict[str, Any]]) -> None:
    """Unknown keys are errors with a suggestion; method keys may be written `p_flip` or `ver.p_flip`."""
    method_keys = {k for d in method_defaults.values() for k in d}
    scoped = {f"{m}.{k}" for m, d in method_defaults.items() for k in d}
    known = set(ENGINE_KEYS) | method_keys | scoped
    for key in overrides:
        if key not in known:
            raise RatbenchError(
                f"Unknown setting {key!r} in --set.{suggest(key, sorted(known))} "
                f"Settings: {', '.join(sorted(set(ENGINE_KEYS) | method_keys))}."
            )


def _apply(cfg: dict[str, Any], params: dict[str, Any], updates: dict[str, Any], method: str) -> None:
    for key, value in updates.items():
        if "." in key:
            scope, key = key.split(".", 1)
            if scope != method:
                continue
        if key in ENGINE_KEYS:
            cfg[key] = value
        elif key in params:
            params[key] = value
        # keys of other methods are ignored for this one (checked earlier by check_override_keys)


def resolve(
    profile: str,
    method: str,
    dataset: str,
    method_defaults: dict[str, Any],
    overrides: dict[str, Any] | None = None,
    epochs: int | None = None,
) -> RunConfig:
    """The full configuration of one (method, dataset) run.

    Layers, each overriding the ones before: the profile's `defaults`, `datasets.<dataset>`, `methods.<method>`
    (its `defaults`, then its `datasets.<dataset>`), then the same four layers of the profile's
    `backbones.<backbone>` section (the backbone chosen by `--set backbone=...` or the profile), then `epochs`,
    then `overrides`. So a backbone's settings beat the general ones, per-method ones included: the general
    sections of `paper` hold the published GRU recipes, and `backbones.transformer` replaces their budgets."""
    prof = load_profile(profile)
    cfg = {k: v for k, v in dataclasses.asdict(RunConfig()).items() if k != "method_params"}
    params = dict(method_defaults)
    chosen = (overrides or {}).get("backbone") or prof["datasets"].get(dataset, {}).get("backbone") \
        or prof["defaults"].get("backbone") or cfg["backbone"]
    bprof = prof["backbones"].get(chosen, {}) or {}

    def of(section: dict[str, Any]) -> list[dict[str, Any]]:
        m = (section.get("methods", {}) or {}).get(method, {}) or {}
        return [section.get("defaults", {}) or {}, (section.get("datasets", {}) or {}).get(dataset, {}) or {},
                m.get("defaults", {}) or {}, (m.get("datasets", {}) or {}).get(dataset, {}) or {}]

    general, backbone = of(prof), of(bprof)
    layers = [*general, *backbone]
    for layer in layers:
        unknown = [k for k in layer if k not in ENGINE_KEYS and k not in params]
        if unknown:
            hint = suggest(unknown[0], sorted([*ENGINE_KEYS, *params]))
            raise RatbenchError(f"Profile {profile!r} sets unknown keys {unknown} for {method} on {dataset}.{hint}")
        _apply(cfg, params, layer, method)
    if epochs is not None:
        cfg["epochs"] = epochs
    _apply(cfg, params, overrides or {}, method)
    hints = typing.get_type_hints(RunConfig)
    for key in ENGINE_KEYS:
        cfg[key] = _typed(key, cfg[key], _allowed_types(hints[key]), profile)
    for key, default in method_defaults.items():
        if default is not None:
            params[key] = _typed(f"{method}.{key}", params[key], (type(default),), profile)
    config = RunConfig(**cfg, method_params=params)
    validate(config)
    return config


def _allowed_types(annotation: Any) -> tuple[type, ...]:
    """`float | None` -> (float, NoneType); `int` -> (int,)."""
    args = typing.get_args(annotation)
    return tuple(a for a in args if isinstance(a, type)) if args else (annotation,)


_TYPE_WORDS = {float: "a number", int: "a whole number", bool: "true/false", str: "text", type(None): "null"}


def _typed(key: str, value: Any, allowed: tuple[type, ...], profile: str) -> Any:
    """The value converted to the setting's type (3 -> 3.0 for a float, 2.0 -> 2 for an int), or a one-line
    error naming the setting, the expected type and where values come from."""
    if value is None and type(None) in allowed:
        return None
    if bool in allowed:
        if isinstance(value, bool):
            return value
    elif float in allowed and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif int in allowed and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif int in allowed and isinstance(value, float) and value.is_integer():
        return int(value)
    elif str in allowed and isinstance(value, str):
        return value
    elif not set(allowed) & set(_TYPE_WORDS) and isinstance(value, allowed):  # e.g. a list default
        return value
    names = " or ".join(_TYPE_WORDS.get(t, t.__name__) for t in allowed)
    raise RatbenchError(f"Setting {key} must be {names}, got {value!r}. Fix the --set value or the profile "
                        f"{profile!r} (e.g. --set {key.split('.')[-1]}=...).")


def validate(cfg: RunConfig) -> None:
    for key, allowed in _CHOICES.items():
        if getattr(cfg, key) not in allowed:
            raise RatbenchError(f"{key} must be one of {', '.join(allowed)}, got {getattr(cfg, key)!r}.")
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise RatbenchError("epochs and batch_size must be positive integers.")
    if not 0.0 < cfg.alpha < 1.0:
        raise RatbenchError(f"alpha is a fraction of tokens in (0, 1), got {cfg.alpha}.")


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def config_of(settings: dict[str, Any]) -> RunConfig:
    """A RunConfig from a record's `config` (settings this ratbench does not know are ignored; new ones default)."""
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    cfg = {k: v for k, v in settings.items() if k in fields and k != "method_params"}
    return RunConfig(**cfg, method_params=dict(settings.get("method_params") or {}))


def config_hash(cfg: RunConfig, method: str, dataset: str) -> str:
    """Short stable digest of what determines a run's numbers (not device or thread count)."""
    payload = {k: v for k, v in to_dict(cfg).items()
               if k not in _UNHASHED and not (k in _HASHED_WHEN_SET and v == _HASHED_WHEN_SET[k])}
    payload.update(method=method, dataset=dataset)
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]
