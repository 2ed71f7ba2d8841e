"""Featurizers: from query texts to the dense feature vectors policies see.

Three kinds, one interface (``fit(texts)``, ``transform(texts) -> (n, d)``):

* :class:`HashingFeaturizer` -- character n-gram counts hashed into ``d``
  buckets and L2-normalised (scikit-learn's ``HashingVectorizer``, computed
  without its sparse matrices); stateless.
* :class:`TfidfFeaturizer` -- TF-IDF over word n-grams reduced to ``d``
  dimensions by truncated SVD (latent semantic analysis).
* :class:`TargetHiddenStates` -- the mean-pooled hidden states of the
  target's own prefill (its last layer's, or an earlier one's): the target
  reads the prompt anyway, so its view of the query costs one batched
  forward pass, or part of one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from numbers import Integral
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.utils import murmurhash3_32

from banditspec.bandits.batching import length_batches, logits_to_keep_supported, padding_id

__all__ = ["Featurizer", "HashingFeaturizer", "Prefill", "PrefillPooling", "PromptCache", "TargetHiddenStates",
           "TfidfFeaturizer"]

#: Features of a batch of prompts from a causal LM's forward over them: ``pool(hidden_states, attention_mask)``,
#: ``hidden_states`` every layer's ``(n, T, d)`` states as the model returns them with ``output_hidden_states``
#: (padded on either side), giving ``(n, d)`` features (:meth:`TargetHiddenStates.pool`).
PrefillPooling = Callable[[Sequence[torch.Tensor], torch.Tensor], np.ndarray]


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise ValueError("texts must be a sequence of strings, got one string: wrap it in a list")
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty: need at least one query")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ValueError(f"texts must be strings; entries {bad[:5]} are not")
    return texts


def _check_ngram_range(ngram_range: tuple[int, int]) -> tuple[int, int]:
    """``ngram_range`` as a tuple if it holds two integers ``1 <= lo <= hi``; ValueError naming it otherwise."""
    pair = tuple(ngram_range) if isinstance(ngram_range, (tuple, list)) else ()
    integers = len(pair) == 2 and all(isinstance(n, Integral) and not isinstance(n, bool) for n in pair)
    if not (integers and 1 <= pair[0] <= pair[1]):
        raise ValueError(f"ngram_range must be two integers (lo, hi) with 1 <= lo <= hi, got {ngram_range!r}")
    return int(pair[0]), int(pair[1])


@runtime_checkable
class Featurizer(Protocol):
    """Turns query texts into a dense ``(n, d)`` float matrix."""

    def fit(self, texts: Sequence[str]) -> Featurizer:
        """Learn what the featurizer needs from training texts (may do nothing)."""
        ...

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Features of ``texts``, shape ``(n, d)``."""
        ...


class HashingFeaturizer:
    """Hashed character n-gram counts, L2-normalised.

    The features are those of scikit-learn's ``HashingVectorizer(n_features,
    analyzer="char_wb", ngram_range, alternate_sign=False, norm="l2")``,
    computed without its sparse machinery: a router featurizes one short
    prompt per request, and for one prompt building, deduplicating and
    normalising a sparse matrix costs several times the hashing itself.
    Here the vectorizer's own analyzer (built once) gives the n-grams; each
    is hashed as scikit-learn's ``FeatureHasher`` hashes it (MurmurHash3 of
    its UTF-8 bytes, seed 0, signed; bucket ``|h| mod d``); the counts per
    bucket are divided by their Euclidean norm (a text without n-grams, empty
    or all whitespace, stays all zeros). Counts and their squares are whole
    numbers, so the sums are exact in any order and the result equals
    ``HashingVectorizer.transform(texts).toarray()`` to the bit, not merely
    to the last ulp, which the property tests check on random texts and
    settings. Batches take this path too; timed on toy prompts it was 1.4-3
    times as fast as the vectorizer for 1 to 64 prompts at once and 14-19 %
    faster for 256 to 2048, but one noisier probe found it 6 % slower at 512
    (``docs/serving.md``): not faster for every batch.

    Parameters
    ----------
    n_features : int, default 64
        Output dimension ``d`` (hash buckets).
    ngram_range : tuple[int, int], default (1, 3)
        Character n-gram lengths (within word boundaries), ``1 <= lo <= hi``.

    Raises
    ------
    ValueError
        For ``n_features < 1`` or an invalid ``ngram_range``.
    """

    def __init__(self, n_features: int = 64, ngram_range: tuple[int, int] = (1, 3)) -> None:
        if n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {n_features}")
        self.n_features = n_features
        self.ngram_range = _check_ngram_range(ngram_range)
        self._analyzer = HashingVectorizer(analyzer="char_wb", ngram_range=self.ngram_range).build_analyzer()

    def fit(self, texts: Sequence[str]) -> HashingFeaturizer:
        """Nothing to learn; validates ``texts``."""
        _check_texts(texts)
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Hashed features, shape ``(n, n_features)``, rows of unit norm (zero for a text without n-grams)."""
        counts = np.array([self._counts(text) for text in _check_texts(texts)], dtype=float)
        norms = np.sqrt(np.einsum("ij,ij->i", counts, counts))[:, None]
        return np.divide(counts, norms, out=counts, where=norms > 0)

    def _counts(self, text: str) -> np.ndarray:
        """How many of ``text``'s n-grams fall in each bucket, ``(n_features,)``."""
        grams = self._analyzer(text)
        hashes = np.fromiter(map(murmurhash3_32, grams), dtype=np.int64, count=len(grams))
        # in int64 |-2**31| = 2**31 exactly, the value scikit-learn defines for that hash too
        return np.bincount(np.abs(hashes) % self.n_features, minlength=self.n_features)


