"""Saved policies: complete state, and every corrupted file refused with an error naming the file and the field."""

import json
import re
import shutil
import tempfile
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from safetensors.numpy import load_file, save_file

from banditspec.bandits.policy import POLICIES, Policy, PolicyFileError

INSTALLED = sorted(ep.name for ep in entry_points(group="banditspec.policies"))
QUICK = {"reinforce": {"epochs": 2, "hidden": 4, "batch_size": 16}}


def batches(count, seed, n=30, d=3, k=3):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(n, d)), rng.integers(0, k, n), rng.normal(size=n), rng.uniform(0.2, 1.0, n))
            for _ in range(count)]


def fitted(name):
    return POLICIES.create(name, n_arms=3, seed=1, **QUICK.get(name, {})).fit(*batches(1, seed=0)[0])


@pytest.mark.parametrize("name", INSTALLED)
def test_save_load_then_partial_fit_equals_partial_fit(name, tmp_path):
    policy = fitted(name)
    loaded = Policy.load(policy.save(tmp_path / name))
    for batch in batches(3, seed=1):
        policy.partial_fit(*batch)
        loaded.partial_fit(*batch)
    expected = policy._state()
    assert loaded._state().keys() == expected.keys()
    for key, value in loaded._state().items():
        np.testing.assert_array_equal(value, expected[key], err_msg=key)


def test_reinforce_saves_the_optimizer_state(tmp_path):
    policy = fitted("reinforce")
    state = load_file(str(policy.save(tmp_path / "p") / "state.safetensors"))
    assert {"adam.0.exp_avg", "adam.0.exp_avg_sq", "adam.0.step"} <= set(state)
    assert float(state["adam.0.step"]) == policy.optimizer_.state_dict()["state"][0]["step"].item() > 0


# -- corrupted files, case by case -------------------------------------------------------------------------------
def rewrite_json(folder, change):
    meta = json.loads((folder / "policy.json").read_text())
    change(meta)
    (folder / "policy.json").write_text(json.dumps(meta))


def rewrite_state(folder, change):
    state = load_file(str(folder / "state.safetensors"))
    change(state)
    save_file(state, str(folder / "state.safetensors"))


def _pop(key):
    return lambda d: d.pop(key)


def _set(key, value):
    return lambda d: d.__setitem__(key, value)


JSON_CASES = {
    "no params": ("linucb", _pop("params"), "params"),
    "params not an object": ("linucb", _set("params", [1]), "params"),
    "older format": ("linucb", _set("format", "banditspec-policy/1"), "format"),
    "unknown learner": ("linucb", _set("policy", "no-such-learner"), "policy"),
    "another learner": ("egreedy", _set("policy", "linucb"), "params"),
    "a missing parameter": ("linucb", lambda m: m["params"].pop("alpha"), "params"),
    "a bad parameter": ("reinforce", lambda m: m["params"].update(epochs=2.5), "params': epochs"),
    "an extra key": ("linucb", _set("comment", "hand-edited"), "comment"),
}
STATE_CASES = {
    "a NaN weight": ("linucb", lambda s: s["theta"].__setitem__((0, 0), np.nan), "theta"),
    "an infinite weight": ("reinforce", lambda s: s["net.0.weight"].__setitem__((0, 0), np.inf), "net.0.weight"),
    "a missing array": ("linucb", _pop("A_inv"), "A_inv"),
    "an extra array": ("egreedy", _set("extra", np.zeros(2)), "extra"),
    "a wrong shape": ("linucb", _set("b", np.zeros((3, 4))), "b"),
    "a wrong dtype": ("egreedy", lambda s: s.__setitem__("sums", s["sums"].astype(np.float32)), "sums"),
    "no n_features_": ("random", _pop("n_features_"), "n_features_"),
    "a zero n_features_": ("fixed", _set("n_features_", np.array(0)), "n_features_"),
    "a float n_features_": ("oracle", _set("n_features_", np.array(3.0)), "n_features_"),
    "a huge n_features_ (ridge)": ("linucb", _set("n_features_", np.array(10**12)), "A"),
    "a huge n_features_ (network)": ("reinforce", _set("n_features_", np.array(10**12)), "net.0.weight"),
    "a zero feature scale": ("reinforce", lambda s: s["x_scale"].__setitem__(0, 0.0), "x_scale"),
    "Adam at step 0": ("reinforce", _set("adam.1.step", np.array(0.0, dtype=np.float32)), "adam.1"),
    "a negative reward scale": ("reinforce", lambda s: s["scalars"].__setitem__(1, -1.0), "scalars"),
}


@pytest.mark.parametrize("case", list(JSON_CASES) + list(STATE_CASES))
def test_a_corrupted_file_is_refused_naming_the_file_and_the_field(case, tmp_path):
    name, change, field = {**JSON_CASES, **STATE_CASES}[case]
    folder = fitted(name).save(tmp_path / "p")
    if case in JSON_CASES:
        rewrite_json(folder, change)
        file = folder / "policy.json"
    else:
        rewrite_state(folder, change)
        file = folder / "state.safetensors"
    with pytest.raises(PolicyFileError, match=re.escape(f"{file}: field '{field}")):
        Policy.load(folder)


