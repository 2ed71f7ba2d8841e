import pytest

from banditspec.reproduce.alpha import alpha_claims, check_alphas
from banditspec.reproduce.examples import check_sizes, default_sizes, examples_claims


def _sweep(values, **curves):
    return {"values": values, "learners": {name: dict(curve) for name, curve in curves.items()}}


def test_alpha_claim_needs_a_cost_that_never_rises_and_ends_lower():
    falling = {"mean_cost": [1.0, 0.14, 0.14, 0.01]}
    bump = {"mean_cost": [1.0, 0.01, 0.14, 0.01]}
    flat = {"mean_cost": [0.14, 0.14, 0.14, 0.14]}
    claims = alpha_claims(_sweep([0, 1, 2, 3], reinforce=falling, linucb=bump, egreedy=flat))
    assert claims["holds"] == {"reinforce_moves_monotonically_to_smaller_drafts": True}
    assert claims["per_learner"]["monotone move to smaller arms (1 = yes)"] == {"reinforce": 1.0, "linucb": 0.0,
                                                                                "egreedy": 0.0}
    assert not alpha_claims(_sweep([0, 1, 2, 3], reinforce=bump))["holds"]["reinforce_moves_monotonically_to_smaller_drafts"]


def test_examples_claim_reports_the_smallest_size_within_95_percent_of_the_last():
    sweep = _sweep([10, 100, 1000], reinforce={"speedup_vs_ar": [1.0, 1.93, 2.0]},
                   linucb={"speedup_vs_ar": [1.0, 1.5, 2.0]})
    claims = examples_claims(sweep)
    assert claims["per_learner"]["queries for 95 % of the full-data speed-up"] == {"reinforce": 100, "linucb": 1000}
    assert claims["holds"]["reinforce_reaches_95_percent_before_the_full_data"] is True
    late = examples_claims(_sweep([10, 100], reinforce={"speedup_vs_ar": [1.0, 2.0]}))
    assert late["holds"]["reinforce_reaches_95_percent_before_the_full_data"] is False


def test_default_sizes_are_log_spaced_whole_numbers_from_10_to_all():
    sizes = default_sizes(5000)
    assert sizes[0] == 10 and sizes[-1] == 5000 and len(sizes) == 8
    ratios = [b / a for a, b in zip(sizes, sizes[1:])]
    assert max(ratios) / min(ratios) < 1.1
    with pytest.raises(ValueError, match="at least 10 training queries"):
        default_sizes(9)


@pytest.mark.parametrize("check, values", [(check_alphas, [0.5]), (check_alphas, [0, 0]), (check_alphas, [float("nan"), 1]),
                                           (check_sizes, [10]), (check_sizes, [0, 10]), (check_sizes, [10, 101])])
def test_sweep_checks_refuse_bad_values(check, values):
    with pytest.raises(ValueError, match="--sweep"):
        check(values, 100)
