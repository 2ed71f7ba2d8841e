import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from banditspec.apps.result import CompareResult
from banditspec.apps.scoring import (
    LearnerSpec,
    best_logged_arm,
    choice_metrics,
    choose,
    greedy,
    resolve_learners,
    score,
    speedup,
    train_learners,
)
from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.env import Queries
from banditspec.bandits.policy import POLICIES
from banditspec.bandits.rewards import paper_reward
from banditspec.envs.synthetic import SyntheticWorld

WORLD = SyntheticWorld()
K = len(WORLD.arms)
WORDS = np.array(["sum", "sort", "def", "bonjour", "list", "print", "merci", "carry"], dtype=object)


def texts(n: int, seed: int) -> list[str]:
    return [" ".join(words) for words in np.random.default_rng(seed).choice(WORDS, (n, 4))]


def uniform_log(n: int = 800, seed: int = 0) -> LoggedDataset:
    """Uniformly logged bandit rows of the synthetic world, with prompts and the proxy reward's columns."""
    q = WORLD.queries(n, split="train", seed=seed)
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, K, n)
    rewards = WORLD.step(q, actions, seed=seed).rewards
    return LoggedDataset(q.ids, q.X, actions, rewards, np.full(n, 1 / K), arm_names=WORLD.arms.names,
                         groups=q.groups, columns={"prompt": np.array(texts(n, seed), dtype=object),
                                                   "align_token_match": rng.random(n), "cost": np.linspace(0, 1, K)[actions]})


def held_out(n: int = 300):
    q = WORLD.queries(n, split="test", seed=0)
    return Queries(ids=q.ids, X=q.X, texts=texts(n, 99), groups=q.groups), WORLD.full_feedback(q, seed=0)


def test_learner_spec_rejects_unknown_features_rewards_and_policies():
    with pytest.raises(ValueError, match="features must be one of"):
        LearnerSpec("linucb", features="bert")
    with pytest.raises(ValueError, match="reward must be one of"):
        LearnerSpec("linucb", reward="tokens")
    with pytest.raises(ValueError, match="registered name or a callable"):
        LearnerSpec(3)
    assert LearnerSpec("linucb", reward="proxy").describe() == ["linucb", "target", "proxy"]


def test_resolve_learners_checks_names_before_any_work():
    with pytest.raises(ValueError, match="known policies: .*linucb"):
        resolve_learners(["linucb", "no-such-learner"])
    with pytest.raises(ValueError, match="distinct"):
        resolve_learners(["fixed", "fixed"])
    with pytest.raises(ValueError, match="callable"):
        resolve_learners({"x": 3})
    with pytest.raises(ValueError, match="known policies"):
        resolve_learners({"x": LearnerSpec("no-such-learner")})
    specs = resolve_learners({"mine": lambda: POLICIES.create("linucb", n_arms=K), "proxy": LearnerSpec("egreedy", reward="proxy")})
    assert callable(specs["mine"].policy) and specs["proxy"] == LearnerSpec("egreedy", reward="proxy")
    assert resolve_learners(["linucb"]) == {"linucb": LearnerSpec("linucb")}


def test_each_learner_is_fitted_on_its_own_features_and_reward():
    data = uniform_log()
    fitted = train_learners(data, {"target": LearnerSpec("linucb"), "hashing": LearnerSpec("linucb", features="hashing"),
                                   "proxy": LearnerSpec("linucb", reward="proxy")}, seed=3, alpha=0.7)
    assert list(fitted) == ["target", "hashing", "proxy"]
    assert fitted["target"].policy.n_features_ == data.n_features and fitted["hashing"].policy.n_features_ == 64
    by_hand = POLICIES.create("linucb", n_arms=K, seed=3).fit(data.X, data.actions, paper_reward(0.7)(data.columns),
                                                             data.propensities)
    np.testing.assert_array_equal(fitted["proxy"].policy.predict_proba(data.X), by_hand.predict_proba(data.X))
    assert all(f.fit_seconds >= 0 and f.arm is None for f in fitted.values())


def test_fixed_plays_the_best_arm_of_the_log_by_inverse_propensity_value():
    data = uniform_log()
    values = [np.sum(data.rewards * (data.actions == k) / data.propensities) for k in range(K)]
    assert best_logged_arm(data.actions, data.rewards, data.propensities, K) == int(np.argmax(values))
    fixed = train_learners(data, {"fixed": LearnerSpec("fixed")}, seed=0)["fixed"]
    assert fixed.arm == int(np.argmax(values))
    np.testing.assert_array_equal(fixed.policy.predict_proba(data.X[:5]).argmax(axis=1), fixed.arm)


def test_hashed_features_need_the_prompts():
    data = uniform_log()
    bare = LoggedDataset(data.query_ids, data.X, data.actions, data.rewards, data.propensities, arm_names=data.arm_names)
    with pytest.raises(ValueError, match="'h' uses hashed n-gram features .* 'prompt' column"):
        train_learners(bare, {"h": LearnerSpec("linucb", features="hashing")}, seed=0)


