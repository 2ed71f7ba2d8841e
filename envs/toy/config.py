"""Configuration of a toy world: which domains, which models, how they train.

A :class:`ToyConfig` is plain data (frozen dataclasses, JSON round trip) and
names its cache entry through :meth:`ToyConfig.key`, a hash of the config and
:data:`CODE_VERSION`. Bump :data:`CODE_VERSION` whenever a change to the
generators, tokenizer or training changes what a config builds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from banditspec.envs.toy.domains import get_domain

__all__ = [
    "ARCHITECTURES",
    "CODE_VERSION",
    "DEFAULT",
    "DEFAULT_DOMAINS",
    "SELF_DRAFT",
    "SIZES",
    "SPEC_BENCH",
    "SPEC_BENCH_DOMAINS",
    "TINY",
    "TINY_SELF_DRAFT",
    "DraftSpec",
    "ModelSpec",
    "ToyConfig",
    "standard_drafts",
]

CODE_VERSION = "toy-6"
DEFAULT_DOMAINS = ("arithmetic", "code", "translation", "sorting")
SPEC_BENCH_DOMAINS = ("conversation", "translation", "summarisation", "qa", "arithmetic", "copy")
#: Model architectures a :class:`ModelSpec` can build.
ARCHITECTURES = ("gpt2", "llama")


@dataclass(frozen=True)
class ModelSpec:
    """Size and training of one GPT-2 or Llama model.

    Parameters
    ----------
    n_layer, n_embd, n_head : int
        Transformer depth, width and heads (``n_embd % n_head == 0``; for
        Llama the head dimension ``n_embd / n_head`` must be even, for the
        rotary embedding).
    steps : int
        Optimiser steps (AdamW, linear warm-up over ``warmup`` steps, then
        cosine decay to 10 % of ``lr``).
    batch_size : int
        Sequences per step.
    lr : float
        Peak learning rate.
    warmup : int
        Warm-up steps.
    early_exit_loss : bool
        Add the LM loss of every intermediate layer (read out through the
        final norm and the shared head), as LayerSkip does, so the
        model's first layers can draft for it: the loss is
        :math:`\\frac{1}{L}\\sum_{l=1}^{L} \\mathrm{CE}(W\\,\\mathrm{LN}(h_l), y)`.
    arch : {"gpt2", "llama"}, default "gpt2"
        The architecture (:data:`ARCHITECTURES`). A Llama model's MLP is
        2.5 times as wide as ``n_embd`` and its key-value heads are its heads.
        Only Llama honours transformers' ``assistant_early_exit``, so only a
        Llama target can draft for itself.
    """

    n_layer: int
    n_embd: int
    n_head: int
    steps: int
    batch_size: int = 32
    lr: float = 3e-3
    warmup: int = 20
    early_exit_loss: bool = False
    arch: str = "gpt2"

    def __post_init__(self) -> None:
        for name in ("n_layer", "n_embd", "n_head", "steps", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"ModelSpec.{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"ModelSpec.n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if not self.lr > 0:
            raise ValueError(f"ModelSpec.lr must be > 0, got {self.lr!r}")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"ModelSpec.warmup must be a non-negative integer, got {self.warmup!r}")
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"ModelSpec.arch must be one of {ARCHITECTURES}, got {self.arch!r}")
        if self.arch == "llama" and (self.n_embd // self.n_head) % 2:
            raise ValueError(
                f"ModelSpec.n_embd / n_head ({self.n_embd // self.n_head}) must be even for arch 'llama' "
                "(rotary embedding)"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict without ``arch`` when it is "gpt2" (the key of a GPT-2 world predates it)."""
        data = asdict(self)
        if self.arch == "gpt2":
            del data["arch"]
        return data


