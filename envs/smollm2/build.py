"""Building and caching the SmolLM2 world: prompts, distillation data, drafts, and its ``world.toml``.

A world lives in ``$BANDITSPEC_CACHE/smollm2/<key>/`` (:meth:`SmolConfig.key`)::

    prompts.jsonl        training and held-out prompts: text, domain, split
    distill.npz          the target's greedy outputs on the distillation passages, labelled
    drafts/<name>/       the generalist and one expert per domain (safetensors)
    tables/<name>.npz    n-gram tables of the target's next tokens (distillation labels and more passages
                         of the distillation documents, labelled): one per domain, a general one
    world.toml           the world as a config file (``banditspec demo --config`` reads it too)
    world.json           sizes, losses and seconds of every step, written last

A GGUF target is converted once to safetensors under ``$BANDITSPEC_CACHE/gguf/``
(:func:`banditspec.speculative.world.gguf.converted`). The folder is built
in a temporary sibling and renamed into place
(:func:`banditspec.speculative.cache.build_once`).
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from banditspec.speculative.cache import build_once, cache_home
from banditspec.speculative.distill import (
    DistillationData,
    distillation_data,
    draft_from_target,
    labelled_text,
    train_draft,
)
from banditspec.speculative.ngram import NgramTable
from banditspec.speculative.world.config import ModelConfig

from banditspec.envs.smollm2.config import SmolConfig
from banditspec.envs.smollm2.corpora import DOMAINS, PARTS, Chunk, Document, split_prompts, text_files

__all__ = ["build_world", "passages", "prepare_world", "target_model", "world_toml"]

_DONE = "world.json"


def target_model(config: SmolConfig) -> ModelConfig:
    """The target as a loadable folder: a GGUF file converted once (cached), a folder as it is."""
    path = config.target_file()
    if path.suffix.lower() == ".gguf":
        from banditspec.speculative.world.gguf import converted  # needs transformers' GGUF support only here

        return converted(ModelConfig(str(path.parent), gguf_file=path.name))
    return ModelConfig(str(path))


def _documents(config: SmolConfig, domain: str) -> Iterable[Document]:
    if config.corpus is not None:
        return text_files(domain, config.corpus[domain])
    return DOMAINS[domain]()


def _sample(chunks: list[Chunk], n: int, rng: np.random.Generator) -> list[Chunk]:
    return [chunks[i] for i in sorted(rng.choice(len(chunks), size=min(n, len(chunks)), replace=False))]


def passages(config: SmolConfig) -> dict[str, list[Chunk]]:
    """Distillation, training, held-out and table passages of every domain, sampled with the config's seed.

    Table passages are further passages of the distillation documents, for
    the n-gram tables only.

    Raises
    ------
    ValueError
        If a domain has no passage for one of the parts.
    """
    parts: dict[str, list[Chunk]] = {part: [] for part in (*PARTS, "tables")}
    sizes = {"distill": config.distill_per_domain, "train": config.train_per_domain, "test": config.test_per_domain}
    for d, domain in enumerate(config.domain_names):
        split = split_prompts(_documents(config, domain), fractions=config.fractions, chars=config.chars,
                              per_document=config.per_document)
        for part, chunks in split.items():
            if not chunks:
                raise ValueError(f"domain {domain!r} has no {part} passages of {config.chars} characters; give it "
                                 "more documents")
            parts[part] += _sample(chunks, sizes[part], np.random.default_rng([config.seed, d, PARTS.index(part)]))
        distilled = {chunk.text for chunk in parts["distill"]}
        rest = [chunk for chunk in split["distill"] if chunk.text not in distilled]
        parts["tables"] += _sample(rest, config.table_passages_per_domain,
                                   np.random.default_rng([config.seed, d, len(PARTS)]))
    return parts


def world_toml(config: SmolConfig, target: ModelConfig) -> str:
    """The world's ``world.toml`` (paths relative to the world's folder, the target's absolute)."""
    cost = round(config.draft_layers / _layers(target), 4)
    lines = [f"[target]\nmodel = {json.dumps(target.location)}\nlinear_kernels = \"{config.target_kernels}\"\n",
             '[prompts]\npath = "prompts.jsonl"\nprompt_field = "text"\ngroup_field = "domain"\nsplit_field = "split"\n',
             *([f"[features]\nlayer = {config.feature_layer}\n"] if config.feature_layer is not None else []),
             f"[decoding]\nmax_new_tokens = {config.max_new_tokens}\n", '[[arms]]\nkind = "ar"\nname = "ar"\ncost = 1.0\n']
    for name in (*config.domain_names, "general"):
        lines.append(f'[[arms]]\nkind = "draft"\nname = "{name}"\nmodel = "./drafts/{name}"\n'
                     f"block_size = {config.block_size}\ncost = {cost}\n")
    for name in config.table_names:
        for tokens in config.table_tokens:
            lines.append(f'[[arms]]\nkind = "ngram_table"\nname = "table-{name}-{tokens}"\n'
                         f'table = "./tables/{name}.npz"\nnum_tokens = {tokens}\nmin_ngram = {config.table_min_ngram}\n'
                         f"lookup_ngram = {config.table_lookup_ngram}\n")
    for tokens in config.lookup_tokens:
        lines.append(f'[[arms]]\nkind = "prompt_lookup"\nname = "lookup-{tokens}"\nnum_tokens = {tokens}\n'
                     "max_ngram = 3\n")
    if config.exit_layer is not None:
        lines.append(f'[[arms]]\nkind = "early_exit"\nname = "exit-{config.exit_layer}"\nlayer = {config.exit_layer}\n'
                     f"block_size = {config.block_size}\ncost = {round(config.exit_layer / _layers(target), 4)}\n")
    for block_size in config.int8_block_sizes:  # cost: a quarter of the target's weight bytes
        lines.append(f'[[arms]]\nkind = "draft"\nname = "int8-b{block_size}"\nmodel = {json.dumps(target.location)}\n'
                     f"block_size = {block_size}\ncost = 0.25\n")
    for name in (*config.domain_names, "general"):
        lines.append(f'[models."./drafts/{name}"]\ntokenizer = {json.dumps(target.location)}\n')
    if config.int8_block_sizes:
        lines.append(f'[models.{json.dumps(target.location)}]\nlinear_kernels = "int8"\n')
    return "\n".join(lines)


