import numpy as np
import pytest

from banditspec.bandits.validation import (
    arm_ids,
    availability_mask,
    check_instance,
    check_integer,
    check_real,
    integer_array,
    name_list,
    real_array,
)


@pytest.mark.parametrize("value", [2.5, 2.0, True, "3", None, [3], float("nan"), -1, 11])
def test_check_integer_refuses_non_integers_and_out_of_range(value):
    with pytest.raises(ValueError, match=r"epochs must be an integer in \[0, 10\]"):
        check_integer("epochs", value, low=0, high=10)


def test_check_integer_takes_python_and_numpy_integers():
    assert check_integer("k", 3, low=1) == 3
    assert check_integer("k", np.int64(7)) == 7
    with pytest.raises(ValueError, match="k must be an integer, got 1.5"):
        check_integer("k", 1.5)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), True, "0.1", None, 10**400, 1j, -0.5, 2.0])
def test_check_real_refuses_non_reals_non_finite_and_out_of_range(value):
    with pytest.raises(ValueError, match=r"lr must be a finite real number in \[0, 1\]"):
        check_real("lr", value, 0.0, 1.0)


def test_check_real_open_ends_and_numpy_scalars():
    assert check_real("x", np.float32(0.5), 0.0, 1.0, open_low=True, open_high=True) == 0.5
    assert check_real("x", 3, 0.0) == 3.0
    for value in (0.0, 1.0):
        with pytest.raises(ValueError, match=r"x must be a finite real number in \(0, 1\)"):
            check_real("x", value, 0.0, 1.0, open_low=True, open_high=True)


def test_check_instance_names_the_parameter_and_the_type():
    check_instance("data", [1], list)
    with pytest.raises(ValueError, match="data must be a list, got dict"):
        check_instance("data", {}, list)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([True, False], "dtype bool .booleans"),
        (["0", "1"], "strings"),
        ([0.5, 1.0], "whole numbers"),
        ([np.nan, 1.0], "whole numbers"),
        ([1 + 0j, 0j], "complex"),
        ([0, 1, 2], r"shape \(2,\)"),
        ([[0], [1, 2]], "not a rectangular array"),
    ],
)
def test_integer_array_refuses_what_a_cast_would_change(values, message):
    with pytest.raises(ValueError, match=f"^ids .*{message}"):
        integer_array("ids", values, (2,))


def test_integer_array_takes_whole_floats_and_arm_ids_checks_the_range():
    np.testing.assert_array_equal(integer_array("a", [1.0, 2.0], (2,)), [1, 2])
    np.testing.assert_array_equal(arm_ids("a", np.array([0, 2], dtype=np.uint8), 2, 3), [0, 2])
    with pytest.raises(ValueError, match=r"a must be arm ids in \[0, 3\), got values in \[0, 3\]"):
        arm_ids("a", [0, 3], 2, 3)


@pytest.mark.parametrize("values", [[True, False], ["1.0", "2.0"], [1j, 2j], np.array([1.0, "x"], dtype=object)])
def test_real_array_refuses_booleans_strings_complex_and_objects(values):
    with pytest.raises(ValueError, match="rewards must"):
        real_array("rewards", values)


def test_real_array_takes_integers_floats_and_numeric_objects():
    assert real_array("r", [1, 2]).dtype == np.float64
    np.testing.assert_array_equal(real_array("r", np.array([1, 2.5], dtype=object)), [1.0, 2.5])


@pytest.mark.parametrize(
    "available",
    [[0, 2], [1, 0, 1], [0.5, 1.0, 1.0], [np.nan, 1.0, 1.0], ["True", "False", "True"], np.ones(3, dtype=np.uint8)],
)
def test_availability_mask_refuses_anything_but_booleans(available):
    with pytest.raises(ValueError, match="available must be booleans"):
        availability_mask(available, 2, 3)


def test_availability_mask_broadcasts_a_row_and_needs_an_arm_per_row():
    np.testing.assert_array_equal(availability_mask([True, False, True], 2, 3), [[True, False, True]] * 2)
    assert availability_mask(None, 2, 3).all()
    with pytest.raises(ValueError, match="no arm"):
        availability_mask([[True, False, False], [False, False, False]], 2, 3)
    with pytest.raises(ValueError, match="shape"):
        availability_mask([True, False], 2, 3)


@pytest.mark.parametrize("names", ["abcd", b"ab", 3, ["a", 1], [None]])
def test_name_list_refuses_bare_strings_and_non_strings(names):
    with pytest.raises(ValueError, match="arm_names must"):
        name_list("arm_names", names)


def test_name_list_takes_any_iterable_of_strings():
    assert name_list("arm_names", ("ar", "draft")) == ["ar", "draft"]
    assert name_list("arm_names", np.array(["a", "b"])) == ["a", "b"]
