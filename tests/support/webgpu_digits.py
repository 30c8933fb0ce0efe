"""The held-out part of load_digits, split exactly as webgpu/model/train_digits.py splits it.

Needs only numpy and scikit-learn (not torch). The split's parameters are also written into the
model's ONNX metadata by the training script; tests/test_webgpu_model.py checks they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

MODEL = Path(__file__).resolve().parents[2] / "webgpu" / "model" / "digits.onnx"
SEED = 0
TEST_SIZE = 0.25


@dataclass(frozen=True)
class HeldOut:
    """Held-out digits: `images` float32 [n, 8, 8] with values 0..16, `labels` [n], and each
    sample's index in load_digits."""

    images: np.ndarray
    labels: np.ndarray
    indices: np.ndarray

    def first_of_each_class(self) -> list[int]:
        """Positions (in this set) of the first sample of each digit 0..9."""
        return [int(np.flatnonzero(self.labels == digit)[0]) for digit in range(10)]


def held_out() -> HeldOut:
    digits = load_digits()
    index = np.arange(len(digits.target))
    _, test = train_test_split(index, test_size=TEST_SIZE, random_state=SEED, stratify=digits.target)
    return HeldOut(
        images=digits.images[test].astype(np.float32),
        labels=digits.target[test].astype(np.int64),
        indices=test,
    )
