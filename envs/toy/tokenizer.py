"""The toy world's tokenizer: a closed word-level vocabulary with digit splitting.

Built with the ``tokenizers`` library: a ``WordLevel`` model trained on the
registered domains' word lists, a ``Metaspace`` pre-tokenizer (each word is
one token ``▁word``) followed by a split of every digit into its own token
(``▁1 2 7`` for ``127``), and the matching ``Metaspace`` decoder, so that
``decode(encode(text)) == text`` for any single-space-separated text. It is
wrapped as a transformers ``PreTrainedTokenizerFast`` with ``<pad>``,
``<eos>`` and ``<unk>`` tokens and saved next to the models.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from banditspec.envs.toy.domains import get_domain

__all__ = ["EOS", "PAD", "UNK", "build_tokenizer"]

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"


def build_tokenizer(domains: Iterable[str]) -> PreTrainedTokenizerFast:
    """A tokenizer whose vocabulary covers every word of ``domains`` and all digits.

    The vocabulary is sorted, so it depends only on the set of words, never on
    sampled text. Ids: ``<pad>`` 0, ``<eos>`` 1, ``<unk>`` 2.
    """
    words: set[str] = set()
    for name in domains:
        words.update(get_domain(name).words)
    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(prepend_scheme="always"), pre_tokenizers.Split(Regex(r"▁?[0-9]"), "isolated")]
    )
    tok.decoder = decoders.Metaspace(prepend_scheme="always")
    corpus = sorted(words) + [" ".join("0123456789"), "00123456789"]  # "▁d" and bare "d" for every digit
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=[PAD, EOS, UNK], min_frequency=0, show_progress=False))
    # re-number: specials first, the rest alphabetically, so ids never depend on counts
    vocab = [PAD, EOS, UNK] + sorted(set(tok.get_vocab()) - {PAD, EOS, UNK})
    tok.model = models.WordLevel({t: i for i, t in enumerate(vocab)}, unk_token=UNK)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK, padding_side="left")
