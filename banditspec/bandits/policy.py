"""The :class:`Policy` base class every learner implements, and the policy registry.

Conventions follow scikit-learn: hyper-parameters are set in ``__init__`` and
stored unchanged under the same names; fitted state lives in attributes ending
in ``_``. The base class validates every input *before* any state changes, so a
rejected call leaves the policy exactly as it was.

A subclass implements four hooks:

``_init_state(n_features)``
    create fitted state for ``n_features`` features.
``_update(X, actions, rewards, propensities)``
    learn from one validated batch (``partial_fit``).
``_predict_proba(X, mask)``
    an ``(n, K)`` distribution that puts zero mass where ``mask`` is False.
``_state()`` / ``_load_state(state)``
    fitted arrays by name, for saving (numpy arrays only).

``_fit`` defaults to ``_init_state`` followed by ``_update``; learners that
train in epochs (REINFORCE) override it.
"""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from safetensors.numpy import load_file, save_file

from banditspec.bandits.registry import Registry

__all__ = [
    "POLICIES",
    "Policy",
    "PolicyFileError",
    "argmax_distribution",
    "masked_softmax",
]

POLICIES: Registry[Policy] = Registry("banditspec.policies", "policy")

_FORMAT = "banditspec-policy/1"


class PolicyFileError(ValueError):
    """A file or folder that is not a saved banditspec policy."""


