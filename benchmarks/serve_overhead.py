"""The router's overhead on the toy world: featurizing, choosing, the decision record and logging, per mean decode.

Trains REINFORCE on counterfactually collected training queries of the toy
world (its models cached under ``$BANDITSPEC_CACHE``), once on the world's
own features (the target's prefill hidden states) and once on hashed n-grams
of the prompt, and serves ``--n`` held-out queries ``--repeats`` times with a
:class:`~banditspec.apps.serving.Router` that logs every decision to Parquet
shards (``--flush-rows`` per shard). Overhead per request = featurize +
select (timed by the router) + building the decision record (reward, AR
price, ids, hashes) + appending it to the log (the shard writes amortised
over the requests); decode = the request's measured decoding seconds.
Prints each part, the share per repetition and overall, for comparison with
runs that did not count the record the share without it, and as a check on
what the parts leave out, the seconds of ``generate()`` outside the decode
(the parts, tokenizing the prompt, the breaker's bookkeeping).

With the world's own features the decode continues from the featurizer's
forward pass (the decision's seconds include that pass), so featurize +
select there counts work the decode no longer does, and the share above
overstates the cost. The net figure for both featurizers: each request is
paired with a bare decode of the same prompt by the same arm
(``Decoder.generate``, its own prefill, no router), and ``end to end`` =
the router's mean seconds per request (the whole ``generate()`` call) / the
bare decodes' mean - 1. The order alternates from pair to pair (served
first, then bare first), so neither side always runs second, on caches the
other has just warmed. For a bare decode to go first, the arm the router
will draw is planned before the repetition: its features, its distribution
and the same draws from a generator seeded as the router's (checked
against the router's own choice).

Usage::

    python benchmarks/serve_overhead.py [--n 100] [--repeats 3] [--n-train 400] [--flush-rows 32]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from banditspec.apps.report import cpu_model
from banditspec.apps.scoring import LearnerSpec, train_learners
from banditspec.apps.serving import Decision, DecisionLog, Router
from banditspec.apps.serving.router import draw_arm
from banditspec.apps.training import load_selector, save_selector
from banditspec.bandits.env import ENVIRONMENTS
from banditspec.speculative.collect import Collector, calibrate


class TimedLog(DecisionLog):
    """A decision log that adds up the seconds spent appending and flushing (every shard write)."""

    seconds = 0.0

    def append(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - same signature as DecisionLog.append
        began = time.perf_counter()
        try:
            return super().append(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - began

    def flush(self):  # noqa: ANN201 - same signature as DecisionLog.flush
        began = time.perf_counter()
        try:
            return super().flush()
        finally:
            self.seconds += time.perf_counter() - began


class TimedRouter(Router):
    """A router that adds up the seconds spent building decision records."""

    record_seconds = 0.0

    def _decision(self, *args, **kwargs) -> Decision:  # noqa: ANN002, ANN003 - same signature as Router._decision
        began = time.perf_counter()
        try:
            return super()._decision(*args, **kwargs)
        finally:
            self.record_seconds += time.perf_counter() - began


def planned_arms(router: Router, texts: list[str], seed: int) -> list[int]:
    """The arms a fresh ``router`` built with ``seed`` draws for ``texts`` in order (no arm failing meanwhile)."""
    rng, available = np.random.default_rng(seed), router.breaker.available()
    return [draw_arm(router.distribution(router.featurizer.transform([text])[0], available), rng) for text in texts]


def timed(call, *args):  # noqa: ANN001, ANN002, ANN202 - any callable and its arguments
    """``(call(*args), the seconds it took)``."""
    began = time.perf_counter()
    result = call(*args)
    return result, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="held-out queries served per repetition")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=400)
    parser.add_argument("--flush-rows", type=int, default=32)
    args = parser.parse_args()
    world = ENVIRONMENTS.create("toy", progress=False)
    latency = calibrate(world, world.queries(8, split="train", seed=10_000))
    data = Collector(world, latency=latency).rows(world.queries(args.n_train, split="train", seed=0))
    test = world.queries(args.n, split="test", seed=0).texts
    print(f"{cpu_model()}; toy world, {len(world.arms)} arms, {world.decoder.max_new_tokens} new tokens; "
          f"{args.n} held-out queries x {args.repeats} repetitions per featurizer")
    with tempfile.TemporaryDirectory() as tmp:
        for features in ("target", "hashing"):
            fitted = train_learners(data, {"reinforce": LearnerSpec("reinforce", features=features)}, seed=0)
            folder = save_selector(fitted["reinforce"], Path(tmp) / features, arms=world.arms.names, source={})
            shares, without_record, end_to_end = [], [], []
            for repeat in range(args.repeats):
                log = TimedLog(Path(tmp) / f"log-{features}-{repeat}", world.arms.names, flush_rows=args.flush_rows)
                router = TimedRouter(world, load_selector(folder), latency=latency, log=log, seed=repeat)
                decisions, served_seconds, bare_seconds = [], [], []
                plan = planned_arms(router, test, seed=repeat)
                for i, (text, arm) in enumerate(zip(test, plan)):  # paired timings, the order alternating
                    calls = {"served": (router.generate, text), "bare": (world.decoder.generate, world.arms[arm], text)}
                    order = ("served", "bare") if i % 2 == 0 else ("bare", "served")
                    runs = {side: timed(*calls[side]) for side in order}  # in that order
                    decisions.append(runs["served"][0].decision)
                    assert decisions[-1].arm == arm, "the router drew another arm than planned"
                    served_seconds.append(runs["served"][1])
                    bare_seconds.append(runs["bare"][1])
                router.close()
                generate = float(np.mean(served_seconds))
                end_to_end.append(generate / np.mean(bare_seconds) - 1)
                select = np.mean([d.select_seconds for d in decisions])
                record = router.record_seconds / len(decisions)
                logging = log.seconds / len(decisions)
                decode = np.mean([d.measurement.wall_seconds for d in decisions])
                shares.append((select + record + logging) / decode)
                without_record.append((select + logging) / decode)
                print(f"  {features:8s} rep {repeat}: featurize+select {1e3 * select:.3f} ms, record "
                      f"{1e3 * record:.3f} ms, logging {1e3 * logging:.3f} ms, decode {1e3 * decode:.1f} ms "
                      f"-> overhead {100 * shares[-1]:.2f} % of decode ({100 * without_record[-1]:.2f} % without "
                      f"the record; generate() outside the decode {1e3 * (generate - decode):.3f} ms); end to end "
                      f"{100 * end_to_end[-1]:+.2f} % against bare decodes ({1e3 * generate:.1f} ms served, "
                      f"{1e3 * np.mean(bare_seconds):.1f} ms bare)")
            print(f"{features}: overhead {100 * np.mean(shares):.2f} % of the mean decode time "
                  f"(min {100 * min(shares):.2f} %, max {100 * max(shares):.2f} %, {args.repeats} repetitions); "
                  f"without the record {100 * np.mean(without_record):.2f} %; end to end "
                  f"{100 * np.mean(end_to_end):+.2f} % (min {100 * min(end_to_end):+.2f} %, "
                  f"max {100 * max(end_to_end):+.2f} %)")
    print("load average (1, 5, 15 min): " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
