import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from banditspec.bandits.policy import Policy
from banditspec.baselines.linucb import LinUCB


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
    np.testing.assert_array_equal(policy.select(X, available=mask), scores.argmax(axis=1))


@pytest.mark.parametrize("params", [{"alpha": -1.0}, {"ridge": 0.0}, {"ridge": float("nan")}, {"alpha": "1"}])
def test_rejects_bad_hyper_parameters(params):
    with pytest.raises(ValueError, match=next(iter(params))):
        LinUCB(2, **params).fit(np.zeros((2, 2)), [0, 1], [0.0, 1.0])


# -- the batch path that skips bonuses, against the full score table ---------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_fit=st.integers(0, 300),
    d=st.integers(1, 8),
    n_arms=st.integers(1, 6),
    alpha=st.floats(0.0, 5.0),
    masked=st.booleans(),
)
def test_batch_choices_are_exactly_the_argmax_of_the_scores(seed, n_fit, d, n_arms, alpha, masked):
    rng = np.random.default_rng(seed)
    policy = LinUCB(n_arms, alpha=alpha).partial_fit(np.zeros((1, d)), [0], [0.0])
    if n_fit:
        policy.partial_fit(rng.normal(size=(n_fit, d)), rng.integers(0, n_arms, n_fit), rng.normal(size=n_fit))
    X = rng.normal(size=(100, d))
    X[:5] = 0.0  # no bonus at all: ties between arms with equal means
    mask = rng.random((100, n_arms)) < 0.6 if masked else np.ones((100, n_arms), bool)
    mask[np.arange(100), rng.integers(0, n_arms, 100)] = True
    expected = np.argmax(np.where(mask, policy.scores(X), -np.inf), axis=1)
    np.testing.assert_array_equal(policy.select(X, available=mask), expected)
    np.testing.assert_array_equal(policy.predict_proba(X, available=mask).argmax(axis=1), expected)


def test_batch_ties_go_to_the_lowest_id():
    rng = np.random.default_rng(0)
    X = np.hstack([np.ones((200, 1)), rng.normal(size=(200, 2))])
    rewards = 1.0 + X[:, 1] + 0.1 * rng.normal(size=200)
    # arms 1 and 3 learn the same data; arms 0 and 2 none (mean 0, the largest bonus)
    policy = LinUCB(4, alpha=0.5).fit(np.vstack([X, X]), np.repeat([1, 3], 200), np.concatenate([rewards, rewards]))
    X_new = np.hstack([np.ones((500, 1)), rng.normal(size=(500, 2))])
    chosen = policy.select(X_new)
    assert set(chosen) == {0, 1}
    np.testing.assert_array_equal(chosen, policy.scores(X_new).argmax(axis=1))


# -- the one-row online path ----------------------------------------------------------------------------------


def general_select(policy, x, available=None):
    """The base class's select (predict_proba over the batch machinery), bypassing LinUCB's one-row path."""
    return Policy.select(policy, x, available=available)


def general_partial_fit(policy, x, action, reward):
    return Policy.partial_fit(policy, x, action, reward)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    d=st.integers(1, 8),
    n_arms=st.integers(1, 5),
    alpha=st.floats(0.0, 3.0),
    ridge=st.floats(0.1, 10.0),
    masked=st.booleans(),
    checked=st.booleans(),
)
def test_one_row_path_makes_the_general_path_choices_and_updates(seed, d, n_arms, alpha, ridge, masked, checked):
    rng = np.random.default_rng(seed)
    X, rewards = rng.normal(size=(60, d)), rng.normal(size=60)
    actions = rng.integers(0, n_arms, 10)
    fast, general = (LinUCB(n_arms, alpha=alpha, ridge=ridge).fit(X[:10], actions, rewards[:10]) for _ in range(2))
    for i in range(10, 60):
        x = X[i:i + 1]
        available = None
        if masked:
            available = rng.random(n_arms) < 0.5
            available[rng.integers(0, n_arms)] = True
        arm = fast.select(x, available=available, check_input=checked)
        np.testing.assert_array_equal(arm, general_select(general, x, available))
        assert arm.shape == (1,) and arm.dtype == np.intp
        if available is not None:
            assert available[arm[0]]
        fast.partial_fit(x, arm, rewards[i:i + 1], check_input=checked)
        general_partial_fit(general, x, arm, rewards[i:i + 1])
    for name, value in general._state().items():
        np.testing.assert_array_equal(fast._state()[name], value, err_msg=name)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 6), n_arms=st.integers(2, 5))
