"""Replay of a :class:`~banditspec.bandits.data.LoggedDataset` as an environment.

A query is a distinct query id of the dataset, however many rows it has: a
bandit log has one row per query, a collection with full information ``K``
(one per arm). Queries are split into train and test by a hash of their id
(:func:`~banditspec.bandits.splits.split_of`), so all rows of a query land on
the same side and membership is the same for every seed; the seed only
shuffles the order of the queries within a split.

What the replay can answer for a query and an arm:

* the reward: from ``all_rewards`` (every arm's reward, on every row of the
  query) where logged, else the mean reward of the query's rows that logged
  that arm; a pair neither gives is counterfactual (use
  :mod:`banditspec.bandits.ope`);
* the seconds: from the per-arm columns ``wall_seconds@<arm name>`` where all
  of them are logged, else the mean ``wall_seconds`` of the rows that logged
  the arm; ``ar_wall_seconds`` is the AR time of the same query. Missing
  seconds are NaN, and speed-ups computed from them are unavailable (NaN).

A query's features and group are those of its first row.
"""

from __future__ import annotations

import numpy as np

from banditspec.bandits.arms import Arm, ArmSet
from banditspec.bandits.data import LoggedDataset, arm_seconds_column
from banditspec.bandits.env import Feedback, Queries
from banditspec.bandits.splits import SPLITS, split_of

__all__ = ["LoggedWorld", "arm_seconds_column"]


