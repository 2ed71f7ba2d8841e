"""Loading a world's target, its tokenizer and every draft its arms name, checked before any weights load.

:func:`load_models` works in two passes. The first reads what loads fast (each
model's ``AutoConfig`` and tokenizer) and refuses, naming the arm and both
models, a draft whose tokenizer differs from the target's (their vocabularies
are compared) or that is decoder-only where the target is encoder-decoder (or
the other way round). The second loads the weights, with a progress bar:
``AutoModelForSeq2SeqLM`` for an encoder-decoder config (T5, BART),
``AutoModelForCausalLM`` otherwise, then runs their linear layers on the
kernels the config asks for (``linear_kernels``).

Safety: code shipped with a checkpoint runs only where its config sets
``trust_remote_code = true``; a folder with safetensors weights is loaded from
them alone (``use_safetensors=True``), and a ``.bin`` checkpoint is unpickled
only with ``torch.load(weights_only=True)`` (passed explicitly; transformers
5 also defaults to it and refuses torch < 2.6 for it). A GGUF file (it needs
the ``gguf`` package) is converted once to a safetensors folder in the cache
(:mod:`banditspec.speculative.world.gguf`) and loaded from there.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer, PretrainedConfig
from transformers.utils import is_gguf_available
from transformers.utils import logging as transformers_logging

from banditspec.speculative.world.config import ModelConfig, WorldConfig
from banditspec.speculative.world.gguf import converted
from banditspec.speculative.world.kernels import use_linear_kernels

__all__ = ["LoadedModels", "load_models", "transformers_progress"]

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}


@dataclass
class LoadedModels:
    """A world's models, in eval mode on the world's device.

    Attributes
    ----------
    target : PreTrainedModel
        The target.
    drafts : dict of str to PreTrainedModel
        The drafts by the model string their arms name.
    tokenizer : PreTrainedTokenizerBase
        The target's tokenizer (every draft shares its vocabulary).
    """

    target: Any
    drafts: dict[str, Any]
    tokenizer: Any

    @property
    def encoder_decoder(self) -> bool:
        """Whether the target is an encoder-decoder model."""
        return bool(getattr(self.target.config, "is_encoder_decoder", False))


def _source_kwargs(model: ModelConfig) -> dict[str, Any]:
    """What every ``from_pretrained`` of ``model`` gets: never remote code unless the config allows it."""
    kwargs: dict[str, Any] = {"trust_remote_code": model.trust_remote_code}
    if model.revision is not None:
        kwargs["revision"] = model.revision
    if model.gguf_file is not None:
        kwargs["gguf_file"] = model.gguf_file
    return kwargs


def _config(model: ModelConfig, what: str) -> PretrainedConfig:
    try:
        return AutoConfig.from_pretrained(model.location, **_source_kwargs(model))
    except (OSError, ValueError) as error:
        hint = ("; set trust_remote_code = true for it only if you trust that code"
                if "trust_remote_code" in str(error) and not model.trust_remote_code else "")
        raise ValueError(f"cannot read the config of {what} ({model.location}): {error}{hint}") from error


def _tokenizer(model: ModelConfig, what: str) -> Any:
    kwargs = _source_kwargs(model)
    if model.tokenizer is not None:  # a separate folder: no GGUF file there
        kwargs.pop("gguf_file", None)
    where = model.tokenizer or model.location
    try:
        return AutoTokenizer.from_pretrained(where, **kwargs)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot load the tokenizer of {what} from {where}: {error}; if the tokenizer lives "
                         "elsewhere, name its folder with the model's tokenizer key") from error


def _weights(model: ModelConfig, config: PretrainedConfig, device: str, what: str) -> Any:
    kwargs = _source_kwargs(model) | {"config": config, "dtype": _DTYPES[model.dtype], "weights_only": True}
    folder = Path(model.location)
    if model.gguf_file is None and folder.is_dir() and any(folder.glob("*.safetensors")):
        kwargs["use_safetensors"] = True
    cls = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
    try:
        loaded = cls.from_pretrained(model.location, **kwargs).to(device).eval()
    except pickle.UnpicklingError as error:
        raise ValueError(f"{what} ({model.location}): its pickled checkpoint holds more than tensors and is not "
                         f"loaded (torch.load weights_only=True refused it: {str(error).splitlines()[0]}); "
                         "use safetensors weights") from error
    return use_linear_kernels(loaded, model.linear_kernels)


@contextmanager
def transformers_progress(shown: bool) -> Iterator[None]:
    """transformers' own progress bars ("Loading weights", downloads) off inside unless ``shown``; restored after."""
    if shown or not transformers_logging.is_progress_bar_enabled():
        yield
        return
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.enable_progress_bar()


