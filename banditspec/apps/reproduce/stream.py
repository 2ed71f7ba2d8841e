"""A stream of queries served one at a time, from full-information rows: order, learning loop, bookkeeping.

The environment is a table of every arm's counterfactual reward and seconds
per query (as collection computes them), so a learner's choice is scored
exactly without decoding it. :func:`drift_order` orders a pool of queries
into a stream whose group (domain) mix shifts halfway; :func:`serve` plays a
learner along it, learning from what its feedback kind reveals;
:func:`stream_curves` turns the choices into cumulative regret and running
speed-up over AR.

With ``r_tk`` the reward of arm ``k`` on the ``t``-th query, ``c_t`` the
chosen arm and ``s``/``s^AR`` the seconds,

.. math::

    R_T = \\sum_{t \\le T} \\big(\\max_k r_{tk} - r_{t c_t}\\big), \\qquad
    S_T = \\frac{\\sum_{t \\le T} s^{AR}_t}{\\sum_{t \\le T} s_{t c_t}}.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.env import Feedback
from banditspec.bandits.policy import Policy

__all__ = ["FEEDBACK", "Served", "StreamTable", "drift_order", "mixed_sample", "phase_metrics", "query_table", "serve",
           "stream_curves"]

#: What a learner learns from on the stream: nothing (trained offline, then frozen), the served arm's reward
#: (``partial_fit``), or every arm's counterfactual reward (``partial_fit_full``).
FEEDBACK = ("frozen", "bandit", "counterfactual")


@dataclass(frozen=True)
class StreamTable:
    """Full information on ``n`` queries: features, groups and every arm's reward and seconds."""

    X: np.ndarray
    groups: np.ndarray
    feedback: Feedback

    def subset(self, positions: np.ndarray) -> StreamTable:
        """The queries at ``positions``, in that order."""
        f = self.feedback
        return StreamTable(self.X[positions], self.groups[positions],
                           Feedback(rewards=f.rewards[positions], seconds=f.seconds[positions],
                                    ar_seconds=f.ar_seconds[positions]))


def query_table(data: LoggedDataset) -> StreamTable:
    """One row per query of a full-information collection (``K`` consecutive rows per query, in arm order).

    Raises
    ------
    ValueError
        If the rows are not in that layout or lack groups.
    """
    K = data.n_arms
    n, extra = divmod(len(data), K)
    if extra or not np.array_equal(data.actions, np.tile(np.arange(K), n)) or data.all_rewards is None:
        raise ValueError("a stream needs full-information rows: K consecutive rows per query, in arm order")
    if data.groups is None:
        raise ValueError("a drifting stream needs the groups (domains) of the queries")
    first = slice(None, None, K)
    feedback = Feedback(rewards=data.all_rewards[first], seconds=data.columns["wall_seconds"].reshape(n, K),
                        ar_seconds=data.columns["ar_wall_seconds"][first])
    return StreamTable(data.X[first], np.asarray(data.groups[first]).astype(str), feedback)


def mixed_sample(in_first: np.ndarray, n_first: int, n_other: int, rng: np.random.Generator) -> np.ndarray:
    """``n_first`` positions where ``in_first`` holds and ``n_other`` where it does not, without
    replacement, in a random order.

    Raises
    ------
    ValueError
        If either side has too few positions.
    """
    first, other = np.flatnonzero(in_first), np.flatnonzero(~in_first)
    if len(first) < n_first or len(other) < n_other:
        raise ValueError(f"the pool holds {len(first)} and {len(other)} queries of the two group sets; "
                         f"{n_first} and {n_other} are needed")
    picked = np.concatenate([rng.choice(first, n_first, replace=False), rng.choice(other, n_other, replace=False)])
    return rng.permutation(picked)


