"""``--backend`` of ``banditspec collect``, ``demo`` and ``reproduce``: checked before any work; ``--backend ray``
collects the local rows and measures the held-out queries on the actors."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

from banditspec.apps.backends import backend_options
from banditspec.apps.cli import main
from banditspec.apps.collecting import add_collect_arguments
from banditspec.apps.worlds import world_recipe
from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.env import ENVIRONMENTS

COLLECT = ["collect", "--env", "toy", "--limit", "2"]


@pytest.fixture
def no_work(monkeypatch):
    """Building a world fails the test: the checks must come first."""
    monkeypatch.setattr(ENVIRONMENTS, "create", lambda name, **params: pytest.fail(f"the {name!r} world was built"))


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


def test_without_ray_backend_ray_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch, no_work):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if Ray were missing
    assert main([*COLLECT, "--backend", "ray", "--out", str(tmp_path / "c")]) == 1
    assert "pip install 'banditspec[ray]'" in _error(capsys)


def test_ray_options_need_the_ray_backend(tmp_path, capsys, no_work):
    assert main([*COLLECT, "--ray-actors", "2", "--out", str(tmp_path / "c")]) == 2
    assert "--ray-actors configure the ray backend: add --backend ray" in _error(capsys)


def test_collect_backend_ray_collects_the_local_rows(tiny_toy, toy_cache: Path, tmp_path):
    pytest.importorskip("ray")
    world = ["collect", "--env", "toy", "--env-arg", "config=tiny", "--env-arg", "max_new_tokens=24",
             "--env-arg", "block_size=4", "--env-arg", f"cache_dir={toy_cache}", "--limit", "6", "--chunk-size", "3",
             "--calibration", "3"]
    assert main([*world, "--out", str(tmp_path / "local")]) == 0
    assert main([*world, "--backend", "ray", "--ray-actors", "2", "--ray-cpus-per-actor", "1",
                 "--out", str(tmp_path / "ray")]) == 0
    local, ray = (LoggedDataset.load(tmp_path / name) for name in ("local", "ray"))
    # the latency models are calibrated in two runs: the priced seconds differ, the counts and scores do not
    for name in ("target_calls", "accepted_tokens", "proposed_tokens", "new_tokens", "align_lcs", "prompt"):
        assert (local.columns[name] == ray.columns[name]).all(), name
    assert (local.query_ids == ray.query_ids).all() and (local.X == ray.X).all()


def test_the_ray_table_of_the_world_toml_sizes_the_actors_and_the_command_line_wins(tmp_path):
    (tmp_path / "target").mkdir()
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "hello"}\n')
    (tmp_path / "world.toml").write_text('[target]\nmodel = "./target"\n[prompts]\npath = "prompts.jsonl"\n'
                                         '[[arms]]\nkind = "ar"\nname = "ar"\n[ray]\nactors = 3\ncpus_per_actor = 2\n')
    parser = argparse.ArgumentParser()
    add_collect_arguments(parser)
    args = parser.parse_args(["--config", str(tmp_path / "world.toml"), "--out", str(tmp_path / "c"),
                              "--backend", "ray", "--ray-actors", "4"])
    recipe = world_recipe(args)
    assert backend_options(args, recipe) == {"actors": 4, "cpus_per_actor": 2, "recipe": recipe}
    assert recipe.describe() == {"config": str((tmp_path / "world.toml").resolve())}
    args.backend = "local"
    assert backend_options(args, recipe) == {}


def _measured_on_ray(out: Path, data: Path, arms: list[str], n_queries: int) -> LoggedDataset:
    """The measured rows (in ``data``) of a ``--backend ray`` run: lossless, AR on every query, only the run's arms."""
    report = json.loads((out / "report.json").read_text())
    assert report["arms"] == arms and report["outputs_equal_ar"] is True
    rows = LoggedDataset.load(data)
    assert rows.arm_names == arms and rows.columns["measured"].all()
    assert sorted(set(rows.columns["query_position"][rows.actions == 0])) == list(range(n_queries))
    return rows


def test_demo_backend_ray_collects_and_measures_on_the_actors(toy_cache: Path, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("BANDITSPEC_CACHE", str(toy_cache))
    out = tmp_path / "demo"
    assert main(["demo", "--env-arg", "config=tiny", "--env-arg", "max_new_tokens=12", "--env-arg", "block_size=3",
                 "--n-train", "24", "--n-test", "6", "--n-every-arm", "2", "--calibration", "3",
                 "--backend", "ray", "--ray-actors", "2", "--out", str(out)]) == 0
    arms = ["ar", "expert-arithmetic", "expert-code", "generalist", "misaligned", "prompt-lookup"]
    rows = _measured_on_ray(out, out / "test-data", arms, 6)
    assert len(rows) == json.loads((out / "report.json").read_text())["decodes"]


def test_reproduce_backend_ray_measures_the_narrowed_world_on_the_actors(toy_cache: Path, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("BANDITSPEC_CACHE", str(toy_cache))
    out = tmp_path / "ar-option"
    assert main(["reproduce", "ar-option", "--world", "tiny", "--n-train", "16", "--n-test", "4", "--seeds", "0",
                 "--calibration", "3", "--max-new-tokens", "8", "--block-size", "2", "--backend", "ray",
                 "--ray-actors", "2", "--out", str(out)]) == 0
    arms = ["ar", "expert-arithmetic", "expert-code", "misaligned"]
    rows = _measured_on_ray(out, out / "test-data" / "seed-0", arms, 4)
    assert len(rows) == 4 * len(arms)  # every arm on every held-out query
