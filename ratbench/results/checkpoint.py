"""Model checkpoints beside their RunRecord, so probes and `show` never retrain a finished run.

The file holds the selected epoch's weights without the frozen word vectors (they are rebuilt from the corpus),
written atomically; it is read with `weights_only=True`, so a checkpoint cannot run code when loaded.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ratbench.atomic import write_bytes
from ratbench.errors import RatbenchError


def checkpoint_path(record_path: Path) -> Path:
    return Path(record_path).with_suffix(".pt")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    import torch

    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state.items()}, buf)
    write_bytes(path, buf.getvalue())


def load_model(record: dict[str, Any], record_file: Path, data_root: Path, device: str = "cpu"):
    """(method, model, corpus) of a finished run, the model in eval mode with the selected epoch's weights."""
    import torch

    from ratbench.config import RunConfig
    from ratbench.engine import limit_split
    from ratbench.methods import METHODS
    from ratbench.runner import _corpus

    ckpt = checkpoint_path(record_file)
    if not ckpt.exists():
        raise RatbenchError(
            f"The run {record_file} has no checkpoint ({ckpt.name}); it was trained by a ratbench that did not save "
            "them, or the file was removed. Retrain it with the same `ratbench run` command plus --no-resume, "
            "or let `ratbench diagnose` retrain it (--retrain).")
    cfg = dict(record["config"])
    params = cfg.pop("method_params", {})
    config = RunConfig(**cfg, method_params=params)
    method = METHODS.get(record["method"])(config)
    corpus = _corpus(record["dataset"], str(data_root))
    context = {"seed": record["seed"], "dataset": record["dataset"], "profile": record.get("profile"),
               "results": str(Path(record_file).parents[3])}  # <results>/runs/<dataset>/<method>/<file>
    method.prepare(corpus, limit_split(corpus.train, config.train_limit), context)
    model = method.build_model(torch.from_numpy(corpus.vectors))
    state = torch.load(ckpt, map_location=device, weights_only=True)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("embed.") for k in missing):
        raise RatbenchError(f"The checkpoint {ckpt} does not match the {record['method']} model of this ratbench "
                            f"version (missing {missing[:3]}, unexpected {unexpected[:3]}); retrain the run.")
    if "final_alpha" in record:
        method.alpha = float(record["final_alpha"])
    return method, model.to(device).eval(), corpus
