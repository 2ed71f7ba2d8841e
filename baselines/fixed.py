"""Fixed-arm baseline: always the same decoding strategy (for instance always AR)."""

from __future__ import annotations

import numpy as np

from banditspec.bandits.policy import argmax_distribution
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
        if not isinstance(self.arm, (int, np.integer)) or isinstance(self.arm, bool) or not 0 <= self.arm < self.n_arms:
            raise ValueError(f"arm must be an arm id in [0, {self.n_arms}), got {self.arm!r}")

    def _predict_proba(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        scores = np.zeros(mask.shape)
        scores[:, self.arm] = 1.0
        return argmax_distribution(scores, mask)
