import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from banditspec.speculative.ngram import NgramTable


def labelled(*sequences):
    """Right-padded ids, their next tokens as labels (-100 at the end and at padding), lengths."""
    width = max(len(s) for s in sequences)
    ids = np.zeros((len(sequences), width), dtype=np.int64)
    labels = np.full_like(ids, -100)
    for row, s in enumerate(sequences):
        ids[row, : len(s)] = s
        labels[row, : len(s) - 1] = s[1:]
    return ids, labels, np.array([len(s) for s in sequences])


def test_the_table_keeps_the_most_frequent_next_token_ties_to_the_smallest_id():
    table = NgramTable.from_labels(*labelled([1, 2, 3, 1, 2, 4, 1, 2, 3], [5, 2, 9, 2, 8]), max_ngram=2)
    assert table.max_ngram == 2
    assert table.next_token(np.array([1, 2])) == 3  # 3 twice, 4 once
    assert table.next_token(np.array([7, 2])) == 3  # unknown bigram: the unigram 2 -> {3: 2, 4: 1, 9: 1, 8: 1}
    assert table.next_token(np.array([2, 9])) == 2
    assert table.next_token(np.array([5, 7])) is None  # 7 never seen
    assert table.next_token(np.array([7, 2]), min_ngram=2) is None


def test_the_table_counts_the_labels_not_the_next_input_and_skips_unlabelled_positions():
    ids = np.array([[1, 2, 3, 1, 2, 3, 0]])
    labels = np.array([[9, 8, -100, 9, 7, 5, -100]])  # what the target said after each prefix, not ids[t + 1]
    table = NgramTable.from_labels(ids, labels, np.array([6]), max_ngram=2)
    assert table.next_token(np.array([1])) == 9 and table.next_token(np.array([1, 2])) == 7  # 8 and 7 tie: 7
    assert table.next_token(np.array([3])) == 5  # the 3 at position 2 has no label; the one at 5 does
    assert table.next_token(np.array([2, 3])) == 5 and table.next_token(np.array([0])) is None  # past the length


def test_min_count_drops_rare_entries():
    data = labelled([1, 2, 3, 1, 2, 4, 1, 2, 3])
    assert len(NgramTable.from_labels(*data, max_ngram=1)) == 4  # contexts 1, 2, 3, 4
    kept = NgramTable.from_labels(*data, max_ngram=1, min_count=2)
    assert kept.contexts[0].ravel().tolist() == [1, 2] and kept.counts[0].tolist() == [3, 2]


def test_proposals_chain_the_longest_known_suffix_and_stop_after_an_end_token():
    table = NgramTable.from_labels(*labelled([1, 2, 3, 4, 5, 6], [7, 2, 3, 9]), max_ngram=3)
    np.testing.assert_array_equal(table.propose(np.array([7, 2, 3]), 3), [9])  # the trigram, not (2, 3) -> 4
    np.testing.assert_array_equal(table.propose(np.array([8, 2, 3]), 3), [4, 5, 6])  # (2, 3): 4 and 9 tie
    np.testing.assert_array_equal(table.propose(np.array([7, 2, 3]), 3, max_ngram=2), [4, 5, 6])
    np.testing.assert_array_equal(table.propose(np.array([1, 2, 3]), 3), [4, 5, 6])
    np.testing.assert_array_equal(table.propose(np.array([1, 2, 3]), 2), [4, 5])
    np.testing.assert_array_equal(table.propose(np.array([1, 2, 3]), 5, eos_token_ids={5}), [4, 5])
    assert table.propose(np.array([8]), 3).size == 0


def test_a_table_is_saved_and_read_back_unchanged(tmp_path):
    table = NgramTable.from_labels(*labelled([1, 2, 3, 1, 2, 4], [3, 3, 3]), max_ngram=3)
    table.save(tmp_path / "t.npz")
    again = NgramTable.load(tmp_path / "t.npz")
    assert again.max_ngram == 3 and len(again) == len(table)
    for ours, theirs in zip((table.contexts, table.next_tokens, table.counts),
                            (again.contexts, again.next_tokens, again.counts)):
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a, b)


def test_bad_input(tmp_path):
    ids, labels, lengths = labelled([1, 2, 3])
    with pytest.raises(ValueError, match="max_ngram"):
        NgramTable.from_labels(ids, labels, lengths, max_ngram=0)
    with pytest.raises(ValueError, match=r"must be \(n, T\)"):
        NgramTable.from_labels(ids, labels[:, :2], lengths, max_ngram=1)
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    np.savez(tmp_path / "partial.npz", contexts_1=np.zeros((1, 1), np.int64))
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    for name in ("other", "partial", "broken"):
        with pytest.raises(ValueError, match="holds no n-gram table"):
            NgramTable.load(tmp_path / f"{name}.npz")
    with pytest.raises(ValueError, match=r"the 1-gram arrays must be \(2, 1\), \(2,\) and \(2,\)"):
        NgramTable([np.zeros((2, 1))], [np.zeros(3)], [np.zeros(2)])
    with pytest.raises(ValueError, match="min_count"):
        NgramTable.from_labels(ids, labels, lengths, max_ngram=1, min_count=0)
    with pytest.raises(ValueError, match="min_ngram"):
        NgramTable.from_labels(ids, labels, lengths, max_ngram=1).next_token(np.array([1]), min_ngram=0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(0, 5), min_size=1, max_size=15), min_size=1, max_size=4),
       st.integers(1, 3), st.lists(st.integers(0, 5), min_size=1, max_size=6), st.integers(1, 6))
def test_every_proposed_token_is_the_tables_next_token_of_the_context_so_far(sequences, max_ngram, context, num_tokens):
    table = NgramTable.from_labels(*labelled(*sequences), max_ngram=max_ngram)
    proposal = table.propose(np.array(context), num_tokens)
    assert proposal.size <= num_tokens
    sequence = list(context)
    for token in proposal:
        assert table.next_token(np.array(sequence)) == token
        sequence.append(int(token))
    if proposal.size < num_tokens:
        assert table.next_token(np.array(sequence)) is None
    # every kept token is one that followed its context in the data
    for n, (keys, values) in enumerate(zip(table.contexts, table.next_tokens), start=1):
        followers = {}
        for s in sequences:
            for t in range(n - 1, len(s) - 1):
                followers.setdefault(tuple(s[t - n + 1 : t + 1]), []).append(s[t + 1])
        assert {tuple(k) for k in keys.tolist()} == set(followers)
        for key, value in zip(keys.tolist(), values.tolist()):
            seen = followers[tuple(key)]
            assert seen.count(value) == max(seen.count(v) for v in seen)
