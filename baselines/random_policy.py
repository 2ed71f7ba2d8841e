"""Uniformly random baseline (also the usual logging policy for offline data)."""

from __future__ import annotations

import numpy as np

from banditspec.baselines._stateless import StatelessPolicy

__all__ = ["RandomPolicy"]


class RandomPolicy(StatelessPolicy):
    """Uniform distribution over the available arms, ``pi(k | x) = 1 / |A(x)|``.

    Parameters
    ----------
    n_arms : int
        Number of arms ``K``.
    seed : int, default 0
        Unused (sampling uses the generator passed to ``select``); kept for the
        common interface.

    Notes
    -----
    Fitting only records the feature dimension.
    """

    def _predict_proba(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return mask / mask.sum(axis=1, keepdims=True)
