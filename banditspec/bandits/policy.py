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
``_update_full(X, rewards, mask)`` (optional)
    learn from validated full-information rows (``partial_fit_full``); the
    default expands each row into one logged row per available arm.
``_predict_proba(X, mask)``
    an ``(n, K)`` distribution that puts zero mass where ``mask`` is False.
``_state()`` / ``_load_state(state)``
    fitted arrays by name, for saving (numpy arrays only).

``_fit`` defaults to ``_init_state`` followed by ``_update``; learners that
train in epochs (REINFORCE) override it. ``_check_params`` (checking the
hyper-parameters, at construction, in :meth:`Policy.set_params` and before
every fit) and ``_state_shapes`` (what :meth:`Policy.load` expects in a file)
have defaults to extend.
"""

from __future__ import annotations

import inspect
from abc import ABCMeta, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from banditspec.bandits.persistence import PolicyFileError, StateShapes, check_state, read_policy, write_policy
from banditspec.bandits.registry import Registry
from banditspec.bandits.validation import arm_ids, availability_mask, check_integer, real_array

__all__ = [
    "POLICIES",
    "Policy",
    "PolicyFileError",
    "argmax_distribution",
    "masked_softmax",
]

POLICIES: Registry[Policy] = Registry("banditspec.policies", "policy")


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


class _CheckedOnConstruction(ABCMeta):
    """Metaclass of :class:`Policy`: checks the hyper-parameters once the outermost ``__init__`` has run."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        policy = super().__call__(*args, **kwargs)
        policy._check_params()
        return policy


