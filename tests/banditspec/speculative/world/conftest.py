"""Fixtures of the world tests: tiny checkpoints saved once per session, world.toml files, no loading."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import transformers

from tests.banditspec.speculative.world.checkpoints import (
    Checkpoints,
    prompt_rows,
    save_checkpoints,
    to_toml,
    write_jsonl,
)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Checkpoints:
    return save_checkpoints(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture
def write_world(tmp_path: Path) -> Callable[..., Path]:
    """Write ``world.toml`` from a dict and ``prompts.jsonl`` (40 prompts) into a fresh folder; returns its path."""

    def write(document: dict[str, Any], *, rows: list[Any] | None = None) -> Path:
        write_jsonl(tmp_path / "prompts.jsonl", prompt_rows() if rows is None else rows)
        path = tmp_path / "world.toml"
        path.write_text(to_toml(document))
        return path

    return write


@pytest.fixture
def forbid_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every ``from_pretrained`` of a config, tokenizer or model fail for the rest of the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a model, config or tokenizer was loaded before the input was checked")

    for cls in (transformers.AutoConfig, transformers.AutoTokenizer, transformers.AutoModelForCausalLM,
                transformers.AutoModelForSeq2SeqLM, transformers.PreTrainedModel,
                transformers.PreTrainedTokenizerBase):
        monkeypatch.setattr(cls, "from_pretrained", refuse)
