"""Helpers of the world tests: tiny random checkpoints, prompts, and world.toml files written from dicts."""

from __future__ import annotations

import itertools
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

ADJECTIVES = ("red", "blue", "big", "small", "old")
ANIMALS = ("cat", "dog", "bird", "fish")
VERBS = ("sat", "ran", "saw", "ate")
PLACES = ("mat", "house", "tree")
WORDS = ("the", "on", "to", "under", *ADJECTIVES, *ANIMALS, *VERBS, *PLACES)
#: Words of a second tokenizer with as many tokens as the first: same size, other vocabulary.
OTHER_WORDS = tuple(f"w{i}" for i in range(len(WORDS)))
CHAT_TEMPLATE = "{% for m in messages %}user : {{ m['content'] }} {% endfor %}assistant :"


def tokenizer(words: tuple[str, ...], *, chat_template: str | None = None) -> PreTrainedTokenizerFast:
    """A word-level tokenizer: ``<pad>`` 0, ``<eos>`` 1, ``<unk>`` 2, then ``words``."""
    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    if chat_template is not None:
        fast.chat_template = chat_template
    return fast


def llama(layers: int, seed: int) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(WORDS) + 3, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128, bos_token_id=None,
                         eos_token_id=1, pad_token_id=0)
    return LlamaForCausalLM(config).eval()


def t5(layers: int, seed: int) -> T5ForConditionalGeneration:
    torch.manual_seed(seed)
    config = T5Config(vocab_size=len(WORDS) + 3, d_model=32, d_kv=8, d_ff=64, num_layers=layers,
                      num_decoder_layers=layers, num_heads=4, relative_attention_num_buckets=8,
                      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return T5ForConditionalGeneration(config).eval()


@dataclass(frozen=True)
class Checkpoints:
    """Folders of tiny saved checkpoints (weights, config and tokenizer in each)."""

    root: Path
    target: Path  # Llama, 2 layers
    same: Path  # a copy of the target: every draft token is accepted
    small: Path  # Llama, 1 layer
    other_tokenizer: Path  # Llama, 1 layer, a tokenizer of the same size with other tokens
    chat_tokenizer: Path  # the target's tokenizer with a chat template, alone
    t5_target: Path
    t5_draft: Path


def prompt_rows(n: int = 40) -> list[dict[str, Any]]:
    """``n`` distinct prompts from the tokenizer's words, each with its animal as ``topic``."""
    rows = []
    for adjective, animal, verb, place in itertools.islice(itertools.product(ADJECTIVES, ANIMALS, VERBS, PLACES), n):
        rows.append({"text": f"the {adjective} {animal} {verb} on the {place}", "topic": animal})
    return rows


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def toml_value(value: Any) -> str:
    """``value`` in TOML (bool, int, float, str, list)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def to_toml(document: dict[str, Any]) -> str:
    """A TOML document: top-level values, tables, ``models`` sub-tables by quoted key, arrays of tables."""
    head, body = [], []
    for name, value in document.items():
        if isinstance(value, dict):
            plain = {k: v for k, v in value.items() if not isinstance(v, dict)}
            body += [f"[{name}]", *(f"{k} = {toml_value(v)}" for k, v in plain.items())]
            for key, sub in value.items():
                if isinstance(sub, dict):
                    body += [f"[{name}.{json.dumps(key)}]", *(f"{k} = {toml_value(v)}" for k, v in sub.items())]
        elif isinstance(value, list) and value and all(isinstance(t, dict) for t in value):
            for table in value:
                body += [f"[[{name}]]", *(f"{k} = {toml_value(v)}" for k, v in table.items())]
        else:
            head.append(f"{name} = {toml_value(value)}")
    return "\n".join(head + body) + "\n"


def llama_world(checkpoints: Checkpoints) -> dict[str, Any]:
    """A world.toml (as a dict) over the Llama checkpoints, prompts in ``prompts.jsonl`` next to it."""
    return {
        "target": {"model": str(checkpoints.target)},
        "prompts": {"path": "prompts.jsonl", "prompt_field": "text", "group_field": "topic", "test_fraction": 0.5},
        "decoding": {"max_new_tokens": 8},
        "arms": [
            {"kind": "ar", "name": "ar"},
            {"kind": "draft", "name": "same", "model": str(checkpoints.same), "block_size": 3},
            {"kind": "draft", "name": "small", "model": str(checkpoints.small), "block_size": 2, "cost": 0.1},
            {"kind": "prompt_lookup", "name": "lookup"},
            {"kind": "early_exit", "name": "exit-1", "layer": 1, "block_size": 2},
        ],
    }


def save_checkpoints(root: Path) -> Checkpoints:
    """Save every checkpoint of :class:`Checkpoints` under ``root``."""
    shared = tokenizer(WORDS)
    paths = Checkpoints(root, root / "target", root / "drafts" / "same", root / "drafts" / "small",
                        root / "drafts" / "other-tokenizer", root / "chat-tokenizer", root / "t5" / "target",
                        root / "t5" / "draft")
    saved = [(llama(2, 0), shared, paths.target), (llama(1, 1), shared, paths.small),
             (llama(1, 2), tokenizer(OTHER_WORDS), paths.other_tokenizer), (t5(2, 3), shared, paths.t5_target),
             (t5(1, 4), shared, paths.t5_draft)]
    for model, tok, folder in saved:
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
    shutil.copytree(paths.target, paths.same)
    tokenizer(WORDS, chat_template=CHAT_TEMPLATE).save_pretrained(paths.chat_tokenizer)
    return paths
