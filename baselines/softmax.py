"""EXP3 (Auer, Cesa-Bianchi, Freund & Schapire, 2002): exponential weights for adversarial bandits.

With log-weights ``w_k`` and exploration ``gamma``, the policy over the
available arms ``A(x)`` is

.. math::

    \\pi(k) = (1 - \\gamma) \\frac{e^{w_k}}{\\sum_{j \\in A(x)} e^{w_j}} + \\frac{\\gamma}{|A(x)|},

and each observation ``(a, r, p)`` adds the importance-weighted estimate

.. math::

    w_a \\leftarrow w_a + \\frac{\\gamma}{K} \\frac{\\tilde r}{p},

where ``p`` is the propensity the action was logged with and ``tilde r`` the
reward rescaled to ``[0, 1]``. EXP3 assumes rewards in ``[0, 1]``; banditspec
rewards (speed-ups, negative latencies) are not, so ``tilde r = (r - m) / (M - m)``
uses the running minimum ``m`` and maximum ``M`` of all rewards seen so far,
this one included (kept in the fitted state; ``tilde r = 1/2`` while
``M = m``; :mod:`banditspec.baselines._scaling`). Rows are processed in order, so one batch gives the same state as
its rows fed one at a time. Earlier estimates are not rescaled when the range
grows. Features are ignored.
"""

from __future__ import annotations

import numpy as np

from banditspec.bandits.policy import Policy, masked_softmax
from banditspec.bandits.validation import check_real
from banditspec.baselines._scaling import running_range, scaled

__all__ = ["Exp3"]


class Exp3(Policy):
    """Context-free EXP3 with importance-weighted reward estimates.

    Parameters
    ----------
    n_arms : int
        Number of arms ``K``.
    gamma : float, default 0.1
        Exploration share and learning rate, in ``(0, 1]``.
    seed : int, default 0
        Unused (the distribution is deterministic); kept for the common interface.

    Attributes
    ----------
    log_weights_ : np.ndarray, shape (K,)
        Log-weights ``w_k``.
    reward_min_, reward_max_ : float
        Running range of the observed rewards (``+inf``/``-inf`` before any).
    """

    def __init__(self, n_arms: int, *, gamma: float = 0.1, seed: int = 0) -> None:
        super().__init__(n_arms, seed=seed)
        self.gamma = gamma

    def _check_params(self) -> None:
        super()._check_params()
        check_real("gamma", self.gamma, 0.0, 1.0, open_low=True)

    def _init_state(self, n_features: int) -> None:
        self.n_features_ = n_features
        self.log_weights_ = np.zeros(self.n_arms)
        self.reward_min_ = np.inf
        self.reward_max_ = -np.inf

    def _update(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray) -> None:
        low, high = running_range(rewards, rewards, (self.reward_min_, self.reward_max_))
        gains = np.bincount(actions, weights=scaled(rewards, low, high) / propensities, minlength=self.n_arms)
        self.log_weights_ = self.log_weights_ + self.gamma / self.n_arms * gains
        self.reward_min_, self.reward_max_ = float(low[-1]), float(high[-1])

    def _predict_proba(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        exploit = masked_softmax(np.broadcast_to(self.log_weights_, mask.shape), mask)
        return (1.0 - self.gamma) * exploit + self.gamma * mask / mask.sum(axis=1, keepdims=True)

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "log_weights": self.log_weights_,
            "reward_range": np.array([self.reward_min_, self.reward_max_]),
        }

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        self.log_weights_ = np.array(state["log_weights"], dtype=float)
        self.reward_min_, self.reward_max_ = (float(v) for v in state["reward_range"])
