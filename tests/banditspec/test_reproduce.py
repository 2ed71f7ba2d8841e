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
    claims = report["claims"]
    groups, ar = report["groups"], report["arms"].index("ar")
    for name, stats in report["policies"].items():
        shares = np.array([[stats["choice_shares"][g][a] for a in report["arms"]] for g in groups])
        draftless = [groups.index(g) for g in ("translation", "sorting") if g in groups]
        assert np.isclose(claims["ar_share_draftless"][name], shares[draftless, ar].mean())
        assert claims["slowest_seed_speedup"][name] <= stats["speedup_vs_ar"] + 1e-9
    assert claims["never_slower_than_ar"] == all(v >= 1 for v in claims["slowest_seed_speedup"].values())
    table = (out / "results.md").read_text()
    assert table.startswith("| learner |") and "arm: misaligned" in table


def test_unknown_experiment_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["reproduce", "no-such-experiment"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err
