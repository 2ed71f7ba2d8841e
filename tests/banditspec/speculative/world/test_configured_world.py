import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.banditspec.speculative.world.checkpoints import llama_world, prompt_rows, to_toml, write_jsonl

from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.env import Environment
from banditspec.bandits.features import TargetHiddenStates
from banditspec.speculative.collect import collect
from banditspec.speculative.decoding import greedy_pass
from banditspec.speculative.ngram import NgramTable
from banditspec.speculative.world import ConfiguredWorld, load_world_config, open_world, query_id


@pytest.fixture(scope="module")
def llama(checkpoints, tmp_path_factory):
    """The Llama world (AR, a copy of the target as a draft, a small draft, prompt lookup, an early exit)."""
    folder = tmp_path_factory.mktemp("llama-world")
    write_jsonl(folder / "prompts.jsonl", prompt_rows())
    document = llama_world(checkpoints)
    document["decoding"] |= {"repetition_penalty": 1.3}
    (folder / "world.toml").write_text(to_toml(document))
    return open_world(folder / "world.toml", progress=False)


def test_full_feedback_measures_every_arm_and_every_output_equals_ar(llama):
    assert isinstance(llama, Environment) and llama.models.target.generation_config.repetition_penalty == 1.3
    queries = llama.queries(3, split="test", seed=0)
    full = llama.full_feedback(queries)
    names = llama.arms.names
    assert full.rewards.shape == (3, len(names)) and full.seconds.shape == (3, len(names))
    assert [m.arm for m in full.measurements] == names * 3
    assert all(m.equals_ar for m in full.measurements)
    np.testing.assert_allclose(full.rewards[:, 0], 1.0)
    np.testing.assert_allclose(full.rewards, full.ar_seconds[:, None] / full.seconds)
    by_arm = {name: [m for m in full.measurements if m.arm == name] for name in names}
    assert sum(m.accepted_tokens for m in by_arm["same"]) > 0  # a copy of the target (drafting without the penalty)
    assert all(m.target_calls == m.new_tokens for m in by_arm["ar"])
    assert [m.cost for m in by_arm["small"]] == [0.1] * 3


def test_queries_are_distinct_deterministic_featurized_and_labelled(llama, checkpoints, tmp_path):
    a = llama.queries(5, split="train", seed=3)
    b = llama.queries(5, split="train", seed=3)
    assert a.texts == b.texts and len(set(a.texts)) == 5
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.ids, [query_id(t) for t in a.texts])
    assert a.X.shape == (5, 32)
    topics = {r["text"]: r["topic"] for r in prompt_rows()}
    assert list(a.groups) == [topics[t] for t in a.texts]
    test = llama.queries(llama.prompts.size("test"), split="test", seed=0)
    assert not set(test.texts) & set(llama.queries(llama.prompts.size("train"), split="train", seed=0).texts)
    with pytest.raises(ValueError, match="asked for 41 test queries"):
        llama.queries(41, split="test", seed=0)


def test_step_decodes_the_chosen_arm_against_ar(llama):
    queries = llama.queries(2, split="test", seed=1)
    step = llama.step(queries, np.array([1, 0]))
    assert step.rewards.shape == (2,) and step.rewards[1] == 1.0
    assert [m.arm for m in step.measurements] == ["same", "ar"]
    with pytest.raises(ValueError, match="actions"):
        llama.step(queries, np.array([0, 9]))


def test_hashed_features_and_a_chat_template(checkpoints, write_world):
    document = llama_world(checkpoints)
    document["target"]["tokenizer"] = str(checkpoints.chat_tokenizer)
    document["prompts"]["chat_template"] = True
    with open_world(write_world(document), featurizer="hashing", progress=False) as world:
        queries = world.queries(2, split="test", seed=0)
        assert queries.X.shape == (2, 64)
        assert all(t.startswith("user : the ") and t.endswith(" assistant :") for t in queries.texts)
        assert queries.ids.tolist() == world.prompts.sample(2, split="test", seed=0).ids.tolist()
        assert world.prefill_pooling is None  # hashed n-grams: no forward of the target to share


