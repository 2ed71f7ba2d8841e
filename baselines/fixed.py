"""Fixed-arm baseline: always the same decoding strategy (for instance always AR)."""

from __future__ import annotations

import numpy as np

from banditspec.bandits.policy import argmax_distribution
from banditspec.bandits.validation import check_integer
from banditspec.baselines._stateless import StatelessPolicy

__all__ = ["FixedArm"]


class FixedArm(StatelessPolicy):
    """Always play arm ``arm``.

    Parameters
    ----------
    n_arms : int
        Number of arms ``K``.
    arm : int, default 0
        The arm to play, in ``[0, K)``.
    seed : int, default 0
        Unused; kept for the common interface.

    Notes
    -----
    Where ``arm`` is unavailable for a query, the lowest available arm id is
    played instead. Fitting only records the feature dimension.
    """

    def __init__(self, n_arms: int, *, arm: int = 0, seed: int = 0) -> None:
        super().__init__(n_arms, seed=seed)
        self.arm = arm

    def _check_params(self) -> None:
        super()._check_params()
        check_integer("arm", self.arm, low=0, high=self.n_arms - 1)

    def _predict_proba(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        scores = np.zeros(mask.shape)
        scores[:, self.arm] = 1.0
        return argmax_distribution(scores, mask)
