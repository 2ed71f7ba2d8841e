import numpy as np

from banditspec.apps.result import CompareResult

ARMS = ["ar", "draft"]


def test_new_groups_join_sorted_and_earlier_seeds_have_no_queries_there():
    result = CompareResult(ARMS, [], [0, 1], {})
    result.add_choices("learner", np.array([0, 1, 1]), np.array(["code", "math", "math"]))
    result.add_choices("other", np.array([0, 0, 0]), np.array(["code", "math", "math"]))
    result.add_choices("learner", np.array([1, 0]), np.array(["alpha", "math"]))
    assert result.groups == ["alpha", "code", "math"]
    np.testing.assert_array_equal(result.choices["learner"], [[[0, 0], [1, 0], [0, 1]],
                                                              [[0, 1], [0, 0], [1, 0]]])
    np.testing.assert_array_equal(result.choices["other"], [[[0, 0], [1, 0], [1, 0]]])
    result.runs += [{"policy": name, "seed": s, "speedup_vs_ar": 1.0, "share_of_oracle": 1.0, "mean_reward": 1.0,
                     "regret": 0.0, "fit_seconds": 0.0, "decision_us": 0.0} for name, s in
                    (("learner", 0), ("other", 0), ("learner", 1))]
    result.oracle += [{"seed": s, "speedup_vs_ar": 1.0, "mean_reward": 1.0} for s in (0, 1)]
    shares = result.to_dict()["policies"]["learner"]["choice_shares"]
    assert shares == {"alpha": {"ar": 0.0, "draft": 0.5}, "code": {"ar": 0.5, "draft": 0.0},
                      "math": {"ar": 0.5, "draft": 0.5}}
