"""Building, caching and loading a toy world.

A world lives in ``$BANDITSPEC_CACHE/toy/<key>/`` (default cache
``~/.cache/banditspec``), with ``<key>`` = :meth:`ToyConfig.key`::

    tokenizer/            PreTrainedTokenizerFast.save_pretrained
    target/               save_pretrained of a GPT2LMHeadModel or LlamaForCausalLM (safetensors)
    drafts/<name>/        one per draft
    world.json            config, code version, parameter counts, losses,
                          build seconds and a manifest (size and SHA-256 of
                          every file), written last

The world is built in a temporary sibling folder and renamed into place, so
an interrupted build never leaves a half entry. On load the manifest is
checked first; an entry that fails the check or fails to load (a truncated
safetensors file, a missing config) is reported with a warning, removed and
rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerFast

from banditspec.speculative.cache import build_once, cache_home
from banditspec.speculative.world.loading import LoadedModels, transformers_progress

from banditspec.envs.toy.config import CODE_VERSION, DEFAULT, ToyConfig
from banditspec.envs.toy.tasks import sample_queries
from banditspec.envs.toy.tokenizer import build_tokenizer
from banditspec.envs.toy.domains import MAX_TOKENS
from banditspec.envs.toy.train import (
    create_model,
    distilled_pool,
    encode_queries,
    misaligned_permutation,
    save_model,
    train_model,
)

__all__ = ["CorruptWorldError", "ToyModels", "build_world", "cache_root", "load_world", "prepare_world"]

log = logging.getLogger(__name__)
_META = "world.json"
T = TypeVar("T")


class CorruptWorldError(RuntimeError):
    """A cached world that is incomplete or damaged."""


@dataclass
class ToyModels(LoadedModels):
    """A loaded toy world: its models (a :class:`~banditspec.speculative.world.loading.LoadedModels`) and their origin.

    Attributes
    ----------
    target : PreTrainedModel
        The target (a ``GPT2LMHeadModel`` or ``LlamaForCausalLM``, as its spec's
        ``arch`` says), in eval mode.
    drafts : dict of str to PreTrainedModel
        The drafts by name (config order), in eval mode, sharing the target's tokenizer.
    tokenizer : PreTrainedTokenizerFast
        The shared tokenizer (left padding, ``<pad>`` and ``<eos>``).
    config : ToyConfig
        What was built.
    path : Path
        The cache folder it was loaded from.
    info : dict
        ``world.json`` without the manifest: parameter counts, final losses, build seconds.
    """

    target: PreTrainedModel
    drafts: dict[str, PreTrainedModel]
    tokenizer: PreTrainedTokenizerFast
    config: ToyConfig
    path: Path
    info: dict[str, Any]


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder toy worlds live in: ``cache_dir``, else ``$BANDITSPEC_CACHE``, else ``~/.cache/banditspec``, plus ``toy``."""
    return cache_home(cache_dir) / "toy"


def _seed_of(config: ToyConfig, name: str) -> int:
    """A stable per-model seed derived from the world seed and the model's name."""
    return (config.seed * 1_000_003 + zlib.crc32(name.encode())) % 2**31


def build_world(config: ToyConfig, path: str | os.PathLike[str], *, progress: bool = True) -> None:
    """Train every model of ``config`` and save the world into the new folder ``path``.

    Training uses ``config.threads`` torch threads; the previous setting is restored.
    """
    path = Path(path)
    started = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        tokenizer = build_tokenizer(config.domains)
        tokenizer.save_pretrained(path / "tokenizer")
        pool = encode_queries(
            tokenizer, sample_queries(config, config.train_examples, split="train", seed=config.seed), config.n_positions
        )
        specs = [("target", config.target, None, False)] + [
            (f"drafts/{d.name}", d.model, d.domains, d.misaligned) for d in config.drafts
        ]
        info: dict[str, Any] = {"params": {}, "final_loss": {}, "train_seconds": {}}
        draft_pool = pool
        for name, spec, domains, misaligned in specs:
            data = (pool if name == "target" else draft_pool).subset(domains)
            if misaligned:
                data = data.relabelled(misaligned_permutation(tokenizer, config.seed))
            t0 = time.perf_counter()
            model = create_model(spec, tokenizer, config.n_positions, _seed_of(config, name))
            losses = train_model(model, spec, data, seed=_seed_of(config, name), progress=progress, desc=name)
            with transformers_progress(False):  # its "Writing model shards" bar says nothing ours do not
                save_model(model, path / name)
            key = name.removeprefix("drafts/")
            info["params"][key] = sum(p.numel() for p in model.parameters())
            info["final_loss"][key] = sum(losses[-10:]) / len(losses[-10:])
            info["train_seconds"][key] = round(time.perf_counter() - t0, 2)
            if name == "target" and config.distill_examples:
                t0 = time.perf_counter()
                distill = sample_queries(config, config.distill_examples, split="train", seed=config.seed + 1)
                draft_pool = distilled_pool(model, tokenizer, distill, max_new_tokens=MAX_TOKENS + 1)
                info["train_seconds"]["distillation_data"] = round(time.perf_counter() - t0, 2)
    finally:
        torch.set_num_threads(threads)
    info["build_seconds"] = round(time.perf_counter() - started, 2)
    manifest = {str(f.relative_to(path)): _fingerprint(f) for f in sorted(path.rglob("*")) if f.is_file()}
    meta = {"code_version": CODE_VERSION, "key": config.key(), "config": config.to_dict(), **info, "manifest": manifest}
    (path / _META).write_text(json.dumps(meta, indent=1))


