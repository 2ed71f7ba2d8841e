"""The ``local`` backend: every chunk computed in this process, on the driver's world, in order."""

from __future__ import annotations

from typing import Any

from banditspec.bandits.shards import ChunkMap, in_order
from banditspec.speculative.backends import ChunkJob

__all__ = ["LocalBackend"]


class LocalBackend:
    """Computes the chunks one after another on the driver's world."""

    def chunk_map(self, world: Any, job: ChunkJob) -> ChunkMap:
        """The chunks' rows, computed in order in this process."""
        return in_order(job.rows_on(world))