def _family(config: PretrainedConfig) -> str:
    return "an encoder-decoder" if getattr(config, "is_encoder_decoder", False) else "a decoder-only"


def load_models(config: WorldConfig, *, progress: bool = True) -> LoadedModels:
    """Load the target, its tokenizer and every draft of ``config``.

    Parameters
    ----------
    config : WorldConfig
        The world.
    progress : bool, default True
        A progress bar over the models whose weights load; when False,
        transformers' own progress bars are off as well while they load.

    Returns
    -------
    LoadedModels

    Raises
    ------
    ImportError
        If a model is a GGUF file and the ``gguf`` package is missing.
    ValueError
        Before any weights load: a config or tokenizer that cannot be read, a
        device that is not available, a draft with another tokenizer than
        the target's, or a draft of the other architecture family
        (decoder-only vs encoder-decoder).
    """
    drafts = {f"draft {key!r}": model for key, model in config.drafts.items()}
    models: Mapping[str, ModelConfig] = {"target": config.target, **drafts}
    if any(m.gguf_file is not None for m in models.values()) and not is_gguf_available():
        raise ImportError("a model of this world is a GGUF file (gguf_file) and reading it needs the gguf package: "
                          "pip install gguf")
    if torch.device(config.device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"[target] device {config.device!r} is not available on this machine")
    models = {what: model if model.gguf_file is None else converted(model) for what, model in models.items()}
    target_model = models["target"]
    configs = {what: _config(model, what) for what, model in models.items()}
    tokenizer = _tokenizer(target_model, "the target")
    target_vocab = tokenizer.get_vocab()
    for key in config.drafts:
        what = f"draft {key!r}"
        model = models[what]
        arms = ", ".join(repr(a) for a in config.arms_of(key))
        if _family(configs[what]) != _family(configs["target"]):
            raise ValueError(f"arm {arms}: draft {model.location} is {_family(configs[what])} model but the target "
                             f"{config.target.location} is {_family(configs['target'])} model; a draft must be of the "
                             "target's family")
        draft_tokenizer = _tokenizer(model, what)
        vocab = draft_tokenizer.get_vocab()
        if vocab != target_vocab:
            differ = len(set(vocab.items()) ^ set(target_vocab.items()))
            raise ValueError(
                f"arm {arms}: the draft's tokenizer {model.tokenizer or model.location} ({len(vocab)} tokens) is not "
                f"the target's tokenizer {config.target.tokenizer or config.target.location} ({len(target_vocab)} "
                f"tokens; {differ} token-id pairs differ); every draft must share the target's tokenizer"
            )
    loaded = {}
    for what, model in tqdm(models.items(), desc="loading models", unit="model", disable=not progress):
        # transformers' bars only while a hub model may download: a local folder's "Loading weights" is noise
        with transformers_progress(progress and not Path(model.location).is_dir()):
            loaded[what] = _weights(model, configs[what], config.device, what)
    target = loaded.pop("target")
    return LoadedModels(target=target, drafts={k: loaded[f"draft {k!r}"] for k in config.drafts}, tokenizer=tokenizer)
