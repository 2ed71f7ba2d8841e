"""The SmolLM2 world's build path on tiny local checkpoints and corpora: built, cached, run by the demo, lossless."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from pathlib import Path

import pytest

from banditspec.apps.cli import main
from banditspec.bandits.data import LoggedDataset
from banditspec.envs.smollm2 import TINY, SmolConfig, SmolLM2World, prepare_world
from banditspec.speculative.world import load_world_config
from tests.banditspec.speculative.world.checkpoints import ADJECTIVES, ANIMALS, PLACES, VERBS, save_checkpoints


def write_corpus(root: Path) -> dict[str, str]:
    """Three domains of 20 documents, each a few distinct sentences of the tiny tokenizer's words."""
    sentences = [" ".join(("the", *words)) for words in itertools.product(ADJECTIVES, ANIMALS, VERBS, PLACES)]
    folders = {}
    for d, domain in enumerate(("animals", "places", "verbs")):
        folder = root / domain
        folder.mkdir(parents=True)
        for i in range(20):
            start = (d * 20 + i) * 4 % (len(sentences) - 4)
            (folder / f"doc{i}.txt").write_text("\n".join(sentences[start : start + 4]) + "\n")
        folders[domain] = str(folder)
    return folders


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> SmolConfig:
    root = tmp_path_factory.mktemp("smollm2")
    checkpoints = save_checkpoints(root / "checkpoints")
    return SmolConfig(**{**TINY.to_dict(), "target": str(checkpoints.target), "corpus": write_corpus(root / "corpus"),
                         "fractions": tuple(TINY.fractions)})


def test_the_world_builds_once_with_prompts_split_by_document(tiny, tmp_path):
    path, info = prepare_world(tiny, cache_dir=tmp_path, progress=False)
    assert prepare_world(tiny, cache_dir=tmp_path, progress=False) == (path, info)  # cached: not rebuilt
    assert set(info["final_loss"]) == {"animals", "places", "verbs", "general"}
    world = load_world_config(path / "world.toml")  # the cached world is a world.toml like any user's
    assert [arm.name for arm in world.arms] == ["ar", "animals", "places", "verbs", "general", "table-general-2",
                                                "lookup-2", "exit-1", "int8-b2"]
    assert set(info["table_entries"]) == {"animals", "places", "verbs", "general"}
    assert 0 < info["table_entries"]["animals"] < info["table_entries"]["general"]
    assert info["passages"]["tables"] > 0 and info["table_tokens"] > info["distillation_tokens"]
    assert {arm.name: arm for arm in world.arms}["table-general-2"].lookup_ngram == tiny.table_lookup_ngram
    rows = [json.loads(line) for line in (path / "prompts.jsonl").read_text().splitlines()]
    documents = {split: {(r["domain"], r["document"]) for r in rows if r["split"] == split} for split in ("train", "test")}
    assert documents["train"] and documents["test"] and not documents["train"] & documents["test"]
    assert info["passages"]["distill"] > 0 and info["distillation_tokens"] > 0
    assert world.target.linear_kernels == "mixed"
    kernels = {key: m.linear_kernels for key, m in world.drafts.items()}
    assert kernels.pop(world.target.location) == "int8" and set(kernels.values()) == {"mixed"}
    assert world.drafts[world.target.location].location == world.target.location  # the target's own checkpoint


def test_an_older_worlds_toml_is_written_again_on_open_and_nothing_is_rebuilt(tiny, tmp_path):
    path, info = prepare_world(tiny, cache_dir=tmp_path, progress=False)
    today = (path / "world.toml").read_text()
    (path / "world.toml").write_text(today.replace('name = "lookup-2"', 'name = "prompt-lookup"'))
    drafts = {p: p.stat().st_mtime_ns for p in (path / "drafts").rglob("*")}
    assert prepare_world(tiny, cache_dir=tmp_path, progress=False) == (path, info)
    assert (path / "world.toml").read_text() == today
    assert {p: p.stat().st_mtime_ns for p in (path / "drafts").rglob("*")} == drafts


def test_the_cache_key_covers_what_the_build_uses_and_not_the_arms(tiny):
    for field, value in (("block_size", 5), ("exit_layer", None), ("lookup_tokens", (3, 9)), ("int8_block_sizes", ()),
                         ("feature_layer", None), ("target_kernels", "onednn"), ("table_tokens", (3,)),
                         ("table_min_ngram", 2), ("table_names", ()), ("table_lookup_ngram", 0)):
        assert dataclasses.replace(tiny, **{field: value}).key() == tiny.key(), field
    for field, value in (("seed", 1), ("max_new_tokens", 7), ("draft_layers", 2), ("table_max_ngram", 3),
                         ("table_passages_per_domain", 2)):
        assert dataclasses.replace(tiny, **{field: value}).key() != tiny.key(), field


def test_a_target_file_is_keyed_by_its_bytes_not_its_modification_time(tmp_path):
    target = tmp_path / "model.gguf"
    target.write_bytes(b"weights" * 100)
    config = dataclasses.replace(TINY, target=str(target))
    key = config.key()
    os.utime(target, ns=(1, 1))  # the file installed again: same bytes, a new modification time
    assert config.key() == key
    target.write_bytes(b"other weights")
    assert config.key() != key