def drift_order(groups: np.ndarray, mix: float, seed: int) -> tuple[np.ndarray, list[str]]:
    """Every query of a pool once, in an order whose group mix shifts halfway.

    The sorted group names split into a first set (the first half of the
    names) and the others. The first ``n // 2`` queries of the stream are a
    share ``mix`` (rounded) from the first set and the rest from the others;
    the second half is every query left, so its mix mirrors the first's
    where the two sets are about equally large in the pool.

    Parameters
    ----------
    groups : np.ndarray
        Group of every pool query, shape ``(n,)``.
    mix : float
        Share of the first half drawn from the first group set, in ``[0.5, 1]``.
    seed : int
        Which queries go first, and the order within each half.

    Returns
    -------
    (np.ndarray, list of str)
        Pool positions in stream order, a permutation of ``0 .. n-1``, and the first set's groups.

    Raises
    ------
    ValueError
        For fewer than two groups, ``mix`` outside ``[0.5, 1]``, or a group set
        too small to fill its share of the first half.
    """
    groups = np.asarray(groups).astype(str)
    names = sorted(set(groups.tolist()))
    if len(names) < 2:
        raise ValueError(f"a drifting stream needs queries of at least two groups (domains), got {names}")
    if not 0.5 <= mix <= 1:
        raise ValueError(f"mix must lie in [0.5, 1], got {mix!r}")
    first = names[: len(names) // 2]
    in_first = np.isin(groups, first)
    before = len(groups) // 2
    main = round(before * mix)
    rng = np.random.default_rng([seed, 0xD81F7])
    head = mixed_sample(in_first, main, before - main, rng)
    tail = np.setdiff1d(np.arange(len(groups)), head)
    return np.concatenate([head, rng.permutation(tail)]), first


class Served(NamedTuple):
    """What a learner did on a stream: its choices, their propensities, and the seconds it spent."""

    choices: np.ndarray
    propensities: np.ndarray
    decision_seconds: float
    update_seconds: float


def serve(policy: Policy, feedback: str, X: np.ndarray, rewards: np.ndarray, rng: np.random.Generator | None) -> Served:
    """Play ``policy`` along the stream, one query at a time, learning after each as ``feedback`` allows.

    Parameters
    ----------
    policy : Policy
        Fitted unless it learns online; an online learner that has seen
        nothing yet plays a uniformly drawn arm. Learners with
        ``requires_rewards`` (the oracle) are shown the query's rewards.
    feedback : {"frozen", "bandit", "counterfactual"}
        See :data:`FEEDBACK`.
    X : np.ndarray
        Features, ``(n, d)``.
    rewards : np.ndarray
        Every arm's reward, ``(n, K)``.
    rng : np.random.Generator or None
        Draws the arm from the learner's distribution; ``None`` plays its most
        probable arm (ties to the lowest id).

    Returns
    -------
    Served
    """
    if feedback not in FEEDBACK:
        raise ValueError(f"feedback must be one of {FEEDBACK}, got {feedback!r}")
    if feedback == "frozen" and not policy.is_fitted():
        raise ValueError(f"a frozen {type(policy).__name__} must be fitted before the stream")
    n, K = rewards.shape
    choices, propensities = np.empty(n, dtype=np.int64), np.empty(n)
    deciding = updating = 0.0
    for t in range(n):
        x = X[t : t + 1]
        start = time.perf_counter()
        if not policy.is_fitted():
            proba = np.full(K, 1.0 / K)
        elif policy.requires_rewards:
            proba = policy.predict_proba(x, rewards=rewards[t : t + 1])[0]
        else:
            proba = policy.predict_proba(x)[0]
        arm = int(np.argmax(proba)) if rng is None else int(rng.choice(K, p=proba))
        middle = time.perf_counter()
        if feedback == "bandit":
            policy.partial_fit(x, [arm], rewards[t, arm : arm + 1], proba[arm : arm + 1])
        elif feedback == "counterfactual":
            policy.partial_fit_full(x, rewards[t : t + 1])
        deciding += middle - start
        updating += time.perf_counter() - middle
        choices[t], propensities[t] = arm, proba[arm]
    return Served(choices, propensities, deciding, updating)


def stream_curves(choices: np.ndarray, full: Feedback) -> dict[str, np.ndarray]:
    """Per query ``t`` of the stream: cumulative reward, cumulative regret and running speed-up over AR.

    Returns
    -------
    dict of str to np.ndarray
        ``cumulative_reward``, ``cumulative_regret`` (:math:`R_t`, against the
        per-query best arm) and ``running_speedup`` (:math:`S_t`), each ``(n,)``.
    """
    rows = np.arange(len(choices))
    chosen = full.rewards[rows, choices]
    return {
        "cumulative_reward": np.cumsum(chosen),
        "cumulative_regret": np.cumsum(full.rewards.max(axis=1) - chosen),
        "running_speedup": np.cumsum(full.ar_seconds) / np.cumsum(full.seconds[rows, choices]),
    }


def phase_metrics(choices: np.ndarray, full: Feedback, phases: Sequence[slice]) -> list[dict[str, float]]:
    """Regret (summed, as :math:`R`) and speed-up over AR of ``choices`` within each phase of the stream."""
    positions = np.arange(len(choices))
    best = full.rewards.max(axis=1)
    out = []
    for phase in phases:
        rows = positions[phase]
        picked = choices[rows]
        out.append({"regret": float((best[rows] - full.rewards[rows, picked]).sum()),
                    "speedup_vs_ar": float(full.ar_seconds[rows].sum() / full.seconds[rows, picked].sum())})
    return out
