import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.ope import (
    ESTIMATORS,
    Estimate,
    direct_method,
    doubly_robust,
    evaluate,
    fit_reward_model,
    ips,
    snips,
)

# A known world: three contexts (one-hot features, drawn uniformly), three arms,
# mean rewards R[context, arm], Gaussian noise; softmax logging and target policies.
R = np.array([[1.0, 0.2, 0.5], [0.1, 0.9, 0.4], [0.3, 0.3, 0.8]])
LOG_LOGITS = np.array([[0.5, -0.5, 0.0], [1.0, 0.0, -1.0], [0.0, 0.3, -0.3]])
TARGET_LOGITS = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]])


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


MU, PI = _softmax(LOG_LOGITS), _softmax(TARGET_LOGITS)
TRUE_VALUE = float(np.mean((PI * R).sum(axis=1)))


def simulate(n: int, seed: int) -> tuple[LoggedDataset, np.ndarray, np.ndarray]:
    """Logged data, the target's distribution on its rows, and each row's context."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 3, n)
    mu = MU[g]
    actions = (np.cumsum(mu, axis=1) < rng.random(n)[:, None]).sum(axis=1)
    rewards = R[g, actions] + rng.normal(scale=0.1, size=n)
    data = LoggedDataset(np.arange(n), np.eye(3)[g], actions, rewards, mu[np.arange(n), actions], arm_names=["a", "b", "c"])
    return data, PI[g], g


@pytest.fixture(scope="module")
def large():
    return simulate(20_000, seed=1)


@pytest.mark.parametrize("name", ["dm", "ips", "snips", "dr"])
def test_estimates_are_consistent_for_large_n(large, name):
    data, proba, _ = large
    estimate = ESTIMATORS[name](data, proba, n_bootstrap=50)
    assert isinstance(estimate, Estimate)
    assert estimate.estimator == name and estimate.n == len(data)
    assert abs(estimate.value - TRUE_VALUE) < 0.02
    assert estimate.low <= estimate.value <= estimate.high
    assert estimate.high - estimate.low < 0.1


def test_ips_is_unbiased_over_repeated_small_datasets():
    values = np.array([ips(*simulate(60, seed=s)[:2], n_bootstrap=10).value for s in range(300)])
    standard_error = values.std(ddof=1) / np.sqrt(len(values))
    assert abs(values.mean() - TRUE_VALUE) < 4 * standard_error


def test_direct_method_with_the_true_reward_table_is_exact_on_the_sample(large):
    data, proba, g = large
    estimate = direct_method(data, proba, reward_hat=R[g], n_bootstrap=20)
    assert estimate.value == pytest.approx(np.mean((proba * R[g]).sum(axis=1)), rel=1e-12)


def test_doubly_robust_equals_direct_method_when_the_reward_model_is_exact():
    rng = np.random.default_rng(3)
    n, K = 200, 4
    reward_hat = rng.normal(size=(n, K))
    mu = _softmax(rng.normal(size=(n, K)))
    actions = rng.integers(0, K, n)
    data = LoggedDataset(np.arange(n), rng.normal(size=(n, 2)), actions, reward_hat[np.arange(n), actions],
                         mu[np.arange(n), actions], arm_names=list("abcd"))
    proba = _softmax(rng.normal(size=(n, K)))
    dm = direct_method(data, proba, reward_hat=reward_hat, seed=5)
    dr = doubly_robust(data, proba, reward_hat=reward_hat, seed=5)
    assert dr.value == pytest.approx(dm.value, abs=1e-12)
    assert (dr.low, dr.high) == pytest.approx((dm.low, dm.high), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 5), st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_snips_equals_ips_when_weights_average_to_one(K, n, seed):
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.1, 3.0, n)
    w /= w.mean()
    mu = rng.uniform(0.05, 1.0, n) / w.max()  # so that w_i * mu_i <= 1
    actions = rng.integers(0, K, n)
    proba = np.zeros((n, K))
    proba[np.arange(n), actions] = w * mu
    rest = np.ones((n, K), dtype=bool)
    rest[np.arange(n), actions] = False
    proba[rest] = np.repeat((1.0 - w * mu) / (K - 1), K - 1)
    data = LoggedDataset(np.arange(n), np.zeros((n, 1)), actions, rng.normal(size=n), mu, arm_names=[str(k) for k in range(K)])
    assert snips(data, proba, n_bootstrap=10).value == pytest.approx(ips(data, proba, n_bootstrap=10).value, abs=1e-9)


def test_snips_stays_within_the_range_of_logged_rewards(large):
    data, proba, _ = large
    estimate = snips(data, proba, n_bootstrap=20)
    assert data.rewards.min() <= estimate.low <= estimate.high <= data.rewards.max()


def test_evaluate_matches_the_single_estimators_and_is_deterministic(large):
    data, proba, _ = large
    small = data.subset(slice(0, 500))
    proba = proba[:500]
    results = evaluate(small, proba, n_bootstrap=30, seed=7)
    assert list(results) == ["dm", "ips", "snips", "dr"]
    reward_hat = fit_reward_model(small, seed=7)
    for name, estimate in results.items():
        alone = ESTIMATORS[name](small, proba, reward_hat=reward_hat, n_bootstrap=30, seed=7)
        assert (alone.estimator, alone.value, alone.n) == (estimate.estimator, estimate.value, estimate.n)
        assert (alone.low, alone.high) == pytest.approx((estimate.low, estimate.high), rel=1e-12)  # same resamples
    assert evaluate(small, proba, n_bootstrap=30, seed=7) == results
    assert evaluate(small, proba, ("ips",), n_bootstrap=30, seed=8)["ips"].low != results["ips"].low


def test_narrower_confidence_gives_a_nested_interval(large):
    data, proba, _ = large
    wide = ips(data, proba, confidence=0.95, n_bootstrap=100)
    narrow = ips(data, proba, confidence=0.5, n_bootstrap=100)
    assert wide.low <= narrow.low <= narrow.high <= wide.high


def test_reward_model_is_cross_fitted_and_accurate(large):
    data, _, g = large
    small = data.subset(slice(0, 2000))
    reward_hat = fit_reward_model(small, ridge=1e-3, folds=3, seed=0)
    assert reward_hat.shape == (2000, 3)
    assert np.abs(reward_hat - R[g[:2000]]).max() < 0.05
    # a row's own reward never enters its prediction
    changed = LoggedDataset(small.query_ids, small.X, small.actions, np.where(np.arange(2000) == 0, 100.0, small.rewards),
                            small.propensities, arm_names=small.arm_names)
    again = fit_reward_model(changed, ridge=1e-3, folds=3, seed=0)
    assert np.array_equal(again[0], reward_hat[0])
    assert not np.array_equal(again, reward_hat)


def test_reward_model_falls_back_to_the_mean_for_an_unlogged_arm():
    n = 40
    rng = np.random.default_rng(0)
    data = LoggedDataset(np.arange(n), rng.normal(size=(n, 2)), np.zeros(n, int), rng.normal(size=n), np.full(n, 0.5),
                         arm_names=["logged", "never"])
    reward_hat = fit_reward_model(data, folds=2, seed=0)
    values = np.unique(reward_hat[:, 1])
    # each half is predicted by the other half's mean reward; the two means average to the overall mean
    assert values.size == 2
    assert values.mean() == pytest.approx(data.rewards.mean())


@pytest.fixture(scope="module")
def tiny():
    return simulate(30, seed=0)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p[:, :2], "target_proba"),
        (lambda p: p[:-1], "target_proba"),
        (lambda p: p * 1.01, "sum to 1"),
        (lambda p: np.where(np.arange(3) == 0, p - 0.5, p + 0.25), "non-negative"),
        (lambda p: np.full_like(p, np.nan), "finite"),
    ],
)
def test_malformed_target_proba_is_rejected(tiny, name, change, field):
    data, proba, _ = tiny
    with pytest.raises(ValueError, match=field):
        ESTIMATORS[name](data, change(proba))


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"confidence": 0.0}, "confidence"),
        ({"confidence": 1.0}, "confidence"),
        ({"n_bootstrap": 5}, "n_bootstrap"),
        ({"n_bootstrap": 20.5}, "n_bootstrap"),
    ],
)
def test_bad_bootstrap_settings_are_rejected(tiny, name, kwargs, field):
    data, proba, _ = tiny
    with pytest.raises(ValueError, match=field):
        ESTIMATORS[name](data, proba, **kwargs)


def test_other_bad_inputs_are_rejected(tiny):
    data, proba, _ = tiny
    with pytest.raises(ValueError, match="reward_hat"):
        direct_method(data, proba, reward_hat=np.zeros((30, 2)))
    with pytest.raises(ValueError, match="reward_hat"):
        doubly_robust(data, proba, reward_hat=np.full((30, 3), np.inf))
    with pytest.raises(ValueError, match="estimators"):
        evaluate(data, proba, ("ips", "magic"))
    with pytest.raises(ValueError, match="estimators"):
        evaluate(data, proba, ())
    with pytest.raises(ValueError, match="folds"):
        fit_reward_model(data, folds=1)
    with pytest.raises(ValueError, match="ridge"):
        fit_reward_model(data, ridge=0.0)
    never = np.zeros_like(proba)
    never[np.arange(30), (data.actions + 1) % 3] = 1.0
    with pytest.raises(ValueError, match="SNIPS"):
        snips(data, never)
    assert ips(data, never).value == 0.0


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_data_that_is_not_a_logged_dataset_is_named(tiny, name):
    data, proba, _ = tiny
    table = {"actions": data.actions, "rewards": data.rewards}
    for call in (lambda: ESTIMATORS[name](table, proba), lambda: evaluate(data.X, proba, (name,))):
        with pytest.raises(ValueError, match="data must be a LoggedDataset, got"):
            call()
    with pytest.raises(ValueError, match="data must be a LoggedDataset, got tuple"):
        fit_reward_model((data.X, data.actions, data.rewards))


def test_constant_rewards_on_policy_give_a_degenerate_interval():
    n = 50
    actions = np.arange(n) % 2
    data = LoggedDataset(np.arange(n), np.zeros((n, 1)), actions, np.full(n, 0.5), np.full(n, 0.5), arm_names=["a", "b"])
    for name in ("ips", "snips"):
        estimate = ESTIMATORS[name](data, np.full((n, 2), 0.5))
        assert (estimate.low, estimate.value, estimate.high) == (0.5, 0.5, 0.5)
