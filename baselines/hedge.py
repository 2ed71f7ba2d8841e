"""Hedge (Freund & Schapire, 1997): exponential weights over the arms, for full-information feedback.

Once the target's output is known, every arm can be scored on it (its exact
counterfactual acceptance), so each query reveals every arm's reward, not
only the served one's: the experts setting, where Hedge plays

.. math::

    \\pi(k) = \\frac{e^{w_k}}{\\sum_{j \\in A(x)} e^{w_j}}, \\qquad
    w_k \\leftarrow w_k - \\eta\\, \\ell_k, \\qquad \\ell_k = 1 - \\tilde r_k,

over the available arms ``A(x)``, with ``tilde r`` the reward rescaled to
``[0, 1]`` by the running range of every reward seen so far, this row's
included (:mod:`banditspec.baselines._scaling`). With ``T`` rows and ``K``
arms, ``eta = sqrt(8 ln K / T)`` bounds the regret against the best fixed arm
by ``sqrt(T ln K / 2)`` (in rescaled units).

**Arms not scored on a row** (unavailable there) are *sleeping experts*
(Freund, Schapire, Singer & Warmuth, 1997): they are charged the loss of the
distribution over the awake arms, ``sum_{k in A} pi(k) l_k``, so that their
standing against the awake arms stays what it was; rows are then processed in
order, each with the weights the previous ones left.

**Bandit feedback** (:meth:`~banditspec.bandits.policy.Policy.partial_fit`:
one served arm ``a`` per row, logged with propensity ``p``) uses the
importance-weighted loss estimate of EXP3 for losses (Lattimore & Szepesvári,
*Bandit Algorithms*, ch. 11), ``w_a <- w_a - eta (1 - tilde r) / p``: unbiased
for the full-information update, and non-negative, so it needs no forced
exploration (unlike :class:`~banditspec.baselines.softmax.Exp3`'s gain estimate).

Features are ignored: Hedge competes with the best single arm, which is a
weak reference where the best arm depends on the query.
"""

from __future__ import annotations

import numpy as np

from banditspec.bandits.policy import Policy, masked_softmax
from banditspec.bandits.validation import check_real
from banditspec.baselines._scaling import running_range, scaled

__all__ = ["Hedge"]


class Hedge(Policy):
    """Context-free Hedge with native full-information updates.

    Parameters
    ----------
    n_arms : int
        Number of arms ``K``.
    eta : float, default 0.1
        Learning rate ``> 0``, per unit of rescaled loss (``sqrt(8 ln K / T)``
        for a horizon of ``T`` rows is the textbook choice: 0.09 for 8 arms
        and 2,000 rows).
    seed : int, default 0
        Unused (the distribution is deterministic); kept for the common interface.

    Attributes
    ----------
    log_weights_ : np.ndarray, shape (K,)
        Log-weights ``w_k``: ``-eta`` times each arm's cumulative loss.
    reward_min_, reward_max_ : float
        Running range of the observed rewards (``+inf``/``-inf`` before any).
    """

    def __init__(self, n_arms: int, *, eta: float = 0.1, seed: int = 0) -> None:
        super().__init__(n_arms, seed=seed)
        self.eta = eta

    def _check_params(self) -> None:
        super()._check_params()
        check_real("eta", self.eta, 0.0, open_low=True)

    def _init_state(self, n_features: int) -> None:
        self.n_features_ = n_features
        self.log_weights_ = np.zeros(self.n_arms)
        self.reward_min_ = np.inf
        self.reward_max_ = -np.inf

    def _update(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray) -> None:
        low, high = running_range(rewards, rewards, (self.reward_min_, self.reward_max_))
        losses = np.bincount(actions, weights=(1.0 - scaled(rewards, low, high)) / propensities, minlength=self.n_arms)
        self.log_weights_ = self.log_weights_ - self.eta * losses
        self.reward_min_, self.reward_max_ = float(low[-1]), float(high[-1])

    def _update_full(self, X: np.ndarray, rewards: np.ndarray, mask: np.ndarray) -> None:
        low, high = running_range(np.where(mask, rewards, np.inf).min(axis=1),
                                  np.where(mask, rewards, -np.inf).max(axis=1), (self.reward_min_, self.reward_max_))
        losses = 1.0 - scaled(rewards, low[:, None], high[:, None])
        if mask.all():
            self.log_weights_ = self.log_weights_ - self.eta * losses.sum(axis=0)
        else:
            weights = self.log_weights_.copy()
            for loss, awake in zip(losses, mask):
                mixture = masked_softmax(weights[None], awake[None])[0] @ np.where(awake, loss, 0.0)
                weights -= self.eta * np.where(awake, loss, mixture)
            self.log_weights_ = weights
        self.reward_min_, self.reward_max_ = float(low[-1]), float(high[-1])

    def _predict_proba(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return masked_softmax(np.broadcast_to(self.log_weights_, mask.shape), mask)

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "log_weights": self.log_weights_,
            "reward_range": np.array([self.reward_min_, self.reward_max_]),
        }

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        self.log_weights_ = np.array(state["log_weights"], dtype=float)
        self.reward_min_, self.reward_max_ = (float(v) for v in state["reward_range"])
