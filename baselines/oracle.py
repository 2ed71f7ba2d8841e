"""The oracle: the best arm of every query, chosen with full information.

It is not a learner but the upper reference of every comparison: given the
true reward of every arm on a query (an ``(n, K)`` reward table, as full
feedback or a simulator provides), it plays
``argmax_{k in A(x)} r_k(x)`` (ties to the lowest id). The share of the
oracle's reward a learner reaches, and its regret against it, are computed
from these choices.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from banditspec.bandits.policy import argmax_distribution
from banditspec.baselines._stateless import StatelessPolicy

__all__ = ["Oracle"]


class Oracle(StatelessPolicy):
    """One-hot on the best available arm given the true rewards of every arm.

    Parameters
    ----------
    n_arms : int
        Number of arms ``K``.
    seed : int, default 0
        Unused; kept for the common interface.

    Notes
    -----
    ``fit`` and ``partial_fit`` only record ``n_features_``. Every prediction
    needs ``rewards``, the ``(n, K)`` table of true rewards of the queries.
    """

    requires_rewards: ClassVar[bool] = True

    def predict_proba(
        self, X: Any, available: Any = None, rewards: Any = None, *, check_input: bool = True
    ) -> np.ndarray:
        """One-hot rows at ``argmax_k rewards[i, k]`` over the available arms.

        Parameters
        ----------
        X : array-like, shape (n, d)
        available : array-like of bool, shape (K,) or (n, K), optional
        rewards : array-like, shape (n, K)
            True reward of every arm on every query; required.

        Raises
        ------
        ValueError
            If ``rewards`` is missing, mis-shaped or not finite.
        """
        X, mask = self._inputs(X, available, check_input)
        return argmax_distribution(self._check_rewards(rewards, X.shape[0]), mask)

    def select(
        self, X: Any, rng: np.random.Generator | None = None, available: Any = None, rewards: Any = None, *,
        check_input: bool = True,
    ) -> np.ndarray:
        """The best available arm per row (``rng`` is not needed: the choice is deterministic)."""
        return np.argmax(self.predict_proba(X, available, rewards, check_input=check_input), axis=1)

    def _check_rewards(self, rewards: Any, n: int) -> np.ndarray:
        if rewards is None:
            raise ValueError(f"Oracle needs rewards: pass the ({n}, {self.n_arms}) table of true rewards of every arm")
        table = np.asarray(rewards, dtype=float)
        if table.shape != (n, self.n_arms):
            raise ValueError(f"rewards must have shape ({n}, {self.n_arms}) (queries x arms), got {table.shape}")
        if not np.all(np.isfinite(table)):
            raise ValueError("rewards contain NaN or infinite values")
        return table

    def _predict_proba(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise ValueError("Oracle needs rewards: call predict_proba(X, available, rewards=table)")
