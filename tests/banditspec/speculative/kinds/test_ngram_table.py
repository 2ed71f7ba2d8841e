import numpy as np
import pytest
from transformers.utils import logging

from banditspec.speculative.decoding import Decoder
from banditspec.speculative.kinds import Autoregressive, NgramDraft, Trace, arm_from_config
from banditspec.speculative.ngram import NgramTable
from tests.banditspec.speculative.models import prompts, tiny_llama, word_tokenizer

logging.set_verbosity_error()
MAX_NEW = 16


@pytest.fixture(scope="module")
def decoder():
    tokenizer = word_tokenizer([f"w{i}" for i in range(60)])
    return Decoder(tiny_llama(len(tokenizer), seed=3), tokenizer, max_new_tokens=MAX_NEW, threads=1)


def table_of_outputs(decoder, queries, path, max_ngram=3):
    """A table from the target's greedy outputs on ``queries`` (each position labelled with the next token)."""
    sequences = [np.concatenate([decoder.prefix(q), decoder.generate(Autoregressive("ar"), q).ids]) for q in queries]
    width = max(s.size for s in sequences)
    ids = np.zeros((len(sequences), width), dtype=np.int64)
    labels = np.full_like(ids, -100)
    for row, s in enumerate(sequences):
        ids[row, : s.size] = s
        labels[row, : s.size - 1] = s[1:]
    NgramTable.from_labels(ids, labels, np.array([s.size for s in sequences]), max_ngram=max_ngram).save(path)
    return str(path)


def counts(result_or_simulation):
    m = getattr(result_or_simulation, "measurement", result_or_simulation)
    return m.target_calls, m.proposed_tokens, m.accepted_tokens


@pytest.mark.parametrize("num_tokens, min_ngram, lookup_ngram", [(4, 1, 0), (2, 2, 0), (6, 3, 0), (4, 2, 2)])
def test_outputs_equal_ar_and_the_simulation_equals_the_measured_decode(decoder, tmp_path, num_tokens, min_ngram,
                                                                        lookup_ngram):
    queries = prompts(8, seed=5, vocab=len(decoder.tokenizer))
    arm = NgramDraft("table", table=table_of_outputs(decoder, queries[:4], tmp_path / "t.npz"),
                     num_tokens=num_tokens, min_ngram=min_ngram, lookup_ngram=lookup_ngram)
    arm.check(decoder)
    accepted = 0
    for query in queries:  # half of them seen when the table was built
        reference, result = decoder.measure(query, [Autoregressive("ar"), arm])
        np.testing.assert_array_equal(result.ids, reference.ids)
        assert result.measurement.equals_ar
        trace = Trace(decoder.prefix(query), reference.ids, MAX_NEW, decoder.eos_token_ids)
        assert counts(arm.simulate(trace)) == counts(result)
        accepted += result.measurement.accepted_tokens
    assert accepted > 0


def test_with_lookup_the_context_is_copied_first_and_the_table_drafts_where_it_finds_nothing(tmp_path):
    NgramTable([np.array([[1], [2]])], [np.array([7, 8])], [np.array([1, 1])]).save(tmp_path / "t.npz")
    arm = NgramDraft("a", table=str(tmp_path / "t.npz"), num_tokens=3, lookup_ngram=2)
    propose = arm.proposer(eos_token_ids=())
    np.testing.assert_array_equal(propose(np.array([1, 5, 6, 9, 1])), [5, 6, 9])  # copied after the earlier 1
    np.testing.assert_array_equal(propose(np.array([3, 4, 2])), [8])  # no earlier 2: the table's 2 -> 8, then none
    alone = NgramDraft("b", table=str(tmp_path / "t.npz"), num_tokens=3).proposer(eos_token_ids=())
    np.testing.assert_array_equal(alone(np.array([1, 5, 6, 9, 1])), [7])


