import pytest

from banditspec.apps.reproduce.examples import check_sizes, default_sizes, examples_claims


def _sweep(values, **curves):
    return {"values": values, "learners": {name: dict(curve) for name, curve in curves.items()}}


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


@pytest.mark.parametrize("values", [[10], [0, 10], [10, 101], [2.5, 10], [20, 10]])
def test_sizes_check_refuses_bad_sweeps(values):
    with pytest.raises(ValueError, match="--sweep"):
        check_sizes(values, 100)
