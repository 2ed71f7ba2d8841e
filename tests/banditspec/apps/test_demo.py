import json

import numpy as np

from banditspec.apps.cli import main
from banditspec.bandits.data import LoggedDataset, arm_seconds_column


def test_demo_end_to_end_on_the_tiny_world(toy_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("BANDITSPEC_CACHE", str(toy_cache))
    out = tmp_path / "demo"
    code = main(["demo", "--env-arg", "config=tiny", "--n-train", "48", "--n-test", "6", "--calibration", "3",
                 "--env-arg", "max_new_tokens=16", "--env-arg", "block_size=4", "--env-arg", "schedule=heuristic",
                 "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["queries"] == 6
    assert report["outputs_equal_ar"] is True
    assert set(report["policies"]) >= {"reinforce", "reinforce-proxy", "reinforce-hashing", "linucb", "random"}
    for stats in report["policies"].values():
        assert stats["speedup_vs_ar"] > 0 and stats["tokens_per_s"] > 0
        assert np.isclose(stats["share_of_oracle"], stats["speedup_vs_ar"] / report["oracle"]["speedup_vs_ar"])
        assert stats["share_of_oracle"] <= 1.0 + 1e-9
    assert np.isclose(report["fixed_arms"]["ar"]["speedup_vs_ar"], 1.0)
    assert report["config"]["env"] == "toy" and report["config"]["env_args"]["schedule"] == "heuristic"
    phases = report["wall_seconds"]
    assert list(phases) == ["world", "collection", "training", "decoding", "scoring", "total"]
    assert min(phases.values()) >= 0 and np.isclose(sum(phases.values()) - phases["total"], phases["total"])
    assert {arm["schedule"] for arm in report["config"]["arms"] if arm["kind"] == "draft"} == {"heuristic"}
    by_counts = report["counterfactual_check"]["oracle_by_counts_speedup_vs_ar"]
    assert 0 < by_counts <= report["oracle"]["speedup_vs_ar"] + 1e-9  # the hindsight oracle is the fastest possible
    calls_equal = report["counterfactual_check"]["target_calls_equal_share"]
    assert set(calls_equal) == set(report["arms"]) and min(calls_equal.values()) >= 0.8
    assert (out / "speedup.png").stat().st_size > 0 and (out / "choices.png").stat().st_size > 0
    # the measurements behind the report are kept, and every fixed arm's speed-up follows from them
    data = LoggedDataset.load(out / "test-data")
    arms = report["arms"]
    assert len(data) == 6 * len(arms) and data.columns["measured"].all()
    seconds = {a: data.columns[arm_seconds_column(a)][:: len(arms)] for a in arms}
    domains = data.groups[:: len(arms)]
    for arm in arms:
        expected = seconds["ar"].sum() / seconds[arm].sum()
        assert np.isclose(report["fixed_arms"][arm]["speedup_vs_ar"], expected)
        for domain in set(domains):
            rows = domains == domain
            assert np.isclose(report["fixed_arms_by_domain"][domain][arm],
                              seconds["ar"][rows].sum() / seconds[arm][rows].sum())
