"""The router: the selector's choice decoded losslessly, AR on a fault, the breaker, propensities, online updates."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from banditspec.apps.serving import CircuitBreaker, DecisionLog, PromptError, Router, Snapshots
from banditspec.apps.serving.snapshots import LATEST
from banditspec.apps.training import load_selector
from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.rewards import SpeedupOverAR
from banditspec.speculative.kinds import Autoregressive
from tests.banditspec.apps.serving.conftest import ARMS, arm
from tests.banditspec.speculative.world.checkpoints import prompt_rows

PROMPTS = [row["text"] for row in prompt_rows(12)]


def ar_output(world, prompt: str, max_new_tokens: int | None = None) -> np.ndarray:
    return world.decoder.generate(Autoregressive("ar"), prompt, max_new_tokens=max_new_tokens).ids


@pytest.mark.parametrize("name", ["same", "small", "lookup", "exit-1"])
def test_the_chosen_arm_decodes_and_its_output_is_ar_s(world, latency, make_selector, name):
    router = Router(world, make_selector("fixed", arm=arm(name)), latency=latency)
    for prompt in PROMPTS[:3]:
        served = router.generate(prompt)
        decision = served.decision
        assert decision.arm_name == decision.served_arm == name and not decision.fallback and decision.failure == ""
        assert np.array_equal(served.ids, ar_output(world, prompt))
        assert served.text == world.decoder.tokenizer.decode(served.ids, skip_special_tokens=True)
        assert decision.propensity == 1.0 and decision.measurement.new_tokens == served.ids.size
        assert decision.measurement.ar_wall_seconds == latency.predict([0], [served.ids.size], [0])[0]
        assert decision.reward == decision.measurement.ar_wall_seconds / decision.measurement.wall_seconds
        assert decision.reward == SpeedupOverAR()(decision.measurement)  # the reward of the logged measurement


def test_a_smaller_max_new_tokens_is_served_and_equals_ar_s(world, latency, make_selector):
    router = Router(world, make_selector("fixed", arm=arm("same")), latency=latency)
    served = router.generate(PROMPTS[0], max_new_tokens=3)
    assert served.ids.size <= 3 and np.array_equal(served.ids, ar_output(world, PROMPTS[0], 3))


@pytest.mark.parametrize(("name", "budget", "reason"), [("raising", None, "error: RuntimeError: injected fault"),
                                                         ("sleeping", 0.05, "timeout"), ("small", 0.0, "timeout")])
def test_a_failing_arm_falls_back_to_ar_and_the_failure_is_recorded(world, latency, make_selector, name, budget,
                                                                    reason):
    router = Router(world, make_selector("fixed", arm=arm(name)), latency=latency, time_budget=budget)
    served = router.generate(PROMPTS[1])
    decision = served.decision
    assert decision.arm_name == name and decision.served_arm == "ar" and decision.fallback
    assert decision.failure.startswith(reason)
    assert decision.reward == SpeedupOverAR()(decision.measurement)  # over the seconds of both attempts
    assert np.array_equal(served.ids, ar_output(world, PROMPTS[1]))


def test_the_breaker_takes_a_failing_arm_out_and_tries_it_again_after_the_cool_down(world, latency, make_selector):
    now = [0.0]
    breaker = CircuitBreaker(len(ARMS), threshold=2, cooldown=10.0, protected=[arm("ar")], clock=lambda: now[0])
    selector = make_selector("fixed", arm=arm("raising"))
    router = Router(world, selector, latency=latency, breaker=breaker)
    first, second = (router.generate(p).decision for p in PROMPTS[:2])
    assert first.arm_name == second.arm_name == "raising" and first.fallback and second.fallback
    assert not breaker.available()[arm("raising")]
    third = router.generate(PROMPTS[2]).decision  # out of service: the policy's mass goes elsewhere
    assert third.arm_name != "raising" and not third.available[arm("raising")] and not third.fallback
    assert third.distribution[arm("raising")] == 0.0
    now[0] = 10.0  # the cool-down has passed: tried again, fails again, out again at once
    fourth = router.generate(PROMPTS[3]).decision
    assert fourth.arm_name == "raising" and fourth.fallback and not breaker.available()[arm("raising")]


@pytest.mark.parametrize("epsilon", [0.0, 0.3])
def test_propensities_are_the_drawn_arm_s_probability_and_distributions_sum_to_one(world, latency, make_selector,
                                                                                     epsilon):
    router = Router(world, make_selector("egreedy"), latency=latency, epsilon=epsilon, seed=3)
    for prompt in PROMPTS[:4]:
        decision = router.generate(prompt).decision
        assert sum(decision.distribution) == pytest.approx(1.0, abs=1e-12)
        assert decision.propensity == decision.distribution[decision.arm] > 0
        expected = router.distribution(router.featurizer.transform([prompt])[0], np.ones(len(ARMS), bool))
        assert decision.distribution == tuple(float(p) for p in expected)
        assert all(type(p) is float for p in decision.distribution)
        assert decision.available == (True,) * len(ARMS) and all(type(a) is bool for a in decision.available)
        if epsilon:
            assert min(decision.distribution) >= epsilon / len(ARMS)


def test_target_features_are_the_world_s_own(world, latency, make_selector):
    selector = make_selector("fixed", features="target", n_features=32, arm=arm("lookup"))
    served = Router(world, selector, latency=latency).generate(PROMPTS[0])
    assert np.allclose(served.features, world.featurizer.transform([PROMPTS[0]])[0])


@pytest.mark.parametrize(("name", "prompt_passes"), [("ar", 1), ("same", 1), ("small", 1), ("lookup", 1),
                                                   ("exit-1", 2), ("raising", 2)])
def test_with_target_features_the_decode_continues_from_the_featurizer_s_forward_pass(world, latency, make_selector,
                                                                                       name, prompt_passes):
    """The prompt runs through the target once (the features), and again only for an AR fallback from scratch or
    for the early exit's own drafting cache (the target's first layer, through the same module)."""
    selector = make_selector("fixed", features="target", n_features=32, arm=arm(name))
    router = Router(world, selector, latency=latency)
    for prompt in PROMPTS[:3]:
        fresh = []  # per forward call of the target: does it start from an empty cache (the whole prompt)?

        def record(_: object, args: tuple, kwargs: dict) -> None:
            cache = kwargs.get("cache", kwargs.get("past_key_values"))
            fresh.append(cache is None or cache.get_seq_length() == 0)

        hook = world.decoder.target.register_forward_pre_hook(record, with_kwargs=True)
        try:
            served = router.generate(prompt)
        finally:
            hook.remove()
        assert sum(fresh) == prompt_passes and len(fresh) > prompt_passes
        assert np.array_equal(served.ids, ar_output(world, prompt))
        assert served.decision.reward == SpeedupOverAR()(served.decision.measurement)
        seconds = [served.decision.measurement.wall_seconds, served.decision.select_seconds]
        assert np.isfinite(seconds).all() and min(seconds) >= 0  # their sizes are timings: not tested
        assert served.decision.measurement.new_tokens == served.ids.size


def _fails(text: str) -> None:
    raise NotImplementedError("no cache")


def _returns_a_bare_cache(text: str) -> tuple[np.ndarray, object]:
    return np.zeros(32), object()  # a featurizer written for an older prefill: no PromptCache


@pytest.mark.parametrize(("prefill", "reason"), [(_fails, "NotImplementedError: no cache"),
                                                 (_returns_a_bare_cache, "AttributeError")])
def test_a_featurizer_whose_prefill_fails_serves_through_transform_and_warns_once(world, latency, make_selector,
                                                                                   monkeypatch, prefill, reason):
    router = Router(world, make_selector("fixed", features="target", n_features=32, arm=arm("same")), latency=latency)
    tried = []

    def recorded(text: str):
        tried.append(text)
        return prefill(text)

    monkeypatch.setattr(router.featurizer, "prefill", recorded)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        served = [router.generate(prompt) for prompt in PROMPTS[:3]]
    messages = [str(w.message) for w in caught if w.category is RuntimeWarning]
    assert len(messages) == 1 and messages[0].startswith(f"the featurizer's prefill failed ({reason}")
    assert messages[0].endswith("this router now featurizes with transform() and decodes without reusing its cache")
    assert tried == PROMPTS[:1]  # not tried again
    for prompt, request in zip(PROMPTS[:3], served, strict=True):
        assert np.allclose(request.features, world.featurizer.transform([prompt])[0])  # threads differ: not bitwise
        assert np.array_equal(request.ids, ar_output(world, prompt)) and not request.decision.fallback


@pytest.mark.parametrize(("prompt", "message"), [("", "empty"), (" ".join(["the"] * 200), "context"),
                                                 (["the", "cat"], "text")])
def test_a_bad_prompt_is_refused_before_any_work_and_the_next_one_is_served(world, latency, make_selector, tmp_path,
                                                                            prompt, message):
    log = DecisionLog(tmp_path / "log", ARMS, flush_rows=1)
    router = Router(world, make_selector("fixed", arm=arm("same")), latency=latency, log=log)
    with pytest.raises(PromptError, match=message):
        router.generate(prompt)
    assert not list((tmp_path / "log").glob("*.parquet"))
    assert np.array_equal(router.generate(PROMPTS[0]).ids, ar_output(world, PROMPTS[0]))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_features_are_refused_before_decoding_and_nothing_is_logged(world, latency, make_selector, tmp_path,
                                                                             monkeypatch, bad):
    log = DecisionLog(tmp_path / "log", ARMS, flush_rows=1)
    router = Router(world, make_selector("egreedy"), latency=latency, log=log)
    featurizer = router.featurizer
    monkeypatch.setattr(router, "featurizer", SimpleNamespace(transform=lambda texts: np.full((1, 64), bad)))
    monkeypatch.setattr(router.decoder, "generate", lambda *args, **kwargs: pytest.fail("decoded"))
    with pytest.raises(ValueError, match="NaN or infinite features"):
        router.generate(PROMPTS[0])
    assert not list((tmp_path / "log").glob("*.parquet"))
    monkeypatch.undo()
    assert router.featurizer is featurizer and router.generate(PROMPTS[0]).decision.propensity > 0


def test_served_decisions_are_logged_and_read_back_by_ope(world, latency, make_selector, tmp_path):
    from banditspec.bandits import ope

    log = DecisionLog(tmp_path / "log", ARMS, flush_rows=3)
    router = Router(world, make_selector("egreedy"), latency=latency, epsilon=0.5, log=log, seed=1)
    decisions = [router.generate(p).decision for p in PROMPTS[:7]]
    assert len(list((tmp_path / "log").glob("part-*.parquet"))) == 2  # 6 rows written, one buffered
    router.close()
    data = LoggedDataset.load(tmp_path / "log")
    assert len(data) == 7 and data.arm_names == ARMS
    assert data.actions.tolist() == [d.arm for d in decisions]
    assert np.allclose(data.propensities, [d.propensity for d in decisions])
    assert np.allclose(data.rewards, [d.reward for d in decisions])
    assert list(data.columns["request_id"]) == [d.request_id for d in decisions]
    assert list(data.columns["prompt"]) == PROMPTS[:7]
    uniform = np.full((len(data), len(ARMS)), 1.0 / len(ARMS))
    estimate = ope.ips(data, uniform)
    expected = np.mean(data.rewards / len(ARMS) / data.propensities)
    assert estimate.value == pytest.approx(expected)
    # a second log in the same folder continues the numbering: nothing is overwritten
    DecisionLog(tmp_path / "log", ARMS, flush_rows=1).append(decisions[0], np.zeros(64), PROMPTS[0])
    assert len(LoggedDataset.load(tmp_path / "log")) == 8
    DecisionLog(tmp_path / "private", ARMS, flush_rows=1, prompts=False).append(decisions[0], np.zeros(64), "secret")
    assert "prompt" not in LoggedDataset.load(tmp_path / "private").columns


def test_bandit_updates_learn_from_the_served_arm(world, latency, make_selector, tmp_path, monkeypatch):
    selector = make_selector("linucb")
    snapshots = Snapshots(tmp_path / "snapshots", selector.description, keep=2)
    router = Router(world, selector, latency=latency, online="bandit", snapshots=snapshots, snapshot_every=2)
    calls = []
    update = router.policy.partial_fit
    monkeypatch.setattr(router.policy, "partial_fit", lambda *args: calls.append(args) or update(*args))
    decisions = [router.generate(prompt).decision for prompt in PROMPTS[:5]]
    assert router.updates == 5
    for (X, actions, rewards, propensities), decision, prompt in zip(calls, decisions, PROMPTS):
        assert np.allclose(X, router.featurizer.transform([prompt]))
        assert (actions, rewards, propensities) == ([decision.arm], [decision.reward], [decision.propensity])
    router.close()  # the fifth update is saved too
    names = sorted(p.name for p in (tmp_path / "snapshots").iterdir())
    assert names == [LATEST, "snapshot-000001", "snapshot-000002"]  # two kept
    latest = (tmp_path / "snapshots" / LATEST).read_text().strip()
    saved = load_selector(tmp_path / "snapshots" / latest)
    assert saved.description["source"]["online_updates"] == 5 and saved.arms == ARMS
    x = router.featurizer.transform(PROMPTS[:5])
    assert np.allclose(saved.policy.predict_proba(x), router.policy.predict_proba(x))


def test_full_information_updates_score_every_arm_counterfactually(world, latency, make_selector, monkeypatch):
    selector = make_selector("egreedy", epsilon=0.1)
    router = Router(world, selector, latency=latency, online="full")
    seen = []
    monkeypatch.setattr(router.policy, "partial_fit_full", lambda X, rewards, available=None: seen.append(rewards))
    served = router.generate(PROMPTS[0])
    (rewards,) = seen
    row = router.collector.counterfactual([served.prompt_ids], [served.ids])[0]
    assert rewards.shape == (1, len(ARMS)) and rewards[0, arm("ar")] == pytest.approx(1.0)
    assert [m.arm for m in row] == ARMS and all(m.new_tokens == served.ids.size for m in row)
    # the copy of the target drafts every token: its exact calls are ceil(T / (block + 1))
    assert row[arm("same")].target_calls == -(-served.ids.size // 4)
    assert rewards[0, arm("same")] > 1.0


def test_a_selector_that_does_not_fit_the_world_is_refused(world, latency, make_selector):
    with pytest.raises(ValueError, match="decoder"):
        Router(SimpleNamespace(arms=world.arms), make_selector("fixed"), latency=latency)
    with pytest.raises(ValueError, match="features"):
        Router(world, make_selector("fixed", n_features=5), latency=latency)
    with pytest.raises(ValueError, match="speed-up"):
        Router(world, make_selector("fixed", reward="proxy"), latency=latency, online="bandit")
    wrong = make_selector("fixed")
    with pytest.raises(ValueError, match="arms"):
        Router(world, type(wrong)(wrong.policy, ARMS[::-1], "hashing", "speedup", {}, wrong.folder), latency=latency)
