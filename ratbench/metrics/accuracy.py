"""Classification accuracy in percent, accumulated over batches."""

from __future__ import annotations

import numpy as np


class Accuracy:
    higher_is_better = True

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.correct = 0
        self.total = 0

    def update(self, predicted: np.ndarray, labels: np.ndarray) -> None:
        p, y = np.asarray(predicted), np.asarray(labels)
        self.correct += int((p == y).sum())
        self.total += int(y.size)

    def compute(self) -> float:
        """Percent correct; 0.0 when nothing was seen."""
        return 100.0 * self.correct / self.total if self.total else 0.0
