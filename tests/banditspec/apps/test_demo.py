import json

import numpy as np

from banditspec.apps.cli import main
from banditspec.bandits.data import LoggedDataset


def test_demo_end_to_end_on_the_tiny_world(toy_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("BANDITSPEC_CACHE", str(toy_cache))
    out = tmp_path / "demo"
    code = main(["demo", "--env-arg", "config=tiny", "--n-train", "48", "--n-test", "9", "--n-every-arm", "4",
                 "--calibration", "3", "--env-arg", "max_new_tokens=16", "--env-arg", "block_size=4",
                 "--env-arg", "schedule=heuristic", "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    arms = report["arms"]
    K = len(arms)
    assert report["queries"] == 9 and report["outputs_equal_ar"] is True
    assert report["config"]["env"] == "toy" and report["config"]["env_args"]["schedule"] == "heuristic"
    assert {arm["schedule"] for arm in report["config"]["arms"] if arm["kind"] == "draft"} == {"heuristic"}
    assert report["machine"]["cpu_model"] and report["ar_tokens_per_s"] > 0
    # what was decoded: every arm on the recorded subsample; elsewhere AR's arm, the learners' and the oracle by counts'
    every = report["every_arm_subsample"]
    assert every["queries"] == 4 == len(set(every["positions"])) and len(every["query_ids"]) == 4
    data = LoggedDataset.load(out / "test-data")
    assert data.columns["measured"].all() and len(data) == report["decodes"]
    position, arm = data.columns["query_position"], data.actions
    sets = [set(arm[position == i]) for i in range(9)]
    assert all(sets[i] == set(range(K)) for i in every["positions"])
    assert all(arms.index("ar") in s for s in sets)
    assert len(data) < 9 * K  # not every arm everywhere
    seconds = np.full((9, K), np.nan)
    seconds[position, arm] = data.columns["wall_seconds"]
    ar_seconds = np.zeros(9)
    ar_seconds[position] = data.columns["ar_wall_seconds"]
    np.testing.assert_allclose(seconds[:, arms.index("ar")], ar_seconds)
    # every learner and the oracle by counts on every query, from the measurements
    everything = report["all_queries"]
    assert everything["queries"] == 9 and set(everything["policies"]) == set(report["policies"]) - {"random"}
    by_counts = everything["oracle_by_counts"]["speedup_vs_ar"]
    for name, stats in everything["policies"].items():
        assert stats["speedup_vs_ar"] > 0
        assert np.isclose(stats["share_of_oracle_by_counts"], stats["speedup_vs_ar"] / by_counts)
        assert np.isclose(stats["tokens_per_s"], report["ar_tokens_per_s"] * stats["speedup_vs_ar"])
    # like for like on the subsample: fixed arms, hindsight oracle and learners on the same measured seconds
    sub = every["positions"]
    for k, name in enumerate(arms):
        assert np.isclose(report["fixed_arms"][name]["speedup_vs_ar"], ar_seconds[sub].sum() / seconds[sub, k].sum())
    hindsight = ar_seconds[sub].sum() / seconds[sub].min(axis=1).sum()
    assert np.isclose(report["oracle"]["speedup_vs_ar"], hindsight)
    assert 0 < every["oracle_by_counts_speedup_vs_ar"] <= hindsight + 1e-9
    for stats in report["policies"].values():
        assert np.isclose(stats["share_of_oracle"], stats["speedup_vs_ar"] / report["oracle"]["speedup_vs_ar"])
        assert stats["share_of_oracle"] <= 1.0 + 1e-9
    domains = np.asarray(data.groups)[np.isin(position, sub) & (arm == 0)]
    assert set(report["fixed_arms_by_domain"]) == set(domains)
    # the counterfactual check covers every measured pair
    check = report["counterfactual_check"]
    assert check["pairs"] == len(data) and set(check["target_calls_equal_share"]) == set(arms)
    assert min(check["target_calls_equal_share"].values()) >= 0.8
    # where the time went, in seconds and in AR units of the same run
    phases, units = report["wall_seconds"], report["ar_units"]
    assert list(phases) == ["world", "collection", "training", "choosing", "decoding", "scoring", "total"]
    assert min(phases.values()) >= 0 and np.isclose(sum(phases.values()) - phases["total"], phases["total"])
    assert list(units) == list(phases)
    assert all(np.isclose(units[p], phases[p] * report["ar_tokens_per_s"]) for p in phases)
    assert all((out / f).stat().st_size > 0 for f in ("speedup.png", "choices.png", "speedup-by-group.png"))
