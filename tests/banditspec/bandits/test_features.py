import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import HashingVectorizer
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
from tokenizers import Tokenizer, models, pre_tokenizers

from banditspec.bandits.features import HashingFeaturizer, TargetHiddenStates, TfidfFeaturizer

TEXTS = ["add 12 and 30", "sort 5 3 9 1", "translate red house", "add 7 and 8", "sort 2 2 1", "translate blue cat"]


def test_hashing_is_stateless_normalised_and_shaped():
    f = HashingFeaturizer(n_features=16).fit(TEXTS)
    X = f.transform(TEXTS)
    assert X.shape == (6, 16)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0)
    np.testing.assert_array_equal(X, HashingFeaturizer(n_features=16).transform(TEXTS))


WHITESPACE = st.text(st.sampled_from(" \t\n\r\x0b\x0c\x1c\x85\xa0\u2003\u2028\u3000"), max_size=12)
WORDS = st.lists(st.text(st.characters(codec="utf-8"), min_size=1, max_size=30), max_size=60).map(" ".join)
TEXTS_ANY = st.one_of(st.text(), WHITESPACE, WORDS, st.text(min_size=500, max_size=3000))


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(TEXTS_ANY, min_size=1, max_size=6), n_features=st.integers(1, 5000),
       low=st.integers(1, 4), extra=st.integers(0, 3))
def test_hashing_equals_scikit_learn_s_hashing_vectorizer_to_the_bit(texts, n_features, low, extra):
    ngram_range = (low, low + extra)
    reference = HashingVectorizer(n_features=n_features, analyzer="char_wb", ngram_range=ngram_range,
                                  alternate_sign=False, norm="l2").transform(texts).toarray()
    features = HashingFeaturizer(n_features=n_features, ngram_range=ngram_range).transform(texts)
    assert features.dtype == reference.dtype == np.float64
    np.testing.assert_array_equal(features, reference)


@pytest.mark.parametrize("text", ["", " ", "\t\n \u3000"])
def test_hashing_a_text_without_n_grams_gives_zeros(text):
    features = HashingFeaturizer(n_features=8).transform([text, "a"])
    np.testing.assert_array_equal(features[0], np.zeros(8))
    assert np.linalg.norm(features[1]) == 1.0


def test_tfidf_separates_domains():
    f = TfidfFeaturizer(n_components=3).fit(TEXTS * 5)
    X = f.transform(TEXTS)
    assert X.shape == (6, 3)
    same = np.linalg.norm(X[0] - X[3])
    other = np.linalg.norm(X[0] - X[1])
    assert same < other


def test_bad_texts():
    with pytest.raises(ValueError, match="one string"):
        HashingFeaturizer().transform("just one")
    with pytest.raises(ValueError, match="empty"):
        HashingFeaturizer().transform([])
    with pytest.raises(ValueError, match="not fitted"):
        TfidfFeaturizer().transform(TEXTS)


@pytest.mark.parametrize("featurizer", [HashingFeaturizer, TfidfFeaturizer])
@pytest.mark.parametrize("ngram_range", [(0, 2), (3, 2), (1.0, 2), (1, True), (1,), (1, 2, 3), "12", 3])
def test_an_invalid_ngram_range_is_refused_by_name(featurizer, ngram_range):
    with pytest.raises(ValueError, match=r"ngram_range must be two integers \(lo, hi\) with 1 <= lo <= hi, got"):
        featurizer(ngram_range=ngram_range)


def test_an_ngram_range_of_integers_is_kept_as_a_tuple():
    assert HashingFeaturizer(ngram_range=[np.int64(2), 4]).ngram_range == (2, 4)
    assert TfidfFeaturizer(ngram_range=(1, 1)).ngram_range == (1, 1)


def tiny_target():
    vocab = {w: i for i, w in enumerate(["<pad>", "<eos>", *sorted({w for t in TEXTS for w in t.split()})])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_positions=32, n_embd=16, n_layer=1, n_head=2))
    return model, tokenizer


def test_target_hidden_states_are_padding_invariant():
    model, tokenizer = tiny_target()
    f = TargetHiddenStates(model, tokenizer, batch_size=4).fit(TEXTS)
    together = f.transform(TEXTS)
    alone = np.concatenate([f.transform([t]) for t in TEXTS])
    assert together.shape == (6, 16)
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_target_hidden_states_skip_the_logits_of_all_but_the_last_position():
    model, tokenizer = tiny_target()
    widths = []
    model.register_forward_hook(lambda module, args, out: widths.append(out.logits.shape[1]))
    TargetHiddenStates(model, tokenizer, batch_size=4).transform(TEXTS)
    TargetHiddenStates(model, tokenizer).prefill(TEXTS[0])
    assert widths == [1, 1, 1]


def test_target_hidden_states_compute_in_eval_mode_and_give_a_training_model_back_in_training_mode():
    model, tokenizer = tiny_target()
    f = TargetHiddenStates(model, tokenizer)  # GPT-2's dropout (0.1) would make features random in training mode
    seen = []
    model.register_forward_pre_hook(lambda module, _: seen.append(module.training))
    model.train()
    first = f.transform(TEXTS[:2])
    features, _ = f.prefill(TEXTS[0])
    with pytest.raises(ValueError, match="empty prompt"):
        f.transform([TEXTS[0], " "])  # a failure midway still gives the model back in training mode
    assert model.training and seen and not any(seen)
    np.testing.assert_array_equal(features, first[0])
    model.eval()
    np.testing.assert_array_equal(f.transform(TEXTS[:2]), first)
    assert not model.training