def test_score_appends_the_oracle_every_fixed_arm_and_every_learner():
    test, full = held_out()
    fitted = train_learners(uniform_log(), {"oracle": LearnerSpec("oracle"), "fixed": LearnerSpec("fixed"),
                                            "hashing": LearnerSpec("linucb", features="hashing")}, seed=0)
    result = CompareResult(WORLD.arms.names, [], [4], {})
    chosen = score(result, fitted, test, full, 4)
    best = full.rewards.argmax(axis=1)
    oracle = full.ar_seconds.sum() / full.seconds[np.arange(len(best)), best].sum()
    assert result.oracle == [{"seed": 4, "speedup_vs_ar": pytest.approx(oracle),
                              "mean_reward": pytest.approx(full.rewards.max(axis=1).mean())}]
    assert [row["arm"] for row in result.fixed_arms] == WORLD.arms.names
    runs = {row["policy"]: row for row in result.runs}
    assert list(runs) == ["oracle", "fixed", "hashing"] and {row["seed"] for row in result.runs} == {4}
    np.testing.assert_array_equal(chosen["oracle"], best)  # the oracle policy is given the reward table
    assert runs["oracle"]["share_of_oracle"] == pytest.approx(1.0) and runs["oracle"]["regret"] == pytest.approx(0.0)
    assert runs["fixed"]["arm"] == WORLD.arms.names[fitted["fixed"].arm] and "arm" not in runs["hashing"]
    metrics = ("speedup_vs_ar", "share_of_oracle", "mean_reward", "regret")
    fixed_arm = result.fixed_arms[fitted["fixed"].arm]
    assert {m: runs["fixed"][m] for m in metrics} == {m: fixed_arm[m] for m in metrics}
    for name, row in runs.items():
        assert {m: row[m] for m in metrics} == choice_metrics(chosen[name], full)
        assert row["fit_seconds"] == fitted[name].fit_seconds and row["decision_us"] >= 0
    assert result.groups == sorted(set(test.groups)) and set(result.choices) == set(runs)
    np.testing.assert_allclose(result.choices["fixed"].sum(axis=2), 1.0)


def test_each_learner_breaks_ties_with_its_own_stream():
    test, full = held_out()
    data = uniform_log()
    pair = train_learners(data, {"a": LearnerSpec("random"), "b": LearnerSpec("random")}, seed=0)
    alone = train_learners(data, {"b": LearnerSpec("random")}, seed=0)
    both = score(CompareResult(WORLD.arms.names, [], [0], {}), pair, test, full, 0)
    single = score(CompareResult(WORLD.arms.names, [], [0], {}), alone, test, full, 0)
    np.testing.assert_array_equal(both["a"], both["b"])
    np.testing.assert_array_equal(both["b"], single["b"])
    assert len(np.unique(both["a"])) == K  # a uniform row is a uniform draw, not always arm 0


@settings(max_examples=50, deadline=None)
@given(arrays(float, st.tuples(st.integers(1, 20), st.integers(1, 6)), elements=st.sampled_from([0.0, 0.25, 0.5, 1.0])))
def test_greedy_picks_a_most_probable_arm(proba):
    choice = greedy(proba, np.random.default_rng(0))
    assert np.all(proba[np.arange(len(proba)), choice] == proba.max(axis=1))


def test_greedy_breaks_ties_at_random():
    choice = greedy(np.full((4000, 4), 0.25), np.random.default_rng(1))
    assert np.all(np.abs(np.bincount(choice, minlength=4) / 4000 - 0.25) < 0.03)


def test_choices_made_beforehand_are_scored_as_given():
    test, full = held_out(60)
    fitted = train_learners(uniform_log(), {"linucb": LearnerSpec("linucb"), "random": LearnerSpec("random")}, seed=0)
    choices, decision_us = choose(fitted, test, 3)
    given = {"linucb": choices["linucb"], "random": (choices["random"] + 1) % len(WORLD.arms)}
    result = CompareResult(WORLD.arms.names, [], [3], {})
    assert score(result, fitted, test, full, 3, (given, decision_us)) is given
    runs = {row["policy"]: row for row in result.runs}
    for name in given:
        assert runs[name]["speedup_vs_ar"] == pytest.approx(speedup(full, given[name]))
        assert runs[name]["decision_us"] == decision_us[name]
    oracle = train_learners(uniform_log(), {"oracle": LearnerSpec("oracle")}, seed=0)
    with pytest.raises(ValueError, match="needs the rewards"):
        choose(oracle, test, 3)


def test_speedup_reads_only_the_chosen_seconds():
    test, full = held_out(40)
    choice = np.arange(40) % len(WORLD.arms)
    seconds = np.full_like(full.seconds, np.nan)
    seconds[np.arange(40), choice] = full.seconds[np.arange(40), choice]
    partial = type(full)(rewards=full.rewards, seconds=seconds, ar_seconds=full.ar_seconds)
    assert speedup(partial, choice) == pytest.approx(full.ar_seconds.sum() / full.seconds[np.arange(40), choice].sum())
