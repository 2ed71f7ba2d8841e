from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
from transformers.utils import logging

from banditspec.bandits.arms import ArmSet
from banditspec.bandits.env import Queries
from banditspec.bandits.registry import Registry
from banditspec.speculative.collect import Collector
from banditspec.speculative.counterfactual import SimulatedDecode, simulate_proposals
from banditspec.speculative.decoding import Decoder
from banditspec.speculative.drafting import ProposalDraft
from banditspec.speculative.kinds import (
    ARM_KINDS,
    Autoregressive,
    DecodeRequest,
    DecodingArm,
    DraftModel,
    EarlyExit,
    Models,
    NgramDraft,
    PromptLookup,
    Trace,
    arm_from_config,
)
from banditspec.speculative.latency import LatencyModel
from tests.banditspec.speculative.models import prompts, tiny_llama, word_tokenizer

logging.set_verbosity_error()
MAX_NEW = 16
BUILT_IN = {"ar": Autoregressive, "draft": DraftModel, "prompt_lookup": PromptLookup, "early_exit": EarlyExit,
            "ngram_table": NgramDraft}


@dataclass(frozen=True)
class RepeatLast(DecodingArm):
    """A kind defined outside the engine: it proposes the context's last token ``num_tokens`` times."""

    kind: ClassVar[str] = "repeat"
    num_tokens: int = 3

    def _propose(self, context: np.ndarray) -> np.ndarray:
        return np.repeat(context[-1:], self.num_tokens)

    def candidate_generator(self, models: Models, request: DecodeRequest) -> ProposalDraft:
        return ProposalDraft(self._propose, max_length=request.max_length, eos_token_ids=request.eos_token_ids)

    def simulate(self, trace: Trace) -> SimulatedDecode:
        return simulate_proposals(trace.prefix, trace.output, self._propose, max_new_tokens=trace.max_new_tokens,
                                  eos_token_ids=trace.eos_token_ids)


@dataclass(frozen=True)
class MeasuredOnly(DecodingArm):
    """A kind that decodes (it proposes the context's last two tokens) but cannot be simulated."""

    kind: ClassVar[str] = "measured_only"

    def candidate_generator(self, models: Models, request: DecodeRequest) -> ProposalDraft:
        return ProposalDraft(lambda context: context[-2:], max_length=request.max_length,
                             eos_token_ids=request.eos_token_ids)


@pytest.fixture
def kinds(monkeypatch):
    """ARM_KINDS with the custom kinds registered at run time for one test, then as before."""
    monkeypatch.setattr(ARM_KINDS, "_runtime", {})
    ARM_KINDS.register("repeat", RepeatLast)
    ARM_KINDS.register("measured_only", MeasuredOnly)
    return ARM_KINDS


@pytest.fixture(scope="module")
def decoder():
    tokenizer = word_tokenizer([f"w{i}" for i in range(60)])
    return Decoder(tiny_llama(len(tokenizer), seed=3), tokenizer, max_new_tokens=MAX_NEW, threads=1)


def counts(result_or_simulation):
    m = getattr(result_or_simulation, "measurement", result_or_simulation)
    return m.target_calls, m.proposed_tokens, m.accepted_tokens


@pytest.mark.parametrize(
    "table, arm",
    [
        ({"kind": "ar", "name": "ar"}, Autoregressive("ar")),
        ({"kind": "draft", "name": "d", "model": "m", "block_size": 3, "schedule": "heuristic",
          "confidence_threshold": 0.4, "cost": 0.2},
         DraftModel("d", cost=0.2, model="m", block_size=3, schedule="heuristic", confidence_threshold=0.4)),
        ({"kind": "draft", "name": "d", "model": "m"}, DraftModel("d", model="m", block_size=5)),
        ({"kind": "prompt_lookup", "name": "pl", "num_tokens": 4, "max_ngram": 3},
         PromptLookup("pl", num_tokens=4, max_ngram=3)),
        ({"kind": "early_exit", "name": "e", "layer": 2, "block_size": 3}, EarlyExit("e", layer=2, block_size=3)),
        ({"kind": "ngram_table", "name": "n", "table": "t.npz", "num_tokens": 3, "min_ngram": 2, "max_ngram": 4},
         NgramDraft("n", table="t.npz", num_tokens=3, min_ngram=2, max_ngram=4)),
    ],
)
def test_arm_from_config_builds_the_arm_a_table_describes(table, arm):
    built = arm_from_config(table)
    assert built == arm and type(built) is type(arm)
    assert arm_from_config(built.describe()) == built  # a description is a table that rebuilds the arm


