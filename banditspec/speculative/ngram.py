"""An n-gram table distilled from a target: its most frequent next token after every n-gram of labelled text.

A drafter with no model: after each n-gram of a corpus the table keeps the
token the target itself most often predicts next (the labels of
:class:`~banditspec.speculative.distill.DistillationData`: along a prompt,
what the target would have said; along its greedy output, what it said).
Drafting looks the context's last ``n`` tokens up, longest first, appends the
token found and looks again, up to a number of tokens; it needs no forward
pass, so proposing costs microseconds, as prompt lookup does, but it drafts
from the corpus instead of the prompt (a datastore, as in retrieval-based
speculative decoding). A table per domain is a cheap domain expert.
"""

from __future__ import annotations

import zipfile
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np

from banditspec.bandits.validation import check_integer
from banditspec.speculative.distill import IGNORE

__all__ = ["NgramTable"]


class NgramTable:
    """The target's most frequent next token after each n-gram of ``1..max_ngram`` tokens.

    Parameters
    ----------
    contexts : sequence of np.ndarray
        ``contexts[n - 1]``: ``(m_n, n)`` int64, distinct n-grams.
    next_tokens : sequence of np.ndarray
        ``next_tokens[n - 1]``: ``(m_n,)`` int64, the token kept after each.
    counts : sequence of np.ndarray
        ``counts[n - 1]``: ``(m_n,)`` int64, how often that token followed.
    """

    def __init__(self, contexts: Sequence[np.ndarray], next_tokens: Sequence[np.ndarray],
                 counts: Sequence[np.ndarray]) -> None:
        if not contexts or not len(contexts) == len(next_tokens) == len(counts):
            raise ValueError("give contexts, next tokens and counts for every n-gram size 1..max_ngram")
        for n, (keys, values, seen) in enumerate(zip(contexts, next_tokens, counts), start=1):
            if keys.ndim != 2 or keys.shape[1] != n or values.shape != (len(keys),) or seen.shape != values.shape:
                raise ValueError(f"the {n}-gram arrays must be ({len(keys)}, {n}), ({len(keys)},) and ({len(keys)},); "
                                 f"got {keys.shape}, {values.shape} and {seen.shape}")
        self.contexts = tuple(np.asarray(k, dtype=np.int64) for k in contexts)
        self.next_tokens = tuple(np.asarray(v, dtype=np.int64) for v in next_tokens)
        self.counts = tuple(np.asarray(c, dtype=np.int64) for c in counts)
        self._lookup = [dict(zip(map(bytes, keys), values.tolist())) for keys, values in
                        zip(self.contexts, self.next_tokens)]

    @property
    def max_ngram(self) -> int:
        """The longest n-gram the table holds."""
        return len(self.contexts)

    def __len__(self) -> int:
        """Entries over every n-gram size."""
        return sum(len(keys) for keys in self.contexts)

    @classmethod
    def from_labels(cls, input_ids: np.ndarray, labels: np.ndarray, lengths: np.ndarray, *, max_ngram: int,
                    min_count: int = 1) -> NgramTable:
        """Count, after every n-gram of ``input_ids``, the labels that follow it; keep the most frequent.

        Parameters
        ----------
        input_ids, labels : np.ndarray
            ``(n, T)`` int64, right-padded; ``labels[:, t]`` is the next token
            after ``input_ids[:, :t + 1]``, ``-100`` where there is none.
        lengths : np.ndarray
            ``(n,)`` unpadded lengths.
        max_ngram : int
            The longest context kept.
        min_count : int, default 1
            Entries whose token followed fewer times are dropped.

        Ties between tokens go to the smallest id.
        """
        check_integer("max_ngram", max_ngram, low=1)
        check_integer("min_count", min_count, low=1)
        if input_ids.shape != labels.shape or input_ids.ndim != 2 or lengths.shape != (len(input_ids),):
            raise ValueError(f"input_ids and labels must be (n, T) and lengths (n,), got {input_ids.shape}, "
                             f"{labels.shape} and {lengths.shape}")
        contexts, next_tokens, counts = [], [], []
        for n in range(1, max_ngram + 1):
            keys, values = [], []
            for ids, targets, length in zip(input_ids, labels, lengths):
                if length < n:
                    continue
                windows = np.lib.stride_tricks.sliding_window_view(ids[:length], n)
                following = targets[n - 1 : length]
                keep = following != IGNORE
                keys.append(windows[keep])
                values.append(following[keep])
            pairs = np.concatenate([np.concatenate(keys or [np.empty((0, n), np.int64)]),
                                    np.concatenate(values or [np.empty(0, np.int64)])[:, None]], axis=1)
            kept = _most_frequent(pairs, min_count)
            contexts.append(kept[0])
            next_tokens.append(kept[1])
            counts.append(kept[2])
        return cls(contexts, next_tokens, counts)

    def next_token(self, context: np.ndarray, min_ngram: int = 1, max_ngram: int | None = None) -> int | None:
        """The token after ``context``'s longest known suffix of ``min_ngram..max_ngram`` tokens, or None."""
        check_integer("min_ngram", min_ngram, low=1)
        return self._next(np.asarray(context, dtype=np.int64), min_ngram, max_ngram)

    def _next(self, context: np.ndarray, min_ngram: int, max_ngram: int | None) -> int | None:
        """:meth:`next_token` of an int64 context, its arguments checked by the caller."""
        longest = min(self.max_ngram if max_ngram is None else max_ngram, self.max_ngram, context.size)
        for n in range(longest, min_ngram - 1, -1):
            found = self._lookup[n - 1].get(bytes(context[-n:]))
            if found is not None:
                return found
        return None

    def propose(self, context: np.ndarray, num_tokens: int, *, min_ngram: int = 1, max_ngram: int | None = None,
                eos_token_ids: Collection[int] = ()) -> np.ndarray:
        """Up to ``num_tokens`` tokens drafted greedily after ``context``; stops after an end-of-sequence token."""
        check_integer("min_ngram", min_ngram, low=1)
        sequence = np.asarray(context, dtype=np.int64)
        drafted: list[int] = []
        while len(drafted) < num_tokens:
            token = self._next(sequence, min_ngram, max_ngram)
            if token is None:
                break
            drafted.append(token)
            sequence = np.append(sequence[max(sequence.size - self.max_ngram + 1, 0) :], token)
            if token in eos_token_ids:
                break
        return np.asarray(drafted, dtype=np.int64)

    def save(self, path: str | Path) -> None:
        """Write to an ``.npz`` file (no pickled objects)."""
        arrays = {}
        for n, (keys, values, seen) in enumerate(zip(self.contexts, self.next_tokens, self.counts), start=1):
            arrays |= {f"contexts_{n}": keys, f"next_tokens_{n}": values, f"counts_{n}": seen}
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> NgramTable:
        """Read what :meth:`save` wrote.

        Raises
        ------
        ValueError
            If the file holds no table.
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                n_sizes = sum(key.startswith("contexts_") for key in data.files)
                sizes = range(1, n_sizes + 1)
                return cls([data[f"contexts_{n}"] for n in sizes], [data[f"next_tokens_{n}"] for n in sizes],
                           [data[f"counts_{n}"] for n in sizes])
        except (KeyError, ValueError, AttributeError, zipfile.BadZipFile) as error:
            raise ValueError(f"{str(path)!r} holds no n-gram table: {error}") from None


def _most_frequent(pairs: np.ndarray, min_count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From ``(context..., token)`` rows: each context once, with its most frequent token and that count."""
    n = pairs.shape[1] - 1
    if not len(pairs):
        return np.empty((0, n), np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
    unique, seen = np.unique(pairs, axis=0, return_counts=True)  # sorted by context, then token
    order = np.lexsort([unique[:, -1], -seen, *(unique[:, c] for c in reversed(range(n)))])
    unique, seen = unique[order], seen[order]
    first = np.ones(len(unique), dtype=bool)
    first[1:] = (unique[1:, :n] != unique[:-1, :n]).any(axis=1)
    keep = first & (seen >= min_count)
    return unique[keep, :n], unique[keep, n], seen[keep]
