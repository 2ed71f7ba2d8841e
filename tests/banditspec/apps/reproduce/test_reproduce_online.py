import json

import numpy as np
import pytest

from banditspec.apps.cli import main
from banditspec.apps.reproduce.online import ONLINE_LEARNERS, offline_log, online_claims, run_stream
from banditspec.apps.reproduce.stream import StreamTable, drift_order, phase_metrics, query_table, serve, stream_curves
from banditspec.apps.scoring import choice_metrics
from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.env import Feedback
from banditspec.bandits.policy import POLICIES

GROUPS = np.array(["arithmetic", "code", "sorting", "translation"])


def _pool(n=120, K=4, d=3, seed=0) -> StreamTable:
    """Queries whose arm speeds depend on the group: reward = AR seconds / arm seconds."""
    rng = np.random.default_rng(seed)
    groups = GROUPS[rng.integers(0, 4, n)]
    X = np.hstack([np.ones((n, 1)), rng.normal(size=(n, d - 1))])
    X[:, 1] += 3.0 * np.isin(groups, GROUPS[:2])
    ar = rng.uniform(1.0, 2.0, n)
    speed = rng.uniform(0.5, 2.5, (n, K)) + 1.5 * (np.arange(K) == 1) * np.isin(groups, GROUPS[:2])[:, None]
    seconds = ar[:, None] / speed
    return StreamTable(X, groups, Feedback(rewards=ar[:, None] / seconds, seconds=seconds, ar_seconds=ar))


def _frozen(stream: StreamTable) -> dict:
    K = stream.feedback.rewards.shape[1]
    X = stream.X
    return {"oracle": POLICIES.create("oracle", n_arms=K).fit(X, np.zeros(len(X), int), np.zeros(len(X))),
            "reinforce": POLICIES.create("reinforce", n_arms=K, epochs=2, hidden=4).fit(
                X, np.arange(len(X)) % K, stream.feedback.rewards[np.arange(len(X)), np.arange(len(X)) % K])}


