"""A new arm kind: draft by copying the continuation of the longest match in a text corpus."""

from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from banditspec.speculative.counterfactual import simulate_proposals
from banditspec.speculative.drafting import ProposalDraft
from banditspec.speculative.kinds import ARM_KINDS, DecodeRequest, DecodingArm, Models, SimulatedDecode, Trace


@lru_cache(maxsize=8)
def corpus_ids(path: str, tokenizer: Any) -> np.ndarray:
    """The corpus file as the target's token ids (read and encoded once)."""
    return np.asarray(tokenizer(Path(path).read_text(), add_special_tokens=False)["input_ids"], dtype=np.int64)


def lookup(corpus: np.ndarray, context: np.ndarray, *, ngram: int, num_tokens: int) -> np.ndarray:
    """The ``num_tokens`` corpus tokens after the last occurrence of the context's longest matching tail."""
    for n in range(min(ngram, context.size), 0, -1):
        windows = np.lib.stride_tricks.sliding_window_view(corpus[:-1], n)
        hits = np.flatnonzero((windows == context[-n:]).all(axis=1))
        if hits.size:
            return corpus[hits[-1] + n : hits[-1] + n + num_tokens]
    return context[:0]


@dataclass(frozen=True)
class CorpusLookup(DecodingArm):
    """Retrieval drafting: proposals are copied from ``corpus``, a text file."""

    kind: ClassVar[str] = "corpus"
    corpus: str = ""
    ngram: int = 3
    num_tokens: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        if not Path(self.corpus).is_file():
            raise ValueError(f"CorpusLookup.corpus must be a text file, got {self.corpus!r} for arm {self.name!r}")

    def _propose(self, tokenizer: Any) -> Any:
        return partial(lookup, corpus_ids(self.corpus, tokenizer), ngram=self.ngram, num_tokens=self.num_tokens)

    def candidate_generator(self, models: Models, request: DecodeRequest) -> ProposalDraft:
        return ProposalDraft(self._propose(models.tokenizer), max_length=request.max_length,
                             eos_token_ids=request.eos_token_ids)

    def simulate(self, trace: Trace) -> SimulatedDecode:
        return simulate_proposals(trace.prefix, trace.output, self._propose(trace.tokenizer),
                                  max_new_tokens=trace.max_new_tokens, eos_token_ids=trace.eos_token_ids)


ARM_KINDS.register("corpus", CorpusLookup)  # or, from a package: a `banditspec.arms` entry point