@pytest.mark.parametrize(
    "table, message",
    [
        (["draft"], "an arm must be a table of keys, got list"),
        ({"name": "a"}, "missing key 'kind'"),
        ({"kind": "ar"}, "missing key 'name'"),
        ({"kind": "beam", "name": "a"}, "unknown arm kind 'beam'; known: ar, draft, early_exit, ngram_table, prompt_lookup"),
        ({"kind": "draft", "name": "a", "model": "m", "blocksize": 3},
         "arm kind 'draft' takes no key 'blocksize'; its keys are .*'block_size'"),
        ({"kind": "ar", "name": "a", "block_size": 3}, "arm kind 'ar' takes no key 'block_size'"),
        ({"kind": "draft", "name": "a"}, "DraftModel.model must name a draft"),
        ({"kind": "draft", "name": "a", "model": "m", "block_size": 0},
         "DraftModel.block_size of arm 'a' must be an integer in \\[1, inf\\], got 0"),
        ({"kind": "draft", "name": "a", "model": "m", "block_size": 2.5}, "DraftModel.block_size .* got 2.5"),
        ({"kind": "draft", "name": "a", "model": "m", "schedule": "dynamic"}, "DraftModel.schedule must be one of"),
        ({"kind": "draft", "name": "a", "model": "m", "confidence_threshold": 1.5},
         "DraftModel.confidence_threshold of arm 'a' must be a finite real number in \\[0, 1\\], got 1.5"),
        ({"kind": "early_exit", "name": "a", "layer": True}, "EarlyExit.layer of arm 'a' must be an integer in \\[1, inf\\], got True"),
        ({"kind": "prompt_lookup", "name": "a", "max_ngram": 0}, "PromptLookup.max_ngram of arm 'a' must be an integer"),
        ({"kind": "ar", "name": "a", "cost": -1.0}, "Arm.cost .*got -1.0"),
        ({"kind": "ar", "name": " "}, "Arm.name must be a non-empty string"),
    ],
)
def test_arm_from_config_names_where_and_what_is_wrong(table, message):
    with pytest.raises(ValueError, match=f"^world.toml: arms\\[3\\]: {message}"):
        arm_from_config(table, where="world.toml: arms[3]")


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_built_in_kinds_are_found_through_the_entry_points(name):
    from_entry_points = Registry("banditspec.arms", "arm kind")  # nothing registered at run time
    assert from_entry_points.get(name) is BUILT_IN[name] and BUILT_IN[name].kind == name
    assert ARM_KINDS.name_of(BUILT_IN[name]) == name and name in ARM_KINDS.names()


def test_a_kind_registered_at_run_time_decodes_and_is_simulated_exactly(kinds, decoder):
    arm = arm_from_config({"kind": "repeat", "name": "rep", "num_tokens": 4})
    assert type(arm) is RepeatLast and kinds.name_of(RepeatLast) == "repeat" and arm.can_simulate()
    accepted = 0
    for prompt in prompts(4, seed=7, vocab=len(decoder.tokenizer)):
        reference, result = decoder.measure(prompt, [Autoregressive("ar"), arm])
        m = result.measurement
        assert m.equals_ar and m.arm == "rep"
        np.testing.assert_array_equal(result.ids, reference.ids)
        trace = Trace(decoder.prefix(prompt), reference.ids, MAX_NEW, decoder.eos_token_ids)
        assert counts(arm.simulate(trace)) == counts(result)
        accepted += m.accepted_tokens
    assert accepted > 0  # the tiny target repeats itself: some repeated tokens are accepted


class TinyWorld:
    """A decoding world of four text queries on ``decoder``."""

    def __init__(self, decoder, arms):
        self.decoder = decoder
        self.arms = ArmSet(arms)

    def queries(self, n, *, split, seed):
        texts = [" ".join(f"w{(7 * i + j) % 60}" for j in range(3 + i)) for i in range(n)]
        return Queries(ids=np.arange(n), X=np.zeros((n, 1)), texts=texts)


def flat_latency(names):
    k = len(names)
    return LatencyModel(list(names), np.full(k, 1e-3), np.full(k, 1e-3), np.zeros(k), np.zeros(k))


def test_a_kind_without_simulation_is_collected_only_measured(kinds, decoder):
    arms = [Autoregressive("ar"), arm_from_config({"kind": "measured_only", "name": "last2"}),
            arm_from_config({"kind": "repeat", "name": "rep"})]
    world = TinyWorld(decoder, arms)
    assert [arm.can_simulate() for arm in arms] == [True, False, True]
    with pytest.raises(ValueError, match=r"arms \['last2'\] have no counterfactual simulation; .*measure=True"):
        Collector(world, latency=flat_latency(world.arms.names))
    with pytest.raises(NotImplementedError, match="arm 'last2' \\(kind 'measured_only'\\) has no counterfactual"):
        arms[1].simulate(Trace(np.array([1]), np.array([2]), 4))
    queries = world.queries(3, split="train", seed=0)
    rows = Collector(world, measure=True).rows(queries)
    assert len(rows) == 3 * len(arms) and rows.columns["measured"].all()
    calls, accepted = rows.columns["target_calls"], rows.columns["accepted_tokens"]
    np.testing.assert_array_equal(calls + accepted, rows.columns["new_tokens"])
    assert rows.columns["equals_ar"].all()
    # the simulable custom kind is priced from exact counts: the same counts as measured
    priced = Collector(TinyWorld(decoder, [arms[0], arms[2]]), latency=flat_latency(["ar", "rep"])).rows(queries)
    K = len(arms)
    np.testing.assert_array_equal(priced.columns["target_calls"].reshape(-1, 2)[:, 1], calls.reshape(-1, K)[:, 2])
