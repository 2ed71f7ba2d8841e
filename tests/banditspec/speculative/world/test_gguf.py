"""GGUF checkpoints: converted once to safetensors in the cache, then loaded like any folder."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("gguf")

from banditspec.speculative.kinds import Autoregressive  # noqa: E402
from banditspec.speculative.world import ModelConfig, WorldConfig, load_models  # noqa: E402
from banditspec.speculative.world.gguf import converted  # noqa: E402
from tests.banditspec.speculative.world.gguf_files import tiny_llama, write_gguf  # noqa: E402


@pytest.fixture(scope="module")
def gguf_model(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("gguf")
    model = tiny_llama()
    write_gguf(model, folder / "tiny.gguf")
    return model, ModelConfig(str(folder), gguf_file="tiny.gguf")


def test_a_gguf_file_is_converted_once_to_safetensors_with_its_tokenizer(gguf_model, tmp_path):
    model, config = gguf_model
    copy = converted(config, cache_dir=tmp_path)
    (entry,) = (tmp_path / "gguf").iterdir()
    assert copy.gguf_file is None and copy.location == str(entry)
    assert {"model.safetensors", "config.json", "tokenizer.json", "converted.json"} <= {f.name for f in entry.iterdir()}
    assert "quantization_config" not in json.loads((entry / "config.json").read_text())
    written = (entry / "model.safetensors").stat().st_mtime_ns
    assert converted(config, cache_dir=tmp_path) == copy  # the second time it is only looked up
    assert (entry / "model.safetensors").stat().st_mtime_ns == written


def test_a_world_with_a_gguf_target_loads_its_converted_copy(gguf_model, tmp_path, monkeypatch):
    model, config = gguf_model
    monkeypatch.setenv("BANDITSPEC_CACHE", str(tmp_path))
    loaded = load_models(WorldConfig(target=config, arms=(Autoregressive("ar"),)), progress=False)
    ids = loaded.tokenizer("the cat sat", return_tensors="pt").input_ids
    assert ids[0, 0].item() == len(loaded.tokenizer) - 1  # "th": the GGUF's merges came along
    with torch.inference_mode():
        assert torch.allclose(loaded.target(ids).logits, model(ids).logits, atol=1e-5)
    assert (tmp_path / "gguf").is_dir()


def test_a_missing_gguf_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="no GGUF file"):
        converted(ModelConfig(str(tmp_path), gguf_file="absent.gguf"), cache_dir=tmp_path)
