"""Every arm measured on held-out queries, chunk by chunk and resumably: the raw material of an evaluation.

An honest comparison of learners decodes every test query with every arm, AR
first, in one run (:meth:`Environment.full_feedback` of a world that decodes
for real); every learner, every fixed arm and the oracle are then scored on
the same measured seconds. That is the longest part of ``banditspec demo``
and ``banditspec reproduce``. :func:`measure_every_arm` writes it in chunks of
queries through :func:`banditspec.bandits.shards.run_chunks`: after an interruption a
rerun into the same folder measures only the chunks that are missing, and a
folder written for other queries or arms is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from banditspec.bandits.arms import ArmSet
from banditspec.speculative.collect import full_information_rows
from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.env import Feedback, Measurement, Queries
from banditspec.bandits.rewards import measurement_columns, measurements_from_columns
from banditspec.bandits.shards import run_chunks

__all__ = ["MeasuringWorld", "full_feedback", "measure_every_arm"]

#: A reward: measurement columns in, one float per row out.
RewardFn = Callable[[Mapping[str, np.ndarray]], np.ndarray]


class MeasuringWorld(Protocol):
    """A world whose full feedback carries every arm's :class:`Measurement` of every query."""

    arms: ArmSet
    reward: RewardFn

    def full_feedback(self, queries: Queries, *, seed: int = 0) -> Feedback:
        """Every arm of every query decoded and measured in one run."""
        ...


def full_feedback(measurements: Sequence[Measurement], n_arms: int, reward: RewardFn) -> Feedback:
    """Full-information feedback from ``n * n_arms`` measurements, query by query, arms in order.

    Each measurement must carry ``ar_wall_seconds``, its query's AR time from
    the same run.
    """
    if n_arms < 1 or len(measurements) % n_arms:
        raise ValueError(f"{len(measurements)} measurements do not split into queries of {n_arms} arms")
    columns = measurement_columns(measurements)
    shape = (len(measurements) // n_arms, n_arms)
    return Feedback(
        rewards=np.asarray(reward(columns), dtype=float).reshape(shape),
        seconds=columns["wall_seconds"].astype(float).reshape(shape),
        ar_seconds=columns["ar_wall_seconds"].astype(float).reshape(shape)[:, 0],
        measurements=list(measurements),
    )


def measure_every_arm(world: MeasuringWorld, queries: Queries, folder: str | Path, *, chunk_size: int = 100,
                      progress: bool = True, config: Mapping[str, Any] | None = None) -> tuple[Feedback, LoggedDataset]:
    """Decode every query with every arm, written to ``folder`` chunk by chunk; resumable.

    Parameters
    ----------
    world : MeasuringWorld
        Decodes for real; its ``reward`` turns measurements into rewards.
    queries : Queries
        The held-out queries (with texts).
    folder : str or Path
        One Parquet file per finished chunk of queries (and a manifest). A
        rerun after an interruption measures only the missing chunks.
    chunk_size : int, default 100
        Queries per chunk: what an interruption can lose at most. Keep chunks
        large: at each chunk's end a world that decodes in several processes
        has idle workers, which changes the timing of the queries still in
        flight (in the demo, chunks of 40 gave noisier comparisons).
    progress : bool, default True
        Show a progress bar over the chunks.
    config : mapping, optional
        More of the job's description for the manifest (the query ids and the
        arms are always recorded; resuming with others is refused).

    Returns
    -------
    (Feedback, LoggedDataset)
        The full-information feedback (with every measurement, in query order)
        and the same measurements as logged rows, one per (query, arm).
    """
    names = world.arms.names

    def compute(positions: np.ndarray) -> LoggedDataset:
        chunk = queries.subset(positions)
        feedback = world.full_feedback(chunk)
        return _rows(chunk, feedback.measurements, names, world.reward)

    job = {"query_ids": [int(i) for i in queries.ids], "arms": world.arms.describe(), **(config or {})}
    files = run_chunks(len(queries), compute, folder, config=job, chunk_size=chunk_size, progress=progress)
    data = LoggedDataset.concat(LoggedDataset.load(f) for f in files)
    measurements = measurements_from_columns(data.columns)
    return full_feedback(measurements, len(names), world.reward), data


def _rows(queries: Queries, measurements: Sequence[Measurement], names: Sequence[str],
          reward: RewardFn) -> LoggedDataset:
    K = len(names)
    table = [measurements[i * K : (i + 1) * K] for i in range(len(queries))]
    return full_information_rows(queries, table, names, reward, measured=True)
