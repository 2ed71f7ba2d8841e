import csv
import json
import os
import sys

import numpy as np
import pytest
import torch

from banditspec.apps.cli import main
from banditspec.apps.compare import compare, fix_threads
from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.policy import POLICIES, Policy, argmax_distribution
from banditspec.envs.logged import LoggedWorld
from banditspec.envs.synthetic import SyntheticWorld

WORLD = SyntheticWorld()


class DomainMeans(Policy):
    """Test learner: k-means clusters of the features, then the best logged arm of each cluster."""

    def __init__(self, n_arms: int, *, clusters: int = 8, seed: int = 0) -> None:
        super().__init__(n_arms, seed=seed)
        self.clusters = clusters

    def _init_state(self, n_features: int) -> None:
        self.n_features_ = n_features

    def _fit(self, X, actions, rewards, propensities):
        self._init_state(X.shape[1])
        rng = np.random.default_rng(self.seed)
        centres = X[rng.choice(len(X), self.clusters, replace=False)]
        for _ in range(10):  # k-means
            label = np.argmin(((X[:, None] - centres) ** 2).sum(-1), axis=1)
            centres = np.stack([X[label == c].mean(0) if np.any(label == c) else centres[c] for c in range(self.clusters)])
        table = np.zeros((self.clusters, self.n_arms))
        np.add.at(table, (label, actions), rewards / propensities)
        self.centres_, self.table_ = centres, table

    def _update(self, X, actions, rewards, propensities):
        raise NotImplementedError

    def _predict_proba(self, X, mask):
        label = np.argmin(((X[:, None] - self.centres_) ** 2).sum(-1), axis=1)
        return argmax_distribution(self.table_[label], mask)

    def _state(self):
        return {"centres": self.centres_, "table": self.table_}

    def _load_state(self, state):
        self.centres_, self.table_ = state["centres"], state["table"]


class TableOracle(DomainMeans):
    """Test learner that needs the true rewards, like the oracle."""

    requires_rewards = True

    def predict_proba(self, X, available=None, rewards=None):
        rewards = np.asarray(rewards)
        return argmax_distribution(rewards, np.ones(rewards.shape, bool) if available is None else np.asarray(available))


class Uniform(DomainMeans):
    def _predict_proba(self, X, mask):
        return mask / mask.sum(axis=1, keepdims=True)


POLICIES.register("test-domain-means", DomainMeans)
POLICIES.register("test-uniform", Uniform)
POLICIES.register("test-oracle", TableOracle)
NAMES = ["test-domain-means", "test-uniform", "test-oracle", "fixed"]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    return compare(WORLD, NAMES, seeds=2, n_train=1500, n_test=400, out=out, progress=False), out


def test_metrics_are_consistent(result):
    res, _ = result
    summary = res.summary()
    assert list(summary) == NAMES and len(res.runs) == 2 * len(NAMES)
    assert summary["test-oracle"]["share_of_oracle"] == pytest.approx(1.0)
    assert summary["test-oracle"]["regret"] == pytest.approx(0.0)
    assert summary["test-domain-means"]["share_of_oracle"] > 0.9
    assert summary["test-uniform"]["share_of_oracle"] < 0.6
    for row in res.runs:
        assert row["share_of_oracle"] <= 1.0 + 1e-12 and row["regret"] >= -1e-12
        assert row["fit_seconds"] >= 0 and row["decision_us"] >= 0
    oracle = {row["seed"]: row["speedup_vs_ar"] for row in res.oracle}
    for row in res.runs:
        assert row["speedup_vs_ar"] == pytest.approx(row["share_of_oracle"] * oracle[row["seed"]], rel=1e-12)


def test_fixed_is_the_best_training_arm_and_every_arm_is_reported(result):
    res, _ = result
    fixed = res.fixed_summary()
    assert list(fixed) == WORLD.arms.names
    assert fixed["ar"]["speedup_vs_ar"] == pytest.approx(1.0)
    assert fixed["misaligned"]["speedup_vs_ar"] < 1.0
    rows = [row for row in res.runs if row["policy"] == "fixed"]
    for row in rows:
        same = [f for f in res.fixed_arms if f["arm"] == row["arm"] and f["seed"] == row["seed"]][0]
        assert row["speedup_vs_ar"] == pytest.approx(same["speedup_vs_ar"])
        assert row["arm"] != "misaligned"


