"""The ``prompt_lookup`` kind: drafts are n-gram continuations copied from the context.

Prompt lookup drafts by copying: at each step it takes the last ``n`` tokens of
the context (``n`` from ``max_ngram`` down to 1), finds their first earlier
occurrence in the context and proposes the up to ``num_tokens`` tokens that
followed it, up to (not including) an end-of-sequence token, as transformers'
``PromptLookupCandidateGenerator`` does. The proposal depends only on the
context (a :class:`~banditspec.speculative.kinds.proposal.ProposalArm`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import numpy as np

from banditspec.bandits.validation import check_integer
from banditspec.speculative.kinds.proposal import ProposalArm

__all__ = ["PromptLookup", "lookup_candidates"]


def lookup_candidates(context: np.ndarray, num_tokens: int, max_ngram: int,
                      eos_token_ids: Collection[int] = ()) -> np.ndarray:
    """Tokens prompt lookup proposes after ``context`` (possibly none).

    Mirrors transformers' ``PromptLookupCandidateGenerator.get_candidates``: the
    longest n-gram first; within one n-gram size, the leftmost occurrence with
    a non-empty continuation; that continuation is cut *before* its first
    token of ``eos_token_ids`` (so a continuation that starts with one
    proposes nothing), as transformers cuts it.
    """
    length = context.size
    for n in range(min(max_ngram, length - 1), 0, -1):
        windows = np.lib.stride_tricks.sliding_window_view(context, n)
        for start in np.flatnonzero((windows == context[-n:]).all(axis=1)):
            begin = start + n
            end = min(begin + num_tokens, length)
            if begin < end:
                found = context[begin:end]
                ends = np.flatnonzero(np.isin(found, list(eos_token_ids))) if len(eos_token_ids) else ()
                return found[: ends[0]] if len(ends) else found
    return context[:0]


@dataclass(frozen=True)
class PromptLookup(ProposalArm):
    """Prompt-lookup decoding: drafts are n-gram continuations copied from the prompt and output so far.

    Parameters
    ----------
    num_tokens : int, default 10
        Tokens copied per lookup (``prompt_lookup_num_tokens``).
    max_ngram : int, default 2
        Longest n-gram matched (``max_matching_ngram_size``).
    """

    kind: ClassVar[str] = "prompt_lookup"

    num_tokens: int = 10
    max_ngram: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_integer(f"PromptLookup.num_tokens of arm {self.name!r}", self.num_tokens, low=1)
        check_integer(f"PromptLookup.max_ngram of arm {self.name!r}", self.max_ngram, low=1)

    def proposer(self, eos_token_ids: Collection[int]) -> Callable[[np.ndarray], np.ndarray]:
        """:func:`lookup_candidates` at this arm's settings."""
        return partial(lookup_candidates, num_tokens=self.num_tokens, max_ngram=self.max_ngram,
                       eos_token_ids=tuple(eos_token_ids))
