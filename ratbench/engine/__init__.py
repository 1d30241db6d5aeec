"""The shared engine: training loop (`loop`), model selection, sparsity calibration, evaluation, callbacks.

It imports nothing above it: no results, probes, executors or CLI (tests/test_architecture.py checks).
"""

from ratbench.engine.callbacks import Callback, CallbackList
from ratbench.engine.evaluation import EVAL_BATCH
from ratbench.engine.loop import Engine, RunResult
from ratbench.engine.runtime import limit_split, resolve_device, seed_everything

__all__ = ["EVAL_BATCH", "Callback", "CallbackList", "Engine", "RunResult", "limit_split", "resolve_device",
           "seed_everything"]