def test_regret_bookkeeping_on_a_stream():
    pool = _pool()
    order, first = drift_order(pool.groups, 0.9, seed=3)
    stream = pool.subset(order)
    full = stream.feedback
    served = run_stream(ONLINE_LEARNERS, _frozen(stream), stream, seed=3)
    oracle = stream_curves(served["oracle"].choices, full)
    np.testing.assert_array_equal(oracle["cumulative_regret"], 0.0)
    np.testing.assert_allclose(oracle["cumulative_reward"], np.cumsum(full.rewards.max(axis=1)))
    n = len(order)
    for name, result in served.items():
        curves = stream_curves(result.choices, full)
        assert np.all(np.diff(curves["cumulative_regret"]) >= 0), name
        np.testing.assert_allclose(curves["cumulative_reward"] + curves["cumulative_regret"],
                                   oracle["cumulative_reward"], err_msg=name)
        metrics = choice_metrics(result.choices, full)
        np.testing.assert_allclose(curves["running_speedup"][-1], metrics["speedup_vs_ar"])
        np.testing.assert_allclose(curves["cumulative_regret"][-1], metrics["regret"] * n)
        before, after, whole = phase_metrics(result.choices, full, [slice(0, n // 2), slice(n // 2, n), slice(0, n)])
        np.testing.assert_allclose(before["regret"] + after["regret"], whole["regret"])
        np.testing.assert_allclose(whole["speedup_vs_ar"], metrics["speedup_vs_ar"])
        assert np.all(result.propensities > 0) and np.all(result.propensities <= 1)


def test_drift_order_shifts_the_group_mix_halfway():
    groups = GROUPS[np.random.default_rng(1).integers(0, 4, 101)]
    order, first = drift_order(groups, 0.9, seed=0)
    assert first == ["arithmetic", "code"]
    np.testing.assert_array_equal(np.sort(order), np.arange(101))  # every query once
    in_first = np.isin(groups[order], first)
    assert in_first[:50].sum() == 45  # round(50 * 0.9)
    assert in_first[50:].sum() == np.isin(groups, first).sum() - 45
    again, _ = drift_order(groups, 0.9, seed=0)
    np.testing.assert_array_equal(order, again)
    assert not np.array_equal(order, drift_order(groups, 0.9, seed=1)[0])
    with pytest.raises(ValueError, match="at least two groups"):
        drift_order(np.array(["a"] * 10), 0.9, seed=0)
    with pytest.raises(ValueError, match="mix"):
        drift_order(groups, 0.4, seed=0)
    with pytest.raises(ValueError, match="queries of the two group sets"):
        drift_order(np.array(["a"] * 2 + ["b"] * 18), 1.0, seed=0)


@pytest.mark.parametrize(("feedback", "counts"), [("bandit", "one per query"), ("counterfactual", "every arm per query")])
def test_serve_feeds_what_the_feedback_reveals(feedback, counts):
    stream = _pool(n=30)
    policy = POLICIES.create("ucb", n_arms=4)
    served = serve(policy, feedback, stream.X, stream.feedback.rewards, np.random.default_rng(0))
    if feedback == "bandit":
        np.testing.assert_array_equal(policy.counts_, np.bincount(served.choices, minlength=4))
        assert served.choices[1:4].tolist() == sorted(set(range(4)) - {served.choices[0]})  # UCB tries the rest once
    else:
        np.testing.assert_array_equal(policy.counts_, [30] * 4)
    with pytest.raises(ValueError, match="must be fitted"):
        serve(POLICIES.create("linucb", n_arms=4), "frozen", stream.X, stream.feedback.rewards, None)
    with pytest.raises(ValueError, match="feedback"):
        serve(policy, "delayed", stream.X, stream.feedback.rewards, None)


def test_offline_log_keeps_the_first_groups_and_thins_the_others():
    pool = _pool(n=200)
    K = pool.feedback.rewards.shape[1]
    n = len(pool.groups)
    data = LoggedDataset(np.repeat(np.arange(n), K), np.repeat(pool.X, K, axis=0), np.tile(np.arange(K), n),
                         pool.feedback.rewards.ravel(), np.full(n * K, 1 / K), arm_names=list("abcd"),
                         all_rewards=np.repeat(pool.feedback.rewards, K, axis=0), groups=np.repeat(pool.groups, K),
                         columns={"wall_seconds": pool.feedback.seconds.ravel(),
                                  "ar_wall_seconds": np.repeat(pool.feedback.ar_seconds, K)})
    table = query_table(data)
    np.testing.assert_array_equal(table.feedback.seconds, pool.feedback.seconds)
    log = offline_log(data, ["arithmetic", "code"], 0.9, seed=0)
    kept = query_table(log)
    in_first = np.isin(kept.groups, ["arithmetic", "code"])
    assert in_first.sum() == np.isin(pool.groups, ["arithmetic", "code"]).sum()
    assert (~in_first).sum() == round(in_first.sum() * 0.1 / 0.9)
    with pytest.raises(ValueError, match="full-information rows"):
        query_table(data.subset(np.arange(1, len(data))))


def test_claims_compare_cumulative_regrets():
    phases = {name: {"regret": 10.0, "regret_before": 5.0, "regret_after": 5.0, "speedup_before": 1.0,
                     "speedup_after": 1.0} for name in ONLINE_LEARNERS if name != "oracle"}
    phases["hedge (counterfactual)"]["regret"] = 9.0
    phases["linucb (bandit)"]["regret"] = 8.0
    holds = online_claims(phases)["holds"]
    assert holds == {"hedge_counterfactual_below_every_bandit_learner": False,
                     "hedge_counterfactual_below_context_free_bandit_learners": True,
                     "linucb_counterfactual_below_linucb_bandit": False}


def test_online_end_to_end_on_the_tiny_world(toy_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("BANDITSPEC_CACHE", str(toy_cache))
    out = tmp_path / "online"
    assert main(["reproduce", "online", "--world", "tiny", "--n-train", "24", "--n-test", "40", "--seeds", "0", "1",
                 "--calibration", "3", "--max-new-tokens", "8", "--block-size", "2", "--workers", "1",
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    stream = report["stream"]
    assert stream["n"] == 40 and stream["shift_at"] == 20 and stream["share_first_before"] == 0.9
    assert set(stream["learners"]) == set(ONLINE_LEARNERS) == set(report["policies"])
    assert report["outputs_equal_ar"] is None and not (out / "test-data").exists()  # nothing decoded for the stream
    oracle = stream["learners"]["oracle"]
    assert oracle["cumulative_regret"] == [0.0] * len(oracle["cumulative_regret"])
    for name, curve in stream["learners"].items():
        assert np.all(np.diff(curve["cumulative_regret"]) >= -1e-12), name
        phases = report["policies"][name]["stream"]
        np.testing.assert_allclose(phases["regret"], phases["regret_before"] + phases["regret_after"])
        np.testing.assert_allclose(phases["regret"], report["policies"][name]["regret"] * 40)
    regret = report["claims"]["per_learner"]["cumulative regret"]
    assert report["claims"]["holds"]["linucb_counterfactual_below_linucb_bandit"] == (
        regret["linucb (counterfactual)"] < regret["linucb (bandit)"])
    assert (out / "online.png").stat().st_size > 0
    assert (out / "results.md").read_text().startswith("Stream of 40 queries")
