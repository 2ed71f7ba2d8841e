"""Linear Thompson sampling (Agrawal & Goyal, 2013) with per-arm ridge posteriors.

Arm ``k`` has the Gaussian posterior ``theta ~ N(theta_k, v^2 A_k^{-1})`` over
its reward weights (statistics from :mod:`banditspec.baselines._ridge`). For one context
``x`` only ``x^T theta`` matters, and under the posterior

.. math::

    x^\\top \\tilde\\theta_k \\sim \\mathcal N\\big(x^\\top \\theta_k,\\; v^2\\, x^\\top A_k^{-1} x\\big),

independently across arms. Drawing one ``tilde theta_k`` per arm and row and
taking ``argmax_k x^T tilde theta_k`` is therefore the same in distribution as
drawing these scalars directly, which costs ``O(K d^2)`` per row instead of a
``d``-dimensional Gaussian sample per arm.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from banditspec.bandits.policy import argmax_distribution
from banditspec.bandits.validation import check_integer, check_real
from banditspec.baselines._ridge import RidgePolicy, decision_rows

__all__ = ["LinearThompson"]


class LinearThompson(RidgePolicy):
    """Thompson sampling over per-arm Bayesian linear regressions.

    Parameters
    ----------
    n_arms : int
        Number of arms ``K``.
    v : float, default 1.0
        Posterior scale ``v >= 0`` (0 is greedy ridge regression).
    ridge : float, default 1.0
        Ridge penalty (prior precision) ``lambda > 0``.
    n_samples : int, default 64
        Posterior draws behind :meth:`predict_proba`.
    seed : int, default 0
        Seed of the draws behind :meth:`predict_proba`.

    Notes
    -----
    :meth:`select` with a generator samples the arm (Thompson sampling);
    :meth:`predict_proba` estimates ``P(arm k is best | x)`` by Monte Carlo
    from ``n_samples`` draws, the same draws for every row and every call, so
    it is deterministic and a row's probabilities do not depend on the other
    rows of the batch. Propensities are accepted and ignored.
    """

    def __init__(
        self, n_arms: int, *, v: float = 1.0, ridge: float = 1.0, n_samples: int = 64, seed: int = 0
    ) -> None:
        super().__init__(n_arms, seed=seed)
        self.v = v
        self.ridge = ridge
        self.n_samples = n_samples

    def _check_params(self) -> None:
        super()._check_params()
        check_real("v", self.v, 0.0)
        check_integer("n_samples", self.n_samples, low=1)

    def _posterior(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and scales of ``x^T theta_k`` on :func:`decision_rows` of ``X``, shape ``(n, K)`` each."""
        mean, var = self._moments(decision_rows(X))
        sd = self.v * np.sqrt(var)
        self._check_scores(mean, sd)
        return mean, sd

    def select(
        self, X: Any, rng: np.random.Generator | None = None, available: Any = None, *, check_input: bool = True
    ) -> np.ndarray:
        """Choose one arm per row.

        With ``rng``: Thompson sampling, ``argmax_k x^T tilde theta_k`` for one
        posterior draw per arm and row. Without: the arm most often best under
        :meth:`predict_proba` (ties to the lowest id).
        """
        if rng is None:
            return super().select(X, None, available, check_input=check_input)
        X, mask = self._inputs(X, available, check_input)
        mean, sd = self._posterior(X)
        draws = mean + sd * rng.standard_normal(mean.shape)
        return np.argmax(np.where(mask, draws, -np.inf), axis=1)

    def _predict_proba(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        z = np.random.default_rng(self.seed).standard_normal((self.n_samples, self.n_arms))
        mean, sd = self._posterior(X)
        counts = np.zeros(mask.shape)
        for row in z:  # one posterior draw for all rows at a time
            counts += argmax_distribution(mean + sd * row, mask)
        return counts / self.n_samples
