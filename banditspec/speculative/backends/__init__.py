"""Where a collection's chunks are computed: in this process, or on the actors of a Ray cluster.

A backend turns a :class:`CollectionWork` (the queries, the latency model and
the collector's settings) into a :data:`~banditspec.bandits.shards.ChunkMap`;
:func:`banditspec.speculative.collect.collect` writes every chunk it returns as
one Parquet file on the driver, so the files, their names and their rows are
the same whichever backend computed them. Backends register in the
``banditspec.backends`` entry points (``local``, ``ray``), as a user's own
would; :func:`create_backend` builds one by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from banditspec.bandits.env import Queries
from banditspec.bandits.registry import Registry
from banditspec.bandits.shards import ChunkMap
from banditspec.speculative.latency import LatencyModel

if TYPE_CHECKING:
    from banditspec.speculative.collect import DecodingWorld

__all__ = ["BACKENDS", "CollectionBackend", "CollectionWork", "create_backend"]


@dataclass(frozen=True)
class CollectionWork:
    """What computing a collection's rows needs besides the world.

    Parameters
    ----------
    queries : Queries
        The collection's queries; a chunk is an array of positions in them.
    latency : LatencyModel, optional
        Prices counterfactual counts (``None`` when ``measure``).
    measure : bool
        Decode every arm for real instead of pricing counts.
    threads : int, optional
        Torch threads of the batched passes in this process (``None``: unchanged); a backend
        computing elsewhere sizes its own.
    """

    queries: Queries
    latency: LatencyModel | None
    measure: bool
    threads: int | None


class CollectionBackend(Protocol):
    """Computes the chunks of a collection (:data:`~banditspec.bandits.shards.ChunkMap`)."""

    def chunk_map(self, world: DecodingWorld, work: CollectionWork) -> ChunkMap:
        """The chunk map computing ``work``'s rows; ``world`` is the driver's open world."""
        ...


#: Collection backends by name, from the ``banditspec.backends`` entry points.
BACKENDS: Registry[CollectionBackend] = Registry("banditspec.backends", "collection backend")


def create_backend(name: str, **options: Any) -> CollectionBackend:
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
