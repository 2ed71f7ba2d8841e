from importlib.metadata import entry_points

import numpy as np
import pytest

from banditspec.bandits.policy import POLICIES, masked_softmax
from banditspec.bandits.rewards import (
    Alignment,
    CostPenalty,
    NegativeLatency,
    Reward,
    SpeedupOverAR,
    TokensPerSecond,
    paper_reward,
)
from banditspec.testing import check_policy, check_reward_function
from tests.banditspec.bandits.test_policy import MeanReward  # the smallest correct learner

# -- rewards ---------------------------------------------------------------------------------
REWARDS = [
    SpeedupOverAR(),
    NegativeLatency(),
    TokensPerSecond(),
    Alignment("token_match"),
    Alignment("lcs"),
    Alignment("accepted_prefix"),
    CostPenalty(0.0),
    CostPenalty(0.5),
    paper_reward(0.3, "lcs"),
    SpeedupOverAR() + CostPenalty(0.1),
    NegativeLatency() + TokensPerSecond(),
    2.5 * SpeedupOverAR(),
    -1.0 * NegativeLatency(),
    0.0 * TokensPerSecond(),
    0.5 * (Alignment("lcs") + CostPenalty(0.2)),
]


@pytest.mark.parametrize("reward", REWARDS, ids=repr)
def test_every_shipped_reward_passes_the_check(reward):
    check_reward_function(reward, max_examples=15)


def test_a_plain_function_is_checked_with_declared_properties():
    check_reward_function(lambda m: m.alignment["lcs"] - 0.1 * m.wall_seconds, monotone_in_latency="decreasing",
                          bounds=(-101.0, 1.0), max_examples=25)


class _BatchNormalised(Reward):
    """Divides by the batch mean: fine on one measurement, wrong on columns."""

    name = "batch_normalised"
    monotone_in_latency = "independent"

    def compute(self, columns):
        cost = np.asarray(columns["cost"], dtype=float)
        return cost / max(cost.mean(), 1e-9)


@pytest.mark.parametrize(
    ("fn", "kwargs", "message"),
    [
        (lambda m: 1.0 / m.accepted_tokens if m.accepted_tokens else np.inf, {}, "not finite"),
        (lambda m: 1.0 / m.accepted_tokens, {}, "raised"),
        (lambda m: np.random.default_rng().random(), {}, "different results|not deterministic"),
        (lambda m: m.wall_seconds, {"monotone_in_latency": "decreasing"}, "declared decreasing"),
        (lambda m: m.cost / (1.0 + m.wall_seconds), {"monotone_in_latency": "independent"}, "declared independent"),
        (lambda m: m.alignment["lcs"] * 2.0, {"bounds": (0.0, 1.0)}, "outside its bounds"),
        (lambda m: float(len(m.arm)), {}, "arm's name"),
        (lambda m: list(m.alignment.values())[0], {}, "metric order"),
        (_BatchNormalised(), {}, "columns give"),
    ],
)
def test_check_reward_function_catches_bad_rewards(fn, kwargs, message):
    with pytest.raises(AssertionError, match=message):
        check_reward_function(fn, max_examples=50, **kwargs)


def _decreasing_but_rising_on_a_small_interval(m):
    """``-t``, except on [5, 5.5) seconds where it rises from -5 to -4.5: far-apart pairs of times rarely see it."""
    t = m.wall_seconds
    return t - 10.0 if 5.0 <= t < 5.5 else -t


def test_a_reward_that_breaks_monotonicity_on_a_small_interval_is_caught():
    with pytest.raises(AssertionError, match="declared decreasing in latency"):
        check_reward_function(_decreasing_but_rising_on_a_small_interval, monotone_in_latency="decreasing",
                              max_examples=50)


def test_check_reward_function_rejects_bad_arguments():
    with pytest.raises(ValueError, match="callable"):
        check_reward_function(3.0)
    with pytest.raises(ValueError, match="monotone_in_latency"):
        check_reward_function(NegativeLatency(), monotone_in_latency="sideways")
    with pytest.raises(ValueError, match="bounds"):
        check_reward_function(NegativeLatency(), bounds=(1.0, 0.0))


# -- policies --------------------------------------------------------------------------------
#: Cheaper settings where the defaults train for long; the contract does not depend on them.
QUICK = {"reinforce": {"epochs": 2, "hidden": 8, "batch_size": 8}}


