"""A complete custom learner: per-arm ridge regression of the reward, played through a softmax."""

import numpy as np

from banditspec.bandits.policy import POLICIES, Policy, masked_softmax


class SoftmaxRidge(Policy):
    """``pi(k | x) ∝ exp(z·theta_k / temperature)``, ``z = (x, 1)``, ``theta_k = (I + Z_k'Z_k)^-1 Z_k'r_k``."""

    def __init__(self, n_arms: int, *, temperature: float = 0.1, seed: int = 0) -> None:
        super().__init__(n_arms, seed=seed)
        self.temperature = temperature

    def _check_params(self) -> None:
        super()._check_params()
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")

    def _init_state(self, n_features: int) -> None:
        self.n_features_ = n_features
        self.A_ = np.tile(np.eye(n_features + 1), (self.n_arms, 1, 1))  # per-arm Gram matrix + I
        self.b_ = np.zeros((self.n_arms, n_features + 1))

    def _update(self, X, actions, rewards, propensities) -> None:
        Z = np.hstack([X, np.ones((len(X), 1))])
        np.add.at(self.A_, actions, Z[:, :, None] * Z[:, None, :])
        np.add.at(self.b_, actions, Z * rewards[:, None])

    def _predict_proba(self, X, mask):
        theta = np.linalg.solve(self.A_, self.b_[..., None])[..., 0]
        return masked_softmax(np.hstack([X, np.ones((len(X), 1))]) @ theta.T / self.temperature, mask)

    def _state(self):
        return {"A": self.A_, "b": self.b_}

    def _load_state(self, state):
        self.A_, self.b_ = state["A"], state["b"]


POLICIES.register("softmax-ridge", SoftmaxRidge)
