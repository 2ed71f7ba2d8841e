"""The ``ray`` backend: chunks computed by Ray actors, each holding the world opened once.

Each actor opens the world from a :class:`~banditspec.speculative.world.WorldRecipe`
(the ``world.toml`` path, or a registered world's name and arguments) and
computes the rows of whole chunks of a job (a
:class:`~banditspec.speculative.backends.ChunkJob`: a collection's queries
and latency model, or a measured evaluation's queries and arm sets, stored
once in Ray's object store); the driver hands out chunks
as actors become free (``ray.util.ActorPool``) and writes each chunk's rows as
it arrives. The driver draws the queries, features included, so every actor
computes exactly what the local backend computes on the same chunk. A measured
evaluation decodes each query's AR and arms back to back on one actor, so its
same-run ratios stay side by side.

Actors live for one job: they start when its chunks are asked for (each
loading the models) and stop at its end. ``banditspec demo`` thus starts
them twice, for the collection and for the measured evaluation, and
``banditspec reproduce`` once more per held-out set it measures.

A dead actor is restarted by Ray (``max_restarts``) and the chunk it was
computing is submitted again (``max_task_retries``): the driver receives
each chunk's rows once, so no chunk is lost or written twice.

Connecting: ``address`` (or ``RAY_ADDRESS``, ``"auto"``) joins a running
cluster; otherwise a local Ray starts with ``actors * cpus_per_actor`` CPUs
and stops when the job ends. ``docs/ray.md`` is the guide.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import numpy as np

from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.shards import ChunkMap
from banditspec.bandits.validation import check_integer
from banditspec.speculative.backends import ChunkJob
from banditspec.speculative.world.recipe import WorldRecipe

__all__ = ["RayActors", "RayBackend", "import_ray"]

_INSTALL = "pip install 'banditspec[ray]'"


def import_ray() -> Any:
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
        import ray.util  # ActorPool
    except ImportError:
        raise ImportError(f"the ray backend needs Ray: {_INSTALL}") from None
    return ray


class _ChunkActor:
    """One Ray actor: the world opened once, then the rows of chunk after chunk of one job.

    The world opens with ``threads`` torch threads (its measured decodes'
    too) and without progress bars. The job comes with every chunk (an
    object reference: Ray stores it once and the actor reads it locally), so
    a restarted actor needs only its recipe.
    """

    def __init__(self, recipe: WorldRecipe, threads: int) -> None:
        self.world = recipe.open(threads=threads, progress=False)
        self.threads = threads

    def rows(self, job: ChunkJob, index: int, positions: np.ndarray) -> tuple[int, LoggedDataset]:
        """Chunk ``index``'s rows (the job's items at ``positions``)."""
        return index, job.rows_on(self.world, threads=self.threads)(positions)


def _positive(name: str, value: Any, *, zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (value >= 0 if zero else value > 0)
    if not ok:
        raise ValueError(f"{name} must be a number {'>= 0' if zero else '> 0'}, got {value!r}")
    return float(value)


class RayBackend:
    """Ray actors that each open the world once and compute whole chunks.

    Parameters
    ----------
    recipe : WorldRecipe
        How each actor opens the world (the driver's own world stays on the driver).
    address : str, optional
        A running cluster to join (``"auto"``, ``"ray://head:10001"``, ...);
        default: ``"auto"`` when ``RAY_ADDRESS`` is set, else a local Ray.
        Ignored when Ray is already initialised in this process.
    actors : int, default 2
        Actors (each loads the target and the drafts once).
    cpus_per_actor : float, default 1
        CPUs Ray reserves per actor; also its torch threads (rounded down, at
        least 1): the actor opens the world with them, for its measured
        decodes, and a collection's batched passes use them (the
        collection's ``threads`` apply to the driver's own passes).
    gpus_per_actor : float, default 0
        GPUs Ray reserves per actor (a world on ``cuda`` needs 1, or a fraction to share one).
    memory_gb : float, optional
        Memory Ray reserves per actor, in GiB (schedules actors where they fit).
    retries : int, default 3
        Restarts of a dead actor and resubmissions of its chunk (Ray's
        ``max_restarts`` and ``max_task_retries``).

    Raises
    ------
    ImportError
        Without Ray installed, naming ``pip install 'banditspec[ray]'``.
    ValueError
        For a missing recipe or an option out of range.
    """

    def __init__(self, recipe: WorldRecipe | None = None, *, address: str | None = None, actors: int = 2,
                 cpus_per_actor: float = 1.0, gpus_per_actor: float = 0.0, memory_gb: float | None = None,
                 retries: int = 3) -> None:
        if not isinstance(recipe, WorldRecipe):
            raise ValueError("the ray backend opens the world again in every actor: give it recipe=WorldRecipe(...) "
                             "(the world.toml path or the registered world's name and arguments)")
        check_integer("actors", actors, low=1)
        check_integer("retries", retries, low=0)
        self.recipe = recipe
        self.address = address
        self.actors = actors
        self.cpus_per_actor = _positive("cpus_per_actor", cpus_per_actor)
        self.gpus_per_actor = _positive("gpus_per_actor", gpus_per_actor, zero=True)
        self.memory_gb = None if memory_gb is None else _positive("memory_gb", memory_gb)
        self.retries = retries
        self.ray = import_ray()

    def chunk_map(self, world: Any, job: ChunkJob) -> ChunkMap:
        """The chunks' rows, computed by :attr:`actors` Ray actors, yielded as they finish."""

        def chunk_map(chunks: Sequence[np.ndarray]) -> Iterator[tuple[int, LoggedDataset]]:
            with self.start(job) as actors:
                yield from actors.map(chunks)

        return chunk_map

    @contextmanager
    def start(self, job: ChunkJob) -> Iterator[RayActors]:
        """Connect to (or start) Ray and start the actors; on exit stop them, and the Ray this started.

        Whatever fails, at start or later, the actors already created are
        killed and a Ray this started is shut down.
        """
        ray = self.ray
        options: dict[str, Any] = {"num_cpus": self.cpus_per_actor, "num_gpus": self.gpus_per_actor,
                                   "max_restarts": self.retries, "max_task_retries": self.retries}
        if self.memory_gb is not None:
            options["memory"] = int(self.memory_gb * 2**30)
        threads = max(1, int(self.cpus_per_actor))
        with ExitStack() as stop:
            if not ray.is_initialized():
                stop.callback(ray.shutdown)
                address = self.address or ("auto" if os.environ.get("RAY_ADDRESS") else None)
                if address is None:
                    ray.init(num_cpus=math.ceil(self.actors * self.cpus_per_actor), include_dashboard=False)
                else:
                    ray.init(address=address)
            actor_class = ray.remote(**options)(_ChunkActor)
            handles = []
            for _ in range(self.actors):
                handles.append(actor_class.remote(self.recipe, threads))
                stop.callback(ray.kill, handles[-1])
            yield RayActors(ray, handles, ray.put(job))


class RayActors:
    """Started actors: :meth:`map` hands chunks to whichever actor is free.

    Attributes
    ----------
    handles : list
        The Ray actor handles.
    """

    def __init__(self, ray: Any, handles: list[Any], job: Any) -> None:
        self.ray = ray
        self.handles = handles
        self.job = job  # the job's object reference

    def map(self, chunks: Sequence[np.ndarray]) -> Iterator[tuple[int, LoggedDataset]]:
        """``(index, rows)`` of every chunk, in the order they finish."""
        pool = self.ray.util.ActorPool(self.handles)
        yield from pool.map_unordered(lambda actor, item: actor.rows.remote(self.job, *item), list(enumerate(chunks)))
