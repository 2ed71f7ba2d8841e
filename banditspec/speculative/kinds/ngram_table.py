"""The ``ngram_table`` kind: drafts are chains of the target's most frequent next tokens in a corpus.

The arm reads an :class:`~banditspec.speculative.ngram.NgramTable` file
(``table``, a path; in a world config relative to its folder) and at every
round proposes up to ``num_tokens`` tokens, each the table's token after the
longest known suffix of ``min_ngram..max_ngram`` tokens; with ``lookup_ngram``
it first copies from the context as prompt lookup does and drafts from the
table only where that finds nothing. Like prompt lookup it drafts with no
model (a :class:`~banditspec.speculative.kinds.proposal.ProposalArm`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import ClassVar

import numpy as np

from banditspec.bandits.validation import check_integer
from banditspec.speculative.kinds.base import Models
from banditspec.speculative.kinds.prompt_lookup import lookup_candidates
from banditspec.speculative.kinds.proposal import ProposalArm
from banditspec.speculative.ngram import NgramTable

__all__ = ["NgramDraft"]


def _table(path: str) -> NgramTable:
    """The table in ``path``, read again only when the file changes."""
    stat = Path(path).stat()
    return _read_table(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=32)
def _read_table(path: str, mtime_ns: int, size: int) -> NgramTable:
    return NgramTable.load(path)


def _lookup_then_table(context: np.ndarray, *, from_table: Callable[[np.ndarray], np.ndarray], num_tokens: int,
                       lookup_ngram: int, eos_token_ids: tuple[int, ...]) -> np.ndarray:
    """Prompt lookup's proposal, or the table's where lookup finds nothing."""
    copied = lookup_candidates(context, num_tokens, lookup_ngram, eos_token_ids)
    return copied if copied.size else from_table(context)


@dataclass(frozen=True)
class NgramDraft(ProposalArm):
    """Speculative decoding with an n-gram table of the target's next tokens as the draft.

    Parameters
    ----------
    table : str
        The table's ``.npz`` file (:meth:`NgramTable.save <banditspec.speculative.ngram.NgramTable.save>`).
    num_tokens : int, default 4
        Tokens proposed at most per round.
    min_ngram : int, default 1
        The shortest suffix of the context looked up in the table; where the
        table knows no suffix this long it proposes nothing.
    max_ngram : int, optional
        The longest suffix looked up (default: the table's longest).
    lookup_ngram : int, default 0
        When positive, each round first tries prompt lookup with n-grams of
        up to this many tokens (:func:`~banditspec.speculative.kinds.prompt_lookup.lookup_candidates`,
        ``num_tokens`` copied) and asks the table only when it proposes
        nothing. 0: the table alone.
    """

    kind: ClassVar[str] = "ngram_table"
    #: Fields holding local files; a world config resolves them against its folder.
    path_fields: ClassVar[tuple[str, ...]] = ("table",)

    table: str = ""
    num_tokens: int = 4
    min_ngram: int = 1
    max_ngram: int | None = None
    lookup_ngram: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.table, str) or not self.table:
            raise ValueError(f"NgramDraft.table must name a table file, got {self.table!r} for arm {self.name!r}")
        check_integer(f"NgramDraft.num_tokens of arm {self.name!r}", self.num_tokens, low=1)
        check_integer(f"NgramDraft.min_ngram of arm {self.name!r}", self.min_ngram, low=1)
        if self.max_ngram is not None:
            check_integer(f"NgramDraft.max_ngram of arm {self.name!r}", self.max_ngram, low=self.min_ngram)
        check_integer(f"NgramDraft.lookup_ngram of arm {self.name!r}", self.lookup_ngram, low=0)

    def ngram_table(self) -> NgramTable:
        """The table, read once per process (and again if its file changes)."""
        return _table(str(Path(self.table).expanduser().resolve()))

    def check(self, models: Models) -> None:
        """The table must be readable and hold n-grams of ``min_ngram`` tokens."""
        super().check(models)
        try:
            table = self.ngram_table()
        except (OSError, ValueError) as error:
            raise ValueError(f"arm {self.name!r}: cannot read its n-gram table {self.table!r}: {error}") from None
        if table.max_ngram < self.min_ngram:
            raise ValueError(f"arm {self.name!r}: min_ngram is {self.min_ngram} but its table holds n-grams of "
                             f"at most {table.max_ngram} tokens")

    def proposer(self, eos_token_ids: Collection[int]) -> Callable[[np.ndarray], np.ndarray]:
        """The table's chain, after prompt lookup's proposal where ``lookup_ngram`` is set."""
        from_table = partial(self.ngram_table().propose, num_tokens=self.num_tokens, min_ngram=self.min_ngram,
                             max_ngram=self.max_ngram, eos_token_ids=frozenset(eos_token_ids))
        if not self.lookup_ngram:
            return from_table
        return partial(_lookup_then_table, from_table=from_table, num_tokens=self.num_tokens,
                       lookup_ngram=self.lookup_ngram, eos_token_ids=tuple(eos_token_ids))
