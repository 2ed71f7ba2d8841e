"""Counterfactual prompt-lookup decoding: its target calls from the target's output alone.

Prompt lookup drafts by copying: at each step it takes the last ``n`` tokens of
the context (``n`` from ``max_ngram`` down to 1), finds their first earlier
occurrence in the context and proposes the up to ``num_tokens`` tokens that
followed it. The proposal depends only on the context, so once the target's
greedy output ``y`` is known, every round of transformers' prompt-lookup
decoding can be replayed without a model — the same idea as
:mod:`banditspec.speculative.counterfactual` for draft models.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from banditspec.speculative.counterfactual import SimulatedDecode

__all__ = ["lookup_candidates", "simulate_prompt_lookup"]


def lookup_candidates(context: np.ndarray, num_tokens: int, max_ngram: int) -> np.ndarray:
    """Tokens prompt lookup proposes after ``context`` (possibly none).

    Mirrors transformers' ``PromptLookupCandidateGenerator.get_candidates``: the
    longest n-gram first; within one n-gram size, the leftmost occurrence with
    a non-empty continuation.
    """
    length = context.size
    for n in range(min(max_ngram, length - 1), 0, -1):
        windows = np.lib.stride_tricks.sliding_window_view(context, n)
        for start in np.flatnonzero((windows == context[-n:]).all(axis=1)):
            begin = start + n
            end = min(begin + num_tokens, length)
            if begin < end:
                return context[begin:end]
    return context[:0]


def simulate_prompt_lookup(
    prompt_ids: Sequence[int] | np.ndarray,
    output_ids: Sequence[int] | np.ndarray,
    *,
    num_tokens: int,
    max_ngram: int,
    max_new_tokens: int | None = None,
    eos_token_id: int | None = None,
) -> SimulatedDecode:
    """Replay prompt-lookup decoding along the target's greedy output.

    At ``n`` tokens generated the context is ``(x, y_<n)``; the proposal ``c``
    (cut after an end-of-sequence token; none when one token is left before
    ``M = max_new_tokens``; otherwise not shortened near the end, as in
    transformers) is verified by one target call, which accepts the leading
    run ``a`` of ``c_i == y_{n+i}`` and adds one token: ``n <- n + a + 1``.

    Parameters
    ----------
    prompt_ids, output_ids : token ids
        The prompt ``x`` (non-empty) and the target's new tokens ``y``.
    num_tokens, max_ngram : int
        The arm's ``prompt_lookup_num_tokens`` and ``max_matching_ngram_size``.
    max_new_tokens : int, optional
        ``M``; default ``len(y)``.
    eos_token_id : int, optional
        Proposals are cut after this token, as transformers cuts them.
    """
    x = np.asarray(prompt_ids, dtype=np.int64)
    y = np.asarray(output_ids, dtype=np.int64)
    if x.ndim != 1 or x.size == 0 or y.ndim != 1:
        raise ValueError("prompt_ids must be a non-empty 1-d id sequence and output_ids a 1-d id sequence")
    if num_tokens < 1 or max_ngram < 1:
        raise ValueError(f"num_tokens and max_ngram must be >= 1, got {num_tokens} and {max_ngram}")
    total = y.size
    limit = total if max_new_tokens is None else max_new_tokens
    if limit < total:
        raise ValueError(f"max_new_tokens ({limit}) must be >= the output length ({total})")
    sequence = np.concatenate([x, y])
    n = calls = proposed = accepted = 0
    while n < total:
        candidates = lookup_candidates(sequence[: x.size + n], num_tokens, max_ngram)
        if eos_token_id is not None:
            eos = np.flatnonzero(candidates == eos_token_id)
            if eos.size:
                candidates = candidates[: eos[0] + 1]
        if n == limit - 1:  # the target's own last token needs no proposal
            candidates = candidates[:0]
        k = candidates.size
        agree = candidates[: total - n] == y[n : n + k]
        run = agree.size if agree.all() else int(np.argmin(agree))
        run = min(run, total - n - 1)
        calls += 1
        proposed += k
        accepted += run
        n += run + 1
    return SimulatedDecode(calls, proposed, accepted, total)
