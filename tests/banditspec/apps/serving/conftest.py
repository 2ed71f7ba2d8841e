"""Fixtures of the serving tests: a world of tiny checkpoints with two faulty arm kinds, and saved selectors."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from banditspec.apps.scoring import Fitted, LearnerSpec
from banditspec.apps.training import Selector, load_selector, save_selector
from banditspec.bandits.policy import POLICIES
from banditspec.speculative.kinds import ARM_KINDS, DraftModel
from banditspec.speculative.latency import LatencyModel
from banditspec.speculative.world import ConfiguredWorld, open_world
from tests.banditspec.speculative.world.checkpoints import (
    Checkpoints,
    llama_world,
    prompt_rows,
    save_checkpoints,
    to_toml,
    write_jsonl,
)


@dataclass(frozen=True)
class RaisingDraft(DraftModel):
    """A draft arm whose drafting fails: an injected fault."""

    kind: ClassVar[str] = "test-raising"

    def candidate_generator(self, models: Any, request: Any) -> Any:
        raise RuntimeError("injected fault")


class _Slow:
    """A candidate generator that sleeps before every proposal."""

    def __init__(self, generator: Any, seconds: float) -> None:
        self.generator, self.seconds = generator, seconds

    def get_candidates(self, input_ids: Any) -> Any:
        time.sleep(self.seconds)
        return self.generator.get_candidates(input_ids)

    def update_candidate_strategy(self, *args: Any) -> None:
        self.generator.update_candidate_strategy(*args)


@dataclass(frozen=True)
class SleepingDraft(DraftModel):
    """A draft arm that sleeps ``seconds`` before each proposal: far beyond a small time budget."""

    kind: ClassVar[str] = "test-sleeping"
    seconds: float = 1.0

    def candidate_generator(self, models: Any, request: Any) -> Any:
        return _Slow(super().candidate_generator(models, request), self.seconds)


ARM_KINDS.register("test-raising", RaisingDraft)
ARM_KINDS.register("test-sleeping", SleepingDraft)

#: The arms of the serving world, in action order.
ARMS = ["ar", "same", "small", "lookup", "exit-1", "raising", "sleeping"]


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Checkpoints:
    return save_checkpoints(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="session")
def world_toml(checkpoints: Checkpoints, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A world.toml over the tiny Llama checkpoints, with a raising and a sleeping arm."""
    folder = tmp_path_factory.mktemp("world")
    document = llama_world(checkpoints)
    document["arms"] += [{"kind": "test-raising", "name": "raising", "model": str(checkpoints.small), "block_size": 2},
                         {"kind": "test-sleeping", "name": "sleeping", "model": str(checkpoints.small),
                          "block_size": 2, "seconds": 1.0}]
    write_jsonl(folder / "prompts.jsonl", prompt_rows())
    (folder / "world.toml").write_text(to_toml(document))
    return folder / "world.toml"


@pytest.fixture(scope="session")
def world(world_toml: Path) -> ConfiguredWorld:
    opened = open_world(world_toml, progress=False)
    assert opened.arms.names == ARMS
    return opened


@pytest.fixture(scope="session")
def latency() -> LatencyModel:
    """Prices: 1 ms per generate(), 2 ms per target call (1 ms verifying), 0.1 ms per proposed token."""
    K = len(ARMS)
    per_call = np.array([2e-3] + [1e-3] * (K - 1))
    return LatencyModel(list(ARMS), np.full(K, 1e-3), per_call, np.full(K, 1e-4), np.zeros(K))


@pytest.fixture
def make_selector(tmp_path: Path) -> Callable[..., Selector]:
    """Save and load a selector over :data:`ARMS`: ``policy`` is a registered name fitted on random rows."""

    def make(policy: str = "fixed", *, features: str = "hashing", n_features: int = 64, reward: str = "speedup",
             folder: Path | None = None, **params: Any) -> Selector:
        rng = np.random.default_rng(0)
        fitted = POLICIES.create(policy, n_arms=len(ARMS), **params)
        fitted.fit(rng.random((20, n_features)), rng.integers(0, len(ARMS), 20), rng.random(20))
        where = folder or tmp_path / f"selector-{policy}"
        save_selector(Fitted(LearnerSpec(policy, features=features, reward=reward), fitted, 0.0), where,
                      arms=list(ARMS), source={"test": True})
        return load_selector(where)

    return make


def arm(name: str) -> int:
    """The action id of arm ``name``."""
    return ARMS.index(name)
