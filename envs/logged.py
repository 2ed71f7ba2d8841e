"""Replay of a :class:`~banditspec.bandits.data.LoggedDataset` as an environment.

Queries are dataset rows; a query's id is its row position. For each seed the
rows are shuffled once and split into a test part (the first
``round(test_fraction * N)`` rows of the shuffle) and a train part (the rest),
so the train and test queries of one seed never overlap.

What the replay can answer depends on what was logged:

* ``all_rewards`` (every arm's reward per row) makes :meth:`LoggedWorld.step`
  work for any actions and :meth:`LoggedWorld.full_feedback` return the table;
  without it, ``full_feedback`` is ``None`` and ``step`` only replays the
  logged actions (anything else is counterfactual: use :mod:`banditspec.bandits.ope`).
* Seconds: per-arm columns ``wall_seconds@<arm name>`` (one per arm) give every
  arm's time, ``wall_seconds`` the logged arm's time, ``ar_wall_seconds`` the
  AR time of the same query. Missing seconds are NaN, and speed-ups computed
  from them are unavailable (NaN).
"""

from __future__ import annotations

import numpy as np

from banditspec.bandits.arms import Arm, ArmSet
from banditspec.bandits.data import LoggedDataset, arm_seconds_column
from banditspec.bandits.env import Feedback, Queries

__all__ = ["LoggedWorld", "arm_seconds_column"]

_SPLITS = ("train", "test")


class LoggedWorld:
    """A logged dataset replayed as an :class:`~banditspec.bandits.env.Environment`.

    Parameters
    ----------
    dataset : LoggedDataset
        The logged rows.
    test_fraction : float, default 0.2
        Share of the rows held out as test queries for every seed, in (0, 1).

    Attributes
    ----------
    arms : ArmSet
        One generic :class:`~banditspec.bandits.arms.Arm` per dataset arm name.
    """

    def __init__(self, dataset: LoggedDataset, *, test_fraction: float = 0.2) -> None:
        if not isinstance(dataset, LoggedDataset):
            raise ValueError(f"dataset must be a LoggedDataset, got {type(dataset).__name__}")
        if not (isinstance(test_fraction, (int, float)) and 0.0 < test_fraction < 1.0):
            raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
        if len(dataset) < 2:
            raise ValueError(f"dataset needs at least 2 rows to split into train and test, got {len(dataset)}")
        self.dataset = dataset
        self.test_fraction = float(test_fraction)
        self.arms = ArmSet(Arm(name) for name in dataset.arm_names)
        n = len(dataset)
        self._all_seconds = None
        names = [arm_seconds_column(a) for a in dataset.arm_names]
        if all(name in dataset.columns for name in names):
            self._all_seconds = np.column_stack([np.asarray(dataset.columns[c], dtype=float) for c in names])
        self._ar_seconds = np.asarray(dataset.columns.get("ar_wall_seconds", np.full(n, np.nan)), dtype=float)
        self._logged_seconds = np.asarray(dataset.columns.get("wall_seconds", np.full(n, np.nan)), dtype=float)

    # -- splits --------------------------------------------------------------------------
    def split_rows(self, split: str, seed: int) -> np.ndarray:
        """Row positions of ``split`` for ``seed``, in their shuffled order."""
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        n = len(self.dataset)
        order = np.random.default_rng([int(seed), 0x106]).permutation(n)
        n_test = min(n - 1, max(1, round(self.test_fraction * n)))
        return order[:n_test] if split == "test" else order[n_test:]

    def split_size(self, split: str, seed: int = 0) -> int:
        """Number of rows in ``split`` (the same for every seed)."""
        return len(self.split_rows(split, seed))

    def queries(self, n: int, *, split: str, seed: int) -> Queries:
        """The first ``n`` rows of ``split`` for ``seed``; ids are row positions.

        Raises
        ------
        ValueError
            If the split has fewer than ``n`` rows.
        """
        rows = self.split_rows(split, seed)
        if not isinstance(n, (int, np.integer)) or not 0 < n <= len(rows):
            raise ValueError(f"n must be an integer in [1, {len(rows)}] (the {split} split of this dataset), got {n!r}")
        rows = rows[:n]
        groups = None if self.dataset.groups is None else self.dataset.groups[rows]
        return Queries(ids=rows.astype(np.int64), X=self.dataset.X[rows], groups=groups)

    def _rows(self, queries: Queries) -> np.ndarray:
        ids = np.asarray(queries.ids)
        if not np.issubdtype(ids.dtype, np.integer) or (len(ids) and (ids.min() < 0 or ids.max() >= len(self.dataset))):
            raise ValueError(f"queries.ids must be row positions in [0, {len(self.dataset)}) from this world's queries()")
        return ids.astype(np.int64)

    # -- feedback ------------------------------------------------------------------------
    def step(self, queries: Queries, actions: np.ndarray, *, seed: int = 0) -> Feedback:
        """The logged outcome of arm ``actions[i]`` on query ``i``; ``seed`` is unused (replay).

        Raises
        ------
        ValueError
            If the dataset has no ``all_rewards`` and some action differs from
            the logged one: that reward was never observed, estimate it
            off-policy with :mod:`banditspec.bandits.ope` instead.
        """
        rows = self._rows(queries)
        actions = np.asarray(actions)
        if actions.shape != rows.shape or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(f"actions must be integer arm ids of shape {rows.shape}, got {actions.dtype} {actions.shape}")
        if len(actions) and (actions.min() < 0 or actions.max() >= len(self.arms)):
            raise ValueError(f"actions must be arm ids in [0, {len(self.arms)})")
        replay = np.array_equal(actions, self.dataset.actions[rows])
        if self.dataset.all_rewards is None and not replay:
            raise ValueError(
                "this dataset has no all_rewards (bandit feedback only): the reward of an arm other than the "
                "logged one is unknown; evaluate such policies off-policy with banditspec.bandits.ope.evaluate"
            )
        rewards = self.dataset.rewards[rows] if replay else self.dataset.all_rewards[rows, actions]
        if self._all_seconds is not None:
            seconds = self._all_seconds[rows, actions]
        else:
            seconds = self._logged_seconds[rows] if replay else np.full(len(rows), np.nan)
        return Feedback(rewards=rewards.astype(float), seconds=seconds, ar_seconds=self._ar_seconds[rows],
                        actions=actions.astype(np.int64))

    def full_feedback(self, queries: Queries, *, seed: int = 0) -> Feedback | None:
        """Every arm's logged reward (and seconds, NaN where not logged); ``None`` without ``all_rewards``."""
        if self.dataset.all_rewards is None:
            return None
        rows = self._rows(queries)
        rewards = self.dataset.all_rewards[rows]
        seconds = np.full(rewards.shape, np.nan) if self._all_seconds is None else self._all_seconds[rows]
        return Feedback(rewards=rewards, seconds=seconds, ar_seconds=self._ar_seconds[rows])
