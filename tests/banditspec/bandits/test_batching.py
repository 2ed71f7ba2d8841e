from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from banditspec.bandits.batching import length_batches, logits_to_keep_supported, padding_id
from tests.banditspec.speculative.models import tiny_llama


@given(st.lists(st.integers(0, 500), max_size=60), st.integers(1, 20))
def test_batches_cover_every_position_once_in_non_decreasing_lengths(lengths, batch_size):
    batches = length_batches(lengths, batch_size)
    flat = np.concatenate(batches) if batches else np.array([], int)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert all(1 <= b.size <= batch_size for b in batches)
    assert len(batches) == -(-len(lengths) // batch_size)
    ordered = np.asarray(lengths, dtype=int)[flat]
    assert np.all(np.diff(ordered) >= 0)


def test_equal_lengths_keep_their_order():
    assert [b.tolist() for b in length_batches([5, 2, 5, 2], 3)] == [[1, 3, 0], [2]]


def test_bad_batch_size_raises():
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        length_batches([1, 2], 0)


def test_logits_to_keep_is_read_from_the_forward_signature():
    assert logits_to_keep_supported(tiny_llama(20, seed=0, layers=1))

    class Plain:
        def forward(self, input_ids, attention_mask=None):
            return input_ids

    assert not logits_to_keep_supported(Plain())
    assert not logits_to_keep_supported(object())


def test_padding_id_is_the_pad_token_else_the_eos_token():
    assert padding_id(SimpleNamespace(pad_token_id=3, eos_token_id=7)) == 3
    assert padding_id(SimpleNamespace(pad_token_id=None, eos_token_id=7)) == 7
    with pytest.raises(ValueError, match="neither a pad nor an eos token"):
        padding_id(SimpleNamespace(pad_token_id=None, eos_token_id=None))