def test_a_world_config_resolves_the_table_against_its_folder(tmp_path):
    (tmp_path / "tables").mkdir()
    NgramTable([np.array([[1]])], [np.array([2])], [np.array([1])]).save(tmp_path / "tables" / "t.npz")
    arm = arm_from_config({"kind": "ngram_table", "name": "t", "table": "tables/t.npz"}, base=tmp_path)
    assert arm == NgramDraft("t", table=str((tmp_path / "tables" / "t.npz").resolve()))
    assert arm_from_config(arm.describe()) == arm
    with pytest.raises(ValueError, match=r"^w: table: no such file or folder .*missing\.npz"):
        arm_from_config({"kind": "ngram_table", "name": "t", "table": "missing.npz"}, where="w", base=tmp_path)
    for value in ("", 5):
        with pytest.raises(ValueError, match=r"^w: table must be a path \(a non-empty string\)"):
            arm_from_config({"kind": "ngram_table", "name": "t", "table": value}, where="w", base=tmp_path)
    absolute = str((tmp_path / "tables" / "t.npz").resolve())
    assert arm_from_config({"kind": "ngram_table", "name": "t", "table": absolute}, base="/").table == absolute


def test_a_table_written_again_is_read_again(tmp_path):
    path = tmp_path / "t.npz"
    NgramTable([np.array([[1]])], [np.array([2])], [np.array([1])]).save(path)
    arm = NgramDraft("a", table=str(path))
    assert arm.ngram_table().next_token(np.array([1])) == 2
    NgramTable([np.array([[1], [3]])], [np.array([4, 5])], [np.array([1, 1])]).save(path)
    assert arm.ngram_table().next_token(np.array([1])) == 4


def test_an_end_token_ends_the_tables_chain_and_lookup_stops_before_one(tmp_path):
    NgramTable([np.array([[1], [2]])], [np.array([2, 0])], [np.array([1, 1])]).save(tmp_path / "t.npz")
    propose = NgramDraft("a", table=str(tmp_path / "t.npz"), num_tokens=4, lookup_ngram=1).proposer(eos_token_ids=(0,))
    np.testing.assert_array_equal(propose(np.array([5, 1])), [2, 0])  # no earlier 1: the table, to its end token
    # lookup finds 1 -> 0 (an end token first: it proposes nothing), so the table drafts
    np.testing.assert_array_equal(propose(np.array([1, 0, 1])), [2, 0])


@pytest.mark.parametrize("options, message", [
    ({}, "NgramDraft.table must name a table file"),
    ({"table": "t.npz", "num_tokens": 0}, "NgramDraft.num_tokens of arm 'a' must be an integer"),
    ({"table": "t.npz", "min_ngram": 3, "max_ngram": 2}, "NgramDraft.max_ngram of arm 'a' must be an integer in \\[3"),
    ({"table": "t.npz", "lookup_ngram": -1}, "NgramDraft.lookup_ngram of arm 'a' must be an integer in \\[0"),
])
def test_bad_parameters_name_the_arm(options, message):
    with pytest.raises(ValueError, match=message):
        NgramDraft("a", **options)


def test_check_refuses_an_unreadable_table_or_one_too_short(decoder, tmp_path):
    np.savez(tmp_path / "other.npz", x=np.zeros(1))
    with pytest.raises(ValueError, match="arm 'a': cannot read its n-gram table .*holds no n-gram table"):
        NgramDraft("a", table=str(tmp_path / "other.npz")).check(decoder)
    NgramTable([np.array([[1]])], [np.array([2])], [np.array([1])]).save(tmp_path / "t.npz")
    with pytest.raises(ValueError, match="arm 'a': min_ngram is 2 but its table holds n-grams of at most 1"):
        NgramDraft("a", table=str(tmp_path / "t.npz"), min_ngram=2).check(decoder)


def test_a_fingerprint_names_the_table_by_its_bytes_not_its_folder(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        NgramTable([np.array([[1]])], [np.array([2])], [np.array([1])]).save(tmp_path / folder / "t.npz")
    a, b = (NgramDraft("t", table=str(tmp_path / folder / "t.npz")) for folder in ("a", "b"))
    assert a.describe() != b.describe() and a.fingerprint() == b.fingerprint()
    assert a.fingerprint()["table"]["name"] == "t.npz"
    NgramTable([np.array([[1]])], [np.array([3])], [np.array([1])]).save(tmp_path / "b" / "t.npz")
    assert a.fingerprint() != b.fingerprint()
