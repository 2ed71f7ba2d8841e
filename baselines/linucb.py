"""Disjoint LinUCB (Li, Chu, Langford & Schapire, 2010).

Each arm ``k`` keeps a ridge regression of reward on context (see
:mod:`banditspec.baselines._ridge`) and the policy plays the arm with the highest upper
confidence bound

.. math::

    s_k(x) = x^\\top \\theta_k + \\alpha \\sqrt{x^\\top A_k^{-1} x},

deterministically (one-hot ``predict_proba``, ties to the lowest id).

Only the best arm matters, so batch predictions skip the ``O(d^2)`` bonus
wherever the bonus cannot change the choice. With ``mu_k`` and ``nu_k`` the
smallest and largest eigenvalues of ``A_k^{-1}``, every score lies in

.. math::

    l_k(x) = x^\\top \\theta_k + \\alpha \\lVert x \\rVert \\sqrt{\\mu_k}
    \\;\\le\\; s_k(x) \\;\\le\\;
    x^\\top \\theta_k + \\alpha \\lVert x \\rVert \\sqrt{\\nu_k} = h_k(x),

and an arm with ``h_k(x) < max_j l_j(x)`` (over the available arms) is never
the argmax. Where only one arm survives, it is the arm of the best lower bound
and no bonus is computed at all; the exact score is computed only for the
surviving arms of the other rows. The eigenvalue interval is widened by the
round-off of the computed bonus, and rounding is monotone, so the computed
bounds bracket the computed scores and the choice is exactly that of the full
computation. Once the arms have data the bounds are tight and a few per cent
of the rows need any bonus.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from banditspec.bandits.validation import check_real
from banditspec.baselines._ridge import RidgePolicy, decision_rows

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
    inverted per row. One-row :meth:`select` and ``partial_fit`` calls (a
    router's online loop) skip the batch machinery and give the same results.
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
        if len(X) == 1:
            return self._row_scores(X[0])[None]
        mean, var = self._moments(X)
        return mean + self.alpha * np.sqrt(var)

    def _row_scores(self, x: np.ndarray) -> np.ndarray:
        """``s_k(x)`` of one row, shape ``(K,)``: the same numbers as :meth:`scores` gives that row alone."""
        mean, var = self._row_moments(x)
        bonus = np.sqrt(var, out=var)
        bonus *= self.alpha
        bonus += mean
        return bonus

    def select(
        self, X: Any, rng: np.random.Generator | None = None, available: Any = None, *, check_input: bool = True
    ) -> np.ndarray:
        """Choose the arm of the highest upper confidence bound per row (ties to the lowest id).

        Same arguments and result as :meth:`Policy.select`. Without ``rng``, one
        row with an availability mask of shape ``(K,)`` or ``(1, K)`` is scored
        directly from its validated row (the online loop of a router); other
        input takes the general path, which also raises its errors.
        """
        if rng is None and self.is_fitted():
            choice = self._select_row(X, available, check_input)
            if choice is not None:
                return choice
        if rng is not None:
            return super().select(X, rng, available, check_input=check_input)
        return self._choose(*self._inputs(X, available, check_input))

    def _select_row(self, X: Any, available: Any, check_input: bool) -> np.ndarray | None:
        """The choice for a one-row ``X`` with a one-row mask, shape ``(1,)``; None to take the general path.

        A row with a NaN or an infinite entry makes every score non-finite
        (each mean ``x^T theta_k`` is), so a finite best score validates the row.
        """
        X = np.asarray(X, dtype=float)
        if X.shape != (1, self.n_features_):
            return None
        scores = self._row_scores(X[0])
        if available is not None:
            mask = np.asarray(available)
            if mask.dtype != bool or mask.shape not in ((self.n_arms,), (1, self.n_arms)) or not mask.any():
                return None
            scores = np.where(mask.reshape(self.n_arms), scores, -np.inf)
        best = scores.argmax(keepdims=True)
        if check_input and not math.isfinite(scores[best[0]]):
            return None
        return best

    def _predict_proba(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = np.zeros(mask.shape)
        out[np.arange(len(X)), self._choose(X, mask)] = 1.0
        return out

    def _choose(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Index of the best available arm per validated row, shape ``(n,)`` (ties to the lowest id).

        Rows with huge entries are scaled first (:func:`~banditspec.baselines._ridge.decision_rows`).

        Raises
        ------
        ValueError
            If scores of available arms overflow float64 even so.
        """
        X = decision_rows(X)
        if len(X) < PRUNE_MIN_ROWS or self.alpha == 0:
            scores = self.scores(X)
            self._check_scores(scores[mask])
            return np.argmax(np.where(mask, scores, -np.inf), axis=1)
        return self._pruned_choice(X, mask)

    def _pruned_choice(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """:meth:`_choose` computing the bonus only where the eigenvalue bounds leave several arms.

        Works on ``(K, n)`` tables, so every pass over the arms runs on
        contiguous rows, and reuses one buffer for both bounds.
        """
        K, d = self.theta_.shape
        eigenvalues = np.linalg.eigvalsh(self.A_inv_)  # (K, d), ascending
        # slack for the round-off of x^T A^{-1} x (at most ~d eps |x|^2 nu) and of the eigenvalues
        tol = 1e-10 * (d + 1) * eigenvalues[:, -1]
        low_factor = np.sqrt(np.maximum(eigenvalues[:, 0] - tol, 0.0))[:, None]
        high_factor = np.sqrt(eigenvalues[:, -1] + tol)[:, None]
        norms = np.sqrt(np.einsum("nd,nd->n", X, X))
        norms *= self.alpha
        mean = self.theta_ @ X.T  # (K, n)
        available = None if mask.all() else mask.T
        bound = np.multiply(low_factor, norms)
        bound += mean
        if available is not None:
            np.copyto(bound, -np.inf, where=~available)
        best_low = bound.max(axis=0)
        np.multiply(high_factor, norms, out=bound)
        bound += mean
        self._check_scores(best_low, bound)
        survivors = np.greater_equal(bound, best_low)
        if available is not None:
            survivors &= available
        # with one survivor (the arm of the best lower bound), the sum of k over survivors is its id
        small = np.min_scalar_type(K)
        flags = survivors.view(np.uint8)
        counts = np.add.reduce(flags, axis=0, dtype=small)
        choice = np.add.reduce(flags * np.arange(K, dtype=small)[:, None], axis=0, dtype=small).astype(np.intp)
        open_rows = np.flatnonzero(counts > 1)
        if open_rows.size:
            choice[open_rows] = self._exact_choice(X, mean, survivors, open_rows)
        return choice

    def _exact_choice(self, X: np.ndarray, mean: np.ndarray, survivors: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Best surviving arm of each of ``rows`` by its exact score (ties to the lowest id)."""
        scores = np.full((len(rows), self.n_arms), -np.inf)
        for k in range(self.n_arms):
            hits = np.flatnonzero(survivors[k, rows])
            if hits.size:
                idx = rows[hits]
                scores[hits, k] = mean[k, idx] + self.alpha * np.sqrt(self._arm_variance(X[idx], k))
        return np.argmax(scores, axis=1)

