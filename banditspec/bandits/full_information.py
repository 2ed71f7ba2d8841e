"""Logged rows from every arm's measurement of every query: the full-information layout of a collection.

Each query becomes ``K`` rows, one per arm, each logged with propensity
``1/K``, so importance-weighted learners see the exact average over arms, and
``all_rewards`` holds the query's ``K`` rewards; the measurement columns keep
what any other reward needs to be recomputed later.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from banditspec.bandits.data import LoggedDataset, arm_seconds_column
from banditspec.bandits.env import Measurement, Queries
from banditspec.bandits.rewards import Reward, measurement_columns

__all__ = ["full_information_rows"]


def full_information_rows(queries: Queries, table: Sequence[Sequence[Measurement]], arm_names: Sequence[str],
                          reward: Reward, *, measured: bool) -> LoggedDataset:
    """Logged rows from every arm's measurement of every query (full information).

    Parameters
    ----------
    queries : Queries
        ``n`` queries with their texts.
    table : sequence of sequences of Measurement
        ``table[i][k]``: arm ``k``'s measurement of query ``i``.
    arm_names : sequence of str
        The ``K`` arm names, in column order.
    reward : Reward
        Turns the measurement columns into rewards.
    measured : bool
        Whether the seconds were measured (True) or priced by a latency model.

    Returns
    -------
    LoggedDataset
        ``n * K`` rows, one per (query, arm), each with propensity ``1/K``,
        ``all_rewards`` the query's ``K`` rewards, the measurement columns,
        ``wall_seconds@<arm>``, ``measured`` and ``prompt``.
    """
    flat = [m for row in table for m in row]
    K, n = len(arm_names), len(queries)
    columns = measurement_columns(flat)
    rewards = reward(columns).reshape(n, K)
    seconds = columns["wall_seconds"].reshape(n, K)
    extra = dict(columns)
    for k, name in enumerate(arm_names):
        extra[arm_seconds_column(name)] = np.repeat(seconds[:, k], K)
    extra["measured"] = np.full(n * K, measured)
    extra["prompt"] = np.repeat(np.asarray(queries.texts, dtype=object), K)
    return LoggedDataset(
        np.repeat(queries.ids, K),
        np.repeat(queries.X, K, axis=0),
        np.tile(np.arange(K), n),
        rewards.ravel(),
        np.full(n * K, 1.0 / K),
        arm_names=list(arm_names),
        all_rewards=np.repeat(rewards, K, axis=0),
        groups=None if queries.groups is None else np.repeat(np.asarray(queries.groups, dtype=object), K),
        columns=extra,
    )
