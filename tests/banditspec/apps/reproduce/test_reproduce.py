import json
import re

import numpy as np
import pytest

from banditspec.apps.cli import main


def test_ar_option_end_to_end_on_the_tiny_world(toy_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("BANDITSPEC_CACHE", str(toy_cache))
    out = tmp_path / "ar-option"
    code = main(["reproduce", "ar-option", "--world", "tiny", "--n-train", "24", "--n-test", "6", "--seeds", "0", "1",
                 "--calibration", "3", "--max-new-tokens", "12", "--block-size", "3", "--workers", "1",
                 "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["arms"] == ["ar", "expert-arithmetic", "expert-code", "misaligned"]
    assert report["seeds"] == [0, 1] and report["outputs_equal_ar"] is True
    assert set(report["policies"]) == {"reinforce", "linucb", "egreedy"}
    assert report["config"]["learners"]["reinforce"] == ["reinforce", "target", "speedup"]
    assert report["wall_seconds"] > 0
    assert report["config"]["models"]["params"]["target"] > report["config"]["models"]["params"]["expert-code"] > 0
    claims, columns = report["claims"], report["claims"]["per_learner"]
    for name, stats in report["policies"].items():
        assert 0 <= columns["AR share, draft-less domains"][name] <= 1
        assert columns["slowest seed"][name] <= stats["speedup_vs_ar"] + 1e-9
    slowest = columns["slowest seed"].values()
    assert claims["holds"]["never_slower_than_ar"] == all(v >= 1 for v in slowest)
    share = columns["AR share, draft-less domains"].values()
    assert claims["holds"]["ar_on_at_least_90_percent_of_draftless_queries"] == all(v >= 0.9 for v in share)
    table = (out / "results.md").read_text()
    assert table.startswith("| learner |") and "arm: misaligned" in table


def test_domains_keeps_every_arm_and_compares_with_the_best_single_arm(toy_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("BANDITSPEC_CACHE", str(toy_cache))
    out = tmp_path / "domains"
    assert main(["reproduce", "domains", "--world", "tiny", "--n-train", "16", "--n-test", "4", "--seeds", "3",
                 "--calibration", "3", "--max-new-tokens", "8", "--block-size", "2", "--workers", "1",
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert "generalist" in report["arms"] and "prompt-lookup" in report["arms"]
    best = max(report["fixed_arms"].values(), key=lambda s: s["speedup_vs_ar"])["speedup_vs_ar"]
    (column,) = [c for c in report["claims"]["per_learner"] if c.startswith("x best single arm")]
    for name, stats in report["policies"].items():
        assert np.isclose(report["claims"]["per_learner"][column][name], stats["speedup_vs_ar"] / best)
    share = report["policies"]["reinforce"]["share_of_oracle"]
    assert report["claims"]["holds"]["reinforce_at_least_95_percent_of_oracle"] == (share >= 0.95)


def test_unknown_experiment_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["reproduce", "no-such-experiment"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err


def _run_tiny(experiment, out, *extra):
    return main(["reproduce", experiment, "--world", "tiny", "--n-test", "4", "--calibration", "3",
                 "--max-new-tokens", "8", "--block-size", "2", "--workers", "1", "--out", str(out), *extra])


def test_alpha_sweeps_the_proxy_cost_weight(toy_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("BANDITSPEC_CACHE", str(toy_cache))
    out = tmp_path / "alpha"
    assert _run_tiny("alpha", out, "--n-train", "16", "--seeds", "0", "1", "--sweep", "0", "2", "50") == 0
    report = json.loads((out / "report.json").read_text())
    sweep = report["sweep"]
    assert sweep["parameter"] == "alpha" and sweep["values"] == [0, 2, 50]
    assert report["config"]["learners"]["reinforce"] == ["reinforce", "target", "proxy"]
    assert set(report["training_arm_terms"]) == set(report["arms"])
    assert report["training_arm_terms"]["ar"] == {"token_match": 1.0, "cost": 1.0, "tokens_per_target_call": 1.0}
    assert set(report["policies"]) == {f"{l} alpha={a}" for l in ("reinforce", "linucb", "egreedy") for a in (0, 2, 50)}
    costs = np.array([arm["cost"] for arm in report["config"]["arms"]])
    for learner, curve in sweep["learners"].items():
        mix = np.array([curve["arm_share"][a] for a in report["arms"]])  # (K, values)
        assert np.allclose(mix.sum(axis=0), 1.0)
        assert np.allclose(costs @ mix, curve["mean_cost"])
        assert curve["speedup_vs_ar"] == [report["policies"][f"{learner} alpha={a:g}"]["speedup_vs_ar"] for a in (0, 2, 50)]
    cost = sweep["learners"]["reinforce"]["mean_cost"]
    monotone = all(b <= a + 1e-12 for a, b in zip(cost, cost[1:])) and cost[-1] < cost[0]
    assert report["claims"]["holds"]["reinforce_moves_monotonically_to_smaller_drafts"] == monotone
    assert (out / "sweep.png").stat().st_size > 0 and not (out / "choices.png").exists()
    table = (out / "results.md").read_text()
    assert table.startswith("| alpha | learner |") and "| 50 | reinforce |" in table and "| oracle |" in table


def test_examples_reports_the_95_percent_point(toy_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("BANDITSPEC_CACHE", str(toy_cache))
    out = tmp_path / "examples"
    assert _run_tiny("examples", out, "--n-train", "20", "--seeds", "0", "1", "--sweep", "2", "8", "20") == 0
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["n_test_queries"] == 4 and report["seeds"] == [0, 1]
    curve = report["sweep"]["learners"]["reinforce"]["speedup_vs_ar"]
    point = report["claims"]["per_learner"]["queries for 95 % of the full-data speed-up"]["reinforce"]
    assert point == next(n for n, s in zip([2, 8, 20], curve) if s >= 0.95 * curve[-1])
    # one shared held-out set: the oracle and the fixed arms are the same for every seed
    assert report["oracle"]["speedup_vs_ar_std"] == 0.0


def test_self_draft_runs_the_exits_of_a_llama_target(toy_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("BANDITSPEC_CACHE", str(toy_cache))
    out = tmp_path / "self-draft"
    assert main(["reproduce", "self-draft", "--world", "tiny-self-draft", "--n-train", "16", "--n-test", "4",
                 "--seeds", "0", "--calibration", "3", "--max-new-tokens", "8", "--block-size", "2", "--workers", "1",
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert "exit-1" in report["arms"] and report["outputs_equal_ar"] is True
    share = report["claims"]["per_learner"]["early-exit share of held-out queries"]
    for name, stats in report["policies"].items():
        per_group = [stats["choice_shares"][g]["exit-1"] for g in report["groups"]]
        assert min(per_group) - 1e-9 <= share[name] <= max(per_group) + 1e-9


@pytest.mark.parametrize("experiment, sweep, message", [
    ("alpha", ["1", "0.5"], "increasing alphas"),
    ("alpha", ["-1", "2"], "alphas >= 0"),
    ("examples", ["10", "99999"], "whole numbers of queries in \\[1, 5000\\]"),
    ("examples", ["2.5", "10"], "whole numbers"),
    ("domains", ["1", "2"], "sweeps nothing"),
])
def test_bad_sweep_is_refused_before_any_work(experiment, sweep, message, tmp_path, capsys):
    assert main(["reproduce", experiment, "--sweep", *sweep, "--out", str(tmp_path / "x")]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("args, message", [
    (["examples", "--n-train", "9"], "at least 10 training queries"),
    (["alpha", "--sweep", "0.1", "0.1000001"], "differ in their first 6 significant digits"),
])
def test_bad_sizes_are_refused_before_any_work(args, message, tmp_path, capsys):
    assert main(["reproduce", *args, "--out", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "x").exists()


@pytest.mark.parametrize("option", ["--n-test", "--n-train", "--workers"])
def test_counts_must_be_positive(option, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["reproduce", "domains", option, "0"])
    assert exit_.value.code == 2 and "must be an integer >= 1" in capsys.readouterr().err
