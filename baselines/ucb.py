"""UCB1 (Auer, Cesa-Bianchi & Fischer, 2002): context-free upper confidence bounds over the arms.

With ``n_k`` observations of arm ``k``, mean reward ``mu_k`` and ``t = sum_k n_k``,
the policy plays the available arm of highest score

.. math::

    s_k = \\mu_k + \\alpha\\, (M - m) \\sqrt{\\frac{2 \\ln t}{n_k}},

an arm never observed first (``s_k = +inf``; ties to the lowest id), so on a
fresh stream it tries each available arm once and then plays the best bound.
UCB1 is stated for rewards in ``[0, 1]``; ``M - m``, the range of the rewards
seen so far, scales the bonus to the reward's units (zero while every reward
was equal), which makes the choice invariant to any increasing affine change
of the units. ``alpha = 1`` is UCB1.

Features are ignored, as are propensities (the means are unweighted, as in
the original algorithm); :meth:`~banditspec.bandits.policy.Policy.partial_fit_full`
counts every scored arm as one observation.
"""

from __future__ import annotations

import numpy as np

from banditspec.bandits.policy import Policy, argmax_distribution
from banditspec.bandits.validation import check_real

__all__ = ["UCB1"]


class UCB1(Policy):
    """Context-free UCB1 over the available arms; deterministic (one-hot ``predict_proba``).

    Parameters
    ----------
    n_arms : int
        Number of arms ``K``.
    alpha : float, default 1.0
        Width of the confidence bonus, ``>= 0`` (0 plays the best mean once every arm was tried).
    seed : int, default 0
        Unused (UCB1 is deterministic); kept for the common interface.

    Attributes
    ----------
    sums_ : np.ndarray, shape (K,)
        Sum of observed rewards per arm.
    counts_ : np.ndarray, shape (K,)
        Number of observations per arm.
    reward_min_, reward_max_ : float
        Range of the observed rewards.
    """

    def __init__(self, n_arms: int, *, alpha: float = 1.0, seed: int = 0) -> None:
        super().__init__(n_arms, seed=seed)
        self.alpha = alpha

    def _check_params(self) -> None:
        super()._check_params()
        check_real("alpha", self.alpha, 0.0)

    def _init_state(self, n_features: int) -> None:
        self.n_features_ = n_features
        self.sums_ = np.zeros(self.n_arms)
        self.counts_ = np.zeros(self.n_arms)
        self.reward_min_ = np.inf
        self.reward_max_ = -np.inf

    def _update(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray) -> None:
        self.sums_ = self.sums_ + np.bincount(actions, weights=rewards, minlength=self.n_arms)
        self.counts_ = self.counts_ + np.bincount(actions, minlength=self.n_arms)
        self.reward_min_ = min(self.reward_min_, float(rewards.min()))
        self.reward_max_ = max(self.reward_max_, float(rewards.max()))

    def scores(self) -> np.ndarray:
        """Upper confidence bounds ``s_k``, shape ``(K,)``; ``+inf`` for arms never observed."""
        seen = self.counts_ > 0
        n = np.where(seen, self.counts_, 1.0)
        bonus = self.alpha * (self.reward_max_ - self.reward_min_) * np.sqrt(2.0 * np.log(self.counts_.sum()) / n)
        return np.where(seen, self.sums_ / n + bonus, np.inf)

    def _predict_proba(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return argmax_distribution(np.broadcast_to(self.scores(), mask.shape), mask)

    def _state(self) -> dict[str, np.ndarray]:
        return {"sums": self.sums_, "counts": self.counts_,
                "reward_range": np.array([self.reward_min_, self.reward_max_])}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        self.sums_ = np.array(state["sums"], dtype=float)
        self.counts_ = np.array(state["counts"], dtype=float)
        self.reward_min_, self.reward_max_ = (float(v) for v in state["reward_range"])