def test_one_row_choice_is_the_best_closed_form_score(seed, d, n_arms):
    rng = np.random.default_rng(seed)
    X_fit, actions, rewards = rng.normal(size=(50, d)), rng.integers(0, n_arms, 50), rng.normal(size=50)
    policy = LinUCB(n_arms, alpha=1.5, ridge=0.5).fit(X_fit, actions, rewards)
    X = rng.normal(size=(20, d))
    expected = closed_form_choices(X_fit, actions, rewards, X, n_arms=n_arms, alpha=1.5, ridge=0.5)
    best = expected.max(axis=1)
    for i in range(len(X)):
        arm = policy.select(X[i:i + 1])[0]
        assert expected[i, arm] >= best[i] - 1e-8 * (1 + abs(best[i]))
        np.testing.assert_allclose(policy.scores(X[i:i + 1])[0], expected[i], rtol=1e-7, atol=1e-8)


def test_one_row_select_with_rng_is_the_base_class_draw(bandit):
    policy = LinUCB(bandit.n_arms).fit(*bandit.logged(200, seed=1))
    x = bandit.contexts(1, np.random.default_rng(2))
    rng_fast, rng_general = np.random.default_rng(3), np.random.default_rng(3)
    for _ in range(5):
        np.testing.assert_array_equal(policy.select(x, rng=rng_fast), Policy.select(policy, x, rng=rng_general))
    assert rng_fast.random() == rng_general.random()  # the same draws were consumed


def _snapshot(policy):
    return {name: value.copy() for name, value in policy._state().items()}


ONE_ROW_BAD_UPDATES = {
    "NaN in X": (np.array([[np.nan, 0, 0, 0, 0]]), [0], [1.0], None, "NaN"),
    "inf in X": (np.array([[0, np.inf, 0, 0, 0]]), [0], [1.0], None, "NaN or infinite"),
    "wrong width": (np.ones((1, 4)), [0], [1.0], None, "features"),
    "arm out of range": (np.ones((1, 5)), [4], [1.0], None, "actions"),
    "negative arm": (np.ones((1, 5)), np.array([-1]), [1.0], None, "actions"),
    "fractional arm": (np.ones((1, 5)), [0.5], [1.0], None, "integer"),
    "NaN reward": (np.ones((1, 5)), [0], [np.nan], None, "rewards"),
    "two rewards": (np.ones((1, 5)), [0], [1.0, 2.0], None, "rewards"),
    "zero propensity": (np.ones((1, 5)), [0], [1.0], [0.0], "propensities"),
    "propensity above one": (np.ones((1, 5)), [0], [1.0], [1.5], "propensities"),
}


@pytest.mark.parametrize("case", list(ONE_ROW_BAD_UPDATES))
def test_rejected_one_row_update_leaves_the_policy_unchanged(case, bandit):
    X, actions, rewards, propensities, message = ONE_ROW_BAD_UPDATES[case]
    policy = LinUCB(bandit.n_arms).fit(*bandit.logged(100, seed=0))
    before = _snapshot(policy)
    with pytest.raises(ValueError, match=message):
        policy.partial_fit(X, actions, rewards, propensities)
    for name, value in before.items():
        np.testing.assert_array_equal(policy._state()[name], value, err_msg=name)


@pytest.mark.parametrize(
    ("x", "available", "message"),
    [
        (np.array([[np.nan, 0, 0, 0, 0]]), None, "NaN"),
        (np.array([[0, 0, -np.inf, 0, 0]]), [True, False, True, True], "NaN"),
        (np.ones((1, 6)), None, "features"),
        (np.ones((1, 5)), [False] * 4, "no arm"),
        (np.ones((1, 5)), [True] * 3, "available must have shape"),
    ],
)
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf entries meet in the scores
def test_one_row_select_rejects_bad_input(x, available, message, bandit):
    policy = LinUCB(bandit.n_arms).fit(*bandit.logged(100, seed=0))
    with pytest.raises(ValueError, match=message):
        policy.select(x, available=available)


