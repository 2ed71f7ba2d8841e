import copy
import re
import tempfile
from pathlib import Path

import pytest
from tests.banditspec.speculative.world.checkpoints import llama_world, prompt_rows, to_toml, toml_value, write_jsonl
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from banditspec.bandits.arms import Arm
from banditspec.speculative.kinds import Autoregressive, DraftModel
from banditspec.speculative.world import ModelConfig, WorldConfig, load_world_config, open_world
from banditspec.speculative.world.keys import (DECODING_KEYS, FEATURES_KEYS, MODEL_KEYS, PROMPTS_KEYS, TABLES,
                                               TARGET_KEYS)


def test_a_good_config_is_read_with_its_defaults(checkpoints, write_world):
    document = llama_world(checkpoints)
    document["target"] |= {"dtype": "bfloat16"}
    document["decoding"] |= {"repetition_penalty": 1.2, "eos_token_id": [1, 2]}
    document["models"] = {str(checkpoints.small): {"dtype": "float32", "revision": "main"}}
    document["ray"] = {"actors": 4, "cpus_per_actor": 2, "memory_gb": 1.5}
    path = write_world(document)
    config = load_world_config(path)
    assert config.ray == {"actors": 4, "cpus_per_actor": 2, "memory_gb": 1.5}
    assert config.source == path and config.device == "cpu"
    assert config.target == ModelConfig(str(checkpoints.target.resolve()), dtype="bfloat16")
    assert [a.name for a in config.arms] == ["ar", "same", "small", "lookup", "exit-1"]
    assert config.drafts[str(checkpoints.same)].dtype == "bfloat16"  # a draft takes the target's dtype by default
    assert config.drafts[str(checkpoints.small)] == ModelConfig(str(checkpoints.small.resolve()), revision="main")
    assert config.prompts.path == path.parent / "prompts.jsonl" and config.prompts.format == "jsonl"
    assert (config.prompts.prompt_field, config.prompts.group_field, config.prompts.test_fraction) == ("text", "topic",
                                                                                                      0.5)
    assert config.prompts.id_field is None and not config.prompts.chat_template
    assert config.decoding.max_new_tokens == 8
    assert config.decoding.generation == {"repetition_penalty": 1.2, "eos_token_id": [1, 2]}
    assert config.arms_of(str(checkpoints.same)) == ["same"]
    assert config.features.layer is None
    document["features"] = {"layer": 1}
    assert load_world_config(write_world(document)).features.layer == 1


def test_drafts_take_the_targets_linear_kernels_unless_their_table_names_their_own(checkpoints, write_world):
    document = llama_world(checkpoints)
    document["target"] |= {"linear_kernels": "onednn"}
    document["models"] = {str(checkpoints.small): {"linear_kernels": "default"}}
    config = load_world_config(write_world(document))
    assert config.target.linear_kernels == "onednn" and config.drafts[str(checkpoints.same)].linear_kernels == "onednn"
    assert config.drafts[str(checkpoints.small)].linear_kernels == "default"
    assert load_world_config(write_world(llama_world(checkpoints))).target.linear_kernels == "default"


def test_relative_paths_resolve_against_the_toml_folder_and_other_strings_are_hub_ids(checkpoints, tmp_path,
                                                                                     monkeypatch):
    (tmp_path / "models").symlink_to(checkpoints.root)
    write_jsonl(tmp_path / "data.jsonl", prompt_rows())
    document = llama_world(checkpoints)
    document["target"]["model"] = "./models/target"
    document["prompts"]["path"] = "data.jsonl"
    document["arms"][1]["model"] = "models/drafts/same"  # no ./ but it exists: a path
    document["arms"][2]["model"] = "my-org/draft-1b"  # no such folder: a hub id
    document["models"] = {"my-org/draft-1b": {"tokenizer": "./models/target"}}
    (tmp_path / "world.toml").write_text(to_toml(document))
    monkeypatch.chdir(checkpoints.root.parent)
    config = load_world_config(tmp_path / "world.toml")
    assert config.target.location == str(checkpoints.target.resolve())
    assert config.prompts.path == (tmp_path / "data.jsonl").resolve()
    assert config.drafts["models/drafts/same"].location == str(checkpoints.same.resolve())
    tokenizer = str(checkpoints.target.resolve())
    assert config.drafts["my-org/draft-1b"] == ModelConfig("my-org/draft-1b", tokenizer=tokenizer)


def _set(table: str, key: str, value):
    def change(document):
        document[table][key] = value

    return change


def _drop(table: str, key: str | None = None):
    def change(document):
        if key is None:
            del document[table]
        else:
            del document[table][key]

    return change


def _arm(index: int, **keys):
    def change(document):
        document["arms"][index] |= keys

    return change


def _only_arms(*indices: int):
    def change(document):
        document["arms"] = [document["arms"][i] for i in indices]

    return change


def _models(key_of, table):
    def change(document):
        document["models"] = {key_of(document): table}

    return change


