"""Bidirectional GRU over (masked) word vectors in which padding is never read by default.

Two unidirectional GRUs make the two directions. Modes:
- `masked` (default on CPU): the backward GRU reads each sequence reversed *within its own length*, so it
  starts at the last real token; outputs at padding are garbage and masked downstream. Exactly what packing
  computes, at the cost of plain padded GRU calls (PackedSequence is ~3x slower on CPU, benchmarks/). At
  small widths both directions run as one GRU with block-diagonal weights (see `_fused_forward`).
- `packed` (default on CUDA): PackedSequence for both directions; same numbers as `masked`.
- `padded`: the reference behaviour (docs/methods.md#quirks (Q27)): the backward direction first runs over trailing
padding.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

GRU_MODES = ("auto", "masked", "packed", "padded")
# Per-direction width up to which `masked` fuses the two directions into one GRU call. Measured on 2 CPU
# cores (benchmarks/speed_train.py, RNP training step, batch 32): 32 units/direction 161 -> 121 ms per step;
# at 100 units/direction the doubled block-diagonal arithmetic outweighs the saved launches (245 -> 277 ms).
FUSE_MAX_HIDDEN = 64


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first lengths[b] steps of each row of (B, L, D); padding stays where it is."""
    b, length = x.shape[0], x.shape[1]
    t = torch.arange(length, device=x.device).expand(b, length)
    lens = lengths.to(x.device).unsqueeze(1)
    idx = torch.where(t < lens, lens - 1 - t, t)
    return x.gather(1, idx.unsqueeze(-1).expand_as(x))


class BiGRU(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, mode: str = "auto"):
        super().__init__()
        if mode not in GRU_MODES:
            raise ValueError(f"gru_mode must be one of {GRU_MODES}, got {mode!r}")
        self.fwd = nn.GRU(input_size, hidden_size // 2, batch_first=True)
        self.bwd = nn.GRU(input_size, hidden_size // 2, batch_first=True)
        self.mode = mode
        self.output_size = hidden_size

    def _mode(self, x: torch.Tensor) -> str:
        if self.mode == "auto":
            return "packed" if x.is_cuda else "masked"
        return self.mode

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, L, D) -> (B, L, H)."""
        mode = self._mode(x)
        if mode == "padded":
            back = self.bwd(x.flip(1))[0].flip(1)
            return torch.cat([self.fwd(x)[0], back], -1)
        if mode == "masked":
            if self.fwd.hidden_size <= FUSE_MAX_HIDDEN:
                return self._fused_forward(x, lengths)
            back = reverse_within_length(self.bwd(reverse_within_length(x, lengths))[0], lengths)
            return torch.cat([self.fwd(x)[0], back], -1)
        total = x.shape[1]
        lens = lengths.cpu()

        def run(gru: nn.GRU, inp: torch.Tensor) -> torch.Tensor:
            packed = pack_padded_sequence(inp, lens, batch_first=True, enforce_sorted=False)
            return pad_packed_sequence(gru(packed)[0], batch_first=True, total_length=total)[0]

        back = reverse_within_length(run(self.bwd, reverse_within_length(x, lengths)), lengths)
        return torch.cat([run(self.fwd, x), back], -1)

    def _fused_forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Both directions as one GRU over [x, x reversed within length] whose weights are block-diagonal in
        the two directions: the same function as two GRUs, with half the kernel launches per time step. At small
        widths a CPU GRU step is bound by per-op overhead rather than arithmetic, so this saves about a quarter
        of a training step (FUSE_MAX_HIDDEN)."""
        h = self.fwd.hidden_size
        f, b = self.fwd, self.bwd

        def weight(a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:  # gate-major rows [r_f r_b z_f z_b n_f n_b]
            return torch.cat([torch.block_diag(a[g * h:(g + 1) * h], c[g * h:(g + 1) * h]) for g in range(3)])

        def bias(a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            return torch.cat([t for g in range(3) for t in (a[g * h:(g + 1) * h], c[g * h:(g + 1) * h])])

        params = {
            "weight_ih_l0": weight(f.weight_ih_l0, b.weight_ih_l0),
            "weight_hh_l0": weight(f.weight_hh_l0, b.weight_hh_l0),
            "bias_ih_l0": bias(f.bias_ih_l0, b.bias_ih_l0),
            "bias_hh_l0": bias(f.bias_hh_l0, b.bias_hh_l0),
        }
        both = torch.cat([x, reverse_within_length(x, lengths)], -1)
        out = torch.func.functional_call(self._fused_shell(), params, (both,))[0]
        return torch.cat([out[..., :h], reverse_within_length(out[..., h:], lengths)], -1)

    def _fused_shell(self) -> nn.GRU:
        """A parameter-less stand-in GRU of the fused shape (not a registered submodule: the state dict keeps
        the two directions' own weights, so checkpoints and initialisation do not depend on the mode)."""
        shell = self.__dict__.get("_shell")
        if shell is None:
            # nn.GRU initialises weights from the global RNG; this lazily built shell must not, or the first
            # forward pass (training, a probe, `show`) would shift every later random draw of the run
            with torch.random.fork_rng(devices=[]):
                shell = nn.GRU(2 * self.fwd.input_size, 2 * self.fwd.hidden_size, batch_first=True)
            for name in list(shell._parameters):
                shell._parameters[name] = None
            self.__dict__["_shell"] = shell
        return shell


class FrozenEmbedding(nn.Module):
    """Pretrained vectors, not trained (docs/methods.md#shared-pipeline); row 0 is the zero vector for pad and
    unknown. Rebuilt from the corpus when a run is restored, so checkpoints leave it out."""

    checkpointed = False

    def __init__(self, vectors: torch.Tensor):
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(vectors.float(), freeze=True)

    @property
    def dim(self) -> int:
        return self.embedding.embedding_dim

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.embedding(ids) * mask.unsqueeze(-1)
