"""Disjoint LinUCB (Li, Chu, Langford & Schapire, 2010).

Each arm ``k`` keeps a ridge regression of reward on context (see
:mod:`baselines._ridge`) and the policy plays the arm with the highest upper
confidence bound

.. math::

    s_k(x) = x^\\top \\theta_k + \\alpha \\sqrt{x^\\top A_k^{-1} x},

deterministically (one-hot ``predict_proba``, ties to the lowest id).
"""

from __future__ import annotations

import numpy as np

from banditspec.policy import argmax_distribution
from baselines._ridge import RidgePolicy, check_real

__all__ = ["LinUCB"]


class LinUCB(RidgePolicy):
    """Disjoint LinUCB with per-arm ridge regressions.

    Parameters
    ----------
    n_arms : int
        Number of arms ``K``.
    alpha : float, default 1.0
        Width of the confidence bonus, ``>= 0`` (0 is greedy ridge regression).
    ridge : float, default 1.0
        Ridge penalty ``lambda > 0``; ``A_k`` starts at ``lambda I``.
    seed : int, default 0
        Unused (LinUCB is deterministic); kept for the common interface.

    Notes
    -----
    Propensities passed to ``fit``/``partial_fit`` are accepted and ignored:
    the ridge estimates are unweighted, as in the original algorithm.
    Online updates cost ``O(d^2)`` per row (Sherman–Morrison); no matrix is
    inverted per row.
    """

    def __init__(self, n_arms: int, *, alpha: float = 1.0, ridge: float = 1.0, seed: int = 0) -> None:
        super().__init__(n_arms, seed=seed)
        self.alpha = alpha
        self.ridge = ridge

    def _check_params(self) -> None:
        super()._check_params()
        check_real("alpha", self.alpha, 0.0)

    def scores(self, X: np.ndarray) -> np.ndarray:
        """Upper confidence bounds ``s_k(x)``, shape ``(n, K)``, of validated rows ``X``."""
        mean, var = self._moments(X)
        return mean + self.alpha * np.sqrt(var)

    def _predict_proba(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return argmax_distribution(self.scores(X), mask)
