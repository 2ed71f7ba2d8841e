"""Alignment scores between a draft's and the target's greedy outputs.

These are the paper's offline proxies of how useful a draft is on a query:
the closer the draft's own greedy continuation is to the target's, the more of
its proposals the target would accept. Every score lies in [0, 1] and equals 1
when the two outputs are identical (and non-empty).

With ``a`` the draft's output, ``b`` the target's and ``|.|`` the length:

=====================  ================================================  =========
score                  formula                                           symmetric
=====================  ================================================  =========
``token_match``        ``#{i : a_i = b_i} / max(|a|, |b|)``              yes
``lcs``                ``LCS(a, b) / |b|``                               no
``accepted_prefix``    ``(length of the common prefix) / |b|``           no
=====================  ================================================  =========

Conventions for empty outputs: two empty outputs score 1; an empty target with
a non-empty draft, or an empty draft, scores 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from banditspec.bandits.env import METRICS  # the names of the scores, in the order alignment_scores returns them

__all__ = ["METRICS", "accepted_prefix", "alignment_scores", "lcs", "lcs_length", "token_match"]

TokenIds = Sequence[int] | np.ndarray


def _as_ids(name: str, ids: TokenIds) -> np.ndarray:
    array = np.asarray(ids)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-d sequence of token ids, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer token ids, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def _empty_score(draft: np.ndarray, target: np.ndarray) -> float | None:
    if target.size and draft.size:
        return None
    return 1.0 if target.size == draft.size else 0.0


def token_match(draft: TokenIds, target: TokenIds) -> float:
    """Share of positions where the two outputs agree.

    ``#{i < min(|a|, |b|) : a_i = b_i} / max(|a|, |b|)``; symmetric, and 1 only
    for identical outputs.
    """
    a, b = _as_ids("draft", draft), _as_ids("target", target)
    if (empty := _empty_score(a, b)) is not None:
        return empty
    n = min(a.size, b.size)
    return float(np.count_nonzero(a[:n] == b[:n]) / max(a.size, b.size))


def lcs_length(a: TokenIds, b: TokenIds) -> int:
    """Length of the longest common subsequence of two token sequences.

    Bit-parallel dynamic programme (Allison & Dix 1986; Hyyrö 2004): the DP row
    over ``a`` is kept as the bits of one integer ``V`` (a 0 bit where the row
    steps up), and each symbol ``c`` of ``b`` updates the whole row at once with
    ``U = V & M[c]``, ``V = (V + U) | (V - U)``, where ``M[c]`` has bit ``i``
    set iff ``a_i = c``. Then ``LCS = |a| - popcount(V)``. This is
    ``O(|b| * |a| / w)`` word operations instead of the ``O(|a| |b|)`` cells of
    the textbook table.
    """
    x, y = _as_ids("a", a), _as_ids("b", b)
    if x.size == 0 or y.size == 0:
        return 0
    masks: dict[int, int] = {}
    for i, symbol in enumerate(x.tolist()):
        masks[symbol] = masks.get(symbol, 0) | (1 << i)
    full = (1 << x.size) - 1
    row = full
    for symbol in y.tolist():
        matched = row & masks.get(symbol, 0)
        row = ((row + matched) | (row - matched)) & full
    return x.size - row.bit_count()


def lcs(draft: TokenIds, target: TokenIds) -> float:
    """Longest common subsequence length over the target's length, ``LCS(a, b) / |b|``."""
    a, b = _as_ids("draft", draft), _as_ids("target", target)
    if (empty := _empty_score(a, b)) is not None:
        return empty
    return lcs_length(a, b) / b.size


def accepted_prefix(draft: TokenIds, target: TokenIds) -> float:
    """Length of the common prefix over the target's length.

    The share of the target's output a draft that decoded on its own would
    have had accepted in one block of unbounded size.
    """
    a, b = _as_ids("draft", draft), _as_ids("target", target)
    if (empty := _empty_score(a, b)) is not None:
        return empty
    n = min(a.size, b.size)
    mismatch = np.flatnonzero(a[:n] != b[:n])
    prefix = int(mismatch[0]) if mismatch.size else n
    return prefix / b.size


def alignment_scores(draft: TokenIds, target: TokenIds) -> dict[str, float]:
    """All scores of :data:`METRICS` as a mapping (the ``Measurement.alignment`` field)."""
    return {
        "token_match": token_match(draft, target),
        "lcs": lcs(draft, target),
        "accepted_prefix": accepted_prefix(draft, target),
    }
