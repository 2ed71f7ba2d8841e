"""Base class of the baselines that learn nothing (fixed arm, random, oracle)."""

from __future__ import annotations

import numpy as np

from banditspec.bandits.policy import Policy

__all__ = ["StatelessPolicy"]


class StatelessPolicy(Policy):
    """A policy whose fit only records the feature dimension ``n_features_``."""

    def _init_state(self, n_features: int) -> None:
        self.n_features_ = n_features

    def _update(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray) -> None:
        """Nothing to learn."""

    def _state(self) -> dict[str, np.ndarray]:
        return {}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        """No fitted arrays besides ``n_features_``."""
