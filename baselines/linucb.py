"""Disjoint LinUCB (Li, Chu, Langford & Schapire, 2010).

Each arm ``k`` keeps a ridge regression of reward on context (see
:mod:`baselines._ridge`) and the policy plays the arm with the highest upper
confidence bound

.. math::

    s_k(x) = x^\\top \\theta_k + \\alpha \\sqrt{x^\\top A_k^{-1} x},

deterministically (one-hot ``predict_proba``, ties to the lowest id).

Only the best arm matters, so batch predictions skip the ``O(d^2)`` bonus of
arms that cannot win. With ``mu_k`` and ``nu_k`` the smallest and largest
eigenvalues of ``A_k^{-1}``, every score lies in

.. math::

    x^\\top \\theta_k + \\alpha \\lVert x \\rVert \\sqrt{\\mu_k}
    \\;\\le\\; s_k(x) \\;\\le\\;
    x^\\top \\theta_k + \\alpha \\lVert x \\rVert \\sqrt{\\nu_k},

and an arm whose upper bound is below the best lower bound of the available
arms is never the argmax. The exact score is computed for the other arms
only, so the choice is unchanged; once the arms have data the bounds are
tight and most (row, arm) pairs are skipped.
"""

from __future__ import annotations

import numpy as np

from banditspec.policy import argmax_distribution
from baselines._ridge import RidgePolicy, check_real

__all__ = ["LinUCB"]

#: batches from this many rows on use the pruned path (the eigenvalues cost O(K d^3) per call)
PRUNE_MIN_ROWS = 64


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
        if len(X) < PRUNE_MIN_ROWS or self.alpha == 0:
            return argmax_distribution(self.scores(X), mask)
        return argmax_distribution(self._candidate_scores(X, mask), mask)

    def _candidate_scores(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Exact scores of the arms that can still be the argmax; ``-inf`` for the others."""
        mean = X @ self.theta_.T
        eigenvalues = np.linalg.eigvalsh(self.A_inv_)  # (K, d), ascending
        norms = self.alpha * np.sqrt(np.einsum("nd,nd->n", X, X))[:, None]
        low = mean + norms * np.sqrt(np.maximum(eigenvalues[:, 0], 0.0))
        high = mean + norms * np.sqrt(eigenvalues[:, -1])
        best_low = np.where(mask, low, -np.inf).max(axis=1, keepdims=True)
        slack = 1e-9 * (np.abs(best_low) + np.abs(high) + norms)  # round-off in the bounds
        candidates = mask & (high + slack >= best_low)
        scores = np.full(mask.shape, -np.inf)
        for k in range(self.n_arms):
            rows = np.flatnonzero(candidates[:, k])
            if rows.size:
                scores[rows, k] = mean[rows, k] + self.alpha * np.sqrt(self._arm_variance(X[rows], k))
        return scores
