"""A user's own checkpoints and prompts, through the command line: collect, compare and demo from one world.toml."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from banditspec.apps.cli import main
from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.policy import Policy
from tests.banditspec.speculative.world.checkpoints import (
    Checkpoints,
    llama_world,
    prompt_rows,
    save_checkpoints,
    to_toml,
    write_jsonl,
)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Checkpoints:
    return save_checkpoints(tmp_path_factory.mktemp("checkpoints"))


def write(folder: Path, document: dict) -> Path:
    write_jsonl(folder / "prompts.jsonl", prompt_rows())
    (folder / "world.toml").write_text(to_toml(document))
    return folder / "world.toml"


def lossless_demo(config: Path, out: Path, *, n_train: int, n_test: int) -> dict:
    """Run the demo on ``config``; check every output equals AR's and the simulated calls the measured ones."""
    assert main(["demo", "--config", str(config), "--n-train", str(n_train), "--n-test", str(n_test),
                 "--calibration", "3", "--workers", "1", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["outputs_equal_ar"] is True
    # which (prompt, arm) pairs are decoded follows the learners' choices, i.e. timing; on a tiny random model a
    # near-tie between two logits can flip an argmax between batched and incremental passes on one of them
    assert min(report["counterfactual_check"]["target_calls_equal_share"].values()) >= 0.75
    return report


def test_collect_compare_and_demo_run_on_a_world_toml(checkpoints, tmp_path, capsys):
    config = write(tmp_path, llama_world(checkpoints))
    data = tmp_path / "data"
    collect = ["collect", "--config", str(config), "--limit", "6", "--calibration", "3", "--out", str(data)]
    assert main(collect) == 0
    collected = LoggedDataset.concat(LoggedDataset.load(f) for f in sorted(data.glob("*.parquet")))
    assert len(np.unique(collected.query_ids)) == 6 and collected.n_arms == 5
    written = {f: f.stat().st_mtime_ns for f in data.glob("*.parquet")}
    assert main(collect) == 0  # a rerun resumes: every chunk is there, nothing is recomputed
    assert {f: f.stat().st_mtime_ns for f in data.glob("*.parquet")} == written

    assert main(["train", "--data", str(data), "--learner", "linucb", "--features", "hashing",
                 "--out", str(tmp_path / "selector")]) == 0
    trained = json.loads((tmp_path / "selector" / "selector.json").read_text())
    assert trained["arms"] == collected.arm_names and trained["features"] == "hashing"
    assert Policy.load(tmp_path / "selector").n_arms == 5

    merged = tmp_path / "data.parquet"
    assert main(["merge", str(data), "--out", str(merged)]) == 0
    assert main(["compare", "--env", "logged", "--dataset", str(merged), "--policies", "reinforce,oracle", "--seeds",
                 "1", "--no-progress"]) == 0  # learners compared offline on the collected data, split by query

    assert main(["compare", "--config", str(config), "--policies", "reinforce,linucb,oracle", "--seeds", "1",
                 "--n-train", "6", "--n-test", "3", "--no-progress", "--out", str(tmp_path / "compare")]) == 0
    compared = json.loads((tmp_path / "compare" / "report.json").read_text())
    assert set(compared["policies"]) == {"reinforce", "linucb", "oracle"} and len(compared["arms"]) == 5

    out = tmp_path / "demo"
    report = lossless_demo(config, out, n_train=8, n_test=4)
    assert report["config"]["config"] == str(config.resolve())
    assert report["config"]["models"]["device"] == "cpu"
    selector = json.loads((out / "selectors" / "reinforce" / "selector.json").read_text())
    assert selector["arms"] == report["arms"] and selector["features"] == "target"
    reinforce = Policy.load(out / "selectors" / "reinforce")  # the selector that was evaluated, ready to serve
    assert reinforce.predict_proba(np.zeros((1, reinforce.n_features_))).shape == (1, 5)
    train = set(LoggedDataset.load(out / "train-data").columns["prompt"])
    test = set(LoggedDataset.load(out / "test-data").columns["prompt"])
    assert train and test and not train & test  # the split is by query: no prompt on both sides


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("workers", [1, 2])
def test_the_demo_runs_a_world_on_a_cuda_device(checkpoints, tmp_path, workers):
    document = llama_world(checkpoints)
    document["target"]["device"] = "cuda:0"
    config = write(tmp_path, document)
    assert main(["demo", "--config", str(config), "--n-train", "8", "--n-test", "9", "--calibration", "3",
                 "--workers", str(workers), "--out", str(tmp_path / "demo")]) == 0
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert report["outputs_equal_ar"] is True
    assert report["config"]["models"]["device"] == "cuda:0"


def test_an_encoder_decoder_world_runs_the_demo(checkpoints, tmp_path):
    config = write(tmp_path, {
        "target": {"model": str(checkpoints.t5_target)},
        "prompts": {"path": "prompts.jsonl", "prompt_field": "text", "test_fraction": 0.5},
        "decoding": {"max_new_tokens": 6},
        "arms": [{"kind": "ar", "name": "ar"},
                 {"kind": "draft", "name": "t5-small", "model": str(checkpoints.t5_draft), "block_size": 2},
                 {"kind": "prompt_lookup", "name": "lookup", "num_tokens": 3}],
    })
    lossless_demo(config, tmp_path / "demo", n_train=6, n_test=3)


@pytest.mark.parametrize(("edit", "named"), [
    (lambda d: d["arms"].append({"kind": "draft", "name": "x", "model": "./nowhere", "blok_size": 2}), "blok_size"),
    (lambda d: d["decoding"].update(temperature=0.7), "temperature"),
    (lambda d: d["prompts"].update(path="missing.jsonl"), "missing.jsonl"),
])
def test_a_bad_world_toml_is_one_line_naming_the_key_before_anything_loads(checkpoints, tmp_path, capsys, edit,
                                                                          named):
    document = llama_world(checkpoints)
    edit(document)
    config = write(tmp_path, document)
    for command in (["collect", "--limit", "2"], ["demo"], ["compare"]):
        assert main([*command, "--config", str(config), "--out", str(tmp_path / "out")]) == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1 and named in error and "world.toml" in error
    assert not (tmp_path / "out").exists()
