"""The ``local`` backend: every chunk computed in this process, on the driver's world, in order."""

from __future__ import annotations

from banditspec.bandits.shards import ChunkMap, in_order
from banditspec.speculative.backends import CollectionWork
from banditspec.speculative.collect import Collector, DecodingWorld

__all__ = ["LocalBackend"]


class LocalBackend:
    """Computes the chunks one after another with a :class:`Collector` on the driver's world."""

    def chunk_map(self, world: DecodingWorld, work: CollectionWork) -> ChunkMap:
        """The chunks' rows, computed in order in this process."""
        collector = Collector(world, latency=work.latency, measure=work.measure, threads=work.threads)
        return in_order(lambda positions: collector.rows(work.queries.subset(positions)))
