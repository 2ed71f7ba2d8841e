import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from banditspec.bandits.arms import Arm, ArmSet
from banditspec.speculative.kinds import Autoregressive, DraftModel, EarlyExit, PromptLookup


def make_set() -> ArmSet:
    return ArmSet([Autoregressive("ar"), DraftModel("d1", model="m1", block_size=4, cost=0.1), PromptLookup("pl")])


def test_index_names_and_lookup():
    arms = make_set()
    assert arms.names == ["ar", "d1", "pl"]
    assert arms.index("d1") == 1
    assert arms["d1"].block_size == 4
    assert arms[2].kind == "prompt_lookup"
    np.testing.assert_allclose(arms.costs, [0.0, 0.1, 0.0])


def test_duplicate_name_rejected_and_set_unchanged():
    arms = make_set()
    with pytest.raises(ValueError, match="duplicate arm name 'd1'"):
        arms.add(DraftModel("d1", model="other"))
    assert arms.names == ["ar", "d1", "pl"]


def test_add_remove_at_run_time_keeps_order():
    arms = make_set()
    assert arms.add(EarlyExit("exit2", layer=2)) == 3
    removed = arms.remove("d1")
    assert removed.name == "d1"
    assert arms.names == ["ar", "pl", "exit2"]
    with pytest.raises(KeyError, match="no arm named 'd1'"):
        arms.index("d1")


def test_availability_mask():
    arms = make_set()
    arms.set_available("d1", False)
    np.testing.assert_array_equal(arms.mask(), [True, False, True])
    arms.set_available("d1", True)
    assert arms.mask().all()


@pytest.mark.parametrize(
    "factory, field",
    [
        (lambda: DraftModel("d", model="m", block_size=0), "block_size"),
        (lambda: DraftModel("d", model="m", schedule="fast"), "schedule"),
        (lambda: DraftModel("d", model="m", block_size=2.5), "block_size"),
        (lambda: DraftModel("d", model="m", block_size=True), "block_size"),
        (lambda: DraftModel("d", model="m", confidence_threshold=1.5), "confidence_threshold"),
        (lambda: DraftModel("d"), "model"),
        (lambda: EarlyExit("e", layer=2, block_size=1.0), "block_size"),
        (lambda: PromptLookup("p", num_tokens=0), "num_tokens"),
        (lambda: EarlyExit("e", layer=0), "layer"),
        (lambda: Arm(""), "name"),
        (lambda: Arm("a", cost=-1.0), "cost"),
    ],
)
def test_bad_settings_name_the_field(factory, field):
    with pytest.raises(ValueError, match=field):
        factory()


@pytest.mark.parametrize("cost", ["0.1", True, None, float("nan"), float("inf"), -0.5, [0.1], 1j])
def test_a_cost_that_is_not_a_finite_non_negative_number_is_refused_naming_the_arm(cost):
    with pytest.raises(ValueError, match=r"Arm.cost of arm 'draft' must be a finite real number in \[0, inf\]"):
        Arm("draft", cost=cost)


def test_costs_may_be_any_real_number_type():
    assert ArmSet([Arm("a", cost=1), Arm("b", cost=np.float32(0.5)), Arm("c")]).costs.tolist() == [1.0, 0.5, 0.0]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=5).filter(str.strip), min_size=1, max_size=8, unique=True))
def test_describe_round_trips_names_in_order(names):
    arms = ArmSet(Arm(n) for n in names)
    assert [d["name"] for d in arms.describe()] == names
    assert len(arms) == len(names)


def test_an_arm_without_files_is_fingerprinted_by_its_description():
    arms = ArmSet([Arm("a", cost=0.5, settings={"k": 1}), PromptLookup("lookup", num_tokens=3)])
    assert arms.fingerprint() == arms.describe()