@pytest.mark.parametrize("content", [b"", b"[1, 2]", b"\xff\xfe", b"{\"format\": "])
def test_an_unreadable_description_is_refused_naming_it(content, tmp_path):
    folder = fitted("egreedy").save(tmp_path / "p")
    (folder / "policy.json").write_bytes(content)
    with pytest.raises(PolicyFileError, match=re.escape(str(folder / "policy.json"))):
        Policy.load(folder)


def test_a_truncated_state_file_is_refused_naming_it(tmp_path):
    folder = fitted("linucb").save(tmp_path / "p")
    data = (folder / "state.safetensors").read_bytes()
    (folder / "state.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(PolicyFileError, match=re.escape(f"{folder / 'state.safetensors'}: cannot read")):
        Policy.load(folder)


def test_a_diverged_state_is_not_saved(tmp_path):
    policy = fitted("egreedy")
    policy.sums_[0] = np.nan
    with pytest.raises(ValueError, match="state field 'sums' has NaN"):
        policy.save(tmp_path / "p")
    assert not (tmp_path / "p" / "policy.json").exists()


# -- corrupted files, fuzzed -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved():
    """One saved folder per installed learner."""
    with tempfile.TemporaryDirectory() as tmp:
        yield {name: fitted(name).save(Path(tmp) / name) for name in INSTALLED}


#: values a hand-edited or damaged JSON file may hold
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1024, 1024) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=4,
)
#: arrays of any small shape and of the dtypes safetensors holds, NaN and infinities included
state_arrays = st.tuples(
    st.sampled_from([np.float32, np.float64, np.int64, np.uint8, np.bool_]),
    st.lists(st.integers(0, 4), max_size=3).map(tuple),
).flatmap(lambda spec: arrays(spec[0], spec[1]))
n_features_values = st.sampled_from([0, -3, 1, 2, 4, 10**12, 2**62]).map(lambda v: np.array(v, dtype=np.int64))


@st.composite
def corruptions(draw, meta, state):
    """One change to a saved folder: ``(file, description, apply(folder))``."""
    fields = [(k,) for k in meta] + [("params", k) for k in meta["params"]]
    kind = draw(st.sampled_from(["json-delete", "json-set", "state-delete", "state-set", "state-add", "bytes"]))
    if kind.startswith("json"):
        path = draw(st.sampled_from(fields))
        value = draw(json_values)

        def apply(folder):
            def change(m):
                target = m if len(path) == 1 else m["params"]
                if kind == "json-delete":
                    target.pop(path[-1])
                else:
                    target[path[-1]] = value
            rewrite_json(folder, change)
        return "policy.json", (kind, path, value), apply
    if kind.startswith("state"):
        key = draw(st.sampled_from(sorted(state))) if kind != "state-add" else draw(st.text("abc.", min_size=1))
        value = draw(n_features_values if key == "n_features_" and draw(st.booleans()) else state_arrays)
        return "state.safetensors", (kind, key, value), lambda folder: rewrite_state(
            folder, _pop(key) if kind == "state-delete" else _set(key, value))
    file = draw(st.sampled_from(["policy.json", "state.safetensors"]))
    cut, position, byte = draw(st.booleans()), draw(st.floats(0, 1)), draw(st.integers(0, 255))

    def damage(folder):
        data = bytearray((folder / file).read_bytes())
        if cut:
            del data[int(position * len(data)):]
        else:
            data[min(int(position * len(data)), len(data) - 1)] = byte
        (folder / file).write_bytes(bytes(data))
    return file, (kind, file, cut, position, byte), damage


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(INSTALLED), data=st.data())
def test_load_of_a_corrupted_file_fails_naming_the_file_or_gives_a_working_policy(name, data, saved):
    original = saved[name]
    meta = json.loads((original / "policy.json").read_text())
    state = load_file(str(original / "state.safetensors"))
    file, _, apply = data.draw(corruptions(meta, state), label="corruption")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(shutil.copytree(original, Path(tmp) / "p"))
        apply(folder)
        try:
            policy = Policy.load(folder)
        except PolicyFileError as error:
            assert str(folder) in str(error), f"the error does not name the file: {error}"
            return
    X = np.random.default_rng(0).normal(size=(2, policy.n_features_)) if policy.n_features_ < 100 else None
    if X is None:
        return  # a stateless learner took a huge n_features_: nothing to predict on
    try:
        proba = policy.predict_proba(X, rewards=np.zeros((2, policy.n_arms))) if policy.requires_rewards \
            else policy.predict_proba(X)
    except ValueError:
        return  # a clear refusal (for instance scores that overflow with weights edited to 1e300)
    assert proba.shape == (2, policy.n_arms) and np.all(np.isfinite(proba)) and np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