def _fingerprint(file: Path) -> dict[str, Any]:
    return {"size": file.stat().st_size, "sha256": hashlib.sha256(file.read_bytes()).hexdigest()}


def _verify(config: ToyConfig, path: Path) -> dict[str, Any]:
    """``world.json`` of ``path`` without the manifest and config, once every file matches the manifest."""
    try:
        meta = json.loads((path / _META).read_text())
        for rel, expected in meta["manifest"].items():
            file = path / rel
            if not file.is_file() or _fingerprint(file) != expected:
                raise CorruptWorldError(f"{file} is missing or does not match its manifest entry")
        if meta["key"] != config.key():
            raise CorruptWorldError(f"{path} holds world {meta['key']}, expected {config.key()}")
    except CorruptWorldError:
        raise
    except Exception as exc:  # any failure to read the entry means it is damaged
        raise CorruptWorldError(f"cannot read the toy world in {path}: {type(exc).__name__}: {exc}") from exc
    return {k: v for k, v in meta.items() if k not in ("manifest", "config")}


def _load(config: ToyConfig, path: Path) -> ToyModels:
    """Check ``path``'s manifest and load it; :class:`CorruptWorldError` on any problem."""
    info = _verify(config, path)
    try:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(path / "tokenizer")
        target = AutoModelForCausalLM.from_pretrained(path / "target").eval()
        drafts = {d.name: AutoModelForCausalLM.from_pretrained(path / "drafts" / d.name).eval() for d in config.drafts}
    except Exception as exc:  # any failure to read the entry means it is damaged
        raise CorruptWorldError(f"cannot load the toy world in {path}: {type(exc).__name__}: {exc}") from exc
    return ToyModels(target, drafts, tokenizer, config, path, info)


def _cached(config: ToyConfig, cache_dir: str | os.PathLike[str] | None, progress: bool,
            read: Callable[[ToyConfig, Path], T]) -> T:
    """``read`` of the cache entry of ``config``, built first if missing, rebuilt if ``read`` finds it damaged."""
    if not isinstance(config, ToyConfig):
        raise ValueError(f"config must be a ToyConfig, got {type(config).__name__}")
    path = cache_root(cache_dir) / config.key()
    if path.exists():
        try:
            return read(config, path)
        except CorruptWorldError as exc:
            warnings.warn(f"toy world cache entry is damaged, rebuilding it: {exc}", RuntimeWarning, stacklevel=3)
            log.warning("rebuilding damaged toy world %s: %s", path, exc)
            shutil.rmtree(path, ignore_errors=True)
    log.info("building toy world %s in %s", config.key(), path)
    build_once(path, lambda tmp: build_world(config, tmp, progress=progress), done=_META)
    return read(config, path)


def prepare_world(
    config: ToyConfig = DEFAULT, *, cache_dir: str | os.PathLike[str] | None = None, progress: bool = True
) -> tuple[Path, dict[str, Any]]:
    """The cache folder of ``config``'s world, built first if needed, and its ``world.json`` info; loads no model.

    The folder holds ``tokenizer/``, ``target/`` and ``drafts/<name>/``, each
    checked against the manifest; :class:`~banditspec.envs.toy.world.ToyWorld`
    loads them as any world config's models are loaded.

    Returns
    -------
    (Path, dict)
        The folder, and parameter counts, final losses and build seconds.
    """
    return _cached(config, cache_dir, progress, lambda c, p: (p, _verify(c, p)))


def load_world(
    config: ToyConfig = DEFAULT, *, cache_dir: str | os.PathLike[str] | None = None, progress: bool = True
) -> ToyModels:
    """Load the world of ``config`` from the cache, building it first if needed.

    Parameters
    ----------
    config : ToyConfig
        The world (default :data:`banditspec.envs.toy.DEFAULT`).
    cache_dir : path, optional
        Cache folder; default ``$BANDITSPEC_CACHE`` or ``~/.cache/banditspec``.
    progress : bool
        Show tqdm progress bars while training.

    Returns
    -------
    ToyModels
    """
    return _cached(config, cache_dir, progress, _load)