def _write_tables(config: SmolConfig, data: DistillationData, folder: Path) -> dict[str, int]:
    """An n-gram table of the distillation labels per domain and a general one; their entries by name."""
    folder.mkdir()
    entries = {}
    for name, groups in [*((d, [d]) for d in config.domain_names), ("general", None)]:
        part = data.subset(groups)
        table = NgramTable.from_labels(part.input_ids, part.labels, part.lengths, max_ngram=config.table_max_ngram)
        table.save(folder / f"{name}.npz")
        entries[name] = len(table)
    return entries


def _layers(target: ModelConfig) -> int:
    return int(json.loads((Path(target.location) / "config.json").read_text())["num_hidden_layers"])


def build_world(config: SmolConfig, path: Path, *, progress: bool = True) -> None:
    """Build every file of the world of ``config`` into the new folder ``path`` (``world.json`` last)."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    parts = passages(config)  # first: a bad corpus is reported before any model loads
    with (path / "prompts.jsonl").open("w") as out:
        for split in ("train", "test"):
            for chunk in parts[split]:
                out.write(json.dumps({"text": chunk.text, "domain": chunk.domain, "split": split,
                                      "document": chunk.document}) + "\n")
    seconds["passages"] = time.perf_counter() - started

    t0 = time.perf_counter()
    target_config = target_model(config)
    seconds["target"] = time.perf_counter() - t0
    tokenizer = AutoTokenizer.from_pretrained(target_config.location)
    target = AutoModelForCausalLM.from_pretrained(target_config.location, dtype=torch.float32).eval()

    t0 = time.perf_counter()
    distill = parts["distill"]
    order = np.argsort([len(c.text) for c in distill], kind="stable")  # similar lengths batch with less padding
    data = distillation_data(target, tokenizer, [distill[i].text for i in order], [distill[i].domain for i in order],
                             max_new_tokens=config.max_new_tokens, batch_size=config.generate_batch,
                             progress=progress)
    data.save(path / "distill.npz")
    seconds["distillation_data"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    table_data = [data]
    if parts["tables"]:
        table_data.append(labelled_text(target, tokenizer, [c.text for c in parts["tables"]],
                                        [c.domain for c in parts["tables"]], batch_size=config.generate_batch,
                                        progress=progress))
    table_entries = _write_tables(config, DistillationData.concatenate(table_data), path / "tables")
    seconds["tables"] = time.perf_counter() - t0

    losses: dict[str, float] = {}
    t0 = time.perf_counter()
    general = draft_from_target(target, config.draft_layers)
    trained = train_draft(general, data, steps=config.general_steps, batch_size=config.batch_size, lr=config.lr,
                          seed=config.seed, progress=progress, desc="draft general")
    losses["general"] = float(np.mean(trained[-10:]))
    general.save_pretrained(path / "drafts" / "general")
    seconds["train_general"] = time.perf_counter() - t0
    for d, domain in enumerate(config.domain_names):
        t0 = time.perf_counter()
        expert = copy.deepcopy(general)
        trained = train_draft(expert, data.subset([domain]), steps=config.expert_steps, batch_size=config.batch_size,
                              lr=config.lr / 2, seed=config.seed + 1 + d, progress=progress, desc=f"draft {domain}")
        losses[domain] = float(np.mean(trained[-10:]))
        expert.save_pretrained(path / "drafts" / domain)
        seconds[f"train_{domain}"] = time.perf_counter() - t0
    (path / "world.toml").write_text(world_toml(config, target_config))
    seconds["total"] = time.perf_counter() - started
    info: dict[str, Any] = {
        "config": config.built_fields(), "target": target_config.location,
        "passages": {part: len(chunks) for part, chunks in parts.items()},
        "distillation_tokens": int(data.lengths.sum()), "final_loss": losses,
        "table_tokens": int(sum(d.lengths.sum() for d in table_data)), "table_entries": table_entries,
        "draft_params": sum(p.numel() for p in general.parameters()),
        "target_params": sum(p.numel() for p in target.parameters()),
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
    }
    (path / _DONE).write_text(json.dumps(info, indent=1))


def prepare_world(config: SmolConfig, *, cache_dir: str | os.PathLike[str] | None = None, progress: bool = True,
                  threads: int | None = None) -> tuple[Path, dict[str, Any]]:
    """The folder of ``config``'s world, built first if needed, and its ``world.json``.

    ``world.toml`` is derived from ``config`` alone, so a world built by an
    older version gets today's (its arms and loading options) on open.

    ``threads``: torch threads while building (default: torch's own); on a
    machine shared with other work, fewer threads than cores avoid
    oversubscription, which slows batched generation several-fold.
    """
    path = cache_home(cache_dir) / "smollm2" / config.key()
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        build_once(path, lambda tmp: build_world(config, tmp, progress=progress), done=_DONE)
    finally:
        torch.set_num_threads(before)
    _refresh_world_toml(path, world_toml(config, target_model(config)))
    return path, json.loads((path / _DONE).read_text())


def _refresh_world_toml(path: Path, text: str) -> None:
    """Write ``world.toml`` again where it differs (a world built by an older version); atomically."""
    if (path / "world.toml").read_text() != text:
        tmp = path / f".world.toml-{os.getpid()}"
        tmp.write_text(text)
        tmp.replace(path / "world.toml")