def test_the_demo_runs_on_the_world_and_is_lossless(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("BANDITSPEC_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    args = ["demo", "--env", "smollm2", "--env-arg", "config=tiny", "--env-arg", f"target={tiny.target}",
            "--env-arg", "corpus=" + json.dumps(dict(tiny.corpus)), "--n-train", "12", "--n-test", "4",
            "--calibration", "3", "--workers", "1", "--out", str(out)]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["outputs_equal_ar"] is True
    assert min(report["counterfactual_check"]["target_calls_equal_share"].values()) >= 0.75
    models = report["config"]["models"]  # which kernels ran AR and the drafts
    assert models["target"]["linear_kernels"] == "mixed"
    assert models["drafts"][models["target"]["location"]]["linear_kernels"] == "int8"
    assert set(report["groups"]) <= {"animals", "places", "verbs"}
    train = set(LoggedDataset.load(out / "train-data").columns["prompt"])
    test = set(LoggedDataset.load(out / "test-data").columns["prompt"])
    assert train and test and not train & test


def test_a_missing_target_package_or_corpus_is_named(tmp_path):
    with pytest.raises(ValueError, match="corpus folder"):
        prepare_world(SmolConfig(**{**TINY.to_dict(), "target": str(tmp_path), "corpus": {"x": str(tmp_path / "no")},
                                    "fractions": tuple(TINY.fractions)}), cache_dir=tmp_path, progress=False)


@pytest.mark.parametrize("field", ["lookup_tokens", "table_tokens", "int8_block_sizes"])
@pytest.mark.parametrize("sizes", [(0,), (3, 3), (2.5,), (True,)])
def test_block_sizes_must_be_distinct_positive_integers(field, sizes):
    with pytest.raises(ValueError, match=f"{field} must be distinct integers >= 1"):
        SmolConfig(**{field: sizes})


@pytest.mark.parametrize("fields, message", [
    ({"table_max_ngram": 0}, "table_max_ngram must be an integer >= 1, got 0"),
    ({"table_tokens": (1.5,)}, r"table_tokens must be distinct integers >= 1, got \(1.5,\)"),
    ({"table_min_ngram": True}, "table_min_ngram must be an integer >= 1, got True"),
    ({"table_lookup_ngram": -1}, "table_lookup_ngram must be an integer >= 0, got -1"),
    ({"table_passages_per_domain": "all"}, "table_passages_per_domain must be an integer >= 0, got 'all'"),
    ({"table_min_ngram": 3, "table_max_ngram": 2}, r"table_min_ngram \(3\) must be at most table_max_ngram \(2\)"),
    ({"table_names": ("general", "general")}, r"table_names must be distinct, got \('general', 'general'\)"),
    ({"table_names": ("maths",)}, r"table_names must name tables of \['python', 'licences', 'docs', 'general'\], "
                                  "got 'maths'"),
])
def test_the_table_fields_are_checked(fields, message):
    with pytest.raises(ValueError, match=message):
        SmolConfig(**fields)


def test_the_target_kernels_are_checked():
    with pytest.raises(ValueError, match="target_kernels must be one of"):
        SmolConfig(target_kernels="int8")


@pytest.mark.parametrize("layer", [-1, 2.0, True])
def test_the_feature_layer_is_checked(layer):
    with pytest.raises(ValueError, match="feature_layer must be None or an integer >= 0"):
        SmolConfig(feature_layer=layer)


def test_config_fields_are_world_options_and_shape_its_toml(tiny, tmp_path):
    world = SmolLM2World(tiny, cache_dir=str(tmp_path), progress=False, target_kernels="onednn",
                         lookup_tokens=[2, 5], int8_block_sizes=[], feature_layer=0, table_names=[])
    assert world.config.lookup_tokens == (2, 5) and world.config.int8_block_sizes == ()
    assert world.world_config.features.layer == 0 and world.featurizer.layer == 0
    assert [arm.name for arm in world.arms][-3:] == ["lookup-2", "lookup-5", "exit-1"]
    assert not any(name.startswith("table-") for name in world.arms.names)  # table_names=[] below
    tables = SmolLM2World(tiny, cache_dir=str(tmp_path), progress=False, table_names=["general", "verbs"],
                          table_tokens=[3, 1], table_min_ngram=2, table_lookup_ngram=0)
    assert [name for name in tables.arms.names if name.startswith("table-")] == [
        "table-general-3", "table-general-1", "table-verbs-3", "table-verbs-1"]
    arm = tables.arms["table-verbs-3"]
    assert (arm.num_tokens, arm.min_ngram, arm.lookup_ngram) == (3, 2, 0)
    assert arm.ngram_table().max_ngram == tiny.table_max_ngram and arm.table.endswith("tables/verbs.npz")
    assert world.world_config.target.linear_kernels == "onednn"
    with pytest.raises(ValueError, match=r"unknown SmolLM2 world options \['block'\]"):
        SmolLM2World(tiny, cache_dir=str(tmp_path), progress=False, block=3)
