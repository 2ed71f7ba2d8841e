"""Train/test membership by a hash of the query's key: the same on every run, seed and machine.

A query belongs to the test split when the first 8 bytes of the BLAKE2b
digest of its key, read as an unsigned integer ``h``, satisfy

.. math:: h / 2^{64} < f,

with ``f`` the test fraction. The key is whatever identifies the query: its
id in a logged dataset, or its prompt text in a world built from a prompts
file. Every row of one query then lands on the same side, so no query is in
both splits; a seed may reorder the queries within a split but never moves
one across.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np

__all__ = ["SPLITS", "split_of"]

#: The two splits, in the order worlds name them.
SPLITS: tuple[str, str] = ("train", "test")


def split_of(key: str | int, test_fraction: float) -> Literal["train", "test"]:
    """The split of the query identified by ``key``.

    Parameters
    ----------
    key : str or int
        The query's stable identity (a prompt text, a query id). An integer
        is hashed as its decimal string, so ``5`` and ``"5"`` share a split.
    test_fraction : float
        Expected share of keys in the test split, in [0, 1].

    Returns
    -------
    {"train", "test"}

    Raises
    ------
    TypeError
        If ``key`` is neither a string nor an integer.
    ValueError
        If ``test_fraction`` is not a number in [0, 1].
    """
    if isinstance(key, (bool, np.bool_)) or not isinstance(key, (str, int, np.integer)):
        raise TypeError(f"a split key must be a str or an int, got {type(key).__name__}")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 <= test_fraction <= 1:
        raise ValueError(f"test_fraction must be a number in [0, 1], got {test_fraction!r}")
    text = key if isinstance(key, str) else str(int(key))
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return "test" if int.from_bytes(digest, "big") / 2**64 < test_fraction else "train"
