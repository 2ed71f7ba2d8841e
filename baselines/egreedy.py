"""Epsilon-greedy learners: context-free running means and per-arm ridge regressions.

Both play the arm with the best estimated reward with probability
``1 - epsilon`` and an arm drawn uniformly from the available ones with
probability ``epsilon``:

.. math::

    \\pi(k \\mid x) = \\frac{\\epsilon}{|\\mathcal{A}(x)|} + (1 - \\epsilon)\\,
        [k = \\arg\\max_{j \\in \\mathcal{A}(x)} \\hat r_j(x)], \\qquad k \\in \\mathcal{A}(x),

where ``A(x)`` is the set of available arms (ties to the lowest id).
"""

from __future__ import annotations

import numpy as np

from banditspec.bandits.policy import Policy, argmax_distribution
from banditspec.bandits.validation import check_real
from banditspec.baselines._ridge import RidgePolicy, decision_rows

__all__ = ["ContextualGreedy", "EpsilonGreedy"]


def epsilon_greedy(scores: np.ndarray, mask: np.ndarray, epsilon: float) -> np.ndarray:
    """Epsilon-greedy distribution over the available arms.

    Parameters
    ----------
    scores : np.ndarray
        Estimated rewards, shape ``(n, K)``.
    mask : np.ndarray
        Boolean availability, shape ``(n, K)``, at least one True per row.
    epsilon : float
        Exploration probability in ``[0, 1]``.
    """
    uniform = mask / mask.sum(axis=1, keepdims=True)
    return epsilon * uniform + (1.0 - epsilon) * argmax_distribution(scores, mask)


class EpsilonGreedy(Policy):
    """Context-free epsilon-greedy on the running mean reward of each arm.

    Parameters
    ----------
    n_arms : int
        Number of arms ``K``.
    epsilon : float, default 0.1
        Exploration probability in ``[0, 1]``.
    seed : int, default 0
        Unused (the distribution is deterministic); kept for the common interface.

    Attributes
    ----------
    sums_ : np.ndarray, shape (K,)
        Sum of observed rewards per arm.
    counts_ : np.ndarray, shape (K,)
        Number of observations per arm.

    Notes
    -----
    Features are ignored. An arm never observed is scored with the mean of all
    observed rewards (a neutral prior, invariant to the reward scale).
    Propensities are accepted and ignored.
    """

    def __init__(self, n_arms: int, *, epsilon: float = 0.1, seed: int = 0) -> None:
        super().__init__(n_arms, seed=seed)
        self.epsilon = epsilon

    def _check_params(self) -> None:
        super()._check_params()
        check_real("epsilon", self.epsilon, 0.0, 1.0)

    def _init_state(self, n_features: int) -> None:
        self.n_features_ = n_features
        self.sums_ = np.zeros(self.n_arms)
        self.counts_ = np.zeros(self.n_arms)

    def _update(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray) -> None:
        self.sums_ += np.bincount(actions, weights=rewards, minlength=self.n_arms)
        self.counts_ += np.bincount(actions, minlength=self.n_arms)

    def means(self) -> np.ndarray:
        """Estimated reward per arm, shape ``(K,)``: ``sums_ / counts_``, the overall mean where unobserved."""
        prior = self.sums_.sum() / max(self.counts_.sum(), 1.0)
        return np.where(self.counts_ > 0, self.sums_ / np.maximum(self.counts_, 1.0), prior)

    def _predict_proba(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return epsilon_greedy(np.broadcast_to(self.means(), mask.shape), mask, self.epsilon)

    def _state(self) -> dict[str, np.ndarray]:
        return {"sums": self.sums_, "counts": self.counts_}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        self.sums_ = np.array(state["sums"], dtype=float)
        self.counts_ = np.array(state["counts"], dtype=float)


class ContextualGreedy(RidgePolicy):
    """Epsilon-greedy over per-arm ridge regressions ``r_k(x) = x^T theta_k``.

    Parameters
    ----------
    n_arms : int
        Number of arms ``K``.
    epsilon : float, default 0.1
        Exploration probability in ``[0, 1]``.
    ridge : float, default 1.0
        Ridge penalty ``lambda > 0``.
    seed : int, default 0
        Unused (the distribution is deterministic); kept for the common interface.

    Notes
    -----
    Shares its statistics and updates with :class:`~banditspec.baselines.linucb.LinUCB`
    (it is LinUCB with ``alpha = 0`` plus uniform exploration). Propensities
    are accepted and ignored.
    """

    def __init__(self, n_arms: int, *, epsilon: float = 0.1, ridge: float = 1.0, seed: int = 0) -> None:
        super().__init__(n_arms, seed=seed)
        self.epsilon = epsilon
        self.ridge = ridge

    def _check_params(self) -> None:
        super()._check_params()
        check_real("epsilon", self.epsilon, 0.0, 1.0)

    def _predict_proba(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        scores = decision_rows(X) @ self.theta_.T
        self._check_scores(scores[mask])
        return epsilon_greedy(scores, mask, self.epsilon)
