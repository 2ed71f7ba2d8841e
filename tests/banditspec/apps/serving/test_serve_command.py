"""``banditspec serve`` on the command line: checks before anything loads, and a live server in a subprocess."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import openai
import pytest

from banditspec.apps.cli import main
from banditspec.apps.scoring import Fitted, LearnerSpec
from banditspec.apps.serving.command import find_latency
from banditspec.apps.serving.snapshots import LATEST
from banditspec.apps.training import load_selector, save_selector
from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.policy import POLICIES
from banditspec.speculative.kinds import Autoregressive
from banditspec.speculative.world import open_world
from tests.banditspec.apps.serving.live import request
from tests.banditspec.speculative.world.checkpoints import llama_world, prompt_rows, to_toml, write_jsonl


def corrupt_state(folder: Path) -> str:
    (folder / "state.safetensors").write_bytes(b"not a safetensors file")
    return "state.safetensors"


def corrupt_meta(folder: Path) -> str:
    meta = json.loads((folder / "policy.json").read_text())
    (folder / "policy.json").write_text(json.dumps({**meta, "format": "something-else"}))
    return "format"


def no_description(folder: Path) -> str:
    (folder / "selector.json").unlink()
    return "selector.json"


def wrong_arms(folder: Path) -> str:
    description = json.loads((folder / "selector.json").read_text())
    (folder / "selector.json").write_text(json.dumps({**description, "arms": ["ar"]}))
    return "arms"


@pytest.mark.parametrize("corrupt", [corrupt_state, corrupt_meta, no_description, wrong_arms])
def test_a_corrupt_selector_is_one_line_naming_the_file_before_anything_loads(world_toml, make_selector, capsys,
                                                                              monkeypatch, corrupt):
    folder = make_selector("fixed").folder
    named = corrupt(folder)
    monkeypatch.setattr("banditspec.apps.serving.command.open_world_from",
                        lambda *a, **k: pytest.fail("the world loaded before the selector was checked"))
    assert main(["serve", "--config", str(world_toml), "--policy", str(folder)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and named in error and str(folder) in error


def test_options_that_cannot_work_are_refused(world_toml, make_selector, capsys, tmp_path):
    folder = str(make_selector("fixed").folder)
    for options, named in ((["--snapshots", str(tmp_path / "s")], "--online"), (["--epsilon", "2"], "epsilon"),
                           (["--latency", str(tmp_path / "missing.json")], "latency"),
                           (["--time-budget", "-1"], "time-budget")):
        assert main(["serve", "--config", str(world_toml), "--policy", folder, *options]) == 2
        assert named in capsys.readouterr().err


def test_the_latency_model_comes_from_the_selector_s_collection(make_selector, latency, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "latency.json").write_text(json.dumps(latency.to_dict()))
    selector = make_selector("fixed")
    description = {**selector.description, "source": {"data": str(data)}}
    (selector.folder / "selector.json").write_text(json.dumps(description))
    found = find_latency(load_selector(selector.folder), None)
    assert found is not None and found.arm_names == latency.arm_names
    assert np.allclose(found.per_call, latency.per_call)
    (selector.folder / "selector.json").write_text(json.dumps({**description, "source": {}}))
    assert find_latency(load_selector(selector.folder), None) is None  # then the server calibrates one


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_banditspec_serve_answers_the_openai_client_learns_and_writes_its_log_on_shutdown(checkpoints, tmp_path):
    write_jsonl(tmp_path / "prompts.jsonl", prompt_rows())
    config = tmp_path / "world.toml"
    config.write_text(to_toml(llama_world(checkpoints)))
    arms = ["ar", "same", "small", "lookup", "exit-1"]
    policy = POLICIES.create("egreedy", n_arms=len(arms), epsilon=0.2).fit(np.ones((2, 64)), [1, 2], [1.0, 0.5])
    save_selector(Fitted(LearnerSpec("egreedy", features="hashing"), policy, 0.0), tmp_path / "selector", arms=arms,
                  source={})
    port = free_port()
    command = [sys.executable, "-m", "banditspec.apps.cli", "serve", "--config", str(config), "--policy",
               str(tmp_path / "selector"), "--port", str(port), "--api-key", "k", "--calibration", "3",
               "--log", str(tmp_path / "log"), "--online", "full", "--snapshots", str(tmp_path / "snapshots"),
               "--snapshot-every", "1"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while True:  # start-up: imports, loading and calibrating
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if request("GET", f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except OSError:
                time.sleep(0.5)
        api = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0)
        prompts = [row["text"] for row in prompt_rows(3)]
        texts = [api.completions.create(model="banditspec", prompt=p).choices[0].text for p in prompts]
    finally:
        server.send_signal(signal.SIGINT)
        output = server.communicate(timeout=120)[0]
    assert server.returncode == 0, output
    with open_world(config, progress=False) as world:
        assert texts == [world.decoder.generate(Autoregressive("ar"), p).text for p in prompts]
    logged = LoggedDataset.load(tmp_path / "log")
    assert len(logged) == 3 and list(logged.columns["prompt"]) == prompts
    latest = (tmp_path / "snapshots" / LATEST).read_text().strip()
    assert load_selector(tmp_path / "snapshots" / latest).description["source"]["online_updates"] == 3


def test_without_the_serve_extra_the_command_says_what_to_install(world_toml, make_selector, capsys, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else find_spec(name, *a))
    folder = str(make_selector("fixed").folder)
    assert main(["serve", "--config", str(world_toml), "--policy", folder]) == 1
    assert "pip install 'banditspec[serve]'" in capsys.readouterr().err
