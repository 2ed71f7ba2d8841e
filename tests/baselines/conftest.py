"""Shared synthetic data for the baseline learners' tests."""

from dataclasses import dataclass

import numpy as np
import pytest


@dataclass
class LinearBandit:
    """A linear contextual bandit: reward of arm k on x is x . weights[k] + noise."""

    weights: np.ndarray  # (K, d)
    noise: float = 0.1

    @property
    def n_arms(self) -> int:
        return self.weights.shape[0]

    def contexts(self, n: int, rng: np.random.Generator) -> np.ndarray:
        X = rng.normal(size=(n, self.weights.shape[1]))
        X[:, 0] = 1.0  # a bias feature
        return X

    def table(self, X: np.ndarray) -> np.ndarray:
        """Expected reward of every arm, (n, K)."""
        return X @ self.weights.T

    def logged(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """n rows logged by the uniform policy: X, actions, rewards, propensities."""
        rng = np.random.default_rng(seed)
        X = self.contexts(n, rng)
        actions = rng.integers(0, self.n_arms, n)
        rewards = self.table(X)[np.arange(n), actions] + self.noise * rng.normal(size=n)
        return X, actions, rewards, np.full(n, 1.0 / self.n_arms)


@pytest.fixture(scope="session")
def bandit() -> LinearBandit:
    """Four arms on five features (bias + four Gaussians)."""
    return LinearBandit(np.random.default_rng(12345).normal(size=(4, 5)))
