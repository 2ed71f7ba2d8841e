"""``world.toml``: a target, its drafts, the arms and a prompts file, read and checked before anything loads.

:func:`load_world_config` turns the file into a :class:`WorldConfig` (frozen
dataclasses); every mistake is a ``ValueError`` naming the file and the key,
unknown keys listing the known ones, raised before any model is touched
(the keys and their checks: :mod:`banditspec.speculative.world.keys`).
``docs/world-config.md`` is the user guide; the keys in short::

    [target]      model, tokenizer, gguf_file, dtype, linear_kernels, device, trust_remote_code, revision
    [prompts]     path, prompt_field, group_field, id_field, split_field, test_fraction, chat_template
    [features]    layer (the target's hidden states the "target" featurizer pools)
    [decoding]    max_new_tokens and greedy generate() settings (GREEDY_SETTINGS)
    [[arms]]      kind, name, cost and the kind's own keys (arm_from_config)
    [models."<model string of an arm>"]   tokenizer, gguf_file, dtype, linear_kernels, trust_remote_code, revision
    [ray]         address, actors, cpus_per_actor, gpus_per_actor, memory_gb, retries (collection on Ray)

Model strings and paths that start with ``./``, ``../``, ``/`` or ``~`` are
paths; any other model string is a path when it names something in the TOML
file's folder and a hub id otherwise. Relative paths resolve against the TOML
file's folder.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from banditspec.bandits.arms import ArmSet
from banditspec.speculative.kinds import DecodingArm, arm_from_config
from banditspec.speculative.world.kernels import KERNEL_DTYPES
from banditspec.speculative.world.keys import (
    DECODING_KEYS,
    FEATURES_KEYS,
    MODEL_KEYS,
    PROMPTS_KEYS,
    RAY_KEYS,
    TABLES,
    TARGET_KEYS,
    read_table,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "PROMPT_FORMATS",
    "DecodingConfig",
    "FeaturesConfig",
    "ModelConfig",
    "PromptsConfig",
    "WorldConfig",
    "load_world_config",
]

#: Prompt file formats by file suffix.
PROMPT_FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class ModelConfig:
    """Where one checkpoint is and how to load it.

    Parameters
    ----------
    location : str
        A local folder (resolved) or a hub id.
    tokenizer : str, optional
        Where its tokenizer is, if not with the weights.
    gguf_file : str, optional
        A GGUF file in ``location`` to load instead of transformers weights.
    dtype : {"float32", "bfloat16", "float16", "auto"}, default "float32"
        Weight dtype.
    linear_kernels : {"default", "onednn", "int8", "mixed"}, default "default"
        CPU kernels of the linear layers (:mod:`banditspec.speculative.world.kernels`);
        ``"int8"`` quantizes the weights (for a draft that is a cheaper copy of a model).
    trust_remote_code : bool, default False
        Allow code shipped with the checkpoint to run (custom architectures).
    revision : str, optional
        Hub revision (branch, tag or commit).
    """

    location: str
    tokenizer: str | None = None
    gguf_file: str | None = None
    dtype: str = "float32"
    linear_kernels: str = "default"
    trust_remote_code: bool = False
    revision: str | None = None


@dataclass(frozen=True)
class PromptsConfig:
    """The prompts file and how to read it (:mod:`banditspec.speculative.world.prompts`).

    Parameters
    ----------
    path : Path
        A JSONL, CSV or Parquet file (:data:`PROMPT_FORMATS`).
    prompt_field : str, default "prompt"
        The column holding the prompt text.
    group_field : str, optional
        A column of labels (a domain, a task) for reports; learners never see it.
    id_field : str, optional
        A column of query ids (integers are kept, strings hashed); default: a
        hash of the prompt text.
    split_field : str, optional
        A column of ``"train"``/``"test"`` for a split of the user's own.
    test_fraction : float, default 0.2
        Share of queries in the test split when there is no ``split_field``.
    chat_template : bool, default False
        Wrap each prompt as one user message in the target tokenizer's chat template.
    """

    path: Path
    prompt_field: str = "prompt"
    group_field: str | None = None
    id_field: str | None = None
    split_field: str | None = None
    test_fraction: float = 0.2
    chat_template: bool = False

    @property
    def format(self) -> str:
        """``"jsonl"``, ``"csv"`` or ``"parquet"``, from the file suffix."""
        return PROMPT_FORMATS[self.path.suffix.lower()]


@dataclass(frozen=True)
class FeaturesConfig:
    """What the ``"target"`` featurizer pools (:class:`~banditspec.bandits.features.TargetHiddenStates`).

    Parameters
    ----------
    layer : int, optional
        The output of the target's first ``layer`` layers (``0``: its
        embeddings), averaged over the prompt; default: its last layer's,
        after the final norm. Batched featurization (collecting, choosing)
        then runs only the layers it needs where the target can stop early
        (a Llama-style decoder-only target), e.g. a third of the pass for
        ``layer = 9`` of 30.
    """

    layer: int | None = None


@dataclass(frozen=True)
class DecodingConfig:
    """Greedy decoding settings of every decode.

    Parameters
    ----------
    max_new_tokens : int, default 64
        New tokens per decode.
    generation : dict
        Further greedy settings (:data:`GREEDY_SETTINGS`) set on the target's
        generation config.
    """

    max_new_tokens: int = 64
    generation: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WorldConfig:
    """A world: target, drafts, arms, prompts and decoding settings.

    Parameters
    ----------
    target : ModelConfig
        The target model.
    arms : tuple of DecodingArm
        The arms in action-id order; at least one plain (kind ``"ar"``).
    drafts : dict of str to ModelConfig
        Every draft an arm names (:meth:`DecodingArm.draft_models`), by that name.
    prompts : PromptsConfig, optional
        The prompts file; a world built in code may bring its own prompt source instead.
    decoding : DecodingConfig
        Greedy decoding settings.
    features : FeaturesConfig
        Which of the target's hidden states are the context.
    device : str, default "cpu"
        Where every model runs.
    source : Path, optional
        The TOML file this came from.
    ray : dict
        Options of the ``ray`` backend (the ``[ray]`` table; ``docs/ray.md``).

    Raises
    ------
    ValueError
        If an arm is not a :class:`DecodingArm`, no arm is plain (``ar``),
        two arms share a name, an arm names a draft missing from ``drafts``,
        ``drafts`` holds one no arm names, or a model asks for other than the
        default linear kernels off the CPU or in a dtype they do not run.
    """

    target: ModelConfig
    arms: tuple[DecodingArm, ...]
    drafts: dict[str, ModelConfig] = field(default_factory=dict)
    prompts: PromptsConfig | None = None
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    device: str = "cpu"
    source: Path | None = None
    ray: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            ArmSet(self.arms)
        except ValueError as error:  # two arms with one name
            raise ValueError(f"arms: {error}") from None
        if wrong := [arm.name for arm in self.arms if not isinstance(arm, DecodingArm)]:
            raise ValueError(f"arms: {wrong} do not decode with a target model (not DecodingArm kinds)")
        if not any(arm.plain for arm in self.arms):
            raise ValueError("arms: at least one arm must be of kind 'ar' (speed-ups are relative to AR decoding)")
        named = {key for arm in self.arms for key in arm.draft_models()}
        if missing := sorted(named - set(self.drafts)):
            raise ValueError(f"arms name draft models {missing} that drafts does not hold")
        if unused := sorted(set(self.drafts) - named):
            raise ValueError(f"models: {unused} are not named by any arm; arms name {sorted(named)}")
        on_cpu = torch.device(self.device).type == "cpu"
        for what, model in {"[target]": self.target, **{f'[models."{k}"]': m for k, m in self.drafts.items()}}.items():
            if model.linear_kernels == "default":
                continue
            dtypes = KERNEL_DTYPES[model.linear_kernels]
            if not on_cpu or model.dtype not in (*dtypes, "auto"):
                raise ValueError(f'{what} linear_kernels = "{model.linear_kernels}" runs {" and ".join(dtypes)} '
                                 f"models on the CPU; this one is {model.dtype} on {self.device!r}: use "
                                 'linear_kernels = "default"')

    def arms_of(self, draft: str) -> list[str]:
        """Names of the arms that decode with the draft model ``draft``."""
        return [arm.name for arm in self.arms if draft in arm.draft_models()]


# -- reading -------------------------------------------------------------------------------------

def _resolve(value: str, base: Path, where: str, *, model: bool) -> str:
    """A path against ``base`` (it must exist), or ``value`` itself when ``model`` and it reads as a hub id."""
    explicit = value.startswith(("./", "../", "/", "~")) or value in (".", "..")
    path = base / Path(value).expanduser()
    if explicit or not model or path.exists():
        if not path.exists():
            raise ValueError(f"{where}: no such file or folder {str(path)!r}")
        return str(path.resolve())
    return value


def _model(options: dict[str, Any], location: str, base: Path, where: str, inherited: dict[str, str]) -> ModelConfig:
    """A model's loading options; ``dtype`` and ``linear_kernels`` default to ``inherited`` (the target's)."""
    tokenizer = options.get("tokenizer")
    return ModelConfig(
        location=location,
        tokenizer=None if tokenizer is None else _resolve(tokenizer, base, f"{where} tokenizer", model=True),
        gguf_file=options.get("gguf_file"),
        dtype=options.get("dtype", inherited["dtype"]),
        linear_kernels=options.get("linear_kernels", inherited["linear_kernels"]),
        trust_remote_code=options.get("trust_remote_code", False),
        revision=options.get("revision"),
    )


def _prompts(table: Any, base: Path, where: str) -> PromptsConfig:
    options = read_table(table, where, PROMPTS_KEYS, required=("path",))
    path = Path(_resolve(options.pop("path"), base, f"{where} path", model=False))
    if path.suffix.lower() not in PROMPT_FORMATS:
        raise ValueError(f"{where} path {str(path)!r}: the file must end in one of {sorted(PROMPT_FORMATS)}")
    if "split_field" in options and "test_fraction" in options:
        raise ValueError(f"{where}: give split_field (the file's own split) or test_fraction, not both")
    if "test_fraction" in options:
        options["test_fraction"] = float(options["test_fraction"])
    return PromptsConfig(path=path, **options)


def load_world_config(path: str | Path) -> WorldConfig:
    """Read and check a ``world.toml``.

    Parameters
    ----------
    path : str or Path
        The TOML file; relative paths inside it resolve against its folder.

    Returns
    -------
    WorldConfig

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        Naming the file and the key: invalid TOML, an unknown table or key
        (listing the known ones), a missing key, a value of the wrong type or
        out of range, a sampling setting, a local path that does not exist,
        an arm the kind refuses, no AR arm, two arms with one name, or a
        ``[models."..."]`` table for a model no arm names. Nothing is loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no world config file {str(path)!r}")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a valid TOML file: {error}") from None
    base = path.parent
    for table in document:
        if table not in TABLES:
            raise ValueError(f"{path}: unknown table {table!r}; known tables are {list(TABLES)}")
    for table in ("target", "prompts", "arms"):
        if table not in document:
            raise ValueError(f"{path}: missing [{table}]" if table != "arms" else f"{path}: missing [[arms]]")
    target = read_table(document["target"], f"{path}: [target]", TARGET_KEYS, required=("model",))
    inherited = {"dtype": target.get("dtype", "float32"), "linear_kernels": target.get("linear_kernels", "default")}
    target_config = _model(target, _resolve(target["model"], base, f"{path}: [target] model", model=True), base,
                           f"{path}: [target]", inherited)
    decoding = read_table(document.get("decoding", {}), f"{path}: [decoding]", DECODING_KEYS)
    arms = document["arms"]
    if not isinstance(arms, list) or not arms:
        raise ValueError(f"{path}: arms must be a non-empty array of tables ([[arms]])")
    built = tuple(arm_from_config(table, where=f"{path}: arms[{i}]", base=base) for i, table in enumerate(arms))
    options = document.get("models", {})
    if not isinstance(options, Mapping):
        raise ValueError(f"{path}: models must be a table of [models.\"<model string>\"] tables")
    drafts: dict[str, ModelConfig] = {}
    for i, arm in enumerate(built):
        for key in arm.draft_models():
            if key not in drafts:
                where = f'{path}: [models."{key}"]'
                table = read_table(options.get(key, {}), where, MODEL_KEYS)
                location = _resolve(key, base, f"{path}: arms[{i}] model", model=True)
                drafts[key] = _model(table, location, base, where, inherited)
    if unused := sorted(set(options) - set(drafts)):
        raise ValueError(f'{path}: [models."{unused[0]}"] names a model no arm uses; arms use {sorted(drafts)}')
    prompts = _prompts(document["prompts"], base, f"{path}: [prompts]")
    features = read_table(document.get("features", {}), f"{path}: [features]", FEATURES_KEYS)
    ray = read_table(document.get("ray", {}), f"{path}: [ray]", RAY_KEYS)
    max_new_tokens = decoding.pop("max_new_tokens", DecodingConfig.max_new_tokens)
    try:
        return WorldConfig(
            target=target_config,
            arms=built,
            drafts=drafts,
            prompts=prompts,
            decoding=DecodingConfig(max_new_tokens=max_new_tokens, generation=decoding),
            features=FeaturesConfig(**features),
            device=target.get("device", "cpu"),
            source=path,
            ray=ray,
        )
    except ValueError as error:  # the checks across tables
        raise ValueError(f"{path}: {error}") from None
