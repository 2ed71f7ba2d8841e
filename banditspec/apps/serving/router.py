"""The router: per request, choose the arm with the saved selector, decode losslessly, log, and learn.

:meth:`Router.generate` featurizes the prompt as the selector was trained
(the world's own features or hashed n-grams), asks the policy for its
distribution over the arms the circuit breaker allows, mixes in uniform
exploration ``epsilon`` and draws the arm, recording its propensity. It then
decodes through the world's :class:`~banditspec.speculative.decoding.Decoder`
(the engine every experiment uses: speculative outputs are verified by the
target, so they equal AR's). An arm that raises, or passes its time budget
(checked between drafting rounds), is abandoned: AR decodes the request
instead, the failure is recorded, and the breaker removes an arm that keeps
failing for a cool-down. With the world's own features (the target's hidden
states over the prompt), the decode continues from the cache of that forward
pass instead of running the prompt through the target a second time (if
that pass fails, the router warns once and featurizes and decodes without
it from then on). Everything is serialised by one lock: the models and
torch's thread setting are shared, and requests queue in front of it.

Reward of a served request (logged, and learned online): the speed-up over
AR, ``t_AR / t``, with ``t`` the measured seconds of the whole request's
decoding (a failed attempt included, and the featurizer's forward pass when
the decode continued from it) and ``t_AR`` AR's seconds on this
output priced by the world's latency model (AR makes one target call per
token), since AR itself is not run. With the target's own features ``t``
therefore runs a few milliseconds longer than the same decode in offline
data (the featurizer's pass costs more than the prefill its cache saves):
such served rewards sit a few per cent below offline ones (``docs/serving.md``).

Online learning (``online``): ``"bandit"`` updates the policy with the served
arm's reward and propensity (``partial_fit``); ``"full"`` scores every arm
counterfactually on the served output — its exact target calls along that
output, priced by the latency model
(:meth:`~banditspec.speculative.collect.Collector.counterfactual`) — and
updates with every arm's reward (``partial_fit_full``). Snapshots of the
learning policy are written atomically every ``snapshot_every`` updates.
"""

from __future__ import annotations

import threading
import time
import uuid
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from banditspec.apps.scoring import prompt_featurizer
from banditspec.apps.serving.breaker import CircuitBreaker
from banditspec.apps.serving.decisions import Decision, DecisionLog, features_hash
from banditspec.apps.serving.snapshots import Snapshots
from banditspec.apps.training import Selector
from banditspec.bandits.features import Featurizer, PromptCache
from banditspec.bandits.rewards import SpeedupOverAR, measurement_columns
from banditspec.bandits.validation import check_real
from banditspec.speculative.collect import Collector
from banditspec.speculative.decoding import DecodeResult, DecodeTimeout
from banditspec.speculative.latency import LatencyModel
from banditspec.speculative.world import query_id

__all__ = ["ONLINE", "PromptError", "Router", "Served", "draw_arm"]

#: Online learning modes: none, from the served arm's reward, from every arm's counterfactual reward.
ONLINE = ("off", "bandit", "full")
_PROBE = "probe"  # a text featurized once at start-up to check the feature dimension


def draw_arm(distribution: np.ndarray, rng: np.random.Generator) -> int:
    """An arm drawn from ``distribution`` with one ``rng.random()``, by the inverse CDF as ``Policy.select`` draws.

    An arm of probability 0 is never drawn.
    """
    cumulative = np.cumsum(distribution)
    return int((cumulative <= rng.random() * cumulative[-1]).sum())


class PromptError(ValueError):
    """A prompt the router refuses before any work: not text, empty, or too long for the target's context."""


@dataclass(frozen=True)
class Served:
    """A served request: the output and how it was produced.

    Attributes
    ----------
    text : str
        The new text (the target's tokenizer decoding ``ids``, special tokens skipped).
    ids : np.ndarray
        New token ids, equal to AR's greedy output.
    prompt_ids : np.ndarray
    features : np.ndarray
        ``(d,)``, what the policy saw.
    finish_reason : {"stop", "length"}
        Whether the output ended with an end-of-sequence token or at the length limit.
    max_new_tokens : int
    decision : Decision
    """

    text: str
    ids: np.ndarray
    prompt_ids: np.ndarray
    features: np.ndarray
    finish_reason: str
    max_new_tokens: int
    decision: Decision


