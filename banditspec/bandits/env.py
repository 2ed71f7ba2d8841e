"""The environment protocol and the records that flow out of it.

An :class:`Environment` is a world in which arms are run on queries and
rewarded. Everything is batched: a :class:`Queries` batch holds ``n`` queries
with their feature matrix, :meth:`Environment.step` runs one chosen arm per
query (bandit feedback) and :meth:`Environment.full_feedback` gives every arm's
reward per query where the world can (full information).

A :class:`Measurement` is what one decode produced. Rewards are computed *from*
measurements by the functions in :mod:`banditspec.bandits.rewards`, never stored
instead of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from banditspec.bandits.arms import ArmSet
from banditspec.bandits.registry import Registry

__all__ = ["ENVIRONMENTS", "METRICS", "Environment", "Feedback", "Measurement", "Queries"]


#: Offline alignment scores a :class:`Measurement` may carry (:mod:`banditspec.speculative.alignment`).
METRICS = ("token_match", "lcs", "accepted_prefix")


@dataclass(frozen=True)
class Measurement:
    """What one decode of one query with one arm produced.

    Parameters
    ----------
    arm : str
        Name of the arm that decoded.
    new_tokens : int
        Tokens generated (excluding the prompt).
    wall_seconds : float
        Wall-clock time of the whole ``generate()`` call.
    target_calls : int
        Forward calls of the target model.
    accepted_tokens : int
        Draft tokens the target accepted.
    proposed_tokens : int
        Draft tokens proposed to the target.
    equals_ar : bool
        Whether the output equals the greedy AR output token for token.
    ar_wall_seconds : float or None
        Wall time of AR decoding of the same query measured in the same run;
        the reference for speed-up rewards.
    alignment : Mapping[str, float]
        Offline alignment scores between the arm's and the target's greedy
        outputs (``token_match``, ``lcs``, ``accepted_prefix``), each in [0, 1].
    cost : float
        The arm's cost hint, copied so that cost-penalised rewards need only
        the measurement.
    """

    arm: str
    new_tokens: int
    wall_seconds: float
    target_calls: int
    accepted_tokens: int = 0
    proposed_tokens: int = 0
    equals_ar: bool = True
    ar_wall_seconds: float | None = None
    alignment: Mapping[str, float] = field(default_factory=dict)
    cost: float = 0.0

    def __post_init__(self) -> None:
        if self.new_tokens < 0 or self.target_calls < 0:
            raise ValueError(f"Measurement.new_tokens and target_calls must be >= 0 (arm {self.arm!r})")
        if not np.isfinite(self.wall_seconds) or self.wall_seconds < 0:
            raise ValueError(f"Measurement.wall_seconds must be finite and >= 0, got {self.wall_seconds!r}")
        if self.accepted_tokens < 0 or self.proposed_tokens < self.accepted_tokens:
            raise ValueError(
                "Measurement.accepted_tokens must be in [0, proposed_tokens], "
                f"got {self.accepted_tokens} of {self.proposed_tokens} (arm {self.arm!r})"
            )
        if self.ar_wall_seconds is not None and (not np.isfinite(self.ar_wall_seconds) or self.ar_wall_seconds <= 0):
            raise ValueError(f"Measurement.ar_wall_seconds must be finite and > 0, got {self.ar_wall_seconds!r}")

    @property
    def tokens_per_call(self) -> float:
        """New tokens per target forward call (1.0 for AR)."""
        return self.new_tokens / max(self.target_calls, 1)


@dataclass(frozen=True)
class Queries:
    """A batch of ``n`` queries.

    Parameters
    ----------
    ids : np.ndarray
        Integer query ids, shape ``(n,)``, unique within the batch.
    X : np.ndarray
        Context features the policy sees, shape ``(n, d)``.
    texts : Sequence[str] or None
        Prompt texts, where the world has text.
    groups : np.ndarray or None
        A label per query for reporting only (the domain); never given to
        policies.
    """

    ids: np.ndarray
    X: np.ndarray
    texts: Sequence[str] | None = None
    groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        if self.X.ndim != 2 or self.X.shape[0] != n:
            raise ValueError(f"Queries.X must have shape (n={n}, d), got {self.X.shape}")
        for name in ("texts", "groups"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"Queries.{name} must have length n={n}, got {len(value)}")

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: np.ndarray | slice) -> Queries:
        """Return the queries at ``index`` (array of positions, mask or slice)."""
        positions = np.arange(len(self))[index]
        return Queries(
            ids=self.ids[positions],
            X=self.X[positions],
            texts=None if self.texts is None else [self.texts[i] for i in positions],
            groups=None if self.groups is None else self.groups[positions],
        )


@dataclass(frozen=True)
class Feedback:
    """Rewards for a batch of ``n`` queries.

    Bandit feedback has ``rewards`` of shape ``(n,)`` for the chosen
    ``actions``; full information has ``rewards`` of shape ``(n, K)`` and
    ``actions`` ``None``. ``seconds`` has the shape of ``rewards`` and holds the
    (measured or simulated) decoding time; ``ar_seconds`` ``(n,)`` the AR time of
    the same queries, so that speed-ups are ratios from one run.
    """

    rewards: np.ndarray
    seconds: np.ndarray
    ar_seconds: np.ndarray
    actions: np.ndarray | None = None
    measurements: Sequence[Measurement] | None = None

    def __post_init__(self) -> None:
        if self.seconds.shape != self.rewards.shape:
            raise ValueError(f"Feedback.seconds shape {self.seconds.shape} != rewards shape {self.rewards.shape}")
        if self.ar_seconds.shape != self.rewards.shape[:1]:
            raise ValueError(f"Feedback.ar_seconds must have shape (n,), got {self.ar_seconds.shape}")
        if self.actions is not None and self.actions.shape != self.rewards.shape:
            raise ValueError("Feedback.actions must match rewards' shape (n,) for bandit feedback")

    @property
    def full(self) -> bool:
        """Whether this is full-information feedback (every arm's reward)."""
        return self.rewards.ndim == 2


@runtime_checkable
class Environment(Protocol):
    """A world in which arms are run on queries and rewarded."""

    arms: ArmSet

    def queries(self, n: int, *, split: str, seed: int) -> Queries:
        """Draw ``n`` queries of ``split`` ("train" or "test"), deterministic under ``seed``."""
        ...

    def step(self, queries: Queries, actions: np.ndarray, *, seed: int = 0) -> Feedback:
        """Run arm ``actions[i]`` on query ``i``; bandit feedback."""
        ...

    def full_feedback(self, queries: Queries, *, seed: int = 0) -> Feedback | None:
        """Every arm's reward on every query, or ``None`` where the world cannot give it."""
        ...


#: Worlds by name, from the ``banditspec.envs`` entry points (``synthetic``, ``toy``, ...).
ENVIRONMENTS: Registry[Environment] = Registry("banditspec.envs", "environment")
