import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

from banditspec.envs.toy import DEFAULT, SPEC_BENCH_DOMAINS, sample_queries, split_of


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_same_seed_same_queries_and_splits_are_disjoint(seed):
    train = sample_queries(DEFAULT, 40, split="train", seed=seed)
    assert train == sample_queries(DEFAULT, 40, split="train", seed=seed)
    test = sample_queries(DEFAULT, 40, split="test", seed=seed)
    assert {q.prompt for q in train}.isdisjoint(q.prompt for q in test)
    assert all(split_of(q.prompt) == "train" for q in train)
    assert all(split_of(q.prompt) == "test" for q in test)
    assert {q.domain for q in train} <= set(DEFAULT.domains)


def test_different_seeds_differ_and_domains_can_be_restricted():
    a = sample_queries(DEFAULT, 20, split="test", seed=0)
    assert a != sample_queries(DEFAULT, 20, split="test", seed=1)
    only = sample_queries(DEFAULT, 10, split="test", seed=0, domains=["code"])
    assert {q.domain for q in only} == {"code"}


@pytest.mark.parametrize("domains", [DEFAULT.domains, SPEC_BENCH_DOMAINS])
def test_domains_are_recognisable_from_the_prompt_alone(domains):
    train = sample_queries(domains, 300, split="train", seed=0)
    test = sample_queries(domains, 200, split="test", seed=0)
    vec = CountVectorizer(token_pattern=r"\S+")
    clf = LogisticRegression(max_iter=500).fit(vec.fit_transform([q.prompt for q in train]), [q.domain for q in train])
    accuracy = np.mean(clf.predict(vec.transform([q.prompt for q in test])) == [q.domain for q in test])
    assert accuracy == 1.0
    assert len({q.domain for q in test}) == len(domains)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="split"):
        sample_queries(DEFAULT, 3, split="valid", seed=0)
    with pytest.raises(ValueError, match="n must"):
        sample_queries(DEFAULT, -1, split="train", seed=0)
    with pytest.raises(ValueError, match="unknown domain"):
        sample_queries(["nope"], 1, split="train", seed=0)
    with pytest.raises(ValueError, match="source"):
        sample_queries("code", 1, split="train", seed=0)
