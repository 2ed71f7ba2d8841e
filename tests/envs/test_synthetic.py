import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from banditspec.speculative.kinds import Autoregressive, DraftModel, PromptLookup
from banditspec.bandits.env import ENVIRONMENTS, Environment
from banditspec.bandits.rewards import NegativeLatency, paper_reward
from banditspec.envs.synthetic import DEFAULT_DOMAINS, DraftSpec, SyntheticWorld, speedup_factor

WORLD = SyntheticWorld()


def test_default_world_is_the_papers_setting():
    assert isinstance(WORLD, Environment)
    assert ENVIRONMENTS.get("synthetic") is SyntheticWorld
    names = WORLD.arms.names
    assert len(names) == 8 and names[0] == "ar"
    assert isinstance(WORLD.arms["ar"], Autoregressive)
    assert all(isinstance(WORLD.arms[f"{d}-expert"], DraftModel) for d in DEFAULT_DOMAINS)
    assert isinstance(WORLD.arms["prompt-lookup"], PromptLookup)
    assert WORLD.arms.costs[0] == 0 and np.all(WORLD.arms.costs[1:] > 0)


def test_experts_best_on_their_domain_misaligned_slower_than_ar():
    q = WORLD.queries(4000, split="test", seed=3)
    values = WORLD.true_values(q)
    names = WORLD.arms.names
    for domain in DEFAULT_DOMAINS:
        mean = values[q.groups == domain].mean(axis=0)
        expert = names.index(f"{domain}-expert")
        assert np.argmax(mean) == expert
        assert mean[expert] > 1.5 * np.sort(mean)[-2] or mean[expert] > 2.0
        assert mean[names.index("misaligned")] < 0.7 < 1.2 < mean[names.index("generalist")]
        others = [names.index(f"{d}-expert") for d in DEFAULT_DOMAINS if d != domain]
        assert np.all(mean[others] < 1.05)


def test_queries_deterministic_disjoint_and_prefix_consistent():
    a = WORLD.queries(300, split="train", seed=5)
    b = WORLD.queries(300, split="train", seed=5)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.groups, b.groups)
    prefix = WORLD.queries(100, split="train", seed=5)
    np.testing.assert_array_equal(prefix.X, a.X[:100])
    test = WORLD.queries(300, split="test", seed=5)
    other = WORLD.queries(300, split="train", seed=6)
    assert not set(a.ids) & set(test.ids) and not set(a.ids) & set(other.ids)
    assert not np.allclose(a.X, other.X)
    assert set(a.groups) <= set(DEFAULT_DOMAINS)


def test_same_world_seed_same_world_other_seed_other_centroids():
    assert np.array_equal(SyntheticWorld(seed=1).centroids, SyntheticWorld(seed=1).centroids)
    assert not np.allclose(SyntheticWorld(seed=1).centroids, WORLD.centroids)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_step_is_the_chosen_column_of_full_feedback(data):
    q = WORLD.queries(3000, split="train", seed=data.draw(st.integers(0, 3)))
    rows = np.array(data.draw(st.lists(st.integers(0, len(q) - 1), min_size=1, max_size=40, unique=True)))
    actions = np.array(data.draw(st.lists(st.integers(0, 7), min_size=len(rows), max_size=len(rows))))
    run = data.draw(st.integers(0, 10))
    sub = q.subset(rows)
    bandit = WORLD.step(sub, actions, seed=run)
    full = WORLD.full_feedback(q, seed=run)
    np.testing.assert_array_equal(bandit.rewards, full.rewards[rows, actions])
    np.testing.assert_array_equal(bandit.seconds, full.seconds[rows, actions])
    np.testing.assert_array_equal(bandit.ar_seconds, full.ar_seconds[rows])


def test_full_feedback_shapes_and_ar_reference():
    q = WORLD.queries(500, split="test", seed=0)
    full = WORLD.full_feedback(q, seed=2)
    assert full.full and full.rewards.shape == (500, 8)
    np.testing.assert_array_equal(full.ar_seconds, full.seconds[:, 0])
    np.testing.assert_allclose(full.rewards[:, 0], 1.0)
    np.testing.assert_allclose(full.rewards, full.ar_seconds[:, None] / full.seconds)
    assert np.all(full.seconds > 0)
    assert not np.array_equal(full.seconds, WORLD.full_feedback(q, seed=3).seconds)


def test_noise_free_seconds_follow_the_cost_model():
    world = SyntheticWorld(latency_noise=0.0, target_step_seconds=0.01)
    q = world.queries(200, split="test", seed=1)
    columns = world.measure(q)
    a, tokens = columns["align_token_match"], columns["new_tokens"]
    g = np.array([0] + [arm.block_size if isinstance(arm, DraftModel) else arm.num_tokens for arm in list(world.arms)[1:]])
    c = world.arms.costs
    expected = tokens * 0.01
    a, g, c = a[:, 1:], g[1:], c[1:]
    expected[:, 1:] *= (g * c + 1) * (1 - a) / (1 - a ** (g + 1))
    np.testing.assert_allclose(columns["wall_seconds"], expected, rtol=1e-12)
    assert np.all(columns["accepted_tokens"] <= columns["proposed_tokens"])
    np.testing.assert_array_equal(columns["target_calls"][:, 0], tokens[:, 0])
    tokens_per_call = tokens[:, 1:] / columns["target_calls"][:, 1:]
    assert np.all(tokens_per_call <= g + 1)


