import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from banditspec.speculative.alignment import METRICS, accepted_prefix, alignment_scores, lcs, lcs_length, token_match

tokens = st.lists(st.integers(0, 5), max_size=40)
nonempty = st.lists(st.integers(0, 5), min_size=1, max_size=40)


def lcs_table(a: list[int], b: list[int]) -> int:
    table = np.zeros((len(a) + 1, len(b) + 1), dtype=int)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1, j + 1] = table[i, j] + 1 if x == y else max(table[i, j + 1], table[i + 1, j])
    return int(table[-1, -1])


@settings(max_examples=200, deadline=None)
@given(tokens, tokens)
def test_bit_parallel_lcs_equals_textbook_table(a, b):
    assert lcs_length(a, b) == lcs_table(a, b)
    assert lcs_length(a, b) == lcs_length(b, a)


@settings(max_examples=200, deadline=None)
@given(tokens, tokens)
def test_scores_in_unit_interval_and_ordered(draft, target):
    scores = alignment_scores(draft, target)
    assert list(scores) == list(METRICS)
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    # a common prefix is a common subsequence
    assert scores["accepted_prefix"] <= scores["lcs"] + 1e-12
    # matching positions form a common subsequence
    if target:
        assert token_match(draft, target) * max(len(draft), len(target)) <= lcs_length(draft, target)


@settings(max_examples=100, deadline=None)
@given(nonempty)
def test_identity_scores_one(ids):
    assert alignment_scores(ids, ids) == {m: 1.0 for m in METRICS}
    assert alignment_scores(np.array(ids), ids) == {m: 1.0 for m in METRICS}


@settings(max_examples=100, deadline=None)
@given(tokens, tokens)
def test_token_match_symmetric_and_one_only_for_identical(a, b):
    assert token_match(a, b) == token_match(b, a)
    if a != b:
        assert token_match(a, b) < 1.0


@settings(max_examples=100, deadline=None)
@given(nonempty, tokens)
def test_appending_to_draft_never_lowers_lcs_or_prefix(target, extra):
    draft = list(target[: len(target) // 2])
    assert lcs(draft + extra, target) >= lcs(draft, target)
    assert accepted_prefix(draft + extra, target) >= accepted_prefix(draft, target)


def test_known_values():
    target = [1, 2, 3, 4]
    assert token_match([1, 2, 9, 4], target) == 0.75
    assert accepted_prefix([1, 2, 9, 4], target) == 0.5
    assert lcs([2, 3, 4, 9, 9], target) == 0.75
    assert token_match([1, 2], target) == 0.5


def test_empty_conventions():
    assert alignment_scores([], []) == {m: 1.0 for m in METRICS}
    assert alignment_scores([1], []) == {m: 0.0 for m in METRICS}
    assert alignment_scores([], [1]) == {m: 0.0 for m in METRICS}


def test_bad_input_raises():
    with pytest.raises(ValueError, match="draft must be a 1-d"):
        token_match([[1, 2]], [1, 2])
    with pytest.raises(ValueError, match="target must hold integer"):
        lcs([1], [0.5])