def test_choice_shares_by_domain(result):
    res, _ = result
    assert res.groups == sorted(WORLD.domains)
    shares = res.choices["test-domain-means"].mean(axis=0)
    np.testing.assert_allclose(res.choices["test-uniform"].sum(axis=2), 1.0)
    for i, domain in enumerate(res.groups):
        assert res.arm_names[np.argmax(shares[i])] == f"{domain}-expert"


def test_report_files(result):
    res, out = result
    report = json.loads((out / "report.json").read_text())
    for name in NAMES:
        entry = report["policies"][name]
        for key in ("speedup_vs_ar", "share_of_oracle", "mean_reward", "fit_seconds", "decision_us"):
            assert isinstance(entry[key], float)
    assert set(report["fixed_arms"]) == set(WORLD.arms.names) and report["seeds"] == [0, 1]
    machine = report["machine"]
    assert machine["cpu_count"] >= 1 and machine["cpu_model"]
    assert machine["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert machine["load_average"] is None or (len(machine["load_average"]) == 3
                                               and min(machine["load_average"]) >= 0)
    with open(out / "runs.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * len(NAMES) and {r["policy"] for r in rows} == set(NAMES)
    for figure in ("speedup.png", "choices.png"):
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seeds_same_numbers():
    a = compare(WORLD, {"means": lambda: DomainMeans(8)}, seeds=[3], n_train=600, n_test=200, progress=False)
    b = compare(WORLD, {"means": lambda: DomainMeans(8)}, seeds=[3], n_train=600, n_test=200, progress=False)
    keys = ("speedup_vs_ar", "mean_reward", "regret")
    assert [a.runs[0][k] for k in keys] == [b.runs[0][k] for k in keys]


def test_logged_world_with_and_without_seconds():
    q = WORLD.queries(500, split="train", seed=9)
    full = WORLD.full_feedback(q)
    actions = np.zeros(500, dtype=int)
    data = LoggedDataset(q.ids, q.X, actions, full.rewards[:, 0], np.ones(500), arm_names=WORLD.arms.names,
                         all_rewards=full.rewards, groups=q.groups)
    res = compare(LoggedWorld(data), ["test-oracle", "fixed"], seeds=1, n_train=300, n_test=100, progress=False)
    summary = res.summary()
    assert np.isnan(summary["test-oracle"]["speedup_vs_ar"])
    assert summary["test-oracle"]["regret"] == 0.0 and summary["fixed"]["regret"] > 0
    bandit = LoggedDataset(q.ids, q.X, actions, full.rewards[:, 0], np.ones(500), arm_names=WORLD.arms.names)
    with pytest.raises(ValueError, match="banditspec.bandits.ope"):
        compare(LoggedWorld(bandit), ["fixed"], seeds=1, n_train=300, n_test=100, progress=False)


def test_unknown_or_bad_policies_are_rejected_before_work():
    with pytest.raises(ValueError, match="known policies: .*test-uniform"):
        compare(WORLD, ["test-uniform", "no-such-learner"])
    with pytest.raises(ValueError, match="distinct"):
        compare(WORLD, ["fixed", "fixed"])
    with pytest.raises(ValueError, match="callable"):
        compare(WORLD, {"x": 3})
    with pytest.raises(ValueError, match="n_train"):
        compare(WORLD, ["fixed"], n_train=0)
    with pytest.raises(ValueError, match="seeds"):
        compare(WORLD, ["fixed"], seeds=0)


def test_cli(tmp_path, capsys):
    code = main(["compare", "--policies", "test-uniform,fixed", "--seeds", "1", "--n-train", "300",
                 "--n-test", "100", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "share of oracle" in printed and "[arm] generalist" in printed
    assert (tmp_path / "report.json").exists()
    assert main(["compare", "--env", "nowhere", "--no-progress"]) == 2
    assert "known environments: " in capsys.readouterr().err
    assert main(["compare", "--policies", "nobody", "--no-progress"]) == 2
    assert "known policies: " in capsys.readouterr().err
    assert main(["compare", "--env", "logged"]) == 2
    assert "--dataset" in capsys.readouterr().err


def test_fix_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    fix_threads(1)
    assert os.environ["OMP_NUM_THREADS"] == "1" == os.environ["MKL_NUM_THREADS"]
    with pytest.raises(ValueError, match="threads"):
        fix_threads(0)