# (change to the good document, fragments the error must hold besides the file name)
BAD = {
    "unknown-table": (lambda d: d.update(world={"x": 1}), ["unknown table 'world'", "known tables"]),
    "no-target": (_drop("target"), ["missing [target]"]),
    "no-prompts": (_drop("prompts"), ["missing [prompts]"]),
    "no-arms": (_drop("arms"), ["missing [[arms]]"]),
    "target-no-model": (_drop("target", "model"), ["[target]", "missing key 'model'"]),
    "target-unknown-key": (_set("target", "modle", "x"), ["[target]", "unknown key 'modle'", "'trust_remote_code'"]),
    "target-dtype": (_set("target", "dtype", "float64"), ["[target] dtype", "float64"]),
    "target-trust": (_set("target", "trust_remote_code", "yes"), ["[target] trust_remote_code", "true or false"]),
    "target-device": (_set("target", "device", "gpu-zero"), ["[target] device", "gpu-zero"]),
    "target-missing-path": (_set("target", "model", "./nowhere"), ["[target] model", "nowhere"]),
    "target-tokenizer-type": (_set("target", "tokenizer", 3), ["[target] tokenizer", "a string"]),
    "prompts-no-path": (_drop("prompts", "path"), ["[prompts]", "missing key 'path'"]),
    "prompts-missing-file": (_set("prompts", "path", "missing.jsonl"), ["[prompts] path", "missing.jsonl"]),
    "prompts-suffix": (_set("prompts", "path", "world.toml"), ["[prompts] path", "'.jsonl'"]),
    "prompts-fraction": (_set("prompts", "test_fraction", 1.5), ["[prompts] test_fraction", "1.5"]),
    "prompts-split-and-fraction": (_set("prompts", "split_field", "split"), ["[prompts]", "split_field",
                                                                               "test_fraction"]),
    "prompts-chat": (_set("prompts", "chat_template", "yes"), ["[prompts] chat_template"]),
    "prompts-field-type": (_set("prompts", "prompt_field", 3), ["[prompts] prompt_field"]),
    "prompts-unknown-key": (_set("prompts", "format", "jsonl"), ["[prompts]", "unknown key 'format'", "'id_field'"]),
    "max-new-tokens-zero": (_set("decoding", "max_new_tokens", 0), ["[decoding] max_new_tokens", ">= 1"]),
    "max-new-tokens-bool": (_set("decoding", "max_new_tokens", True), ["[decoding] max_new_tokens"]),
    "do-sample": (_set("decoding", "do_sample", True), ["[decoding] do_sample", "greedy"]),
    "temperature": (_set("decoding", "temperature", 0.7), ["[decoding] temperature", "greedy"]),
    "top-p": (_set("decoding", "top_p", 0.9), ["[decoding] top_p", "greedy"]),
    "beams": (_set("decoding", "num_beams", 4), ["[decoding] num_beams", "greedy"]),
    "decoding-unknown-key": (_set("decoding", "max_tokens", 4), ["[decoding]", "unknown key 'max_tokens'",
                                                                 "'max_new_tokens'"]),
    "eos-ids": (_set("decoding", "eos_token_id", [1, -2]), ["[decoding] eos_token_id"]),
    "no-ar-arm": (_only_arms(1, 2), ["arms", "kind 'ar'"]),
    "duplicate-arm": (_arm(2, name="same"), ["arms", "duplicate arm name 'same'"]),
    "unknown-kind": (_arm(3, kind="telepathy"), ["arms[3]", "telepathy"]),
    "arm-unknown-key": (_arm(1, block=3), ["arms[1]", "'block'", "'block_size'"]),
    "arm-bad-value": (_arm(1, block_size=0), ["arms[1]", "block_size"]),
    "arm-missing-model": (_arm(2, model="./drafts/nowhere"), ["arms[2] model", "nowhere"]),
    "arms-not-tables": (lambda d: d.update(arms=3), ["arms must be a non-empty array of tables"]),
    "models-unused": (_models(lambda d: "./unused", {"dtype": "float16"}), ['[models."./unused"]', "no arm uses"]),
    "models-unknown-key": (_models(lambda d: d["arms"][1]["model"], {"device": "cpu"}),
                           ["[models.", "unknown key 'device'", "'revision'"]),
    "features-unknown-key": (lambda d: d.update(features={"pooling": "mean"}),
                             ["[features]", "unknown key 'pooling'", "'layer'"]),
    "features-layer": (lambda d: d.update(features={"layer": -1}), ["[features] layer", "must be an integer >= 0"]),
    "ray-unknown-key": (lambda d: d.update(ray={"workers": 2}), ["[ray]", "unknown key 'workers'", "'actors'"]),
    "ray-cpus": (lambda d: d.update(ray={"cpus_per_actor": 0}), ["[ray] cpus_per_actor", "must be a number > 0"]),
    "models-dtype": (_models(lambda d: d["arms"][2]["model"], {"dtype": "int8"}), ["[models.", "dtype", "int8"]),
    "linear-kernels": (_set("target", "linear_kernels", "mkl"), ["[target] linear_kernels", "'onednn'", "mkl"]),
    "onednn-float16": (lambda d: d["target"].update(dtype="float16", linear_kernels="onednn"),
                       ['[target] linear_kernels = "onednn"', "float16", '"default"']),
    "mixed-bfloat16": (lambda d: d["target"].update(dtype="bfloat16", linear_kernels="mixed"),
                       ['[target] linear_kernels = "mixed" runs float32 models', "bfloat16", '"default"']),
    "onednn-cuda": (lambda d: d["target"].update(device="cuda:0", linear_kernels="onednn"),
                    ['[target] linear_kernels = "onednn"', "on the CPU", "cuda:0"]),
    "draft-onednn-float16": (_models(lambda d: d["arms"][2]["model"], {"dtype": "float16", "linear_kernels": "onednn"}),
                             ['[models."', 'linear_kernels = "onednn"', "float16"]),
    "draft-int8-cuda": (lambda d: d.update(target=d["target"] | {"device": "cuda:0"},
                                           models={d["arms"][2]["model"]: {"linear_kernels": "int8"}}),
                        ['[models."', 'linear_kernels = "int8"', "on the CPU", "cuda:0"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_config_names_the_file_and_the_key_before_anything_loads(case, checkpoints, write_world, forbid_loading):
    change, fragments = BAD[case]
    document = copy.deepcopy(llama_world(checkpoints))
    change(document)
    path = write_world(document)
    with pytest.raises(ValueError) as error:
        open_world(path, progress=False)
    message = str(error.value)
    assert message.startswith(str(path)), message
    for fragment in fragments:
        assert fragment in message, message


def test_invalid_toml_and_a_missing_file_are_clear(tmp_path):
    bad = tmp_path / "world.toml"
    bad.write_text("[target\nmodel = 1\n")
    with pytest.raises(ValueError, match="not a valid TOML file"):
        load_world_config(bad)
    with pytest.raises(FileNotFoundError, match="no world config file"):
        load_world_config(tmp_path / "absent.toml")


#: A key of a good document, and whether a value is valid for it.
VALID = {
    ("target", "dtype"): lambda v: v in ("float32", "bfloat16", "float16", "auto"),
    ("target", "trust_remote_code"): lambda v: isinstance(v, bool),
    ("prompts", "test_fraction"): lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1,
    ("prompts", "chat_template"): lambda v: isinstance(v, bool),
    ("decoding", "max_new_tokens"): lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
    ("decoding", "no_repeat_ngram_size"): lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
}
VALUES = st.one_of(st.booleans(), st.integers(-5, 5), st.floats(-2, 2, allow_nan=False),
                   st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8),
                   st.lists(st.integers(0, 3), max_size=2))


@settings(max_examples=60, deadline=None)
@given(key=st.sampled_from(sorted(VALID)), value=VALUES)
def test_any_bad_value_is_refused_naming_the_key(checkpoints, key, value):
    table, name = key
    assume(not VALID[key](value))
    document = llama_world(checkpoints)
    document[table][name] = value
    with tempfile.TemporaryDirectory() as folder:
        write_jsonl(Path(folder) / "prompts.jsonl", prompt_rows(4))
        path = Path(folder) / "world.toml"
        path.write_text(to_toml(document))
        with pytest.raises(ValueError) as error:
            load_world_config(path)
    assert str(path) in str(error.value) and f"[{table}] {name}" in str(error.value), (toml_value(value), error.value)


def test_a_config_built_in_code_is_checked_too(checkpoints):
    target = ModelConfig(str(checkpoints.target))
    ar, draft = Autoregressive("ar"), DraftModel("d", model="d")
    with pytest.raises(ValueError, match="kind 'ar'"):
        WorldConfig(target=target, arms=(draft,), drafts={"d": target})
    with pytest.raises(ValueError, match=r"name draft models \['d'\]"):
        WorldConfig(target=target, arms=(ar, draft))
    with pytest.raises(ValueError, match=r"\['e'\] are not named by any arm"):
        WorldConfig(target=target, arms=(ar, draft), drafts={"d": target, "e": target})
    with pytest.raises(ValueError, match="not DecodingArm"):
        WorldConfig(target=target, arms=(ar, Arm("plain")))


GUIDE = Path(__file__).resolve().parents[4] / "docs" / "world-config.md"


def test_the_user_guides_example_is_a_valid_config_and_the_guide_names_every_key(tmp_path):
    text = GUIDE.read_text()
    example = re.search(r"^```toml\n(.*?)^```$", text, re.S | re.M).group(1)
    for folder in ("drafts/code", "drafts/tokenizer"):
        (tmp_path / folder).mkdir(parents=True)
    write_jsonl(tmp_path / "prompts.jsonl", prompt_rows(4))
    (tmp_path / "world.toml").write_text(example)
    config = load_world_config(tmp_path / "world.toml")
    assert config.arms[0].kind == "ar" and len(config.drafts) == 2 and config.features.layer == 12
    assert config.drafts["./drafts/code"].tokenizer == str((tmp_path / "drafts" / "tokenizer").resolve())
    for key in {*TARGET_KEYS, *PROMPTS_KEYS, *FEATURES_KEYS, *DECODING_KEYS, *MODEL_KEYS}:
        assert f"`{key}`" in text, key
    for table in TABLES:
        assert f"## `[{table}" in text or f"## `[[{table}" in text, table
