"""The documentation's examples run, and the pages quote the example files verbatim."""

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from banditspec.bandits.env import Measurement
from banditspec.bandits.policy import POLICIES, Policy
from banditspec.bandits.rewards import CostPenalty
from banditspec.testing import check_policy, check_reward_function

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLES = DOCS / "examples"
PAGES = ["concepts.md", "custom-learner.md", "custom-arms.md", "custom-reward.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)

sys.path.insert(0, str(EXAMPLES))  # the pages import the examples as plain modules, as a reader would
import custom_learner  # noqa: E402
import custom_reward  # noqa: E402


def python_blocks(page: str) -> list[str]:
    return BLOCK.findall((DOCS / page).read_text())


@pytest.mark.parametrize("page", PAGES)
def test_page_code_runs(page, tmp_path, monkeypatch):
    """Every python block of a page runs, in order, in one namespace (quotes of example files excepted)."""
    quotes = {path.read_text().strip() for path in EXAMPLES.glob("*.py")}
    blocks = [b for b in python_blocks(page) if b.strip() not in quotes]
    assert blocks, f"{page} has no runnable python block"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{page}"}
    for block in blocks:
        exec(compile(block, f"{page}", "exec"), namespace)


@pytest.mark.parametrize(("page", "example"), [("custom-learner.md", "custom_learner.py"),
                                                ("custom-reward.md", "custom_reward.py")])
def test_pages_quote_the_example_files_verbatim(page, example):
    assert (EXAMPLES / example).read_text().strip() in [b.strip() for b in python_blocks(page)]


def test_custom_learner_fits_predicts_saves_and_keeps_the_contract(tmp_path):
    cls = custom_learner.SoftmaxRidge
    assert POLICIES.get("softmax-ridge") is cls
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    actions = rng.integers(0, 3, 300)
    rewards = np.where(actions == (X[:, 0] > 0), 1.0, 0.0) + rng.normal(scale=0.1, size=300)
    policy = cls(n_arms=3, temperature=0.05).fit(X, actions, rewards)
    proba = policy.predict_proba(np.array([[2.0, 0.0], [-2.0, 0.0]]))
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert proba[0].argmax() == 1 and proba[1].argmax() == 0
    loaded = Policy.load(policy.save(tmp_path / "policy"))
    assert type(loaded) is cls and loaded.get_params() == policy.get_params()
    assert np.array_equal(loaded.predict_proba(X), policy.predict_proba(X))
    with pytest.raises(ValueError, match="temperature"):
        cls(n_arms=3, temperature=0.0).fit(X, actions, rewards)
    check_policy(lambda: cls(n_arms=3), n_features=2, max_examples=15)


def test_custom_reward_values_and_properties():
    m = Measurement("draft", new_tokens=10, wall_seconds=0.5, target_calls=4, accepted_tokens=6,
                    proposed_tokens=8, ar_wall_seconds=1.0)
    reward = custom_reward.LosslessSpeedup()
    assert reward(m) == 2.0
    assert reward(Measurement(**{**m.__dict__, "equals_ar": False})) == 0.0
    assert custom_reward.acceptance_rate(m) == 0.75
    check_reward_function(reward, max_examples=20)
    check_reward_function(reward + CostPenalty(0.1), max_examples=20)
    check_reward_function(custom_reward.acceptance_rate, monotone_in_latency="independent", bounds=(0.0, 1.0),
                          max_examples=20)
    with pytest.raises(AssertionError, match="declared increasing"):
        check_reward_function(reward, monotone_in_latency="increasing", max_examples=20)


def test_custom_arm_kind_decodes_simulates_collects_and_learns(tmp_path, toy_cache, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import corpus_arm
    import corpus_demo

    assert (EXAMPLES / "corpus_arm.py").read_text().strip() in [b.strip() for b in python_blocks("custom-arms.md")]
    assert (EXAMPLES / "corpus_demo.py").read_text().strip() in [b.strip() for b in python_blocks("custom-arms.md")]
    with pytest.raises(ValueError, match="corpus"):
        corpus_arm.CorpusLookup("c", corpus=str(tmp_path / "missing.txt"))
    found = corpus_demo.main(str(tmp_path / "out"), n_train=120, n_test=16, cache_dir=str(toy_cache))
    assert found["outputs_equal_ar"]
    assert found["simulated_calls_equal_measured"] == 1.0
    assert found["corpus_tokens_per_call"] > 1.5  # the corpus holds the target's answers: it drafts well


def test_the_readme_world_toml_is_a_valid_config(tmp_path):
    from banditspec.speculative.world import load_world_config

    readme = (DOCS.parent / "README.md").read_text()
    example = re.search(r"^```toml\n(.*?)^```$", readme, re.S | re.M).group(1)
    (tmp_path / "drafts" / "code").mkdir(parents=True)
    (tmp_path / "prompts.jsonl").write_text('{"text": "hello", "domain": "chat"}\n')
    (tmp_path / "world.toml").write_text(example)
    config = load_world_config(tmp_path / "world.toml")
    assert [arm.kind for arm in config.arms] == ["ar", "draft", "prompt_lookup"]
    assert config.decoding.max_new_tokens == 64 and config.prompts.group_field == "domain"


def test_the_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    """The README's "From Python" block trains two learners, compares their true values and estimates them off-policy."""
    readme = (DOCS.parent / "README.md").read_text()
    section = readme.split("## From Python\n", 1)[1].split("\n## ", 1)[0]
    (block,) = BLOCK.findall(section)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {"__name__": "readme_from_python"})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["reinforce", "linucb"]
    assert all("true" in line and "IPS" in line and "DR" in line for line in lines)
