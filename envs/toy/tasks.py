"""Queries of the toy world: :class:`ToyQuery` and :func:`sample_queries`.

:class:`ToyPrompts` is the toy world's prompt source for
:class:`~banditspec.speculative.world.ConfiguredWorld`.

Train and test queries are disjoint by construction: a prompt belongs to the
``test`` split when the first byte of its BLAKE2b hash is below 32 (one prompt
in eight) and to ``train`` otherwise, and the sampler keeps only prompts of the
requested split. Seeds only choose *which* queries of a split are drawn.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from banditspec.envs.toy.domains import get_domain
from banditspec.speculative.world.prompts import Prompts, query_id

__all__ = ["SPLITS", "ToyPrompts", "ToyQuery", "sample_queries", "split_of"]

SPLITS = ("train", "test")
_TEST_BYTE = 32  # prompts whose hash starts below this byte are test prompts (1/8)


@dataclass(frozen=True)
class ToyQuery:
    """One query: a prompt, the completion its domain's rule gives, and the domain.

    ``domain`` is for reports only; policies see the prompt text alone.
    """

    prompt: str
    completion: str
    domain: str


def split_of(prompt: str) -> str:
    """The split (``"train"`` or ``"test"``) the prompt belongs to, from its hash."""
    return "test" if hashlib.blake2b(prompt.encode(), digest_size=8).digest()[0] < _TEST_BYTE else "train"


def _domains_of(source: Any) -> tuple[str, ...]:
    """Domain names of a config, a loaded world (``.config``) or a sequence of names."""
    if hasattr(source, "config"):
        source = source.config
    domains = getattr(source, "domains", source)
    if isinstance(domains, str) or not isinstance(domains, Sequence) or not domains:
        raise ValueError(f"source must be a ToyConfig, a loaded world or a non-empty list of domains, got {source!r}")
    return tuple(domains)


def sample_queries(source: Any, n: int, *, split: str, seed: int, domains: Sequence[str] | None = None) -> list[ToyQuery]:
    """Draw ``n`` queries of ``split``, each from a uniformly random domain.

    Parameters
    ----------
    source : ToyConfig, ToyModels or sequence of str
        Where the domains come from.
    n : int
        Number of queries (>= 0).
    split : {"train", "test"}
        Which split; the two are disjoint (:func:`split_of`).
    seed : int
        Seed of the draw; the same arguments give the same queries.
    domains : sequence of str, optional
        Restrict the draw to these domains (default: all of ``source``'s).

    Returns
    -------
    list of ToyQuery
    """
    names = tuple(domains) if domains is not None else _domains_of(source)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if not names:
        raise ValueError("domains must not be empty")
    generators = [get_domain(name) for name in names]
    rng = np.random.default_rng([int(seed), SPLITS.index(split)])
    queries: list[ToyQuery] = []
    while len(queries) < n:
        domain = generators[int(rng.integers(len(generators)))]
        prompt, completion = domain.generate(rng)
        if split_of(prompt) == split:
            queries.append(ToyQuery(prompt, completion, domain.name))
    return queries


@dataclass(frozen=True)
class ToyPrompts:
    """The queries of a toy world as a prompt source: :func:`sample_queries`, ids from the text, domains as groups.

    Parameters
    ----------
    source : ToyConfig, ToyModels or sequence of str
        Where the domains come from.
    """

    source: Any

    def size(self, split: str) -> None:
        """None: queries are generated, as many as asked."""
        return None

    def sample(self, n: int, *, split: str, seed: int) -> Prompts:
        """``n`` queries of ``split`` drawn with ``seed`` (:func:`sample_queries`)."""
        sampled = sample_queries(self.source, n, split=split, seed=seed)
        texts = [q.prompt for q in sampled]
        return Prompts(texts=texts, ids=np.array([query_id(t) for t in texts], dtype=np.int64),
                       groups=np.array([q.domain for q in sampled]))
