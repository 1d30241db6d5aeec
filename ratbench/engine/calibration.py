"""Sparsity calibration: move the regulariser's target alpha between epochs until dev S hits the target.

The published READMEs tune alpha by hand against the *test* sparsity; ratbench does it on dev only, with a
proportional step after every epoch (docs/decisions/0002-sparsity-calibration.md).
"""

from __future__ import annotations

ALPHA_RANGE = (0.005, 0.95)


class SparsityCalibrator:
    """alpha <- clip(alpha + gain * (target - dev S) / 100); S in percent, alpha a fraction."""

    def __init__(self, target: float | None, gain: float, enabled: bool):
        self.target = target
        self.gain = gain
        self.enabled = enabled and target is not None

    def update(self, alpha: float, dev_S: float) -> float:
        if not self.enabled:
            return alpha
        step = self.gain * (self.target - dev_S) / 100.0
        return float(min(max(alpha + step, ALPHA_RANGE[0]), ALPHA_RANGE[1]))
