"""Where chunked work is computed: in this process, or on the actors of a Ray cluster.

A collection (:func:`banditspec.speculative.collect.collect`) and a measured
evaluation (:func:`banditspec.speculative.measured.measure_arms`) are both
*chunk jobs*: a picklable :class:`ChunkJob` that, opened on a world, computes
the rows of a chunk of item positions. A backend turns a job into a
:data:`~banditspec.bandits.shards.ChunkMap`; the driver writes every chunk it
returns as one Parquet file, so the files, their names and their rows are the
same whichever backend computed them. Backends register in the
``banditspec.backends`` entry points (``local``, ``ray``), as a user's own
would; :func:`create_backend` builds one by name, :func:`resolve_backend`
accepts a name or a built backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.registry import Registry
from banditspec.bandits.shards import ChunkMap

__all__ = ["BACKENDS", "Backend", "ChunkJob", "check_job_arms", "create_backend", "resolve_backend"]


class ChunkJob(Protocol):
    """Picklable work computed chunk by chunk on an open world (a collection, a measured evaluation)."""

    def rows_on(self, world: Any, *, threads: int | None = None) -> Callable[[np.ndarray], LoggedDataset]:
        """The function computing a chunk's rows (from its item positions) on ``world``.

        ``threads`` overrides the job's torch threads for batched passes (a
        backend computing elsewhere sizes its own); ``None`` keeps the job's.
        """
        ...


def check_job_arms(world: Any, arm_names: Sequence[str], job: str) -> None:
    """Refuse a world whose arms are not ``arm_names``, in that order: the arms ``job`` was made for.

    A chunk job refers to arms by position, and a world opened elsewhere (a
    Ray actor's, from a recipe) may hold other arms than the driver's.

    Raises
    ------
    ValueError
        Naming both lists of arms.
    """
    if list(world.arms.names) != list(arm_names):
        raise ValueError(f"the world's arms {list(world.arms.names)} are not the {job}'s {list(arm_names)}: open "
                         f"the world the {job} was made for (the same recipe, narrowed to the same arms)")


class Backend(Protocol):
    """Computes the chunks of a :class:`ChunkJob` (a :data:`~banditspec.bandits.shards.ChunkMap`)."""

    def chunk_map(self, world: Any, job: ChunkJob) -> ChunkMap:
        """The chunk map computing ``job``'s rows; ``world`` is the driver's open world."""
        ...


#: Backends by name, from the ``banditspec.backends`` entry points.
BACKENDS: Registry[Backend] = Registry("banditspec.backends", "backend")


def create_backend(name: str, **options: Any) -> Backend:
    """The backend registered as ``name``, built with ``options``.

    Raises
    ------
    ValueError
        For an unknown name (listing the known ones).
    """
    try:
        cls = BACKENDS.get(name)
    except KeyError as error:
        raise ValueError(str(error.args[0])) from None
    return cls(**options)


def resolve_backend(backend: str | Backend, options: Mapping[str, Any] | None = None) -> Backend:
    """``backend`` itself, or the one registered under that name built with ``options``.

    Raises
    ------
    ValueError
        For an unknown name, or ``options`` given with a backend already built.
    """
    if isinstance(backend, str):
        return create_backend(backend, **(options or {}))
    if options:
        raise ValueError("backend_options configure a backend given by name; this backend is already built")
    return backend
