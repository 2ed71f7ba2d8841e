from hypothesis import given, settings
from hypothesis import strategies as st

from banditspec.envs.toy import DOMAINS, sample_queries
from banditspec.envs.toy.domains import count_tokens
from banditspec.envs.toy.tokenizer import EOS, PAD, build_tokenizer

TOKENIZER = build_tokenizer(sorted(DOMAINS))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_round_trip_without_unknown_tokens(seed):
    for q in sample_queries(sorted(DOMAINS), 8, split="train", seed=seed):
        for text in (q.prompt, q.completion):
            ids = TOKENIZER(text, add_special_tokens=False)["input_ids"]
            assert TOKENIZER.unk_token_id not in ids
            assert len(ids) == count_tokens(text)
            assert TOKENIZER.decode(ids) == text
        joined = TOKENIZER(f"{q.prompt} {q.completion}")["input_ids"]
        assert joined == TOKENIZER(q.prompt)["input_ids"] + TOKENIZER(q.completion)["input_ids"]


def test_special_tokens_and_digits():
    assert (TOKENIZER.pad_token, TOKENIZER.eos_token) == (PAD, EOS)
    assert (TOKENIZER.pad_token_id, TOKENIZER.eos_token_id, TOKENIZER.unk_token_id) == (0, 1, 2)
    assert TOKENIZER.convert_ids_to_tokens(TOKENIZER("count 1207")["input_ids"]) == ["▁count", "▁1", "2", "0", "7"]
    assert TOKENIZER(["a", "count up"], padding=True)["input_ids"][0][0] == 0  # left padding


def test_vocabulary_depends_only_on_the_domains():
    assert build_tokenizer(["code", "sorting"]).get_vocab() == build_tokenizer(["sorting", "code"]).get_vocab()
    assert len(build_tokenizer(["code"])) < len(TOKENIZER)
