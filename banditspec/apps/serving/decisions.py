"""What the router decided and measured per request, and the append-only Parquet log of it.

A :class:`Decision` is one served request: the arm the policy chose and its
propensity (the probability of that arm under the distribution it was drawn
from, the whole distribution kept too), a hash of the features, the arm that
actually decoded (AR after a fallback) and why, and the measurement.

:class:`DecisionLog` appends decisions to a folder of ``part-*.parquet``
shards in the :class:`~banditspec.bandits.data.LoggedDataset` format, so the
off-policy estimators (:mod:`banditspec.bandits.ope`) and ``LoggedDataset.load``
read served traffic directly: ``action`` is the chosen arm, ``propensity`` its
logging probability, ``reward`` the router's reward, and the measurement
columns (``wall_seconds``, ``target_calls``, ...) let any other reward be
recomputed. Rows are buffered and written ``flush_rows`` at a time, each shard
atomically (temporary name, then rename), and on :meth:`DecisionLog.close`:
a crash never leaves a torn shard, and loses at most the buffered rows of a
process killed outright.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from banditspec.bandits.data import LoggedDataset, write_shard
from banditspec.bandits.env import Measurement
from banditspec.bandits.rewards import measurement_columns
from banditspec.bandits.validation import check_integer

__all__ = ["Decision", "DecisionLog", "features_hash"]

_SHARD = re.compile(r"part-(\d+)\.parquet")


def features_hash(x: np.ndarray) -> str:
    """A short stable hash of a feature vector (its float64 bytes), to join decisions without storing features."""
    return hashlib.blake2b(np.ascontiguousarray(x, dtype=np.float64).tobytes(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class Decision:
    """One served request.

    Attributes
    ----------
    request_id : str
    query_id : int
        Stable id of the prompt text (:func:`~banditspec.speculative.world.query_id`).
    arm : int
        The arm the policy chose (the logged action).
    arm_name : str
    propensity : float
        Probability of ``arm`` under ``distribution``.
    distribution : tuple of float
        The distribution ``arm`` was drawn from (exploration included), over all ``K`` arms; sums to 1.
    available : tuple of bool
        The availability mask the distribution was computed under (the circuit breaker's).
    features_hash : str
    served_arm : str
        The arm whose output was returned: ``arm_name``, or the AR fallback.
    fallback : bool
        Whether the chosen arm failed and AR decoded instead.
    failure : str
        Why the chosen arm failed (``"timeout: ..."`` or ``"error: ..."``); empty without a failure.
    measurement : Measurement
        The request's decoding: the served arm's counts, ``wall_seconds`` over
        every attempt (a failed one included), ``ar_wall_seconds`` the AR
        reference priced by the latency model.
    reward : float
        The router's reward of the measurement.
    prompt_tokens : int
    select_seconds : float
        Featurizing and choosing.
    """

    request_id: str
    query_id: int
    arm: int
    arm_name: str
    propensity: float
    distribution: tuple[float, ...]
    available: tuple[bool, ...]
    features_hash: str
    served_arm: str
    fallback: bool
    failure: str
    measurement: Measurement
    reward: float
    prompt_tokens: int
    select_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The decision as JSON-ready values (the measurement as a nested mapping)."""
        record = asdict(self)
        record["distribution"] = list(self.distribution)
        record["available"] = list(self.available)
        return record


class DecisionLog:
    """Append decisions to ``part-*.parquet`` shards of ``folder`` as logged bandit data.

    Parameters
    ----------
    folder : str or Path
        Created if missing; shards already there are kept and numbering
        continues after them.
    arm_names : sequence of str
        The arms in action order.
    flush_rows : int, default 32
        Rows buffered before a shard is written.
    prompts : bool, default True
        Store each prompt's text (a ``prompt`` column, as collections do) so
        hashed-text learners can train on served traffic; False stores none.
    """

    def __init__(self, folder: str | Path, arm_names: Sequence[str], *, flush_rows: int = 32,
                 prompts: bool = True) -> None:
        check_integer("flush_rows", flush_rows, low=1)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.arm_names = list(arm_names)
        self.flush_rows = flush_rows
        self.prompts = prompts
        self._rows: list[tuple[Decision, np.ndarray, str]] = []
        self._lock = threading.Lock()
        taken = [int(m.group(1)) for f in self.folder.iterdir() if (m := _SHARD.fullmatch(f.name))]
        self._next = max(taken, default=-1) + 1

    def append(self, decision: Decision, features: np.ndarray, prompt: str) -> Path | None:
        """Buffer one decision; returns the shard written if the buffer was full."""
        with self._lock:
            self._rows.append((decision, np.asarray(features, dtype=float), prompt))
            return self._flush() if len(self._rows) >= self.flush_rows else None

    def flush(self) -> Path | None:
        """Write the buffered decisions as one shard now (None if there were none)."""
        with self._lock:
            return self._flush()

    def _flush(self) -> Path | None:
        if not self._rows:
            return None
        path = write_shard(self._dataset(self._rows), self.folder, self._next)
        self._next += 1
        self._rows = []
        return path

    def _dataset(self, rows: list[tuple[Decision, np.ndarray, str]]) -> LoggedDataset:
        decisions = [d for d, _, _ in rows]
        columns = measurement_columns([d.measurement for d in decisions])
        columns |= {
            "request_id": np.array([d.request_id for d in decisions], dtype=object),
            "served_arm": np.array([d.served_arm for d in decisions], dtype=object),
            "fallback": np.array([d.fallback for d in decisions]),
            "failure": np.array([d.failure for d in decisions], dtype=object),
            "features_hash": np.array([d.features_hash for d in decisions], dtype=object),
            "prompt_tokens": np.array([d.prompt_tokens for d in decisions], dtype=np.int64),
        }
        if self.prompts:
            columns["prompt"] = np.array([p for _, _, p in rows], dtype=object)
        return LoggedDataset(
            np.array([d.query_id for d in decisions], dtype=np.int64),
            np.stack([x for _, x, _ in rows]),
            np.array([d.arm for d in decisions], dtype=np.int64),
            np.array([d.reward for d in decisions]),
            np.array([d.propensity for d in decisions]),
            arm_names=self.arm_names,
            columns=columns,
        )
