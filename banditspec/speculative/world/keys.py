"""The keys of ``world.toml`` and the check of each value (:func:`read_table`).

A check takes a value and returns what is wrong with it, or ``None``.
Sampling settings are refused wherever they appear, with the reason: speed
claims need greedy decoding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from banditspec.speculative.world.kernels import LINEAR_KERNELS

__all__ = ["DECODING_KEYS", "DTYPES", "FEATURES_KEYS", "GREEDY_SETTINGS", "MODEL_KEYS", "PROMPTS_KEYS", "RAY_KEYS", "TABLES", "TARGET_KEYS",
           "Check", "read_table"]

#: Weight dtypes a model may be loaded in ("auto": the checkpoint's own).
DTYPES = ("float32", "bfloat16", "float16", "auto")
_SAMPLING = ("temperature", "top_p", "top_k", "typical_p", "min_p", "epsilon_cutoff", "eta_cutoff",
             "penalty_alpha", "diversity_penalty", "num_beam_groups", "num_return_sequences")
_GREEDY = "speed claims need greedy decoding (every speculative output must equal the greedy AR output)"

#: What is wrong with a value, or None.
Check = Callable[[Any], str | None]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(*types: type, text: str) -> Check:
    def check(value: Any) -> str | None:
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        return None if ok else f"must be {text}, got {value!r}"

    return check


def _int_at_least(low: int) -> Check:
    return lambda v: None if _is_int(v) and v >= low else f"must be an integer >= {low}, got {v!r}"


def _one_of(choices: tuple[str, ...]) -> Check:
    return lambda v: None if v in choices else f"must be one of {list(choices)}, got {v!r}"


def _fraction(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1
    return None if ok else f"must be a number strictly between 0 and 1, got {value!r}"


def _device(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"must be a device string such as 'cpu' or 'cuda:0', got {value!r}"
    try:
        torch.device(value)
    except (RuntimeError, ValueError):
        return f"must be a device string such as 'cpu' or 'cuda:0', got {value!r}"
    return None


def _token_ids(value: Any) -> str | None:
    ids = value if isinstance(value, list) else [value]
    ok = bool(ids) and all(_is_int(i) and i >= 0 for i in ids)
    return None if ok else f"must be a token id or a non-empty list of token ids, got {value!r}"


def _toml(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value)


def _only(allowed: Any) -> Check:
    return lambda v: None if v == allowed and type(v) is type(allowed) else (
        f"= {_toml(v)} is refused: {_GREEDY}; only {_toml(allowed)} is allowed")


_STRING = _kind(str, text="a string")
_BOOL = _kind(bool, text="true or false")
#: Keys of a ``[models."<model string>"]`` table (the loading options of one draft).
MODEL_KEYS: dict[str, Check] = {"tokenizer": _STRING, "gguf_file": _STRING, "dtype": _one_of(DTYPES),
                                 "linear_kernels": _one_of(LINEAR_KERNELS), "trust_remote_code": _BOOL,
                                 "revision": _STRING}
#: Keys of ``[target]``.
TARGET_KEYS: dict[str, Check] = {"model": _STRING, **MODEL_KEYS, "device": _device}
#: Keys of ``[prompts]``.
PROMPTS_KEYS: dict[str, Check] = {"path": _STRING, "prompt_field": _STRING, "group_field": _STRING,
                                   "id_field": _STRING, "split_field": _STRING, "test_fraction": _fraction,
                                   "chat_template": _BOOL}
#: Greedy ``generate()`` settings ``[decoding]`` takes besides ``max_new_tokens``, each with its check.
GREEDY_SETTINGS: dict[str, Check] = {
    "min_new_tokens": _int_at_least(0),
    "repetition_penalty": lambda v: None if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
    else f"must be a number > 0, got {v!r}",
    "no_repeat_ngram_size": _int_at_least(0),
    "eos_token_id": _token_ids,
    "pad_token_id": _token_ids,
    "suppress_tokens": _token_ids,
    "begin_suppress_tokens": _token_ids,
    "do_sample": _only(False),
    "num_beams": _only(1),
}
def _number(*, low: float, strict: bool) -> Check:
    def check(value: Any) -> str | None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (value > low if strict else value >= low)
        return None if ok else f"must be a number {'>' if strict else '>='} {low:g}, got {value!r}"

    return check


#: Keys of ``[ray]``: the ray backend's options (``docs/ray.md``).
RAY_KEYS: dict[str, Check] = {"address": _STRING, "actors": _int_at_least(1),
                               "cpus_per_actor": _number(low=0, strict=True),
                               "gpus_per_actor": _number(low=0, strict=False),
                               "memory_gb": _number(low=0, strict=True), "retries": _int_at_least(0)}
#: Keys of ``[features]``: which of the target's hidden states are the context (the ``"target"`` featurizer).
FEATURES_KEYS: dict[str, Check] = {"layer": _int_at_least(0)}
#: Keys of ``[decoding]``.
DECODING_KEYS: dict[str, Check] = {"max_new_tokens": _int_at_least(1), **GREEDY_SETTINGS}
#: The tables of a ``world.toml``.
TABLES = ("target", "prompts", "features", "decoding", "arms", "models", "ray")


def read_table(table: Any, where: str, keys: Mapping[str, Check], *,
               required: tuple[str, ...] = ()) -> dict[str, Any]:
    """``table`` as a dict once every key is known and every value passes its check.

    Raises
    ------
    ValueError
        Naming ``where`` and the key: ``table`` is not a table, a sampling
        setting, an unknown key (listing the known ones), a value its check
        refuses, or a missing ``required`` key.
    """
    if not isinstance(table, Mapping):
        raise ValueError(f"{where} must be a table, got {table!r}")
    for key, value in table.items():
        if key in _SAMPLING:
            raise ValueError(f"{where} {key}: {_GREEDY}; remove it")
        if key not in keys:
            raise ValueError(f"{where}: unknown key {key!r}; known keys are {sorted(keys)}")
        if problem := keys[key](value):
            raise ValueError(f"{where} {key} {problem}")
    for key in required:
        if key not in table:
            raise ValueError(f"{where}: missing key {key!r}")
    return dict(table)
