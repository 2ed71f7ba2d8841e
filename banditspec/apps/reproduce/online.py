"""``reproduce online``: learning while serving, on a stream whose domain mix shifts halfway.

The environment is the counterfactual rows of a pool of held-out queries
(every arm's exact target calls and accepted tokens along the target's
output, priced in seconds by the latency model fitted for the training set),
so every learner's choice on every query is scored exactly and nothing is
decoded for the stream itself. The pool is served in an order whose first
half is a share :data:`MIX` of queries from the first half of the domains
(by name) and whose second half is the rest (:func:`~.stream.drift_order`).

Learners (:data:`ONLINE_LEARNERS`): REINFORCE trained on an offline log before
the stream and then frozen (the log: the training collection thinned to the
first half's domain mix, the traffic before the shift), and learners that
start from nothing and learn on the stream from bandit feedback (the served
arm's reward: LinUCB, UCB1, Hedge with importance weighting) or from
counterfactual feedback (every arm's reward once the target's output is
known: Hedge, LinUCB). The oracle (the per-query best arm) is the reference
of the regret. Online learners draw their arm from their own distribution;
frozen ones play their most probable arm, as the other experiments score them.

Claims checked: counterfactual feedback gives less cumulative regret than
bandit feedback, for Hedge against every bandit-feedback learner (the target
of the issue that asked for this experiment), for the context-free learners
and for LinUCB against itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from banditspec.apps.report import pyplot
from banditspec.apps.reproduce.common import Outcome, Setup, claims_lines
from banditspec.apps.reproduce.stream import (
    FEEDBACK,
    Served,
    StreamTable,
    drift_order,
    mixed_sample,
    phase_metrics,
    query_table,
    serve,
    stream_curves,
)
from banditspec.apps.result import CompareResult
from banditspec.apps.scoring import LearnerSpec, choice_metrics, train_learners
from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.policy import POLICIES, Policy
from banditspec.speculative.collect import collect

__all__ = ["MIX", "OFFLINE_LEARNERS", "ONLINE_LEARNERS", "OnlineLearner", "offline_log", "online_claims",
           "plot_online", "run_online", "run_stream"]

#: Share of each half of the stream (and of the offline log) from its main domains.
MIX = 0.9
#: Points kept per curve in ``report.json`` (the figure is drawn from them).
CURVE_POINTS = 200


@dataclass(frozen=True)
class OnlineLearner:
    """A learner on the stream: a registered policy and the feedback it learns from (:data:`~.stream.FEEDBACK`)."""

    policy: str
    feedback: str

    def __post_init__(self) -> None:
        if self.feedback not in FEEDBACK:
            raise ValueError(f"OnlineLearner.feedback must be one of {FEEDBACK}, got {self.feedback!r}")


#: The learners trained on the offline log (the oracle only records the feature count).
OFFLINE_LEARNERS: dict[str, LearnerSpec] = {"reinforce": LearnerSpec("reinforce"), "oracle": LearnerSpec("oracle")}

#: Every learner on the stream, by report name; frozen ones come from :data:`OFFLINE_LEARNERS`.
ONLINE_LEARNERS: dict[str, OnlineLearner] = {
    "reinforce (offline, frozen)": OnlineLearner("reinforce", "frozen"),
    "linucb (bandit)": OnlineLearner("linucb", "bandit"),
    "ucb (bandit)": OnlineLearner("ucb", "bandit"),
    "hedge (bandit)": OnlineLearner("hedge", "bandit"),
    "hedge (counterfactual)": OnlineLearner("hedge", "counterfactual"),
    "linucb (counterfactual)": OnlineLearner("linucb", "counterfactual"),
    "oracle": OnlineLearner("oracle", "frozen"),
}


def offline_log(data: LoggedDataset, first: list[str], mix: float, seed: int) -> LoggedDataset:
    """The training rows of the queries before the shift: every query of the ``first`` groups and as
    many of the others as make them a share ``1 - mix``."""
    table = query_table(data)
    in_first = np.isin(table.groups, first)
    n_first = int(in_first.sum())
    n_other = min(int((~in_first).sum()), round(n_first * (1 - mix) / mix))
    queries = np.sort(mixed_sample(in_first, n_first, n_other, np.random.default_rng([seed, 0x0FF])))
    return data.subset((queries[:, None] * data.n_arms + np.arange(data.n_arms)).ravel())


def run_stream(learners: Mapping[str, OnlineLearner], frozen: Mapping[str, Policy], stream: StreamTable,
               seed: int, progress: bool = False) -> dict[str, Served]:
    """Serve ``stream`` with every learner; per learner what it chose and the seconds it spent.

    Online learners are created fresh (``seed``) and draw their arms from a
    stream seeded by ``seed`` and their position; frozen ones are taken from
    ``frozen`` by policy name and play their most probable arm.
    """
    out = {}
    for i, (name, learner) in enumerate(tqdm(learners.items(), desc=f"serving the stream (seed {seed})",
                                             unit="learner", disable=not progress)):
        if learner.feedback == "frozen":
            policy, rng = frozen[learner.policy], None
        else:
            policy = POLICIES.create(learner.policy, n_arms=stream.feedback.rewards.shape[1], seed=seed)
            rng = np.random.default_rng([seed, i])
        out[name] = serve(policy, learner.feedback, stream.X, stream.feedback.rewards, rng)
    return out


def _thin(curve: np.ndarray, points: int) -> list[float]:
    index = np.unique(np.linspace(0, len(curve) - 1, points).round().astype(int))
    return curve[index].tolist()


def online_claims(phases: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """Whether counterfactual feedback beats bandit feedback in cumulative regret over the stream."""
    regret = {name: p["regret"] for name, p in phases.items()}
    bandit = {n: r for n, r in regret.items() if ONLINE_LEARNERS[n].feedback == "bandit"}
    context_free = [n for n in bandit if ONLINE_LEARNERS[n].policy in ("ucb", "hedge")]
    return {
        "per_learner": {
            "cumulative regret": regret,
            "regret before the shift": {n: p["regret_before"] for n, p in phases.items()},
            "regret after the shift": {n: p["regret_after"] for n, p in phases.items()},
            "speed-up over AR before the shift": {n: p["speedup_before"] for n, p in phases.items()},
            "speed-up over AR after the shift": {n: p["speedup_after"] for n, p in phases.items()},
        },
        "holds": {
            "hedge_counterfactual_below_every_bandit_learner": regret["hedge (counterfactual)"] < min(bandit.values()),
            "hedge_counterfactual_below_context_free_bandit_learners":
                regret["hedge (counterfactual)"] < min(bandit[n] for n in context_free),
            "linucb_counterfactual_below_linucb_bandit": regret["linucb (counterfactual)"] < regret["linucb (bandit)"],
        },
    }


def _markdown(result: CompareResult, phases: Mapping[str, Mapping[str, Any]], claims: dict[str, Any],
              stream: dict[str, Any]) -> str:
    summary = result.summary()
    lines = [f"Stream of {stream['n']} queries, shift after {stream['shift_at']}; first half "
             f"{stream['share_first_before']:.2f} from {', '.join(stream['first_groups'])}, second half "
             f"{stream['share_first_after']:.2f}. Regret in speed-up units (sum over queries of the best arm's "
             "speed-up minus the chosen one's); mean ± std over seeds.", "",
             "| learner | feedback | cumulative regret | regret before / after the shift | speed-up over AR | "
             "before / after the shift | share of the oracle's |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, p in phases.items():
        s = summary[name]
        learner = ONLINE_LEARNERS[name]
        feedback = "reference" if POLICIES.get(learner.policy).requires_rewards else learner.feedback
        lines.append(f"| {name} | {feedback} | {p['regret']:.1f} ± {p['regret_std']:.1f} | "
                     f"{p['regret_before']:.1f} / {p['regret_after']:.1f} | "
                     f"{s['speedup_vs_ar']:.3f} ± {s['speedup_vs_ar_std']:.3f} | "
                     f"{p['speedup_before']:.3f} / {p['speedup_after']:.3f} | {s['share_of_oracle']:.3f} |")
    lines += ["", "| fixed arm (in hindsight) | speed-up over AR | cumulative regret |", "| --- | --- | --- |"]
    lines += [f"| {arm} | {s['speedup_vs_ar']:.3f} | {s['regret'] * stream['n']:.1f} |"
              for arm, s in result.fixed_summary().items()]
    lines += ["", *claims_lines(claims["holds"])]
    return "\n".join(lines) + "\n"


def plot_online(report: Mapping[str, Any], out: Path) -> Path:
    """``out/online.png``: cumulative regret and running speed-up over AR along the stream, per learner."""
    plt = pyplot()
    stream = report["stream"]
    fig, (regret_ax, speed_ax) = plt.subplots(1, 2, figsize=(12.5, 5.2), layout="constrained")
    for name, curve in stream["learners"].items():
        x = np.asarray(stream["positions"]) + 1
        mean, std = np.asarray(curve["cumulative_regret"]), np.asarray(curve["cumulative_regret_std"])
        style = {"linestyle": "--" if ONLINE_LEARNERS[name].feedback == "counterfactual" else "-"}
        (line,) = regret_ax.plot(x, mean, label=name, **style)
        regret_ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.15)
        speed_ax.plot(x, curve["running_speedup"], color=line.get_color(), label=name, **style)
    for ax in (regret_ax, speed_ax):
        ax.axvline(stream["shift_at"], color="grey", linestyle=":", label="domain-mix shift")
        ax.set_xlabel("queries served")
    regret_ax.set_ylabel("cumulative regret (speed-up units, vs the per-query best arm)")
    regret_ax.set_title(f"cumulative regret, mean ± std over {len(report['seeds'])} seeds")
    speed_ax.axhline(1.0, color="black", linewidth=0.8, linestyle="-.", label="AR (1x)")
    speed_ax.set_ylabel("running speed-up over AR (sum AR s / sum chosen s)")
    speed_ax.set_title("running speed-up over AR (mean over seeds)")
    speed_ax.legend(fontsize="small", loc="lower right", ncol=2)
    path = out / "online.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run_online(setup: Setup, out: Path) -> Outcome:
    """Collect the stream's pool, train the offline learners, serve the stream per seed and compare."""
    if setup.latency is None:
        raise ValueError("the online experiment prices the stream with the training set's latency model; none given")
    pool_dir = collect(setup.world, out / "stream-data", n=setup.n_test, split="test", seed=0, chunk_size=128,
                       latency=setup.latency, config={"experiment": "online"})
    pool = query_table(LoggedDataset.load(pool_dir))
    result = CompareResult(setup.world.arms.names, sorted(set(pool.groups.tolist())), list(setup.seeds), setup.config)
    n, shift = len(pool.groups), len(pool.groups) // 2
    curves: dict[str, dict[str, list[np.ndarray]]] = {name: {} for name in ONLINE_LEARNERS}
    per_seed: dict[str, list[list[dict[str, float]]]] = {name: [] for name in ONLINE_LEARNERS}
    logs, shares = [], []
    for seed in setup.seeds:
        order, first = drift_order(pool.groups, MIX, seed)
        stream = pool.subset(order)
        in_first = np.isin(stream.groups, first)
        shares.append((in_first[:shift].mean(), in_first[shift:].mean()))
        log = offline_log(setup.data, first, MIX, seed)
        logs.append(len(log) // log.n_arms)
        fitted = train_learners(log, OFFLINE_LEARNERS, seed=seed)
        frozen = {name: f.policy for name, f in fitted.items()}
        served = run_stream(ONLINE_LEARNERS, frozen, stream, seed, progress=True)
        full = stream.feedback
        result.oracle.append({"seed": seed, "speedup_vs_ar": choice_metrics(full.rewards.argmax(axis=1), full)[
            "speedup_vs_ar"], "mean_reward": float(full.rewards.max(axis=1).mean())})
        for k, arm in enumerate(result.arm_names):
            result.fixed_arms.append({"arm": arm, "seed": seed, **choice_metrics(np.full(n, k), full)})
        for name, (choices, _, decision_s, update_s) in served.items():
            learner = ONLINE_LEARNERS[name]
            fit_s = fitted[learner.policy].fit_seconds if learner.feedback == "frozen" else update_s
            result.runs.append({"policy": name, "seed": seed, "fit_seconds": fit_s, "decision_us": 1e6 * decision_s / n,
                                **choice_metrics(choices, full)})
            result.add_choices(name, choices, stream.groups)
            for key, curve in stream_curves(choices, full).items():
                curves[name].setdefault(key, []).append(curve)
            per_seed[name].append(phase_metrics(choices, full, [slice(0, shift), slice(shift, n), slice(0, n)]))
    stream_info: dict[str, Any] = {
        "n": n, "shift_at": shift, "mix": MIX, "first_groups": first,
        "share_first_before": float(np.mean([before for before, _ in shares])),
        "share_first_after": float(np.mean([after for _, after in shares])),
        "offline_log_queries": logs, "positions": _thin(np.arange(n), CURVE_POINTS),
        "learners": {name: {
            "feedback": ONLINE_LEARNERS[name].feedback,
            "cumulative_regret": _thin(np.mean(c["cumulative_regret"], axis=0), CURVE_POINTS),
            "cumulative_regret_std": _thin(np.std(c["cumulative_regret"], axis=0), CURVE_POINTS),
            "running_speedup": _thin(np.mean(c["running_speedup"], axis=0), CURVE_POINTS),
        } for name, c in curves.items()},
    }
    phases = {name: {
        "regret": float(np.mean([s[2]["regret"] for s in seeds])),
        "regret_std": float(np.std([s[2]["regret"] for s in seeds])),
        "regret_before": float(np.mean([s[0]["regret"] for s in seeds])),
        "regret_after": float(np.mean([s[1]["regret"] for s in seeds])),
        "speedup_before": float(np.mean([s[0]["speedup_vs_ar"] for s in seeds])),
        "speedup_after": float(np.mean([s[1]["speedup_vs_ar"] for s in seeds])),
    } for name, seeds in per_seed.items()}
    claims = online_claims({name: p for name, p in phases.items() if name != "oracle"})
    return Outcome(result, claims, _markdown(result, phases, claims, stream_info),
                   extra={"stream": stream_info, "policies": {n: {"stream": p} for n, p in phases.items()},
                          "online_learners": {n: [l.policy, l.feedback] for n, l in ONLINE_LEARNERS.items()}},
                   plot=plot_online)