class Router:
    """Serve prompts with the arm a saved selector picks, losslessly, with fallback, logging and online learning.

    Parameters
    ----------
    world : ConfiguredWorld or a world like it
        Gives ``arms``, ``decoder`` and ``featurizer`` (the world's own
        features); one arm must be plain (``ar``), the fallback.
    selector : Selector
        The saved selector (:func:`~banditspec.apps.training.load_selector`);
        its arms must be the world's, in the same order.
    latency : LatencyModel
        Prices AR's reference seconds (and every arm, for ``online="full"``);
        the latency model of the selector's collection, or one calibrated on
        this world (:func:`~banditspec.speculative.collect.calibrate`).
    epsilon : float, default 0.0
        Uniform exploration mixed into the policy's distribution over the
        available arms: ``p = (1 - epsilon) pi(.|x) + epsilon / |available|``;
        0 samples from the policy's own distribution.
    time_budget : float, optional
        Seconds a speculative arm may take before AR takes over (None: no limit).
    breaker : CircuitBreaker, optional
        Default: 3 failures in a row open an arm for 30 s; AR is never removed.
    log : DecisionLog, optional
        Where decisions are appended.
    online : {"off", "bandit", "full"}, default "off"
    snapshots : Snapshots, optional
        Where the learning policy is saved.
    snapshot_every : int, default 100
        Online updates between snapshots.
    seed : int, default 0
        Seed of the arm draws.

    Raises
    ------
    ValueError
        Before serving anything: arms that differ from the selector's, no
        plain arm, an arm the decoder cannot run, features of another
        dimension than the policy's, a latency model of other arms, or online
        learning of a selector trained on another reward than the speed-up.
    """

    def __init__(self, world: Any, selector: Selector, *, latency: LatencyModel, epsilon: float = 0.0,
                 time_budget: float | None = None, breaker: CircuitBreaker | None = None,
                 log: DecisionLog | None = None, online: str = "off", snapshots: Snapshots | None = None,
                 snapshot_every: int = 100, seed: int = 0) -> None:
        missing = [name for name in ("arms", "decoder", "featurizer") if not hasattr(world, name)]
        if missing:
            raise ValueError(f"this world does not decode real prompts (it lacks {missing[0]!r}); serving needs one "
                             "built from a world.toml or a registered world like the toy world")
        self.decoder = world.decoder
        self.arms = [self.decoder.check(arm) for arm in world.arms]
        self.names = [arm.name for arm in self.arms]
        if selector.arms != self.names:
            raise ValueError(f"the selector was trained on arms {selector.arms} but the world has {self.names}: "
                             "serve it with the world it was trained in")
        plain = [k for k, arm in enumerate(self.arms) if arm.plain]
        if not plain:
            raise ValueError("serving needs a plain arm (kind 'ar') to fall back to")
        if latency.arm_names != self.names:
            raise ValueError(f"the latency model prices arms {latency.arm_names}, not the world's {self.names}")
        if online not in ONLINE:
            raise ValueError(f"online must be one of {ONLINE}, got {online!r}")
        if online != "off" and selector.reward != "speedup":
            raise ValueError(f"online learning updates with the speed-up over AR, but this selector learned "
                             f"{selector.reward!r}: serve it with online='off' or train it on the speed-up")
        check_real("epsilon", epsilon, 0.0, 1.0)
        if time_budget is not None:
            check_real("time_budget", time_budget, 0.0)
        self.fallback = plain[0]
        self.selector = selector
        self.policy = selector.policy
        self.featurizer: Featurizer = world.featurizer if selector.features == "target" else prompt_featurizer()
        self._reuse_prefill = not self.decoder.encoder_decoder  # off for good once the featurizer's prefill fails
        width = self.featurizer.transform([_PROBE]).shape[1]
        if width != self.policy.n_features_:
            raise ValueError(f"the selector reads {self.policy.n_features_} features but this world's "
                             f"{selector.features!r} features have {width}: serve it with the world (and featurizer) "
                             "it was trained with")
        self.latency = latency
        lengths = np.arange(self.decoder.max_new_tokens + 1)
        #: AR's seconds priced by ``latency`` for each output length ``0 .. max_new_tokens``, computed once
        self.ar_prices = latency.predict(np.full(lengths.size, self.fallback), lengths, np.zeros(lengths.size))
        self.epsilon = float(epsilon)
        self.time_budget = time_budget
        self.breaker = breaker or CircuitBreaker(len(self.arms), protected=plain)
        self.log = log
        self.online = online
        self.collector = Collector(world, latency=latency) if online == "full" else None
        self.snapshots = snapshots
        self.snapshot_every = snapshot_every
        self.updates = 0
        self._snapshotted = 0
        self.reward = SpeedupOverAR()
        self.rng = np.random.default_rng(seed)
        self._lock = threading.RLock()

    # -- one request --------------------------------------------------------------------
    def distribution(self, x: np.ndarray, available: np.ndarray) -> np.ndarray:
        """The distribution the arm is drawn from: the policy's on ``available``, mixed with uniform ``epsilon``.

        The policy does not validate its input again (``check_input=False``):
        the featurizer's width was checked at start-up and the breaker's mask
        always keeps the fallback; only the features' finiteness is checked here.

        Parameters
        ----------
        x : np.ndarray
            ``(d,)`` features of the router's featurizer.
        available : np.ndarray
            ``bool (K,)``, at least one True (the breaker's mask).

        Raises
        ------
        ValueError
            If ``x`` holds NaN or infinite values.
        """
        if not np.isfinite(x).all():
            raise ValueError("the featurizer gave NaN or infinite features for this prompt: the policy cannot "
                             "choose from them; check the featurizer (and the target's dtype for target features)")
        proba = self.policy.predict_proba(x[None], available, check_input=False)[0]
        if self.epsilon == 0.0:
            return proba
        return (1.0 - self.epsilon) * proba + self.epsilon * available / available.sum()

    def generate(self, prompt: str, *, max_new_tokens: int | None = None, request_id: str | None = None,
                 learn: bool = True) -> Served:
        """Serve one prompt greedily: choose the arm, decode (AR on failure), log, and learn if ``learn``.

        Parameters
        ----------
        prompt : str
            The text, as the target reads it (a chat template already applied).
        max_new_tokens : int, optional
            At most the world's ``max_new_tokens`` (its default).
        request_id : str, optional
            Recorded in the decision; a fresh UUID by default.
        learn : bool, default True
            Run the online update now (a server runs :meth:`learn` after replying instead).

        Raises
        ------
        PromptError
            For a prompt that is not text, is empty, or does not fit the
            target's context with ``max_new_tokens`` (or a ``max_new_tokens``
            above the world's); nothing is decoded or logged.
        """
        if not isinstance(prompt, str):
            raise PromptError(f"prompt must be text (a string), got {type(prompt).__name__}")
        with self._lock:
            try:
                prompt_ids = self.decoder.encode(prompt, max_new_tokens=max_new_tokens)
            except ValueError as error:
                raise PromptError(str(error)) from None
            limit = self.decoder.max_new_tokens if max_new_tokens is None else int(max_new_tokens)
            began = time.perf_counter()
            x, prefill = self._features(prompt, prompt_ids)
            prefill_seconds = time.perf_counter() - began if prefill is not None else 0.0
            available = self.breaker.available()
            distribution = self.distribution(x, available)
            arm = draw_arm(distribution, self.rng)
            select_seconds = time.perf_counter() - began
            result, failure, seconds = self._decode(arm, prompt_ids, limit, prefill)
            self.breaker.record(arm, not failure)
            decision = self._decision(request_id, prompt, arm, distribution, available, x, result, failure,
                                      seconds + prefill_seconds, prompt_ids.size, select_seconds)
            if self.log is not None:
                self.log.append(decision, x, prompt)
            ends = result.ids.size and int(result.ids[-1]) in self.decoder.eos_token_ids
            served = Served(result.text, result.ids, prompt_ids, x, "stop" if ends else "length", limit, decision)
            if learn:
                self.learn(served)
            return served

    def _features(self, prompt: str, prompt_ids: np.ndarray) -> tuple[np.ndarray, PromptCache | None]:
        """The prompt's features, and the target's cache from computing them when the decode can continue from it.

        The world's own features come from a forward pass of the target over
        the prompt (``TargetHiddenStates.prefill``); its cache, all but the
        last token, saves the decode that pass. Other featurizers, an
        encoder-decoder target, or a cache of other tokens than the decoder's
        encoding of the prompt give ``None``. If ``prefill`` raises (a model
        without a cache, one that cannot be cropped, ...), the router warns
        once and from then on featurizes with ``transform`` and decodes
        without a cache; so does a ``prefill`` that returns no
        :class:`PromptCache`.
        """
        prefill = getattr(self.featurizer, "prefill", None) if self._reuse_prefill else None
        if prefill is not None:
            try:
                x, cache = prefill(prompt)
                reusable = cache.holds(prompt_ids[:-1])
            except Exception as error:
                self._reuse_prefill = False
                warnings.warn(f"the featurizer's prefill failed ({type(error).__name__}: {error}); this router now "
                              "featurizes with transform() and decodes without reusing its cache", RuntimeWarning,
                              stacklevel=3)
            else:
                return x, cache if reusable else None
        return self.featurizer.transform([prompt])[0], None

    def _decode(self, arm: int, prompt_ids: np.ndarray, limit: int,
                prefill: PromptCache | None = None) -> tuple[DecodeResult, str, float]:
        """Decode with ``arm`` (from the ``prefill`` cache if given); on an error or timeout with AR.

        Returns the result, the failure and the total seconds. The fallback
        decodes from scratch: the failed decode has used the cache up.
        """
        began = time.perf_counter()
        deadline = None if self.time_budget is None else began + self.time_budget
        try:
            result, failure = self.decoder.generate(self.arms[arm], prompt_ids, max_new_tokens=limit,
                                                    deadline=deadline, prompt_cache=prefill), ""
        except DecodeTimeout as error:
            failure = f"timeout: {error}"
        except Exception as error:  # any fault of an arm's code falls back to AR; AR's own fault propagates
            if arm == self.fallback:
                raise
            failure = f"error: {type(error).__name__}: {error}"
        if failure:
            result = self.decoder.generate(self.arms[self.fallback], prompt_ids, max_new_tokens=limit)
        return result, failure, time.perf_counter() - began

    def _decision(self, request_id: str | None, prompt: str, arm: int, distribution: np.ndarray,
                  available: np.ndarray, x: np.ndarray, result: DecodeResult, failure: str, seconds: float,
                  prompt_tokens: int, select_seconds: float) -> Decision:
        """The request's record, built on every request, so without per-request array work.

        AR's price is read from :attr:`ar_prices`, and the reward, ``self.reward``'s
        ``t_AR / t``, is computed on the two floats: going through the
        measurement columns (:func:`measurement_columns`, an array per field)
        gives the same float and costs more than the rest of the record; the
        tests check that both agree with the latency model and the reward.
        """
        ar_seconds = float(self.ar_prices[result.ids.size])
        measurement = replace(result.measurement, wall_seconds=seconds,
                              ar_wall_seconds=ar_seconds if ar_seconds > 0 else None)
        return Decision(
            request_id=request_id or uuid.uuid4().hex, query_id=query_id(prompt), arm=arm, arm_name=self.names[arm],
            propensity=float(distribution[arm]), distribution=tuple(distribution.tolist()),
            available=tuple(available.tolist()), features_hash=features_hash(x),
            served_arm=measurement.arm, fallback=bool(failure), failure=failure, measurement=measurement,
            reward=ar_seconds / seconds if ar_seconds > 0 else 0.0, prompt_tokens=int(prompt_tokens),
            select_seconds=select_seconds,
        )

    # -- learning -----------------------------------------------------------------------
    def learn(self, served: Served) -> None:
        """The online update from one served request (nothing with ``online="off"``); snapshots as configured."""
        if self.online == "off":
            return
        decision = served.decision
        x = served.features[None]
        with self._lock:
            if self.online == "bandit":
                self.policy.partial_fit(x, [decision.arm], [decision.reward], [decision.propensity])
            else:
                row = self.collector.counterfactual([served.prompt_ids], [served.ids],
                                                    max_new_tokens=served.max_new_tokens)[0]
                self.policy.partial_fit_full(x, self.reward(measurement_columns(row))[None])
            self.updates += 1
            if self.snapshots is not None and self.updates - self._snapshotted >= self.snapshot_every:
                self.snapshot()

    def snapshot(self) -> None:
        """Save the policy as it is now into the snapshots folder (if any and if it learned since the last one)."""
        with self._lock:
            if self.snapshots is None or self.updates == self._snapshotted:
                return
            self.snapshots.save(self.policy, updates=self.updates,
                                served_from=str(self.selector.folder))
            self._snapshotted = self.updates

    def close(self) -> None:
        """Write what is buffered: the decision log and a last snapshot."""
        with self._lock:
            if self.log is not None:
                self.log.flush()
            self.snapshot()