def test_features_of_an_earlier_layer_run_only_the_layers_they_need_and_equal_the_whole_pass(checkpoints,
                                                                                            write_world):
    document = llama_world(checkpoints)
    document["features"] = {"layer": 0}  # the embeddings: the 2-layer target is cut after its first layer
    with open_world(write_world(document), progress=False) as world:
        target = world.models.target
        texts = world.queries(3, split="test", seed=0).texts
        ran = []
        for i, layer in enumerate(target.model.layers):
            layer.register_forward_hook(lambda *_, i=i: ran.append(i))
        features = world.featurizer.transform(texts)
        assert ran == [0] and target.config.num_hidden_layers == 2  # one batch, one layer; the config restored
        whole = TargetHiddenStates(target, world.models.tokenizer, layer=0).transform(texts)
        np.testing.assert_array_equal(features, whole)
        last = TargetHiddenStates(target, world.models.tokenizer).transform(texts)
        assert not np.allclose(features, last)
        ran.clear()
        prefill = world.featurizer.prefill(texts[0])  # the decode reuses its cache: every layer runs
        assert ran == [0, 1]
        np.testing.assert_allclose(prefill.features, features[0], rtol=1e-5, atol=1e-6)
        prompts = [world.decoder.encode(t) for t in texts]
        shared = greedy_pass(target, prompts, max_new_tokens=2, pad_id=0, pool=world.prefill_pooling).features
        np.testing.assert_allclose(shared, features, rtol=1e-5, atol=1e-6)  # the layer, not the last one
    document["features"] = {"layer": 3}
    with pytest.raises(ValueError, match=r"\[features\] layer = 3: the target has 2 layers"):
        open_world(write_world(document), progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_world_on_a_cuda_device_featurizes_as_on_the_cpu_and_decodes_every_arm_as_ar(checkpoints, write_world):
    document = llama_world(checkpoints)
    with open_world(write_world(document), progress=False) as world:
        queries = world.queries(4, split="test", seed=0)
    document["target"]["device"] = "cuda:0"
    with open_world(write_world(document), progress=False) as world:
        assert {p.device.type for model in (world.models.target, *world.models.drafts.values())
                for p in model.parameters()} == {"cuda"}
        on_gpu = world.queries(4, split="test", seed=0)
        assert on_gpu.texts == queries.texts
        np.testing.assert_allclose(on_gpu.X, queries.X, rtol=1e-4, atol=1e-5)
        full = world.full_feedback(on_gpu)
        assert [m.arm for m in full.measurements] == world.arms.names * 4
        assert all(m.equals_ar for m in full.measurements)
        assert all(m.wall_seconds > 0 for m in full.measurements)
        prefill = world.featurizer.prefill(on_gpu.texts[0])  # the decode continues from the prefill's GPU cache
        np.testing.assert_allclose(prefill.features, on_gpu.X[0], rtol=1e-4, atol=1e-5)
        reference = world.decoder.generate(world.arms[0], on_gpu.texts[0])
        continued = world.decoder.generate(world.arms[1], on_gpu.texts[0], prompt_cache=prefill.cache,
                                           reference=reference)
        assert continued.measurement.equals_ar


def test_a_chat_template_needs_a_tokenizer_with_one(checkpoints, write_world):
    document = llama_world(checkpoints)
    document["prompts"]["chat_template"] = True
    with pytest.raises(ValueError, match="chat_template = true but the target's tokenizer"):
        open_world(write_world(document), progress=False)


def test_a_bad_prompts_file_is_refused_before_any_model_loads(checkpoints, write_world, forbid_loading):
    path = write_world(llama_world(checkpoints), rows=[{"text": "the cat", "topic": "cat"},
                                                             {"txt": "the dog", "topic": "dog"}])
    with pytest.raises(ValueError, match=r"prompts.jsonl: line 2: field 'text' is missing"):
        open_world(path, progress=False)


def test_bad_options_are_refused_before_any_model_loads(checkpoints, write_world, forbid_loading):
    path = write_world(llama_world(checkpoints))
    for options, field in [({"featurizer": "bert"}, "featurizer"), ({"workers": 0}, "workers"),
                           ({"threads": True}, "threads")]:
        with pytest.raises(ValueError, match=field):
            open_world(path, progress=False, **options)


@pytest.fixture(scope="module")
def t5(checkpoints, tmp_path_factory):
    """An encoder-decoder world: a T5 target, a smaller T5 draft."""
    folder = tmp_path_factory.mktemp("t5-world")
    write_jsonl(folder / "prompts.jsonl", prompt_rows())
    document = {
        "target": {"model": str(checkpoints.t5_target)},
        "prompts": {"path": "prompts.jsonl", "prompt_field": "text"},
        "decoding": {"max_new_tokens": 6},
        "arms": [{"kind": "ar", "name": "ar"}, {"kind": "draft", "name": "t5-small", "model": str(checkpoints.t5_draft),
                                                "block_size": 2}],
    }
    (folder / "world.toml").write_text(to_toml(document))
    return ConfiguredWorld(load_world_config(folder / "world.toml"), progress=False)


def test_an_encoder_decoder_world_loads_featurizes_and_decodes_ar(t5):
    assert t5.models.encoder_decoder
    queries = t5.queries(2, split="train", seed=0)
    assert queries.X.shape == (2, 32)  # the encoder's states
    assert t5.prefill_pooling is None and t5.queries(2, split="train", seed=0, featurize=False).X.shape == (2, 0)
    step = t5.step(queries, np.zeros(2, dtype=np.int64))
    ids = t5.models.tokenizer(queries.texts[0], return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        expected = t5.models.target.generate(input_ids=ids, max_new_tokens=6, do_sample=False)[0, 1:]
    assert step.measurements[0].new_tokens == expected.numel()
    assert t5.decoder.generate(t5.arms["ar"], queries.texts[0]).ids.tolist() == expected.tolist()


def test_an_encoder_decoder_world_decodes_its_draft_losslessly(t5):
    full = t5.full_feedback(t5.queries(3, split="test", seed=0))
    assert [m.arm for m in full.measurements] == ["ar", "t5-small"] * 3
    assert all(m.equals_ar for m in full.measurements)


def test_an_encoder_decoder_world_refuses_a_prompt_cache_and_says_why(t5, tiny_toy):
    text = tiny_toy.queries(1, split="test", seed=0).texts[0]
    _, cache = TargetHiddenStates(tiny_toy.decoder.target, tiny_toy.decoder.tokenizer).prefill(text)
    with pytest.raises(ValueError, match="prompt_cache is for decoder-only targets"):
        t5.decoder.generate(t5.arms["ar"], t5.queries(1, split="test", seed=0).texts[0], prompt_cache=cache)


_KILLED_PARENT = """
import multiprocessing, os, signal, sys
from banditspec.speculative.world import open_world
world = open_world(sys.argv[1], progress=False, workers=2)
queries = world.queries(8, split="test", seed=0)
world.measure(queries, [[0]] * len(queries))  # more queries than one task: the workers start and load the models
with open(sys.argv[2], "w") as out:
    print(*[child.pid for child in multiprocessing.active_children()], file=out)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, dead but not yet reaped, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _describe(pid: int) -> str:
    """``pid``'s parent and state, and each thread's name, state and wait channel (for a failure message)."""
    try:
        status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if line.startswith(("State", "PPid")))
        threads = [f"{(t / 'comm').read_text().strip()}:{(t / 'stat').read_text().rsplit(')', 1)[1].split()[0]}"
                   f"@{(t / 'wchan').read_text().strip() if (t / 'wchan').exists() else '?'}"
                   for t in sorted(Path(f"/proc/{pid}/task").iterdir())]
    except FileNotFoundError:
        return f"{pid}: gone"
    return f"{pid}: {status} threads {threads}"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_decoding_workers_end_when_their_parent_is_killed(checkpoints, write_world, tmp_path):
    path = write_world(llama_world(checkpoints))
    pids = tmp_path / "workers.txt"
    with open(tmp_path / "stderr.txt", "w") as stderr:  # a file: the workers hold no pipe the test waits on
        killed = subprocess.run([sys.executable, "-c", _KILLED_PARENT, str(path), str(pids)],
                                stdout=subprocess.DEVNULL, stderr=stderr, timeout=300)
    assert killed.returncode == -signal.SIGKILL, (tmp_path / "stderr.txt").read_text()
    workers = [int(pid) for pid in pids.read_text().split()]
    assert len(workers) == 2
    deadline = time.monotonic() + 120  # generous: a worker checks its parent every PARENT_CHECK_SECONDS
    while any(map(_running, workers)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(map(_running, workers)), f"workers outlived their killed parent: {list(map(_describe, workers))}"


def test_a_worker_whose_parent_died_while_it_started_ends_at_once(checkpoints, write_world):
    # a worker that starts after its parent was killed already has init as its parent: it must watch the pid its
    # parent handed it, not the parent it finds
    path = write_world(llama_world(checkpoints))
    code = ("import sys, time; from banditspec.speculative.world import load_world_config;"
            "from banditspec.speculative.world.world import _start_worker;"
            "_start_worker(load_world_config(sys.argv[1]), 1, int(sys.argv[2])); time.sleep(300)")
    dead_parent = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                                 text=True, check=True).stdout
    ended = subprocess.run([sys.executable, "-c", code, str(path), dead_parent], capture_output=True, text=True,
                           timeout=240)
    assert ended.returncode == 1 and "Traceback" not in ended.stderr, ended.stderr


def test_a_collection_resumes_after_its_world_folder_moves_but_not_after_a_table_changes(checkpoints, tmp_path):
    # a table field resolves to an absolute path; the manifest identifies the table by its bytes instead
    folder = tmp_path / "world"
    folder.mkdir()
    write_jsonl(folder / "prompts.jsonl", prompt_rows())
    NgramTable([np.array([[1]])], [np.array([2])], [np.array([1])]).save(folder / "table.npz")
    document = llama_world(checkpoints)
    document["arms"] = [{"kind": "ar", "name": "ar"}, {"kind": "ngram_table", "name": "table", "table": "table.npz"}]
    (folder / "world.toml").write_text(to_toml(document))
    out = tmp_path / "data"

    def collect_from(where):
        return collect(open_world(where / "world.toml", progress=False), out, n=4, calibration_queries=3, chunk_size=2,
                       progress=False)

    first = LoggedDataset.load(collect_from(folder))
    moved = folder.rename(tmp_path / "moved")
    assert LoggedDataset.load(collect_from(moved)).to_table().equals(first.to_table())
    NgramTable([np.array([[1]])], [np.array([3])], [np.array([1])]).save(moved / "table.npz")
    with pytest.raises(ValueError, match="another configuration"):
        collect_from(moved)
