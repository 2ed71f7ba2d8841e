import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from banditspec.bandits.splits import split_of

keys = st.one_of(st.text(), st.integers(min_value=-(2**63), max_value=2**63 - 1))


def test_membership_is_pinned_to_the_blake2b_digest():
    # a change of the hash would move queries between the splits of every existing dataset and world
    assert [split_of(k, 0.5) for k in ("hello", "world", 0, 1, 2)] == ["train", "test", "train", "train", "test"]


@given(keys, st.floats(0, 1), st.floats(0, 1))
def test_a_larger_test_fraction_only_moves_keys_into_test(key, a, b):
    low, high = sorted((a, b))
    assert split_of(key, low) == "train" or split_of(key, high) == "test"


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_an_integer_shares_the_split_of_its_decimal_string(key):
    assert split_of(key, 0.3) == split_of(str(key), 0.3)


def test_numpy_integers_are_integers():
    assert [split_of(np.int64(i), 0.5) for i in range(50)] == [split_of(i, 0.5) for i in range(50)]


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.5])
def test_the_test_share_is_close_to_the_fraction(fraction):
    share = np.mean([split_of(f"prompt {i}", fraction) == "test" for i in range(20000)])
    assert abs(share - fraction) < 0.01  # 3.5 binomial standard deviations at 0.5


def test_fractions_zero_and_one_put_every_key_on_one_side():
    assert {split_of(i, 0.0) for i in range(200)} == {"train"}
    assert {split_of(i, 1.0) for i in range(200)} == {"test"}


@pytest.mark.parametrize("key", [1.0, True, None, b"bytes"])
def test_rejects_keys_that_are_neither_text_nor_integers(key):
    with pytest.raises(TypeError, match="str or an int"):
        split_of(key, 0.2)


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan"), "0.2", True])
def test_rejects_bad_fractions(fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        split_of("query", fraction)
