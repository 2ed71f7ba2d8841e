"""Chosen arms measured on held-out queries, chunk by chunk and resumably: the raw material of an evaluation.

An honest comparison decodes each test query with AR first (the same-run
reference) and then with the arms being compared, back to back in one
process (:meth:`~banditspec.speculative.world.world.ConfiguredWorld.measure`
of a world that decodes for real). :func:`measure_arms` decodes a given set
of arms per query — in ``banditspec demo`` the arms the learners and the
oracle by counts chose, and every arm on a random subsample —;
:func:`measure_every_arm` decodes every arm of every query (``banditspec
reproduce``). The work is written in chunks of queries through
:func:`banditspec.bandits.shards.write_chunks`: after an interruption a rerun
into the same folder measures only the chunks that are missing, and a folder
written for other queries, arms or arm sets is refused. A backend
(:mod:`banditspec.speculative.backends`) computes the chunks: the driver's
world (``local``), or Ray actors that each decode whole chunks (``ray``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from banditspec.bandits.arms import ArmSet
from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.env import Feedback, Measurement, Queries
from banditspec.bandits.rewards import measurement_columns, measurements_from_columns
from banditspec.bandits.shards import write_chunks
from banditspec.speculative.backends import Backend, check_job_arms, resolve_backend

__all__ = ["MeasuredEvaluation", "MeasuringWorld", "full_feedback", "measure_arms", "measure_every_arm"]

#: A reward: measurement columns in, one float per row out.
RewardFn = Callable[[Mapping[str, np.ndarray]], np.ndarray]
#: Column of the measured rows: the query's position in the job's query list.
POSITION = "query_position"


class MeasuringWorld(Protocol):
    """A world that decodes a set of arms per query, AR first, and rewards the measurements."""

    arms: ArmSet
    reward: RewardFn

    def measure(self, queries: Queries, arm_sets: Sequence[Sequence[int]] | None = None) -> list[list[Measurement]]:
        """Per query, AR (the reference) and then the arms of its set decoded and measured in one run."""
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


@dataclass(frozen=True)
class MeasuredEvaluation:
    """A measured evaluation as a :class:`~banditspec.speculative.backends.ChunkJob`: queries, arm sets, arm names.

    Parameters
    ----------
    queries : Queries
        The held-out queries (with texts); a chunk is an array of positions in them.
    arm_sets : tuple of tuples of int
        Per query, the arm ids decoded after AR, in that order.
    arm_names : tuple of str
        The arms the ids refer to; a world opened elsewhere (a Ray actor's)
        with other arms is refused.
    """

    queries: Queries
    arm_sets: tuple[tuple[int, ...], ...]
    arm_names: tuple[str, ...]

    def rows_on(self, world: MeasuringWorld, *, threads: int | None = None) -> Callable[[np.ndarray], LoggedDataset]:
        """The rows of the queries at given positions, decoded on ``world`` (``threads`` unused: the world's own).

        Raises
        ------
        ValueError
            If the world's arms are not :attr:`arm_names`.
        """
        check_job_arms(world, self.arm_names, "evaluation")

        def compute(positions: np.ndarray) -> LoggedDataset:
            chunk = self.queries.subset(positions)
            chosen = [self.arm_sets[p] for p in positions]
            return _rows(chunk, positions, chosen, world.measure(chunk, chosen), world)

        return compute


def measure_arms(world: MeasuringWorld, queries: Queries, arm_sets: Sequence[Sequence[int]], folder: str | Path, *,
                 chunk_size: int = 100, progress: bool = True, config: Mapping[str, Any] | None = None,
                 backend: str | Backend = "local",
                 backend_options: Mapping[str, Any] | None = None) -> tuple[Feedback, LoggedDataset]:
    """Decode query ``i`` with AR and then the arms ``arm_sets[i]``, written to ``folder`` chunk by chunk; resumable.

    Parameters
    ----------
    world : MeasuringWorld
        Decodes for real; its ``reward`` turns measurements into rewards.
    queries : Queries
        The held-out queries (with texts).
    arm_sets : sequence of sequences of int
        Per query, the distinct arm ids to measure (at least one), decoded in that order.
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
        More of the job's description for the manifest (the query ids, the
        arms and the arm sets are always recorded; resuming with others is refused).
    backend : str or Backend, default "local"
        Computes the chunks: ``"local"`` (``world`` itself, in its own
        ``workers``), ``"ray"`` (Ray actors, each opening the world once from
        ``backend_options["recipe"]``), a name in the ``banditspec.backends``
        entry points, or a backend object. Each query's AR and arms are
        decoded back to back in one process whichever computes them.
    backend_options : mapping, optional
        Keyword arguments of the backend given by name.

    Returns
    -------
    (Feedback, LoggedDataset)
        Feedback of shape ``(n, K)``: measured rewards and seconds, NaN for
        the arms a query was not decoded with; the AR seconds of every query;
        every measurement, in row order. The rows: one per measured
        (query, arm), its measurement columns, ``query_position``, ``measured``
        and ``prompt``.

    Raises
    ------
    ValueError
        If ``arm_sets`` does not hold one non-empty set of distinct valid arm ids per query.
    """
    backend = resolve_backend(backend, backend_options)
    K = len(world.arms)
    sets = [[int(k) for k in ids] for ids in arm_sets]
    if len(sets) != len(queries) or any(not ids or len(set(ids)) != len(ids) or not all(0 <= k < K for k in ids)
                                        for ids in sets):
        raise ValueError(f"arm_sets must hold, per query ({len(queries)}), distinct arm ids in [0, {K}), at least one")

    work = MeasuredEvaluation(queries, tuple(tuple(ids) for ids in sets), tuple(world.arms.names))
    job = {"query_ids": [int(i) for i in queries.ids], "arms": world.arms.fingerprint(), "arm_sets": sets,
           **(config or {})}
    files = write_chunks(len(queries), backend.chunk_map(world, work), folder, config=job, chunk_size=chunk_size,
                         progress=progress)
    data = LoggedDataset.concat(LoggedDataset.load(f) for f in files)
    return _feedback(data, len(queries), K), data


def measure_every_arm(world: MeasuringWorld, queries: Queries, folder: str | Path, *, chunk_size: int = 100,
                      progress: bool = True, config: Mapping[str, Any] | None = None,
                      backend: str | Backend = "local",
                      backend_options: Mapping[str, Any] | None = None) -> tuple[Feedback, LoggedDataset]:
    """:func:`measure_arms` with every arm on every query: full-information feedback (no NaN); same options."""
    every = [list(range(len(world.arms)))] * len(queries)
    return measure_arms(world, queries, every, folder, chunk_size=chunk_size, progress=progress, config=config,
                        backend=backend, backend_options=backend_options)


def _rows(queries: Queries, positions: np.ndarray, arm_sets: Sequence[Sequence[int]],
          measurements: Sequence[Sequence[Measurement]], world: MeasuringWorld) -> LoggedDataset:
    """One logged row per measured (query, arm)."""
    sizes = [len(ids) for ids in arm_sets]
    flat = [m for row in measurements for m in row]
    columns = measurement_columns(flat)
    columns[POSITION] = np.repeat(np.asarray(positions, dtype=np.int64), sizes)
    columns["measured"] = np.ones(len(flat), dtype=bool)
    columns["prompt"] = np.repeat(np.asarray(queries.texts, dtype=object), sizes)
    return LoggedDataset(
        np.repeat(queries.ids, sizes), np.repeat(queries.X, sizes, axis=0),
        np.array([k for ids in arm_sets for k in ids], dtype=np.int64),
        np.asarray(world.reward(columns), dtype=float), np.ones(len(flat)),
        arm_names=world.arms.names,
        groups=None if queries.groups is None else np.repeat(np.asarray(queries.groups, dtype=object), sizes),
        columns=columns,
    )


def _feedback(data: LoggedDataset, n: int, n_arms: int) -> Feedback:
    """The ``(n, K)`` feedback of measured rows, NaN where a (query, arm) was not measured."""
    rows, arms = data.columns[POSITION].astype(np.int64), data.actions
    rewards, seconds, ar_seconds = np.full((n, n_arms), np.nan), np.full((n, n_arms), np.nan), np.full(n, np.nan)
    rewards[rows, arms] = data.rewards
    seconds[rows, arms] = data.columns["wall_seconds"]
    ar_seconds[rows] = data.columns["ar_wall_seconds"]
    return Feedback(rewards=rewards, seconds=seconds, ar_seconds=ar_seconds,
                    measurements=measurements_from_columns(data.columns))