def test_speedup_factor_limits():
    np.testing.assert_allclose(speedup_factor(np.array([1e-9]), 5, 0.0), 1.0, atol=1e-6)
    np.testing.assert_allclose(speedup_factor(0.5, 1, 0.0), 1.5)
    assert speedup_factor(0.999999, 4, 0.0) == pytest.approx(5.0, rel=1e-4)


def test_true_values_are_the_expectation_over_noise():
    q = WORLD.queries(50, split="test", seed=2)
    values = WORLD.true_values(q)
    noise_free = SyntheticWorld(latency_noise=0.0).full_feedback(q).rewards
    np.testing.assert_allclose(values, noise_free * np.where(np.arange(8) == 0, 1.0, np.exp(0.08**2)), rtol=1e-9)
    monte_carlo = np.mean([WORLD.full_feedback(q, seed=s).rewards for s in range(400)], axis=0)
    np.testing.assert_allclose(monte_carlo, values, rtol=0.02)


def test_other_rewards_from_the_same_measurements():
    q = WORLD.queries(100, split="test", seed=0)
    latency = SyntheticWorld(reward=NegativeLatency()).full_feedback(q, seed=1)
    np.testing.assert_array_equal(latency.rewards, -WORLD.full_feedback(q, seed=1).seconds)
    proxy = SyntheticWorld(reward=paper_reward(alpha=1.0)).full_feedback(q)
    acceptance = WORLD.measure(q)["align_token_match"]
    np.testing.assert_allclose(proxy.rewards, acceptance - WORLD.arms.costs)
    assert np.all(proxy.rewards[:, 0] == 1.0)


def test_domain_is_learnable_but_not_given():
    train, test = WORLD.queries(2000, split="train", seed=0), WORLD.queries(1000, split="test", seed=0)
    accuracy = LogisticRegression(max_iter=500).fit(train.X, train.groups).score(test.X, test.groups)
    assert accuracy > 0.95
    for column in test.X.T:
        assert len(np.unique(column)) > 100  # continuous, never an indicator
    nuisance = test.X[:, -WORLD.n_nuisance :]
    assert np.all(np.abs(np.corrcoef(nuisance.T, (test.groups == "code").astype(float))[-1, :-1]) < 0.15)


def test_up_to_64_arms_with_several_block_sizes():
    drafts = [DraftSpec(f"d{i}", 0.05 * (i + 1), {DEFAULT_DOMAINS[i % 4]: 0.8}) for i in range(7)]
    world = SyntheticWorld(drafts=drafts, block_sizes=range(1, 10))
    assert len(world.arms) == 64 and len(set(world.arms.names)) == 64
    assert world.arms[1].name == "d0/g1" and world.arms[1].block_size == 1
    q = world.queries(300, split="train", seed=0)
    full = world.full_feedback(q)
    assert full.rewards.shape == (300, 64) and np.all(np.isfinite(full.rewards))
    np.testing.assert_array_equal(world.step(q, np.full(300, 63)).rewards, full.rewards[:, 63])


def test_domain_weights_shift_the_mix():
    world = SyntheticWorld(domain_weights=[0.7, 0.1, 0.1, 0.1])
    groups = world.queries(2000, split="train", seed=0).groups
    assert 0.65 < np.mean(groups == "translation") < 0.75


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"domains": ["a", "a"]}, "unique"),
        ({"drafts": [DraftSpec("x", 0.1, {"nowhere": 0.5})]}, "unknown domains"),
        ({"drafts": [DraftSpec("ar", 0.1)]}, "other than 'ar'"),
        ({"block_sizes": [0]}, "block_sizes"),
        ({"domain_weights": [1.0, 0.0]}, "domain_weights"),
        ({"n_features": 4, "n_nuisance": 4}, "n_nuisance"),
        ({"latency_noise": -1.0}, "latency_noise"),
        ({"seed": -1}, "seed"),
    ],
)
def test_rejects_bad_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SyntheticWorld(**kwargs)


def test_rejects_bad_specs_and_calls():
    with pytest.raises(ValueError, match="acceptance"):
        DraftSpec("x", 0.1, {"code": 1.0})
    with pytest.raises(ValueError, match="kind"):
        DraftSpec("x", 0.1, kind="magic")
    with pytest.raises(ValueError, match="split"):
        WORLD.queries(10, split="valid", seed=0)
    with pytest.raises(ValueError, match="n must be"):
        WORLD.queries(0, split="train", seed=0)
    q = WORLD.queries(10, split="train", seed=0)
    with pytest.raises(ValueError, match="actions"):
        WORLD.step(q, np.full(10, 8))
    with pytest.raises(ValueError, match="actions"):
        WORLD.step(q, np.zeros(9, dtype=int))
    with pytest.raises(ValueError, match="seed"):
        WORLD.full_feedback(q, seed=-2)
