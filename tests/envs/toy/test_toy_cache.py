import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import GPT2LMHeadModel, LlamaForCausalLM

import banditspec.envs.toy.cache as cache
from banditspec.envs.toy import TINY, TINY_SELF_DRAFT, ToyConfig, cache_root, load_world


def _weights(path: Path) -> dict[str, torch.Tensor]:
    # copies: the loaded tensors are memory-mapped and the file is damaged afterwards
    return {k: v.clone() for k, v in load_file(path / "model.safetensors").items()}


def test_tiny_world_builds_with_every_model(tiny_world):
    assert set(tiny_world.drafts) == {d.name for d in TINY.drafts}
    assert not tiny_world.target.training and not any(m.training for m in tiny_world.drafts.values())
    assert all(m.config.vocab_size == len(tiny_world.tokenizer) for m in [tiny_world.target, *tiny_world.drafts.values()])
    assert tiny_world.path.name == TINY.key() and tiny_world.path.parent == cache_root(tiny_world.path.parent.parent)
    meta = json.loads((tiny_world.path / "world.json").read_text())
    assert ToyConfig.from_dict(meta["config"]) == TINY and "target/model.safetensors" in meta["manifest"]
    assert not [p for p in tiny_world.path.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_each_model_loads_as_its_architecture(tiny_world, tiny_cache):
    assert isinstance(tiny_world.target, GPT2LMHeadModel)
    world = load_world(TINY_SELF_DRAFT, cache_dir=tiny_cache, progress=False)
    assert isinstance(world.target, LlamaForCausalLM) and isinstance(world.drafts["generalist"], GPT2LMHeadModel)
    assert world.target.lm_head.weight is world.target.get_input_embeddings().weight


def test_warm_load_reads_the_cache_without_training(tiny_world, tiny_cache, monkeypatch):
    monkeypatch.setattr(cache, "build_world", lambda *a, **k: pytest.fail("a warm load must not rebuild"))
    again = load_world(TINY, cache_dir=tiny_cache, progress=False)
    for a, b in zip(again.target.parameters(), tiny_world.target.parameters(), strict=True):
        assert torch.equal(a, b)


def test_environment_variable_chooses_the_cache(tiny_world, tiny_cache, monkeypatch):
    monkeypatch.setenv("BANDITSPEC_CACHE", str(tiny_cache))
    assert cache_root() == tiny_cache / "toy"


@pytest.mark.parametrize("damage", ["truncate", "missing-config"])
def test_corrupt_entry_is_rebuilt_with_identical_weights(tiny_world, tmp_path, damage):
    # damage a copy of the session's world so the shared fixture stays intact
    root = tmp_path / "toy"
    shutil.copytree(tiny_world.path, root / TINY.key())
    expert = root / TINY.key() / "drafts" / "expert-code"
    before = _weights(expert)
    if damage == "truncate":
        data = (expert / "model.safetensors").read_bytes()
        (expert / "model.safetensors").write_bytes(data[: len(data) // 2])
    else:
        (root / TINY.key() / "target" / "config.json").unlink()
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        world = load_world(TINY, cache_dir=tmp_path, progress=False)
    after = _weights(expert)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert set(world.drafts) == set(tiny_world.drafts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_world(TINY, cache_dir=tmp_path, progress=False)


def test_load_world_rejects_a_non_config(tmp_path):
    with pytest.raises(ValueError, match="ToyConfig"):
        load_world({"seed": 0}, cache_dir=tmp_path)
    assert not (tmp_path / "toy").exists()
