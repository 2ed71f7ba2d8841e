"""Fixtures shared across test packages."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

# The suite is deterministic: every property test draws the same examples on every run (CI included).
# `pytest --hypothesis-profile=explore` draws new ones, to hunt for bugs beyond them.
settings.register_profile("deterministic", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("deterministic")


@pytest.fixture(scope="session")
def toy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder private to this test session (the tiny toy world builds there in seconds)."""
    return tmp_path_factory.mktemp("toy-cache")


@pytest.fixture(scope="session")
def tiny_toy(toy_cache: Path):
    """The tiny toy world as an environment (real models, real decoding), 24 new tokens per decode."""
    from banditspec.envs.toy.world import ToyWorld

    return ToyWorld("tiny", max_new_tokens=24, block_size=4, cache_dir=str(toy_cache), progress=False)


@pytest.fixture(scope="session")
def self_draft(toy_cache: Path):
    """The tiny self-draft world: a 2-layer Llama target whose first layer drafts for it (arm ``exit-1``)."""
    from banditspec.envs.toy.world import ToyWorld

    return ToyWorld("tiny-self-draft", max_new_tokens=24, block_size=4, cache_dir=str(toy_cache), progress=False)