INSTALLED = sorted(ep.name for ep in entry_points(group="banditspec.policies"))


@pytest.mark.parametrize("name", INSTALLED)
def test_every_installed_policy_passes_the_check(name):
    cls = POLICIES.get(name)
    check_policy(lambda: cls(n_arms=3, **QUICK.get(name, {})), n_features=2, max_examples=3 if name in QUICK else 10)


class IgnoresMask(MeanReward):
    def _predict_proba(self, X, mask):
        return np.full((len(X), self.n_arms), 1.0 / self.n_arms)


class Unnormalised(MeanReward):
    def _predict_proba(self, X, mask):
        return mask.astype(float)


class ForgetsOnSave(MeanReward):
    def _state(self):
        return {"counts": self.counts_}

    def _load_state(self, state):
        self.counts_ = state["counts"]
        self.sums_ = np.zeros(self.n_arms)


class SlightlyUnnormalised(MeanReward):
    """Rows sum to 1 + 5e-6: far beyond float64 round-off."""

    def _predict_proba(self, X, mask):
        return super()._predict_proba(X, mask) * (1.0 + 5e-6)


class SelectsTheLastArm(MeanReward):
    def select(self, X, rng=None, available=None, *, check_input=True):
        return np.full(len(np.asarray(X)), self.n_arms - 1)


class CentresOnTheBatch(MeanReward):
    """Probabilities that depend on the other rows of the batch."""

    def _predict_proba(self, X, mask):
        shift = (X - X.mean(axis=0)).sum(axis=1, keepdims=True)
        return masked_softmax(np.tile(self.sums_, (len(X), 1)) + shift * np.arange(self.n_arms), mask)


class Unseeded(MeanReward):
    def _predict_proba(self, X, mask):
        noisy = self.sums_ + np.random.default_rng().normal(size=self.n_arms)
        return masked_softmax(np.tile(noisy, (len(X), 1)), mask)


class CountsBeforeChecking(MeanReward):
    def partial_fit(self, X, actions, rewards, propensities=None):
        if self.is_fitted():
            self.counts_ = self.counts_ + 1
        return super().partial_fit(X, actions, rewards, propensities)


class ClipsActions(MeanReward):
    def partial_fit(self, X, actions, rewards, propensities=None):
        return super().partial_fit(X, np.clip(actions, 0, self.n_arms - 1), rewards, propensities)


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (IgnoresMask, "unavailable"),
        (Unnormalised, "sum to 1"),
        (ForgetsOnSave, "save/load"),
        (Unseeded, "different predictions|different results"),
        (CountsBeforeChecking, "changed the policy"),
        (ClipsActions, "accepted bad input"),
        (SlightlyUnnormalised, "do not sum to 1"),
        (SelectsTheLastArm, "select without rng gave"),
        (CentresOnTheBatch, "alone gets probabilities"),
    ],
)
def test_check_policy_catches_bad_policies(cls, message):
    POLICIES.register(f"test-{cls.__name__}", cls)
    with pytest.raises(AssertionError, match=message):
        check_policy(lambda: cls(n_arms=3), max_examples=20)


def test_check_policy_passes_a_correct_learner_and_rejects_bad_arguments():
    POLICIES.register("mean-reward-test", MeanReward)
    check_policy(lambda: MeanReward(n_arms=4), n_features=2, max_examples=15)
    with pytest.raises(ValueError, match="n_arms"):
        check_policy(lambda: MeanReward(n_arms=4), n_arms=3)
    with pytest.raises(ValueError, match="Policy"):
        check_policy(lambda: "not a policy")
    with pytest.raises(ValueError, match="n_features"):
        check_policy(lambda: MeanReward(n_arms=4), n_features=0)


def test_check_policy_requires_registration():
    class Unregistered(MeanReward):
        pass

    with pytest.raises(AssertionError, match="not registered"):
        check_policy(lambda: Unregistered(n_arms=2))


def test_check_policy_requires_an_unfitted_policy():
    POLICIES.register("mean-reward-test", MeanReward)
    fitted = MeanReward(n_arms=2).fit(np.zeros((2, 1)), [0, 1], [1.0, 0.0])
    with pytest.raises(AssertionError, match="unfitted"):
        check_policy(lambda: fitted)
