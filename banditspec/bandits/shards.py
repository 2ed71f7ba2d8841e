"""Resumable, sharded, append-only computation of logged rows.

Long collection jobs are split into chunks of queries; each finished chunk is
written as one Parquet file, atomically (temporary name, then rename). A rerun
after any interruption — ``kill -9`` included — skips the chunks whose files
exist and computes only the rest, so no row is lost or written twice, and the
result equals an uninterrupted run's wherever the computation is
deterministic. ``--shard i/N`` gives process ``i`` every ``N``-th chunk, so
``N`` processes (or machines) can share one folder or write to several that
:func:`merge` joins. :func:`write_chunks` takes the chunks' computation as a
:data:`ChunkMap` that may finish them in any order (workers elsewhere, a
cluster); the files are written here, one per chunk, as results arrive.

A ``manifest.json`` records the job's configuration; resuming into a folder
written with another configuration is refused instead of mixing data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from banditspec.bandits.data import LoggedDataset

__all__ = ["ChunkMap", "in_order", "merge", "parse_shard", "write_chunks"]

_MANIFEST = "manifest.json"

#: Computes chunks of item positions; yields ``(index of the chunk in the list given, its rows)`` once per chunk,
#: in any order.
ChunkMap = Callable[[Sequence[np.ndarray]], Iterable[tuple[int, LoggedDataset]]]


def in_order(compute: Callable[[np.ndarray], LoggedDataset]) -> ChunkMap:
    """The :data:`ChunkMap` that computes the chunks one after another in this process with ``compute``."""

    def chunk_map(chunks: Sequence[np.ndarray]) -> Iterator[tuple[int, LoggedDataset]]:
        for i, positions in enumerate(chunks):
            yield i, compute(positions)

    return chunk_map


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``"i/N"`` (0-based ``i < N``) into ``(i, N)``."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/N with integers, e.g. 0/4; got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard i/N needs N >= 1 and 0 <= i < N; got {text!r}")
    return index, count


def _check_manifest(folder: Path, config: Mapping[str, Any]) -> None:
    path = folder / _MANIFEST
    if path.exists():
        recorded = json.loads(path.read_text())
        if recorded != json.loads(json.dumps(config)):
            raise ValueError(
                f"{folder} holds a collection made with another configuration; "
                f"use a new output folder or the same settings.\nrecorded: {recorded}\nnow:      {dict(config)}"
            )
        return
    tmp = path.with_name(_MANIFEST + ".tmp")
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True))
    tmp.replace(path)


def write_chunks(
    n_items: int,
    chunk_map: ChunkMap,
    folder: str | Path,
    *,
    config: Mapping[str, Any],
    chunk_size: int = 64,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
) -> list[Path]:
    """Compute ``n_items`` items in chunks, one Parquet file per chunk, resumably.

    Parameters
    ----------
    n_items : int
        Items are ``0 .. n_items-1`` (positions in the job's query list).
    chunk_map : ChunkMap
        Computes the chunks still missing (:func:`in_order` for this process).
        Each chunk's rows are written as they arrive, atomically, once.
    folder : str or Path
        Output folder; created if missing.
    config : Mapping
        JSON-serialisable description of the job, checked on resume.
    chunk_size : int, default 64
        Items per file.
    shard : (int, int), default (0, 1)
        ``(i, N)``: this process computes chunks ``i, i + N, i + 2N, ...``.
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    list of Path
        The chunk files of this shard (existing and new).

    Raises
    ------
    RuntimeError
        If ``chunk_map`` yields a chunk twice or leaves one out.
    """
    if n_items < 1 or chunk_size < 1:
        raise ValueError(f"n_items and chunk_size must be >= 1, got {n_items} and {chunk_size}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _check_manifest(folder, {**config, "n_items": n_items, "chunk_size": chunk_size})
    index, count = shard
    starts = list(range(0, n_items, chunk_size))[index::count]
    files = [folder / f"part-{start // chunk_size:06d}.parquet" for start in starts]
    todo = [(start, file) for start, file in zip(starts, files) if not file.exists()]
    chunks = [np.arange(start, min(start + chunk_size, n_items)) for start, _ in todo]
    written: set[int] = set()
    with tqdm(total=len(starts), initial=len(starts) - len(todo), desc=f"chunks (shard {index}/{count})",
              unit="chunk", disable=not progress) as bar:
        for i, rows in chunk_map(chunks) if chunks else ():
            if i in written:
                raise RuntimeError(f"chunk {todo[i][1].name} was computed twice")
            rows.save(todo[i][1])
            written.add(i)
            bar.update()
    if len(written) != len(todo):
        missing = [file.name for i, (_, file) in enumerate(todo) if i not in written]
        raise RuntimeError(f"chunks {missing[:5]} were not computed; rerun to resume")
    return files


def merge(folders: list[str | Path], out: str | Path) -> LoggedDataset:
    """Join the chunk files of one or more folders into one Parquet file.

    Raises
    ------
    ValueError
        If a (query id, action) pair appears twice across the folders.
    """
    data = LoggedDataset.concat(LoggedDataset.load(f) for f in folders)
    keys = np.stack([data.query_ids, data.actions], axis=1)
    unique, counts = np.unique(keys, axis=0, return_counts=True)
    if np.any(counts > 1):
        duplicates = unique[counts > 1][:5].tolist()
        raise ValueError(f"duplicate (query_id, action) rows across the inputs, e.g. {duplicates}")
    order = np.lexsort((data.actions, data.query_ids))
    merged = data.subset(order)
    merged.save(out)
    return merged