@dataclass(frozen=True)
class DraftSpec:
    """One draft model of the world.

    Parameters
    ----------
    name : str
        Key in ``ToyModels.drafts`` (a folder name: letters, digits, ``-``, ``_``).
    model : ModelSpec
        Its size and training.
    domains : tuple of str or None
        Domains it is trained on; ``None`` means all the world's domains.
    misaligned : bool
        Train it on a permuted lexicon (every completion token mapped through a
        fixed derangement of the vocabulary), so it rarely agrees with the target.
    """

    name: str
    model: ModelSpec
    domains: tuple[str, ...] | None = None
    misaligned: bool = False

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c in "-_" for c in self.name):
            raise ValueError(f"DraftSpec.name must be letters, digits, '-' or '_', got {self.name!r}")
        if self.domains is not None:
            object.__setattr__(self, "domains", tuple(self.domains))
            if not self.domains:
                raise ValueError(f"DraftSpec.domains of {self.name!r} must be None (all) or non-empty")


@dataclass(frozen=True)
class ToyConfig:
    """A toy world: its domains, target, drafts and seed.

    Parameters
    ----------
    domains : tuple of str
        Registered domain names (:mod:`banditspec.envs.toy.domains`).
    target : ModelSpec
        The target model, trained on all domains.
    drafts : tuple of DraftSpec
        The drafts; names unique, domains among ``domains``.
    seed : int
        Seed of data, initialisation and batch order.
    train_examples : int
        Size of the pool of training queries the models draw batches from.
    distill_examples : int
        Training prompts whose completions the target writes (greedy) for the
        drafts to learn from (sequence-level distillation); 0 trains the
        drafts on the true completions instead.
    threads : int
        Torch threads while training (fixed, so results do not depend on the machine).
    n_positions : int
        Context length of every model.
    exit_layers : tuple of int, default ()
        Early exits of the target that draft for it (one ``EarlyExit`` arm
        each): integer layers (not bools) in ``[1, target.n_layer)``, unique;
        needs a Llama target.
    """

    domains: tuple[str, ...] = DEFAULT_DOMAINS
    target: ModelSpec = field(default_factory=lambda: ModelSpec(n_layer=6, n_embd=208, n_head=4, steps=240, batch_size=16, lr=5e-3))
    drafts: tuple[DraftSpec, ...] = ()
    seed: int = 0
    train_examples: int = 8192
    threads: int = 2
    n_positions: int = 256
    distill_examples: int = 768
    exit_layers: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "domains", tuple(self.domains))
        object.__setattr__(self, "drafts", tuple(self.drafts))
        object.__setattr__(self, "exit_layers", tuple(self.exit_layers))
        if not self.domains or len(set(self.domains)) != len(self.domains):
            raise ValueError(f"ToyConfig.domains must be non-empty and unique, got {self.domains!r}")
        for name in self.domains:
            get_domain(name)
        names = [d.name for d in self.drafts]
        if len(set(names)) != len(names):
            raise ValueError(f"ToyConfig.drafts names must be unique, got {names}")
        for draft in self.drafts:
            unknown = set(draft.domains or ()) - set(self.domains)
            if unknown:
                raise ValueError(f"draft {draft.name!r} uses domains {sorted(unknown)} not in ToyConfig.domains")
        for name in ("seed", "train_examples", "threads", "n_positions", "distill_examples"):
            value = getattr(self, name)
            zero_ok = name in ("seed", "distill_examples")
            if not isinstance(value, int) or value < (0 if zero_ok else 1):
                raise ValueError(f"ToyConfig.{name} must be a {'non-negative' if zero_ok else 'positive'} integer, got {value!r}")
        if self.exit_layers:
            if self.target.arch != "llama":
                raise ValueError(f"ToyConfig.exit_layers needs a target with arch 'llama', got {self.target.arch!r}")
            if len(set(self.exit_layers)) != len(self.exit_layers) or not all(
                isinstance(k, int) and not isinstance(k, bool) and 1 <= k < self.target.n_layer for k in self.exit_layers
            ):
                raise ValueError(
                    f"ToyConfig.exit_layers must be unique integers in [1, {self.target.n_layer}) "
                    f"(the target's layers), got {self.exit_layers!r}"
                )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; :meth:`from_dict` inverts it.

        Fields added since the first toy worlds (``ModelSpec.arch`` "gpt2",
        empty ``exit_layers``) are left out at their defaults, so the keys of
        the worlds built before them do not change.
        """
        data = asdict(self)
        data["target"] = self.target.to_dict()
        for draft, spec in zip(data["drafts"], self.drafts):
            draft["model"] = spec.model.to_dict()
        if not self.exit_layers:
            del data["exit_layers"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToyConfig:
        """Rebuild a config from :meth:`to_dict` output (with or without the fields added later)."""
        drafts = tuple(
            DraftSpec(d["name"], ModelSpec(**d["model"]), None if d["domains"] is None else tuple(d["domains"]), d["misaligned"])
            for d in data["drafts"]
        )
        return cls(**{**data, "domains": tuple(data["domains"]), "target": ModelSpec(**data["target"]), "drafts": drafts})

    def key(self) -> str:
        """Version key: 16 hex digits of SHA-256 over the config's JSON and :data:`CODE_VERSION`."""
        blob = json.dumps({"code": CODE_VERSION, "config": self.to_dict()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def draft(self, name: str) -> DraftSpec:
        """The draft spec called ``name``."""
        for d in self.drafts:
            if d.name == name:
                return d
        raise ValueError(f"no draft {name!r}; drafts: {[d.name for d in self.drafts]}")


def standard_drafts(domains: Sequence[str], expert: ModelSpec, *, misaligned: bool = True) -> tuple[DraftSpec, ...]:
    """One expert per domain (``expert-<domain>``), a ``generalist`` of the same size
    and steps trained on all domains, and optionally a ``misaligned`` one."""
    drafts = [DraftSpec(f"expert-{d}", expert, (d,)) for d in domains]
    drafts.append(DraftSpec("generalist", expert))
    if misaligned:
        drafts.append(DraftSpec("misaligned", expert, misaligned=True))
    return tuple(drafts)


_DRAFT = ModelSpec(n_layer=1, n_embd=64, n_head=2, steps=200, batch_size=8, lr=5e-3, warmup=10)

#: The default world: a 6-layer target (3.2M parameters) and 1-layer drafts (0.08M) distilled from it, on four domains.
DEFAULT = ToyConfig(drafts=standard_drafts(DEFAULT_DOMAINS, _DRAFT))

#: Generalist drafts of three sizes (about 0.03M, 0.08M and 0.46M parameters) on the default domains and
#: target: the larger draft agrees with the target more often and costs more per step (``reproduce alpha``).
SIZES = replace(DEFAULT, drafts=(
    DraftSpec("small", ModelSpec(n_layer=1, n_embd=32, n_head=2, steps=400, batch_size=4, lr=5e-3, warmup=10)),
    DraftSpec("medium", _DRAFT),
    DraftSpec("large", ModelSpec(n_layer=2, n_embd=128, n_head=4, steps=400, batch_size=8, lr=3e-3, warmup=10)),
))

#: Six Spec-Bench-like task categories, one expert per category and a generalist (``reproduce multitask``).
SPEC_BENCH = replace(DEFAULT, domains=SPEC_BENCH_DOMAINS, drafts=standard_drafts(SPEC_BENCH_DOMAINS, _DRAFT, misaligned=False))

#: A world for tests that builds in seconds (its models learn little).
TINY = replace(
    DEFAULT,
    target=ModelSpec(n_layer=2, n_embd=32, n_head=2, steps=12, batch_size=8, warmup=2),
    drafts=standard_drafts(DEFAULT_DOMAINS[:2], ModelSpec(n_layer=1, n_embd=16, n_head=2, steps=4, batch_size=8, warmup=1)),
    train_examples=256,
    distill_examples=64,
    threads=1,
)

#: A world whose target drafts for itself: a 6-layer Llama target (3.0M parameters) trained with the
#: early-exit loss, early exits after layers 1, 2 and 3, and the default generalist draft (``reproduce self-draft``).
SELF_DRAFT = replace(
    DEFAULT,
    target=replace(DEFAULT.target, arch="llama", early_exit_loss=True),
    drafts=(DraftSpec("generalist", _DRAFT),),
    exit_layers=(1, 2, 3),
)

#: :data:`SELF_DRAFT` for tests: :data:`TINY`'s sizes with a 2-layer Llama target and an exit after layer 1.
TINY_SELF_DRAFT = replace(
    TINY,
    target=replace(TINY.target, arch="llama", early_exit_loss=True),
    drafts=(TINY.draft("generalist"),),
    exit_layers=(1,),
)