def masked_softmax(logits: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``logits`` over the entries where ``mask`` is True.

    Parameters
    ----------
    logits : np.ndarray
        Shape ``(n, K)``, finite.
    mask : np.ndarray
        Boolean, shape ``(n, K)``, at least one True per row.

    Returns
    -------
    np.ndarray
        ``p[i, k] = exp(z[i, k]) / sum_{j: mask[i, j]} exp(z[i, j])`` where
        ``mask[i, k]``, else 0.
    """
    z = np.where(mask, logits, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def argmax_distribution(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """One-hot rows at the best available arm (ties to the lowest id).

    Parameters
    ----------
    scores : np.ndarray
        Shape ``(n, K)``.
    mask : np.ndarray
        Boolean, shape ``(n, K)``, at least one True per row.
    """
    best = np.argmax(np.where(mask, scores, -np.inf), axis=1)
    out = np.zeros(scores.shape, dtype=float)
    out[np.arange(len(best)), best] = 1.0
    return out


class Policy(ABC):
    """A contextual-bandit learner over ``n_arms`` arms.

    Parameters
    ----------
    n_arms : int
        Number of arms ``K``; actions are ``0 .. K-1``.
    seed : int, default 0
        Seed of every random choice the learner makes while fitting.

    Attributes
    ----------
    n_features_ : int
        Feature dimension seen at the first fit.
    """

    #: True for policies that need the true rewards at decision time (the oracle).
    requires_rewards: ClassVar[bool] = False

    def __init__(self, n_arms: int, *, seed: int = 0) -> None:
        self.n_arms = n_arms
        self.seed = seed

    # -- scikit-learn style parameters -------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p for p in signature.parameters if p != "self"]

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters by name, as passed to ``__init__``."""
        return {name: getattr(self, name) for name in self._param_names()}

    def is_fitted(self) -> bool:
        """Whether the policy has learned from data."""
        return hasattr(self, "n_features_")

    # -- validation ----------------------------------------------------------------------
    def _check_params(self) -> None:
        if not isinstance(self.n_arms, (int, np.integer)) or self.n_arms < 1:
            raise ValueError(f"n_arms must be a positive integer, got {self.n_arms!r}")

    def _check_X(self, X: Any, *, fitting: bool = False, refit: bool = False) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-d array of shape (n, d), got shape {X.shape}")
        if X.shape[0] == 0:
            raise ValueError("X is empty: need at least one row")
        if not np.isfinite(X).all():
            raise ValueError("X contains NaN or infinite values")
        expected = None if refit else getattr(self, "n_features_", None)
        if expected is not None and X.shape[1] != expected:
            raise ValueError(f"X has {X.shape[1]} features but the policy was fitted with {expected} features")
        if expected is None and not fitting:
            raise ValueError(f"{type(self).__name__} is not fitted yet: call fit or partial_fit first")
        return X

    def _check_batch(
        self, X: Any, actions: Any, rewards: Any, propensities: Any, *, refit: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if refit or not self.is_fitted():
            self._check_params()
        X = self._check_X(X, fitting=True, refit=refit)
        n = X.shape[0]
        actions = np.asarray(actions)
        if actions.shape != (n,):
            raise ValueError(f"actions must have shape ({n},), got {actions.shape}")
        if not np.issubdtype(actions.dtype, np.integer):
            if not np.all(np.equal(np.mod(actions, 1), 0)):
                raise ValueError("actions must be integer arm ids")
            actions = actions.astype(np.int64)
        if actions.min() < 0 or actions.max() >= self.n_arms:
            raise ValueError(f"actions must be arm ids in [0, {self.n_arms}), got values in "
                             f"[{actions.min()}, {actions.max()}]")
        rewards = np.asarray(rewards, dtype=float)
        if rewards.shape != (n,):
            raise ValueError(f"rewards must have shape ({n},), got {rewards.shape}")
        if not np.isfinite(rewards).all():
            raise ValueError("rewards contain NaN or infinite values")
        if propensities is None:
            return X, actions.astype(np.int64, copy=False), rewards, np.full(n, 1.0 / self.n_arms)
        propensities = np.asarray(propensities, dtype=float)
        if propensities.shape != (n,):
            raise ValueError(f"propensities must have shape ({n},), got {propensities.shape}")
        if not (propensities.min() > 0 and propensities.max() <= 1):
            raise ValueError("propensities must lie in (0, 1]")
        return X, actions.astype(np.int64, copy=False), rewards, propensities

    def _check_mask(self, available: Any, n: int) -> np.ndarray:
        if available is None:
            return np.ones((n, self.n_arms), dtype=bool)
        mask = np.asarray(available, dtype=bool)
        if mask.shape == (self.n_arms,):
            mask = np.broadcast_to(mask, (n, self.n_arms))
        if mask.shape != (n, self.n_arms):
            raise ValueError(f"available must have shape ({self.n_arms},) or ({n}, {self.n_arms}), got {mask.shape}")
        if not mask.any(axis=1).all():
            raise ValueError("available leaves some query with no arm: at least one arm per row must be available")
        return mask

    # -- public API ----------------------------------------------------------------------
    def fit(self, X: Any, actions: Any, rewards: Any, propensities: Any = None) -> Policy:
        """Learn from logged data from scratch.

        Parameters
        ----------
        X : array-like, shape (n, d)
            Context features.
        actions : array-like of int, shape (n,)
            Logged arm ids.
        rewards : array-like, shape (n,)
            Observed rewards of the logged arms.
        propensities : array-like, shape (n,), optional
            Probability with which the logging policy chose each action, in
            (0, 1]; uniform ``1/K`` if omitted.
        """
        X, actions, rewards, propensities = self._check_batch(X, actions, rewards, propensities, refit=True)
        self._fit(X, actions, rewards, propensities)
        return self

    def partial_fit(
        self, X: Any, actions: Any, rewards: Any, propensities: Any = None, *, check_input: bool = True
    ) -> Policy:
        """Update with one more batch (online learning); same arguments as :meth:`fit`.

        ``check_input=False`` skips validation (as scikit-learn's
        ``check_input``) for callers whose inputs are already known to be
        well-formed, such as a router's hot loop; malformed input then gives
        undefined results instead of a ``ValueError``.
        """
        if check_input:
            X, actions, rewards, propensities = self._check_batch(X, actions, rewards, propensities)
        else:
            X = np.asarray(X, dtype=float)
            actions = np.asarray(actions, dtype=np.int64)
            rewards = np.asarray(rewards, dtype=float)
            propensities = (np.full(len(actions), 1.0 / self.n_arms) if propensities is None
                            else np.asarray(propensities, dtype=float))
        if not self.is_fitted():
            self._init_state(X.shape[1])
        self._update(X, actions, rewards, propensities)
        return self

    def _inputs(self, X: Any, available: Any, check_input: bool) -> tuple[np.ndarray, np.ndarray]:
        """``X`` as floats and the ``(n, K)`` availability mask, validated unless ``check_input`` is False."""
        if check_input:
            X = self._check_X(X)
            return X, self._check_mask(available, X.shape[0])
        X = np.asarray(X, dtype=float)
        shape = (X.shape[0], self.n_arms)
        return X, np.ones(shape, dtype=bool) if available is None else np.broadcast_to(np.asarray(available, bool), shape)

    def predict_proba(self, X: Any, available: Any = None, *, check_input: bool = True) -> np.ndarray:
        """Probability of choosing each arm, shape ``(n, K)``; rows sum to 1.

        Parameters
        ----------
        X : array-like, shape (n, d)
        available : array-like of bool, shape (K,) or (n, K), optional
            Arms that may be chosen; unavailable arms get probability 0.
        check_input : bool, default True
            Validate ``X`` and ``available`` (see :meth:`partial_fit`).
        """
        return self._predict_proba(*self._inputs(X, available, check_input))

    def select(
        self, X: Any, rng: np.random.Generator | None = None, available: Any = None, *, check_input: bool = True
    ) -> np.ndarray:
        """Choose one arm per row.

        With ``rng`` the arm is sampled from :meth:`predict_proba`; without it
        the most probable arm is taken (ties to the lowest id).
        """
        proba = self.predict_proba(X, available, check_input=check_input)
        if rng is None:
            return np.argmax(proba, axis=1)
        # inverse CDF: arm k with cum[k-1] <= v < cum[k], so an arm of probability 0 is never drawn
        # (not even at u == 0), and scaling by the row total absorbs rounding in the last cumulative sum
        cum = np.cumsum(proba, axis=1)
        v = rng.random(proba.shape[0])[:, None] * cum[:, -1:]
        return (cum <= v).sum(axis=1)

    # -- persistence ---------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Save to the folder ``path`` (``policy.json`` + ``state.safetensors``); no pickle."""
        if not self.is_fitted():
            raise ValueError(f"{type(self).__name__} is not fitted: nothing to save")
        name = POLICIES.name_of(type(self))
        if name is None:
            raise ValueError(f"{type(self).__name__} is not registered: POLICIES.register(name, cls) first")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: np.ascontiguousarray(v) for k, v in self._state().items()}
        state["n_features_"] = np.array(self.n_features_, dtype=np.int64)
        save_file(state, str(path / "state.safetensors"))
        meta = {"format": _FORMAT, "policy": name, "params": self.get_params()}
        tmp = path / "policy.json.tmp"
        tmp.write_text(json.dumps(meta, indent=2))
        tmp.replace(path / "policy.json")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Load a policy saved by :meth:`save`.

        Called on :class:`Policy` it builds whichever registered learner the
        folder holds; called on a subclass it also checks the kind.

        Raises
        ------
        PolicyFileError
            If ``path`` is not a saved policy.
        """
        path = Path(path)
        meta_file = path / "policy.json"
        try:
            meta = json.loads(meta_file.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise PolicyFileError(f"{path} is not a saved banditspec policy: cannot read {meta_file} ({error})") from error
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise PolicyFileError(f"{meta_file} is not a banditspec policy file: expected format {_FORMAT!r}")
        try:
            policy_cls = POLICIES.get(meta["policy"])
        except KeyError as error:
            raise PolicyFileError(str(error)) from error
        if cls is not Policy and not issubclass(policy_cls, cls):
            raise PolicyFileError(f"{path} holds a {meta['policy']!r} policy, not a {cls.__name__}")
        try:
            state = load_file(str(path / "state.safetensors"))
        except Exception as error:  # safetensors raises several unrelated types
            raise PolicyFileError(f"cannot read {path / 'state.safetensors'}: {error}") from error
        policy = policy_cls(**meta["params"])
        policy.n_features_ = int(state.pop("n_features_"))
        policy._load_state(state)
        return policy

    # -- hooks ---------------------------------------------------------------------------
    def _fit(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray) -> None:
        self._init_state(X.shape[1])
        self._update(X, actions, rewards, propensities)

    @abstractmethod
    def _init_state(self, n_features: int) -> None:
        """Create fitted state; must set ``self.n_features_``."""

    @abstractmethod
    def _update(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray) -> None:
        """Learn from one validated batch."""

    @abstractmethod
    def _predict_proba(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Distribution over arms, ``(n, K)``, zero where ``mask`` is False."""

    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]:
        """Fitted arrays by name (``n_features_`` is saved by the base class)."""

    @abstractmethod
    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`_state` returned."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
