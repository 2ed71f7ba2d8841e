import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baselines.linucb import LinUCB


def closed_form_choices(X_fit, actions, rewards, X, *, n_arms, alpha, ridge):
    """LinUCB choices from explicitly built A_k and np.linalg.solve."""
    d = X_fit.shape[1]
    scores = np.empty((len(X), n_arms))
    for k in range(n_arms):
        Xk, rk = X_fit[actions == k], rewards[actions == k]
        A = ridge * np.eye(d) + Xk.T @ Xk
        theta = np.linalg.solve(A, Xk.T @ rk)
        var = np.einsum("nd,dn->n", X, np.linalg.solve(A, X.T))
        scores[:, k] = X @ theta + alpha * np.sqrt(var)
    return scores


def test_learns_the_best_linear_arm(bandit):
    policy = LinUCB(bandit.n_arms, alpha=1.0).fit(*bandit.logged(3000, seed=0))
    X = bandit.contexts(2000, np.random.default_rng(1))
    accuracy = np.mean(policy.select(X) == bandit.table(X).argmax(axis=1))
    assert accuracy > 0.9


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 40),
    d=st.integers(1, 6),
    n_arms=st.integers(1, 4),
    alpha=st.floats(0.0, 3.0),
    ridge=st.floats(0.1, 10.0),
    n_batches=st.integers(1, 5),
)
def test_choices_equal_closed_form_after_fit_and_partial_fits(seed, n, d, n_arms, alpha, ridge, n_batches):
    rng = np.random.default_rng(seed)
    X_fit, X = rng.normal(size=(n, d)), rng.normal(size=(80, d))  # >= PRUNE_MIN_ROWS: the pruned path
    actions, rewards = rng.integers(0, n_arms, n), rng.normal(size=n)
    expected_scores = closed_form_choices(X_fit, actions, rewards, X, n_arms=n_arms, alpha=alpha, ridge=ridge)

    batch = LinUCB(n_arms, alpha=alpha, ridge=ridge).fit(X_fit, actions, rewards)
    online = LinUCB(n_arms, alpha=alpha, ridge=ridge)
    for part in np.array_split(np.arange(n), min(n_batches, n)):
        online.partial_fit(X_fit[part], actions[part], rewards[part])

    for policy in (batch, online):
        np.testing.assert_allclose(policy.scores(X), expected_scores, rtol=1e-7, atol=1e-8)
        chosen = policy.select(X)
        # the chosen arm is best up to round-off (exact ties may break either way)
        best = expected_scores.max(axis=1)
        assert np.all(expected_scores[np.arange(len(X)), chosen] >= best - 1e-8 * (1 + np.abs(best)))


def test_row_by_row_updates_match_batch_statistics(bandit):
    X, actions, rewards, _ = bandit.logged(300, seed=3)
    batch = LinUCB(bandit.n_arms, ridge=0.5).fit(X, actions, rewards)
    online = LinUCB(bandit.n_arms, ridge=0.5)
    for i in range(len(X)):
        online.partial_fit(X[i:i + 1], actions[i:i + 1], rewards[i:i + 1])
    for name, value in batch._state().items():
        np.testing.assert_allclose(online._state()[name], value, rtol=1e-8, atol=1e-10, err_msg=name)
    np.testing.assert_allclose(online.A_inv_ @ online.A_, np.broadcast_to(np.eye(5), (4, 5, 5)), atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(1e-3, 1e3),
    copies=st.integers(2, 4),
    ridge=st.floats(1e-3, 10.0),
)
def test_stays_finite_on_duplicate_and_collinear_features(seed, scale, copies, ridge):
    rng = np.random.default_rng(seed)
    base = scale * rng.normal(size=(60, 1))
    X = np.hstack([base * c for c in range(1, copies + 1)] + [np.ones((60, 1))])  # collinear + constant
    X = np.vstack([X, X])  # duplicate rows
    actions, rewards = rng.integers(0, 3, len(X)), rng.normal(size=len(X))
    policy = LinUCB(3, ridge=ridge).fit(X[:60], actions[:60], rewards[:60])
    for i in range(60, len(X)):
        policy.partial_fit(X[i:i + 1], actions[i:i + 1], rewards[i:i + 1])
    assert all(np.all(np.isfinite(v)) for v in policy._state().values())
    assert np.all(np.isfinite(policy.scores(X)))
    np.testing.assert_allclose(policy.predict_proba(X).sum(axis=1), 1.0)


def test_respects_availability(bandit):
    policy = LinUCB(bandit.n_arms).fit(*bandit.logged(500, seed=4))
    X = bandit.contexts(300, np.random.default_rng(5))
    mask = np.random.default_rng(6).random((300, bandit.n_arms)) < 0.5
    mask[np.arange(300), np.random.default_rng(7).integers(0, bandit.n_arms, 300)] = True
    proba = policy.predict_proba(X, available=mask)
    assert np.all(proba[~mask] == 0)
    scores = np.where(mask, policy.scores(X), -np.inf)
    np.testing.assert_array_equal(proba.argmax(axis=1), scores.argmax(axis=1))
    # the batch path skipped arms that could not win, and only those
    pruned = np.isinf(policy._candidate_scores(X, mask)) & mask
    assert pruned.any()
    assert np.all(scores[pruned] < scores.max(axis=1, keepdims=True).repeat(4, axis=1)[pruned])


@pytest.mark.parametrize("params", [{"alpha": -1.0}, {"ridge": 0.0}, {"ridge": float("nan")}, {"alpha": "1"}])
def test_rejects_bad_hyper_parameters(params):
    with pytest.raises(ValueError, match=next(iter(params))):
        LinUCB(2, **params).fit(np.zeros((2, 2)), [0, 1], [0.0, 1.0])
