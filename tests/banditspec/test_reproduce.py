import json

import numpy as np
import pytest

from banditspec.cli import main


def test_ar_option_end_to_end_on_the_tiny_world(toy_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("BANDITSPEC_CACHE", str(toy_cache))
    out = tmp_path / "ar-option"
    code = main(["reproduce", "ar-option", "--config", "tiny", "--n-train", "24", "--n-test", "6", "--seeds", "0", "1",
                 "--calibration", "3", "--max-new-tokens", "12", "--block-size", "3", "--workers", "1",
                 "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["arms"] == ["ar", "expert-arithmetic", "expert-code", "misaligned"]
    assert report["seeds"] == [0, 1] and report["outputs_equal_ar"] is True
    assert set(report["policies"]) == {"reinforce", "linucb", "egreedy"}
    claims, columns = report["claims"], report["claims"]["per_learner"]
    groups, ar = report["groups"], report["arms"].index("ar")
    for name, stats in report["policies"].items():
        shares = np.array([[stats["choice_shares"][g][a] for a in report["arms"]] for g in groups])
        draftless = [groups.index(g) for g in ("translation", "sorting") if g in groups]
        assert np.isclose(columns["AR share, draft-less domains"][name], shares[draftless, ar].mean())
        assert columns["slowest seed"][name] <= stats["speedup_vs_ar"] + 1e-9
    slowest = columns["slowest seed"].values()
    assert claims["holds"]["never_slower_than_ar"] == all(v >= 1 for v in slowest)
    table = (out / "results.md").read_text()
    assert table.startswith("| learner |") and "arm: misaligned" in table


def test_domains_keeps_every_arm_and_compares_with_the_best_single_arm(toy_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("BANDITSPEC_CACHE", str(toy_cache))
    out = tmp_path / "domains"
    assert main(["reproduce", "domains", "--config", "tiny", "--n-train", "16", "--n-test", "4", "--seeds", "3",
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
