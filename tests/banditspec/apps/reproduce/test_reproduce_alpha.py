import pytest

from banditspec.apps.reproduce.alpha import alpha_claims, check_alphas


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


@pytest.mark.parametrize("values", [[0.5], [0, 0], [float("nan"), 1], [1, 0.5], [0.1, 0.1000001]])
def test_alpha_check_refuses_bad_sweeps(values):
    with pytest.raises(ValueError, match="--sweep"):
        check_alphas(values, 100)
