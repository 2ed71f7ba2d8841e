"""The prompts of a world: read from a JSONL, CSV or Parquet file, identified, split by query, sampled by seed.

Each row is one query: its prompt text (``prompt_field``), optionally a group
label for reports (``group_field``), an id (``id_field``) and a split of the
user's own (``split_field``). A query's id is the ``id_field`` value (an
integer as it is, a string hashed) or a hash of its prompt text
(:func:`query_id`): the same prompt has the same id in every run. Its split
is the user's or :func:`banditspec.bandits.splits.split_of` of its identity
(the ``id_field`` value, else the prompt text), so no query is on both sides,
whatever the seed. A prompt or an id that appears twice is refused.

A world draws its queries from a :class:`PromptSource`; :class:`PromptFile`
is the one a prompts file gives.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow.parquet as pq

from banditspec.bandits.splits import SPLITS, split_of
from banditspec.speculative.world.config import PromptsConfig

__all__ = ["PromptFile", "PromptSource", "Prompts", "apply_chat_template", "query_id", "read_prompts"]

_MAX_ID = 2**63 - 1


def query_id(text: str) -> int:
    """A stable 63-bit id of a string (the same text has the same id in every run)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") >> 1


@dataclass(frozen=True)
class Prompts:
    """``n`` prompts: their texts, int64 ids and, where the world has them, group labels (reports only)."""

    texts: list[str]
    ids: np.ndarray
    groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.texts)
        if self.ids.shape != (n,) or (self.groups is not None and len(self.groups) != n):
            raise ValueError(f"Prompts: ids and groups must have one entry per text ({n})")


class PromptSource(Protocol):
    """Where a world's queries come from."""

    def sample(self, n: int, *, split: str, seed: int) -> Prompts:
        """``n`` distinct prompts of ``split``; the same arguments give the same prompts."""
        ...

    def size(self, split: str) -> int | None:
        """How many prompts ``split`` holds, or None for a source that generates as many as asked."""
        ...


@dataclass(frozen=True)
class PromptFile:
    """The rows of a prompts file, checked, with their ids and splits (see :func:`read_prompts`).

    Attributes
    ----------
    texts : tuple of str
        Prompt texts in file order.
    ids : np.ndarray
        int64 query ids, unique.
    splits : np.ndarray
        ``"train"`` or ``"test"`` per prompt.
    groups : np.ndarray or None
        Group labels (str), if the config names a ``group_field``.
    name : str
        The file, for messages.
    """

    texts: tuple[str, ...]
    ids: np.ndarray
    splits: np.ndarray
    groups: np.ndarray | None
    name: str

    def size(self, split: str) -> int:
        """How many prompts ``split`` holds."""
        return int(np.count_nonzero(self.splits == split))

    def sample(self, n: int, *, split: str, seed: int) -> Prompts:
        """``n`` distinct prompts of ``split`` in an order drawn with ``seed``.

        Raises
        ------
        ValueError
            If ``split`` is not "train" or "test", ``n`` is not a non-negative
            integer, or the split holds fewer than ``n`` prompts.
        """
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        positions = np.flatnonzero(self.splits == split)
        if n > positions.size:
            raise ValueError(f"asked for {n} {split} queries but {self.name} has {positions.size} in its {split} split")
        chosen = np.random.default_rng([int(seed), SPLITS.index(split)]).choice(positions, size=int(n), replace=False)
        return Prompts(
            texts=[self.texts[i] for i in chosen],
            ids=self.ids[chosen],
            groups=None if self.groups is None else self.groups[chosen],
        )


def _jsonl_rows(config: PromptsConfig) -> Iterator[tuple[str, Any]]:
    with config.path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            where = f"{config.path}: line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{where}: not valid JSON ({error})") from None
            yield where, row


def _csv_rows(config: PromptsConfig) -> Iterator[tuple[str, Any]]:
    with config.path.open(encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        for row in reader:
            yield f"{config.path}: line {reader.line_num}", row


def _parquet_rows(config: PromptsConfig) -> Iterator[tuple[str, Any]]:
    try:
        table = pq.read_table(config.path)
    except Exception as error:  # pyarrow raises several types for a file that is not Parquet
        raise ValueError(f"{config.path}: not a readable Parquet file ({error})") from None
    for number, row in enumerate(table.to_pylist(), start=1):
        yield f"{config.path}: row {number}", row


_READERS = {"jsonl": _jsonl_rows, "csv": _csv_rows, "parquet": _parquet_rows}


def _field(row: Any, name: str, where: str, *, kinds: tuple[type, ...] = (str,)) -> Any:
    """``row[name]``, which must be present and non-empty, of one of ``kinds`` (never a bool)."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: a row must be an object with fields, got {type(row).__name__}")
    if name not in row:
        raise ValueError(f"{where}: field {name!r} is missing; the row has fields {sorted(row)}")
    value = row[name]
    if isinstance(value, bool) or not isinstance(value, kinds) or value == "":
        wanted = " or ".join({str: "a non-empty string", int: "an integer"}[k] for k in kinds)
        raise ValueError(f"{where}: field {name!r} must be {wanted}, got {value!r}")
    return value


def read_prompts(config: PromptsConfig) -> PromptFile:
    """Read, check, identify and split the prompts of ``config.path``.

    Raises
    ------
    ValueError
        Naming the file, the line (JSONL, CSV) or row (Parquet) and the
        field: unreadable rows, a missing or empty field, an id that is not
        an integer in [0, 2^63) or a string, a split other than "train" or
        "test", a prompt or id that appears twice, or an empty file.
    """
    texts: list[str] = []
    ids: list[int] = []
    splits: list[str] = []
    groups: list[str] = []
    seen: dict[tuple[str, Any], str] = {}
    for where, row in _READERS[config.format](config):
        text = _field(row, config.prompt_field, where)
        key: str | int = text
        if config.id_field is not None:
            key = _field(row, config.id_field, where, kinds=(str, int))
            if isinstance(key, int) and not 0 <= key <= _MAX_ID:
                raise ValueError(f"{where}: field {config.id_field!r} must be in [0, 2^63), got {key}")
        for what, value in (("prompt", text), ("id", key)):
            if (what, value) in seen:
                raise ValueError(f"{where}: the {what} of {seen[what, value]} appears again ({value!r:.60}); "
                                 "every query must be unique")
            seen[what, value] = where.rpartition(": ")[2]
        if config.split_field is not None:
            split = _field(row, config.split_field, where)
            if split not in SPLITS:
                raise ValueError(f"{where}: field {config.split_field!r} must be 'train' or 'test', got {split!r}")
        else:
            split = split_of(key, config.test_fraction)
        if config.group_field is not None:
            groups.append(str(_field(row, config.group_field, where, kinds=(str, int))))
        texts.append(text)
        ids.append(key if isinstance(key, int) else query_id(key))
        splits.append(split)
    if not texts:
        raise ValueError(f"{config.path}: no prompts in the file")
    return PromptFile(
        texts=tuple(texts),
        ids=np.array(ids, dtype=np.int64),
        splits=np.array(splits),
        groups=np.array(groups) if config.group_field is not None else None,
        name=str(config.path),
    )


def apply_chat_template(tokenizer: Any, texts: Sequence[str]) -> list[str]:
    """Each text as one user message in ``tokenizer``'s chat template, ready for the assistant's answer.

    Raises
    ------
    ValueError
        If the tokenizer has no chat template.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"[prompts] chat_template = true but the target's tokenizer "
                         f"({getattr(tokenizer, 'name_or_path', '?')}) has no chat template")
    return [tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=False, add_generation_prompt=True)
            for t in texts]
