"""A tiny toy world built once per test session in a temporary cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from banditspec.envs.toy import TINY, ToyModels, load_world


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("banditspec-cache")


@pytest.fixture(scope="session")
def tiny_world(tiny_cache: Path) -> ToyModels:
    return load_world(TINY, cache_dir=tiny_cache, progress=False)
