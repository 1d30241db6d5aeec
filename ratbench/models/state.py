"""What a checkpoint holds: every parameter and buffer except those of modules that declare themselves
rebuilt from data (frozen word vectors), and strict loading against exactly that set.

A module opts out with the class attribute `checkpointed = False` (FrozenEmbedding does). Excluding by
declaration rather than by a parameter-name prefix means a method's own trainable table, whatever its name,
is always saved, and loading fails loudly when a checkpoint and the model disagree.
"""

from __future__ import annotations

import torch
from torch import nn


def rebuilt_keys(model: nn.Module) -> set[str]:
    """State-dict keys of the modules that are rebuilt from data rather than saved, under every path they are
    reachable by (the transformer players reach the one shared word table through their own encoders too)."""
    rebuilt = {id(sub) for module in model.modules() if getattr(module, "checkpointed", True) is False
               for sub in module.modules()}
    keys: set[str] = set()
    for prefix, module in model.named_modules(remove_duplicate=False):
        if id(module) in rebuilt:
            for name, _ in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
                keys.add(f"{prefix}.{name}" if prefix else name)
    return keys


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of everything a checkpoint must hold (the selected epoch's weights)."""
    skip = rebuilt_keys(model)
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k not in skip}


class StateMismatch(ValueError):
    def __init__(self, missing: list[str], unexpected: list[str]):
        super().__init__(f"missing {missing[:3]}, unexpected {unexpected[:3]}")
        self.missing, self.unexpected = missing, unexpected


def load_trainable_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a `trainable_state` strictly: the saved keys must be exactly the model's keys minus the rebuilt ones."""
    current = model.state_dict()
    skip = rebuilt_keys(model) & set(current)  # a rebuilt module's non-persistent buffers are in neither
    expected = set(current) - skip
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise StateMismatch(missing, unexpected)
    model.load_state_dict({**{k: current[k] for k in skip}, **state}, strict=True)
