"""The corpus arm among the tiny toy world's arms: decoded, simulated, collected, learned and compared."""

import json
from pathlib import Path

import numpy as np

from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.policy import POLICIES
from banditspec.envs.toy.world import ToyWorld
from banditspec.speculative.collect import Collector, collect
from banditspec.speculative.kinds import Autoregressive
from banditspec.speculative.latency import LatencyModel
from corpus_arm import CorpusLookup


def main(out: str, *, n_train: int = 300, n_test: int = 40, cache_dir: str | None = None) -> dict:
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    world = ToyWorld("tiny", max_new_tokens=24, block_size=4, cache_dir=cache_dir, progress=False)
    # a corpus of earlier answers: training prompts and the target's outputs on them
    earlier = world.queries(100, split="train", seed=1).texts
    corpus = out_dir / "corpus.txt"
    corpus.write_text("\n".join(f"{t} {world.decoder.generate(Autoregressive('ar'), t).text}" for t in earlier))
    world.arms.add(CorpusLookup("corpus", corpus=str(corpus)))

    data = LoggedDataset.load(collect(world, out_dir / "train", n=n_train, progress=False))
    policy = POLICIES.create("reinforce", n_arms=len(world.arms), seed=0)
    policy.fit(data.X, data.actions, data.rewards, data.propensities)

    test = world.queries(n_test, split="test", seed=0)
    measured = world.full_feedback(test)  # every arm decoded for real, AR first, same run
    latency = LatencyModel.from_dict(json.loads((out_dir / "train" / "latency.json").read_text()))
    simulated = Collector(world, latency=latency).rows(test).columns["target_calls"].reshape(n_test, -1)
    calls = np.array([m.target_calls for m in measured.measurements]).reshape(n_test, -1)
    tokens = np.array([m.new_tokens for m in measured.measurements]).reshape(n_test, -1)

    choice = policy.predict_proba(test.X).argmax(axis=1)
    corpus_id = world.arms.index("corpus")
    rows = np.arange(n_test)
    speedup = {arm: float(measured.ar_seconds.sum() / measured.seconds[:, k].sum())
               for k, arm in enumerate(world.arms.names)}
    return {
        "reinforce": float(measured.ar_seconds.sum() / measured.seconds[rows, choice].sum()),
        "single_arms": speedup,
        "corpus_share_of_choices": float(np.mean(choice == corpus_id)),
        "corpus_tokens_per_call": float(tokens[:, corpus_id].sum() / calls[:, corpus_id].sum()),
        "simulated_calls_equal_measured": float(np.mean(simulated == calls)),
        "outputs_equal_ar": all(m.equals_ar for m in measured.measurements),
    }


if __name__ == "__main__":
    print(json.dumps(main("results/corpus-demo"), indent=1))
