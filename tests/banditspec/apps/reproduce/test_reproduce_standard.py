import numpy as np

from banditspec.apps.result import CompareResult
from banditspec.apps.reproduce.standard import ar_option_claims, multitask_claims, self_draft_claims

ARMS = ["ar", "expert-a", "generalist", "exit-1"]


def _result(speedups: dict[str, float], fixed: dict[str, float]) -> CompareResult:
    result = CompareResult(ARMS, ["arithmetic", "sorting", "translation"], [0], {})
    for name, s in speedups.items():
        result.runs.append({"policy": name, "seed": 0, "speedup_vs_ar": s, "share_of_oracle": s / 2, "mean_reward": s,
                            "regret": 0.0, "fit_seconds": 0.0, "decision_us": 0.0})
        result.choices[name] = np.zeros((1, 3, len(ARMS)))
    for arm, s in fixed.items():
        result.fixed_arms.append({"arm": arm, "seed": 0, "speedup_vs_ar": s, "share_of_oracle": s / 2,
                                  "mean_reward": s, "regret": 0.0})
    result.oracle.append({"seed": 0, "speedup_vs_ar": 2.0, "mean_reward": 2.0})
    return result


FIXED = {"ar": 1.0, "expert-a": 0.5, "generalist": 1.6, "exit-1": 1.4}


def test_ar_share_pools_the_draftless_queries_and_is_nan_without_them():
    result = _result({"reinforce": 1.3, "linucb": 1.2}, FIXED)
    groups = np.array(["arithmetic", "sorting", "sorting", "sorting", "translation"])
    picks = {"reinforce": (np.array([1, 0, 0, 0, 2]), groups),  # 3 of the 4 draft-less queries on AR
             "linucb": (np.array([1, 0, 0, 0, 0]), groups)}
    claims = ar_option_claims(result, picks)
    assert claims["per_learner"]["AR share, draft-less domains"] == {"reinforce": 0.75, "linucb": 1.0}
    assert claims["holds"]["ar_on_at_least_90_percent_of_draftless_queries"] is False
    none = ar_option_claims(result, {"reinforce": (np.array([0]), np.array(["arithmetic"]))})
    assert np.isnan(none["per_learner"]["AR share, draft-less domains"]["reinforce"])
    assert none["holds"]["ar_on_at_least_90_percent_of_draftless_queries"] is False


def test_multitask_compares_with_the_best_drafting_arm_not_ar():
    fixed = {**FIXED, "ar": 5.0}  # AR is never "the best single drafter"
    claims = multitask_claims(_result({"reinforce": 1.6, "linucb": 1.5}, fixed), {})
    column = "x best single drafter (generalist)"
    assert set(claims["per_learner"]) == {column, "slowest seed"}
    assert claims["per_learner"][column] == {"reinforce": 1.0, "linucb": 1.5 / 1.6}
    assert claims["holds"]["reinforce_at_least_as_fast_as_the_best_single_drafter"] is True
    slower = multitask_claims(_result({"reinforce": 1.59}, fixed), {})
    assert slower["holds"]["reinforce_at_least_as_fast_as_the_best_single_drafter"] is False


def test_self_draft_counts_queries_sent_to_any_exit():
    groups = np.array(["arithmetic"] * 4)
    claims = self_draft_claims(_result({"reinforce": 1.5}, FIXED), {"reinforce": (np.array([3, 3, 2, 0]), groups)})
    assert claims["per_learner"]["early-exit share of held-out queries"] == {"reinforce": 0.5}
    assert claims["holds"]["reinforce_at_least_as_fast_as_the_best_single_arm"] is False