def test_one_row_paths_accept_what_the_general_path_accepts(bandit):
    policy = LinUCB(bandit.n_arms).fit(*bandit.logged(100, seed=0))
    general = LinUCB(bandit.n_arms).fit(*bandit.logged(100, seed=0))
    rows = [
        ([[1.0, 2.0, 0.0, 0.0, 1.0]], [2], [0.5], [0.25]),  # lists, with a propensity
        (np.ones((1, 5)), np.array([1.0]), np.array([1.0]), None),  # float arm ids
        (np.full((1, 5), 1e100), np.array([0]), [1.0], None),  # x^T x above the one-row limit
    ]
    for X, actions, rewards, propensities in rows:
        np.testing.assert_array_equal(policy.select(X), general_select(general, X))
        policy.partial_fit(X, actions, rewards, propensities)
        Policy.partial_fit(general, X, actions, rewards, propensities)
    for name, value in general._state().items():
        np.testing.assert_array_equal(policy._state()[name], value, err_msg=name)


def test_one_row_path_before_fit(bandit):
    policy = LinUCB(bandit.n_arms)
    with pytest.raises(ValueError, match="not fitted"):
        policy.select(np.ones((1, 5)))
    policy.partial_fit(np.ones((1, 5)), [1], [2.0])  # the first row creates the state
    assert policy.n_features_ == 5
    np.testing.assert_allclose(policy.b_[1], 2.0)


def test_one_row_path_after_save_and_load(bandit, tmp_path):
    policy = LinUCB(bandit.n_arms, alpha=0.7).fit(*bandit.logged(200, seed=0))
    loaded = Policy.load(policy.save(tmp_path / "linucb"))
    X, actions, rewards, _ = bandit.logged(40, seed=1)
    mask = np.array([True, False, True, True])
    for i in range(len(X)):
        x = X[i:i + 1]
        arm = policy.select(x, available=mask)
        np.testing.assert_array_equal(loaded.select(x, available=mask), arm)
        policy.partial_fit(x, arm, rewards[i:i + 1])
        loaded.partial_fit(x, arm, rewards[i:i + 1])
    for name, value in policy._state().items():
        np.testing.assert_array_equal(loaded._state()[name], value, err_msg=name)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), sizes=st.lists(st.sampled_from([1, 1, 1, 2, 3, 9]), min_size=1, max_size=60))
def test_single_rows_and_batches_keep_the_closed_form_statistics(seed, sizes):
    """Buffered one-row Gram updates reach A_k whenever a batch update or a save needs it."""
    rng = np.random.default_rng(seed)
    n, d, n_arms = sum(sizes), 4, 3
    X, actions, rewards = rng.normal(size=(n, d)), rng.integers(0, n_arms, n), rng.normal(size=n)
    policy = LinUCB(n_arms, ridge=0.5)
    for part in np.split(np.arange(n), np.cumsum(sizes)[:-1]):
        policy.partial_fit(X[part], actions[part], rewards[part])
    for k in range(n_arms):
        Xk = X[actions == k]
        A = 0.5 * np.eye(d) + Xk.T @ Xk
        np.testing.assert_allclose(policy.A_[k], A, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(policy.A_inv_[k], np.linalg.inv(A), rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(policy.theta_[k], np.linalg.solve(A, Xk.T @ rewards[actions == k]),
                                   rtol=1e-7, atol=1e-9)


def test_save_keeps_the_buffered_rows(bandit, tmp_path):
    policy = LinUCB(bandit.n_arms).fit(*bandit.logged(50, seed=0))
    X, actions, rewards, _ = bandit.logged(70, seed=1)  # more rows than the buffer holds
    for i in range(len(X)):
        policy.partial_fit(X[i:i + 1], actions[i:i + 1], rewards[i:i + 1])
    loaded = Policy.load(policy.save(tmp_path / "linucb"))
    reference = LinUCB(bandit.n_arms).fit(*[np.concatenate(pair) for pair in zip(bandit.logged(50, seed=0)[:3],
                                                                                 (X, actions, rewards))])
    for name, value in reference._state().items():
        np.testing.assert_allclose(loaded._state()[name], value, rtol=1e-8, atol=1e-10, err_msg=name)

