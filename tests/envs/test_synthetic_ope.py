"""Off-policy intervals on the synthetic world, where every policy's true value is known.

Each repetition logs ``N`` queries with the uniform policy (bandit feedback), and
asks DR and SNIPS for 95% bootstrap intervals of two target policies' values.
The truth is ``E_x sum_a pi(a|x) v(x, a)`` with ``v`` the world's expected
rewards (:meth:`SyntheticWorld.true_values`), averaged over a large independent
sample of queries. Seeds are fixed, so the test is deterministic.
"""

import numpy as np
import pytest

from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.policy import masked_softmax
from banditspec.envs.synthetic import SyntheticWorld

ope = pytest.importorskip("banditspec.bandits.ope")

WORLD = SyntheticWorld()
K = len(WORLD.arms)
N, REPETITIONS = 800, 50
WEIGHTS = np.random.default_rng(42).normal(0.0, 0.4, (WORLD.n_features, K))


def expert_policy(groups: np.ndarray) -> np.ndarray:
    """Deterministic: the expert of the query's domain."""
    proba = np.zeros((len(groups), K))
    proba[np.arange(len(groups)), [WORLD.arms.index(f"{g}-expert") for g in groups]] = 1.0
    return proba


def softmax_policy(X: np.ndarray) -> np.ndarray:
    """Stochastic: a softmax of a fixed linear score of the features."""
    return masked_softmax(X @ WEIGHTS, np.ones((len(X), K), dtype=bool))


POLICIES = {"expert": lambda q: expert_policy(q.groups), "softmax": lambda q: softmax_policy(q.X)}


@pytest.fixture(scope="module")
def truth():
    q = WORLD.queries(40000, split="test", seed=999)
    values = WORLD.true_values(q)
    return {name: float((policy(q) * values).sum(axis=1).mean()) for name, policy in POLICIES.items()}


def test_dr_and_snips_intervals_cover_the_true_value(truth):
    covered = {(name, est): 0 for name in POLICIES for est in ("dr", "snips")}
    for rep in range(REPETITIONS):
        q = WORLD.queries(N, split="train", seed=rep)
        actions = np.random.default_rng([rep, 1]).integers(0, K, N)
        rewards = WORLD.step(q, actions, seed=rep).rewards
        data = LoggedDataset(q.ids, q.X, actions, rewards, np.full(N, 1.0 / K), arm_names=WORLD.arms.names)
        reward_hat = ope.fit_reward_model(data, seed=rep)
        for name, policy in POLICIES.items():
            estimates = ope.evaluate(data, policy(q), ("dr", "snips"), reward_hat=reward_hat, seed=rep)
            for est, estimate in estimates.items():
                covered[name, est] += estimate.low <= truth[name] <= estimate.high
    rates = {key: count / REPETITIONS for key, count in covered.items()}
    assert all(rate >= 0.9 for rate in rates.values()), rates


def test_truth_separates_the_policies(truth):
    # The expert policy is close to the best a learner can do; the softmax one is far below it.
    assert truth["expert"] > 2.5 > 1.5 > truth["softmax"] > 0.5
