import numpy as np
import pytest
import torch

from banditspec.bandits.policy import Policy, PolicyFileError
from banditspec.bandits.reinforce import Reinforce


def domain_problem(n: int, seed: int):
    """Four domains; arm k (k < 4) is best on domain k, arm 4 is a generalist."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(123).normal(size=(4, 8))
    domains = rng.integers(0, 4, n)
    X = centres[domains] + 0.7 * rng.normal(size=(n, 8))
    table = np.full((4, 6), 1.0)
    table[np.arange(4), np.arange(4)] = 2.0
    table[:, 4] = 1.4
    table[:, 5] = 0.5
    return X, domains, table


def test_learns_the_expert_per_domain_from_uniform_logs():
    X, domains, table = domain_problem(4000, seed=1)
    rng = np.random.default_rng(2)
    actions = rng.integers(0, 6, len(X))
    rewards = table[domains, actions] * np.exp(rng.normal(0, 0.2, len(X)))
    policy = Reinforce(6, epochs=15, seed=0).fit(X, actions, rewards, np.full(len(X), 1 / 6))
    X_test, d_test, _ = domain_problem(1000, seed=3)
    chosen = policy.select(X_test)
    assert table[d_test, chosen].mean() >= 0.95 * table[d_test].max(axis=1).mean()


def test_same_seed_same_policy_and_save_load_exact(tmp_path):
    X, domains, table = domain_problem(500, seed=4)
    actions = np.arange(len(X)) % 6
    rewards = table[domains, actions]
    a = Reinforce(6, epochs=3, seed=7).fit(X, actions, rewards)
    b = Reinforce(6, epochs=3, seed=7).fit(X, actions, rewards)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    loaded = Policy.load(a.save(tmp_path / "p"))
    assert isinstance(loaded, Reinforce) and loaded.get_params() == a.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X), a.predict_proba(X))


def test_availability_mask_gives_zero_mass():
    X, domains, table = domain_problem(300, seed=5)
    actions = np.arange(len(X)) % 6
    policy = Reinforce(6, epochs=2).fit(X, actions, table[domains, actions])
    mask = np.array([False, True, True, False, True, True])
    proba = policy.predict_proba(X, available=mask)
    assert np.all(proba[:, ~mask] == 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(policy.select(X, rng=np.random.default_rng(0), available=mask)) <= {1, 2, 4, 5}


def test_partial_fit_online_improves_from_scratch():
    X, domains, table = domain_problem(3000, seed=6)
    policy = Reinforce(6, seed=0, lr=0.02)
    rng = np.random.default_rng(0)
    for chunk in np.array_split(np.arange(len(X)), 30):
        proba = policy.predict_proba(X[chunk]) if policy.is_fitted() else np.full((len(chunk), 6), 1 / 6)
        actions = np.array([rng.choice(6, p=p) for p in proba])
        policy.partial_fit(X[chunk], actions, table[domains[chunk], actions], proba[np.arange(len(chunk)), actions])
    X_test, d_test, _ = domain_problem(500, seed=8)
    assert table[d_test, policy.select(X_test)].mean() > table[d_test].mean()


def test_rejected_input_leaves_policy_unchanged():
    X, domains, table = domain_problem(200, seed=9)
    actions = np.arange(len(X)) % 6
    policy = Reinforce(6, epochs=2).fit(X, actions, table[domains, actions])
    before = {k: v.copy() for k, v in policy._state().items()}
    bad_calls = [
        lambda: policy.partial_fit(X[:, :3], actions, table[domains, actions]),
        lambda: policy.partial_fit(X, actions, np.full(len(X), np.nan)),
        lambda: policy.partial_fit(X, actions + 6, table[domains, actions]),
        lambda: policy.partial_fit(X, actions, table[domains, actions], np.full(len(X), 1.5)),
        lambda: policy.predict_proba(X, available=np.zeros(6, bool)),
    ]
    for call in bad_calls:
        with pytest.raises(ValueError):
            call()
    after = policy._state()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])


def test_invalid_parameters_and_not_a_policy_file(tmp_path):
    with pytest.raises(ValueError, match="epochs"):
        Reinforce(3, epochs=0)
    (tmp_path / "policy.json").write_text("{}")
    with pytest.raises(PolicyFileError, match="field 'format'"):
        Policy.load(tmp_path)
    with pytest.raises(PolicyFileError, match="not a saved banditspec policy"):
        Policy.load(tmp_path / "missing")


def test_logits_that_overflow_are_refused_not_turned_into_nan():
    X, domains, table = domain_problem(100, seed=10)
    actions = np.arange(len(X)) % 6
    policy = Reinforce(6, epochs=1, hidden=4).fit(X, actions, table[domains, actions])
    with torch.no_grad():
        policy.net_[2].weight.fill_(3e38)  # finite, but four of them sum past float32's range
    with pytest.raises(ValueError, match="logits are not finite"):
        policy.predict_proba(X[:3])


def test_the_expected_state_of_a_saved_policy_matches_a_fitted_one_and_needs_no_allocation():
    import numpy as np

    from banditspec.bandits.reinforce import Reinforce

    for hidden in (0, 8):
        policy = Reinforce(n_arms=3, hidden=hidden, epochs=1, seed=0)
        rng = np.random.default_rng(0)
        policy.fit(rng.normal(size=(20, 5)), rng.integers(0, 3, 20), rng.random(20))
        state = policy._state()
        assert {k: (v.shape, v.dtype) for k, v in state.items()} == {
            k: (shape, dtype) for k, (shape, dtype) in policy._state_shapes(5).items()}
        huge = policy._state_shapes(2**62)  # a corrupted n_features_ gives shapes to refuse, not an allocation
        assert huge["x_mean"][0] == (2**62,)


class ModeRecording(Reinforce):
    """A Reinforce whose network records, at every forward pass, whether it was in training mode."""

    def _network(self, n_features):
        self.modes = []
        net = super()._network(n_features)
        net.register_forward_pre_hook(lambda module, args: self.modes.append(module.training))
        return net


def test_the_network_trains_in_training_mode_and_predicts_in_eval_mode(tmp_path):
    X, domains, table = domain_problem(600, seed=11)
    actions = np.arange(len(X)) % 6
    rewards = table[domains, actions]
    policy = ModeRecording(6, epochs=2, batch_size=128)
    updates = [lambda: policy.fit(X, actions, rewards), lambda: policy.partial_fit(X, actions, rewards),
               lambda: policy.partial_fit_full(X[:50], table[domains[:50]])]
    for update in updates:
        update()
        assert policy.modes and all(policy.modes)  # every training forward pass, and there were some
        policy.modes.clear()
        policy.predict_proba(X[:5])
        assert policy.modes == [False]
        policy.modes.clear()
    saved = Reinforce(6, epochs=1).fit(X, actions, rewards).save(tmp_path / "p")
    assert not Reinforce.load(saved).net_.training