class Policy(metaclass=_CheckedOnConstruction):
    """A contextual-bandit learner over ``n_arms`` arms.

    Hyper-parameters are checked when the learner is made (and again by
    :meth:`set_params` and before every :meth:`fit`): a bad value raises
    ``ValueError`` naming the parameter, whatever its type.

    Parameters
    ----------
    n_arms : int
        Number of arms ``K``; actions are ``0 .. K-1``.
    seed : int, default 0
        Seed of every random choice the learner makes while fitting, in
        ``[0, 2**64)``.

    Attributes
    ----------
    n_features_ : int
        Feature dimension seen at the first fit.
    """

    #: True for policies that need the true rewards at decision time (the oracle).
    requires_rewards: ClassVar[bool] = False
    #: Hyper-parameters the fitted state is built from: :meth:`set_params` cannot change them once fitted.
    _state_params: ClassVar[tuple[str, ...]] = ("n_arms",)

    def __init__(self, n_arms: int, *, seed: int = 0) -> None:
        self.n_arms = n_arms
        self.seed = seed

    # -- scikit-learn style parameters -------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p for p in signature.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyper-parameters by name, as passed to ``__init__``.

        Parameters
        ----------
        deep : bool, default True
            Accepted for scikit-learn compatibility (``sklearn.base.clone``);
            learners hold no nested estimators, so it changes nothing.
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Policy:
        """Set hyper-parameters by name and return the policy (scikit-learn convention).

        The new values are checked together with the others; if one is
        refused, none is set. On a fitted policy the parameters its fitted
        state is built from (``n_arms``, and for instance ``hidden`` of
        REINFORCE) cannot change: fit a ``sklearn.base.clone`` instead.

        Raises
        ------
        ValueError
            Naming an unknown parameter, a bad value, or a parameter the
            fitted state depends on.
        """
        names = self._param_names()
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no parameter {unknown[0]!r}; its parameters are {names}")
        before = self.get_params()
        try:
            for name, value in params.items():
                setattr(self, name, value)
            self._check_params()
            frozen = [name for name in self._state_params if self.is_fitted() and getattr(self, name) != before[name]]
            if frozen:
                raise ValueError(f"{frozen[0]} cannot change on a fitted {type(self).__name__}: its fitted state is "
                                 "built from it; fit sklearn.base.clone(policy).set_params(...) instead")
        except ValueError:
            for name, value in before.items():
                setattr(self, name, value)
            raise
        return self

    def is_fitted(self) -> bool:
        """Whether the policy has learned from data."""
        return hasattr(self, "n_features_")

    # -- validation ----------------------------------------------------------------------
    def _check_params(self) -> None:
        """Raise ValueError naming the first bad hyper-parameter; subclasses extend it (calling super)."""
        check_integer("n_arms", self.n_arms, low=1)
        check_integer("seed", self.seed, low=0, high=2**64 - 1)

    def _check_X(self, X: Any, *, fitting: bool = False, refit: bool = False) -> np.ndarray:
        X = real_array("X", X)
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
        actions = arm_ids("actions", actions, n, self.n_arms)
        rewards = real_array("rewards", rewards)
        if rewards.shape != (n,):
            raise ValueError(f"rewards must have shape ({n},), got {rewards.shape}")
        if not np.isfinite(rewards).all():
            raise ValueError("rewards contain NaN or infinite values")
        if propensities is None:
            return X, actions, rewards, np.full(n, 1.0 / self.n_arms)
        propensities = real_array("propensities", propensities)
        if propensities.shape != (n,):
            raise ValueError(f"propensities must have shape ({n},), got {propensities.shape}")
        if not (propensities.min() > 0 and propensities.max() <= 1):
            raise ValueError("propensities must lie in (0, 1]")
        return X, actions, rewards, propensities

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

    def partial_fit_full(self, X: Any, rewards: Any, available: Any = None) -> Policy:
        """Update with full-information (counterfactual) feedback: every arm's reward per row.

        Once the target's output is known, every arm can be scored on it
        (its exact acceptance along that output), so a row carries a reward
        for each available arm, not only for the arm that was served.

        The default feeds every available arm of a row to :meth:`partial_fit`
        as a logged action with propensity ``1 / (number of available arms)``,
        as if a uniform logger had tried each; learners that use the whole
        reward vector natively (Hedge) override :meth:`_update_full`.

        Parameters
        ----------
        X : array-like, shape (n, d)
            Context features.
        rewards : array-like, shape (n, K)
            Reward of every arm on every row; entries of unavailable arms are
            ignored (they may be NaN).
        available : array-like of bool, shape (K,) or (n, K), optional
            Arms that were scored on each row; all arms if omitted.

        Raises
        ------
        ValueError
            On malformed input, a row without an available arm, or a
            non-finite reward of an available arm; nothing is learned then.
        """
        if not self.is_fitted():
            self._check_params()
        X = self._check_X(X, fitting=True)
        n = X.shape[0]
        mask = availability_mask(available, n, self.n_arms)
        rewards = real_array("rewards", rewards)
        if rewards.shape != (n, self.n_arms):
            raise ValueError(f"rewards must have shape ({n}, {self.n_arms}), got {rewards.shape}")
        if not np.isfinite(rewards[mask]).all():
            raise ValueError("rewards of available arms contain NaN or infinite values")
        if not self.is_fitted():
            self._init_state(X.shape[1])
        self._update_full(X, np.where(mask, rewards, 0.0), mask)
        return self

    def _update_full(self, X: np.ndarray, rewards: np.ndarray, mask: np.ndarray) -> None:
        """Learn from validated full-information rows (see :meth:`partial_fit_full`)."""
        rows, actions = np.nonzero(mask)
        propensities = 1.0 / mask.sum(axis=1)[rows]
        self._update(X[rows], actions, rewards[rows, actions], propensities)

    def _inputs(self, X: Any, available: Any, check_input: bool) -> tuple[np.ndarray, np.ndarray]:
        """``X`` as floats and the ``(n, K)`` availability mask, validated unless ``check_input`` is False."""
        if check_input:
            X = self._check_X(X)
            return X, availability_mask(available, X.shape[0], self.n_arms)
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
        """Save to the folder ``path`` (``policy.json`` + ``state.safetensors``); no pickle.

        Raises
        ------
        ValueError
            If the policy is not fitted or not registered, a hyper-parameter
            cannot be written as JSON, or the fitted state is not finite.
        """
        if not self.is_fitted():
            raise ValueError(f"{type(self).__name__} is not fitted: nothing to save")
        name = POLICIES.name_of(type(self))
        if name is None:
            raise ValueError(f"{type(self).__name__} is not registered: POLICIES.register(name, cls) first")
        return write_policy(path, name, self.get_params(), self.n_features_, self._state())

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Load a policy saved by :meth:`save`.

        Called on :class:`Policy` it builds whichever registered learner the
        folder holds; called on a subclass it also checks the kind. Nothing
        is built from a file that fails a check: the format version, the
        hyper-parameters (those of the learner, each valid), and every fitted
        array (name, shape, dtype, finite; see :meth:`_state_shapes`).

        Raises
        ------
        PolicyFileError
            Naming the file and the field that is wrong.
        """
        saved = read_policy(path)
        try:
            policy_cls = POLICIES.get(saved.name)
        except (KeyError, ImportError) as error:
            raise PolicyFileError.field(saved.meta_file, "policy", str(error.args[0])) from error
        if cls is not Policy and not issubclass(policy_cls, cls):
            raise PolicyFileError.field(saved.meta_file, "policy", f"holds a {saved.name!r} policy, not a {cls.__name__}")
        policy = saved.construct(policy_cls, policy_cls._param_names())
        check_state(saved.state_file, saved.state, policy._state_shapes(saved.n_features))
        policy.n_features_ = saved.n_features
        try:
            policy._load_state(saved.state)
        except ValueError as error:
            raise PolicyFileError(f"{saved.state_file}: {error}") from error
        return policy

    def _state_shapes(self, n_features: int) -> StateShapes:
        """Name -> (shape, dtype) of every array :meth:`_state` returns once fitted on ``n_features`` features.

        :meth:`load` checks a file against it before the state is restored.
        The default reads it off a fresh state made by ``_init_state``;
        learners whose state is large, or whose fitted state holds more than
        a fresh one, override it, so that a corrupted ``n_features_`` is
        refused without building a state of the size it claims.
        """
        fresh = type(self)(**self.get_params())
        fresh._init_state(n_features)
        return {name: (np.shape(value), np.asarray(value).dtype) for name, value in fresh._state().items()}

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
