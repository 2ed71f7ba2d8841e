"""The toy world: small transformers models trained here on procedurally generated text.

A target (6 layers, 3.2M parameters by default) trained on every domain, one expert
draft per domain, a generalist draft and a misaligned draft (81k parameters
each, distilled from the target), all sharing one word-level tokenizer; built on the CPU in a
few minutes and cached on disk (see ``docs/toy-world.md``)::

    from banditspec.envs.toy import DEFAULT, load_world, sample_queries

    world = load_world(DEFAULT)                    # builds once, then loads from the cache
    queries = sample_queries(world, 8, split="test", seed=0)
    inputs = world.tokenizer(queries[0].prompt, return_tensors="pt")
    out = world.target.generate(**inputs, assistant_model=world.drafts["expert-code"],
                                do_sample=False, max_new_tokens=64)

In :data:`SELF_DRAFT` the target is a Llama model trained with an early-exit loss,
and its first layers draft for it (``assistant_early_exit=k``).
"""

from banditspec.envs.toy.cache import CorruptWorldError, ToyModels, build_world, cache_root, load_world, prepare_world
from banditspec.envs.toy.config import (
    ARCHITECTURES,
    CODE_VERSION,
    DEFAULT,
    DEFAULT_DOMAINS,
    SELF_DRAFT,
    SIZES,
    SPEC_BENCH,
    SPEC_BENCH_DOMAINS,
    TINY,
    TINY_SELF_DRAFT,
    DraftSpec,
    ModelSpec,
    ToyConfig,
    standard_drafts,
)
from banditspec.envs.toy.domains import DOMAINS, Domain, register_domain
from banditspec.envs.toy.tasks import ToyPrompts, ToyQuery, sample_queries, split_of

__all__ = [
    "ARCHITECTURES",
    "CODE_VERSION",
    "DEFAULT",
    "DEFAULT_DOMAINS",
    "DOMAINS",
    "SELF_DRAFT",
    "SIZES",
    "SPEC_BENCH",
    "SPEC_BENCH_DOMAINS",
    "TINY",
    "TINY_SELF_DRAFT",
    "CorruptWorldError",
    "Domain",
    "DraftSpec",
    "ModelSpec",
    "ToyConfig",
    "ToyModels",
    "ToyPrompts",
    "ToyQuery",
    "build_world",
    "cache_root",
    "load_world",
    "prepare_world",
    "register_domain",
    "sample_queries",
    "split_of",
    "standard_drafts",
]
