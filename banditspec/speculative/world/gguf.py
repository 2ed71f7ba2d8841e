"""GGUF checkpoints converted once to safetensors in the cache, then loaded like any transformers folder.

transformers reads a GGUF file (with the ``gguf`` package) by dequantizing
every tensor, which takes tens of seconds, and refuses ``save_pretrained``
on the result ("quantized with gguf and is not serializable"). :func:`convert_gguf`
builds a clean model from the file's config without its
``quantization_config``, loads the dequantized state dict into it and saves
that, with the tokenizer read from the same file. :func:`converted` does this
once per GGUF file (keyed by a hash of its bytes) under
``$BANDITSPEC_CACHE/gguf/``; later runs load the safetensors folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

from banditspec.speculative.cache import build_once, cache_home, file_digest

__all__ = ["convert_gguf", "converted", "gguf_path"]

_DONE = "converted.json"


def gguf_path(location: str, gguf_file: str) -> Path:
    """The GGUF file ``gguf_file`` of the local folder ``location``.

    Raises
    ------
    ValueError
        If ``location`` is not a local folder holding that file (hub repos are
        converted from their downloaded copy: give its folder).
    """
    path = Path(location) / gguf_file
    if not path.is_file():
        raise ValueError(f"no GGUF file {str(path)!r}: gguf_file must name a file in the model's local folder")
    return path


def convert_gguf(path: str | os.PathLike[str], out: str | os.PathLike[str], *, trust_remote_code: bool = False
                 ) -> dict[str, Any]:
    """Save the GGUF checkpoint ``path`` as a float32 safetensors folder ``out`` (weights, config, tokenizer).

    Returns
    -------
    dict
        What was converted: the source file, its architecture and parameter count.
    """
    path, out = Path(path), Path(out)
    kwargs = {"gguf_file": path.name, "trust_remote_code": trust_remote_code}
    config = AutoConfig.from_pretrained(path.parent, **kwargs)
    cls = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
    loaded = cls.from_pretrained(path.parent, config=config, dtype=torch.float32, **kwargs)
    clean_config = type(config).from_dict({k: v for k, v in config.to_dict().items() if k != "quantization_config"})
    clean = cls.from_config(clean_config, dtype=torch.float32)
    clean.load_state_dict(loaded.state_dict(), strict=True)
    clean.generation_config = loaded.generation_config
    clean.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(path.parent, **kwargs).save_pretrained(out)
    info = {"gguf": str(path), "model_type": clean_config.model_type,
            "params": sum(p.numel() for p in clean.parameters())}
    (out / _DONE).write_text(json.dumps(info, indent=1))
    return info


def converted(model: Any, cache_dir: str | os.PathLike[str] | None = None) -> Any:
    """``model`` (a ``ModelConfig`` with a ``gguf_file``) pointing at its safetensors copy, converted first if needed.

    The copy lives in ``<cache>/gguf/<file stem>-<hash of the file>/``; its
    tokenizer is used unless ``model`` names one of its own.
    """
    path = gguf_path(model.location, model.gguf_file)
    folder = cache_home(cache_dir) / "gguf" / f"{path.stem}-{file_digest(path)}"
    build_once(folder, lambda tmp: convert_gguf(path, tmp, trust_remote_code=model.trust_remote_code), done=_DONE)
    return replace(model, location=str(folder), gguf_file=None, revision=None)