class LoggedWorld:
    """A logged dataset replayed as an :class:`~banditspec.bandits.env.Environment`.

    Parameters
    ----------
    dataset : LoggedDataset
        The logged rows; rows with the same query id must have the same features.
    test_fraction : float, default 0.2
        Expected share of the query ids held out as test queries, in (0, 1).

    Attributes
    ----------
    arms : ArmSet
        One generic :class:`~banditspec.bandits.arms.Arm` per dataset arm name.
    ids : np.ndarray
        The distinct query ids, sorted.
    """

    def __init__(self, dataset: LoggedDataset, *, test_fraction: float = 0.2) -> None:
        if not isinstance(dataset, LoggedDataset):
            raise ValueError(f"dataset must be a LoggedDataset, got {type(dataset).__name__}")
        if isinstance(test_fraction, bool) or not (isinstance(test_fraction, (int, float)) and 0 < test_fraction < 1):
            raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
        self.dataset = dataset
        self.test_fraction = float(test_fraction)
        self.arms = ArmSet(Arm(name) for name in dataset.arm_names)
        self.ids, first, query_of_row = np.unique(dataset.query_ids, return_index=True, return_inverse=True)
        query_of_row = query_of_row.ravel()
        differing = np.flatnonzero(np.any(dataset.X != dataset.X[first][query_of_row], axis=1))
        if len(differing):
            raise ValueError(f"rows of query id {dataset.query_ids[differing[0]]} have different features: "
                             "a query id must name one query")
        self._first = first
        self._is_test = np.array([split_of(int(i), self.test_fraction) == "test" for i in self.ids], dtype=bool)
        if dataset.all_rewards is not None:
            self._rewards = dataset.all_rewards[first]
        else:
            self._rewards = self._per_arm(dataset.rewards, query_of_row)
        names = [arm_seconds_column(a) for a in dataset.arm_names]
        if all(name in dataset.columns for name in names):
            self._seconds = np.column_stack([np.asarray(dataset.columns[c], dtype=float)[first] for c in names])
        elif "wall_seconds" in dataset.columns:
            self._seconds = self._per_arm(np.asarray(dataset.columns["wall_seconds"], dtype=float), query_of_row)
        else:
            self._seconds = np.full(self._rewards.shape, np.nan)
        self._ar_seconds = np.asarray(dataset.columns.get("ar_wall_seconds", np.full(len(dataset), np.nan)),
                                      dtype=float)[first]

    def _per_arm(self, values: np.ndarray, query_of_row: np.ndarray) -> np.ndarray:
        """Mean of ``values`` over each query's rows that logged each arm, shape ``(n_queries, K)``; NaN where none did."""
        shape = (len(self.ids), len(self.arms))
        sums, counts = np.zeros(shape), np.zeros(shape)
        np.add.at(sums, (query_of_row, self.dataset.actions), values)
        np.add.at(counts, (query_of_row, self.dataset.actions), 1.0)
        with np.errstate(invalid="ignore"):
            return sums / counts

    # -- splits --------------------------------------------------------------------------
    def split_ids(self, split: str, seed: int) -> np.ndarray:
        """The query ids of ``split``, in an order shuffled by ``seed`` (the set is the same for every seed)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        ids = self.ids[self._is_test == (split == "test")]
        return ids[np.random.default_rng([int(seed), 0x106]).permutation(len(ids))]

    def split_size(self, split: str, seed: int = 0) -> int:
        """Number of queries in ``split`` (the same for every seed)."""
        return len(self.split_ids(split, seed))

    def queries(self, n: int, *, split: str, seed: int) -> Queries:
        """The first ``n`` queries of ``split`` in ``seed``'s order; ids are the dataset's query ids.

        Raises
        ------
        ValueError
            If the split has fewer than ``n`` queries.
        """
        ids = self.split_ids(split, seed)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 < n <= len(ids):
            raise ValueError(f"n must be an integer in [1, {len(ids)}] (the {split} split holds {len(ids)} of the "
                             f"dataset's {len(self.ids)} query ids at test_fraction {self.test_fraction}), got {n!r}")
        ids = ids[:n]
        rows = self._first[np.searchsorted(self.ids, ids)]
        groups = None if self.dataset.groups is None else self.dataset.groups[rows]
        return Queries(ids=ids.astype(np.int64), X=self.dataset.X[rows], groups=groups)

    def _positions(self, queries: Queries) -> np.ndarray:
        ids = np.asarray(queries.ids)
        positions = np.searchsorted(self.ids, ids)
        known = np.issubdtype(ids.dtype, np.integer) and np.all(positions < len(self.ids))
        if not known or not np.array_equal(self.ids[positions], ids):
            raise ValueError("queries.ids must be query ids of this dataset, from this world's queries()")
        return positions

    # -- feedback ------------------------------------------------------------------------
    def step(self, queries: Queries, actions: np.ndarray, *, seed: int = 0) -> Feedback:
        """The logged outcome of arm ``actions[i]`` on query ``i``; ``seed`` is unused (replay).

        Raises
        ------
        ValueError
            If some query's reward for its action was never logged: estimate
            such a policy off-policy with :mod:`banditspec.bandits.ope` instead.
        """
        positions = self._positions(queries)
        actions = np.asarray(actions)
        if actions.shape != positions.shape or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(f"actions must be integer arm ids of shape {positions.shape}, "
                             f"got {actions.dtype} {actions.shape}")
        if len(actions) and (actions.min() < 0 or actions.max() >= len(self.arms)):
            raise ValueError(f"actions must be arm ids in [0, {len(self.arms)})")
        rewards = self._rewards[positions, actions]
        if np.isnan(rewards).any():
            i = int(np.flatnonzero(np.isnan(rewards))[0])
            raise ValueError(
                f"the reward of arm {self.arms.names[actions[i]]!r} on query {queries.ids[i]} was never logged "
                "(bandit feedback only): evaluate such policies off-policy with banditspec.bandits.ope.evaluate"
            )
        return Feedback(rewards=rewards, seconds=self._seconds[positions, actions],
                        ar_seconds=self._ar_seconds[positions], actions=actions.astype(np.int64))

    def full_feedback(self, queries: Queries, *, seed: int = 0) -> Feedback | None:
        """Every arm's logged reward (and seconds, NaN where not logged); ``None`` where one was never logged."""
        positions = self._positions(queries)
        rewards = self._rewards[positions]
        if np.isnan(rewards).any():
            return None
        return Feedback(rewards=rewards, seconds=self._seconds[positions], ar_seconds=self._ar_seconds[positions])