class TfidfFeaturizer:
    """TF-IDF over word n-grams, reduced by truncated SVD.

    Parameters
    ----------
    n_components : int, default 32
        Output dimension ``d`` (capped by the vocabulary size at fit time).
    ngram_range : tuple[int, int], default (1, 2)
        Word n-gram lengths, ``1 <= lo <= hi``.
    seed : int, default 0
        Seed of the randomised SVD.

    Raises
    ------
    ValueError
        For ``n_components < 1`` or an invalid ``ngram_range``.
    """

    def __init__(self, n_components: int = 32, ngram_range: tuple[int, int] = (1, 2), seed: int = 0) -> None:
        if n_components < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components}")
        self.n_components = n_components
        self.ngram_range = _check_ngram_range(ngram_range)
        self.seed = seed

    def fit(self, texts: Sequence[str]) -> TfidfFeaturizer:
        """Learn the vocabulary, IDF weights and SVD basis from ``texts``."""
        texts = _check_texts(texts)
        tfidf = TfidfVectorizer(ngram_range=self.ngram_range, token_pattern=r"\S+", sublinear_tf=True)
        counts = tfidf.fit_transform(texts)
        k = max(1, min(self.n_components, counts.shape[1] - 1))
        self.pipeline_ = make_pipeline(tfidf, TruncatedSVD(n_components=k, random_state=self.seed))
        self.pipeline_.fit(texts)
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Reduced TF-IDF features, shape ``(n, d)``."""
        if not hasattr(self, "pipeline_"):
            raise ValueError("TfidfFeaturizer is not fitted: call fit(texts) first")
        return np.asarray(self.pipeline_.transform(_check_texts(texts)), dtype=float)


@dataclass(frozen=True, eq=False)  # an array field: no generated == or hash
class PromptCache:
    """The target's key/value cache over some tokens, with those tokens, for a decode to continue from.

    Attributes
    ----------
    ids : np.ndarray
        The token ids whose keys and values the cache holds, in order.
    past_key_values : transformers Cache
        The cache. A decode extends it, so it serves one decode.
    """

    ids: np.ndarray
    past_key_values: Any

    def holds(self, ids: np.ndarray) -> bool:
        """Whether the cache holds exactly ``ids``: made from these tokens and not extended since (by a decode)."""
        return bool(np.array_equal(self.ids, ids)) and self.past_key_values.get_seq_length() == len(ids)


class Prefill(NamedTuple):
    """What :meth:`TargetHiddenStates.prefill` returns: a prompt's features and the target's cache of the prompt."""

    features: np.ndarray
    cache: PromptCache


class TargetHiddenStates:
    """Mean-pooled hidden states of the target's prefill.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        The target (a causal LM).
    tokenizer : transformers.PreTrainedTokenizerBase
        Its tokenizer; it must have a pad token (or an eos token to pad with).
    layer : int, default -1
        Which of the model's ``hidden_states`` to pool: ``0`` the embeddings,
        ``k`` the output of the first ``k`` layers, ``-1`` the last (after
        the final norm).
    batch_size : int, default 32
        Prompts per forward pass.
    cut : callable, optional
        ``cut()`` gives a context under which a forward of ``model`` still
        computes ``hidden_states[layer]`` exactly but runs fewer layers (for
        a decoder-only target cut after layer ``layer + 1``:
        ``partial(early_exit, target, layer + 1)``); :meth:`transform` runs
        under it. :meth:`prefill` never does: the decode that reuses its
        cache needs every layer's keys and values.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: object, *, layer: int = -1, batch_size: int = 32,
                 cut: Callable[[], AbstractContextManager[Any]] | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.layer = layer
        self.batch_size = batch_size
        self.cut = cut

    def fit(self, texts: Sequence[str]) -> TargetHiddenStates:
        """Nothing to learn; validates ``texts``."""
        _check_texts(texts)
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Features ``(n, hidden_size)``: the average over prompt tokens of one layer's states."""
        texts = _check_texts(texts)
        pad_id = padding_id(self.tokenizer)
        encoded = [self.tokenizer(t)["input_ids"] for t in texts]
        if any(len(ids) == 0 for ids in encoded):
            raise ValueError("an empty prompt has no hidden states to pool")
        features: np.ndarray | None = None
        with _evaluating(self.model), torch.inference_mode(), (self.cut or nullcontext)():
            for batch in length_batches([len(ids) for ids in encoded], self.batch_size):
                width = max(len(encoded[i]) for i in batch)
                ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):
                    ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
                    mask[row, : len(encoded[i])] = 1
                ids, mask = ids.to(self.model.device), mask.to(self.model.device)
                out = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True, **self._fewest_logits())
                pooled = self.pool(out.hidden_states, mask)
                if features is None:
                    features = np.empty((len(texts), pooled.shape[1]))
                features[batch] = pooled
        return features

    def pool(self, hidden_states: Sequence[torch.Tensor], mask: torch.Tensor) -> np.ndarray:
        """The features of prompts from the target's own forward over them, as :meth:`transform` computes them.

        Parameters
        ----------
        hidden_states : sequence of torch.Tensor
            Every layer's ``(n, T, d)`` states, as the target returns them
            with ``output_hidden_states`` (a greedy pass's prefill: the
            features then cost no forward of their own).
        mask : torch.Tensor
            The ``(n, T)`` attention mask of the prompts, padded on either side.

        Returns
        -------
        np.ndarray
            ``(n, d)`` features, equal to :meth:`transform`'s up to float rounding.
        """
        return _pool(hidden_states[self.layer], mask).astype(float)

    def _fewest_logits(self) -> dict[str, int]:
        """``logits_to_keep=1`` where the model takes it: the features need its hidden states, not the logits of
        every prompt position (for a small model with a large vocabulary, a third of the pass)."""
        return {"logits_to_keep": 1} if logits_to_keep_supported(self.model) else {}

    def prefill(self, text: str) -> Prefill:
        """One prompt's features (``transform([text])``'s row) and the target's cache, for its decode to reuse.

        The cache holds the keys and values of the prompt's tokens but the
        last, and those tokens' ids, as
        :meth:`~banditspec.speculative.decoding.Decoder.generate`'s
        ``prompt_cache`` expects: the decode then skips the prompt's forward
        pass that the features already ran.

        Raises
        ------
        ValueError
            For a non-text or empty prompt, or a target that returns no cache.
        """
        [text] = _check_texts([text])
        ids = self.tokenizer(text)["input_ids"]
        if not ids:
            raise ValueError("an empty prompt has no hidden states to pool")
        inputs = torch.tensor([ids], dtype=torch.long, device=self.model.device)
        mask = torch.ones_like(inputs)
        with _evaluating(self.model), torch.inference_mode():
            out = self.model(input_ids=inputs, attention_mask=mask, output_hidden_states=True, use_cache=True,
                             **self._fewest_logits())
        cache = out.get("cache")  # transformers 5 (earlier: past_key_values)
        if cache is None:
            cache = out.get("past_key_values")
        if cache is None:
            raise ValueError(f"{type(self.model).__name__} returned no cache to decode from")
        cache.crop(-1)
        features = self.pool(out.hidden_states, mask)[0]
        return Prefill(features, PromptCache(np.asarray(ids[:-1], dtype=np.int64), cache))


@contextmanager
def _evaluating(model: torch.nn.Module) -> Iterator[None]:
    """``model`` in eval mode inside, its mode restored after; a model already in eval mode is left alone
    (switching walks every module: a sizeable share of featurizing one short prompt)."""
    if not model.training:
        yield
        return
    model.eval()
    try:
        yield
    finally:
        model.train()


def _pool(states: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """The average of ``states`` ``(n, T, d)`` over the positions ``mask`` keeps, as float32 numpy ``(n, d)``."""
    return ((states * mask[..., None]).sum(dim=1) / mask.sum(dim=1, keepdim=True)).float().cpu().numpy()
