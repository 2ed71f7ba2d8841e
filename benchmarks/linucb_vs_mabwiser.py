"""banditspec's LinUCB against MABWiser's LinUCB on the same data, in one run.

Measures, at K = 8 arms and d = 16 and d = 64 features:

- batch fit: seconds to fit ``n_fit`` logged rows;
- batch predict: rows per second when choosing arms for ``n_predict`` rows;
- online step: microseconds per single-row ``select`` + ``partial_fit``
  (choose an arm for one context, then learn its reward);
- the same online step through the unchecked public path
  (``select(..., check_input=False)`` and ``partial_fit(..., check_input=False)``).

Each figure is the median over ``--repeats`` repetitions. BLAS is pinned to one
thread for both libraries (set before numpy loads) so they are compared on the
same footing. Prints a Markdown table and writes it, with a description of the
machine, to ``docs/benchmarks.md``.

Usage::

    python benchmarks/linucb_vs_mabwiser.py [--repeats 5] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from mabwiser.mab import MAB, LearningPolicy  # noqa: E402

from banditspec.baselines.linucb import LinUCB  # noqa: E402

N_ARMS = 8
ALPHA = 1.0
RIDGE = 1.0


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def logged_data(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A linear bandit logged uniformly: contexts, actions, rewards."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(N_ARMS, d)) / np.sqrt(d)
    X = rng.normal(size=(n, d))
    actions = rng.integers(0, N_ARMS, n)
    rewards = np.einsum("nd,nd->n", X, weights[actions]) + 0.1 * rng.normal(size=n)
    return X, actions, rewards


def mabwiser_linucb() -> MAB:
    return MAB(list(range(N_ARMS)), LearningPolicy.LinUCB(alpha=ALPHA, l2_lambda=RIDGE), seed=0)


def online_steps(select: Callable[[np.ndarray], int], learn: Callable[[np.ndarray, int, float], None],
                 X: np.ndarray, rewards: np.ndarray) -> None:
    """One select + one single-row update per row of ``X``."""
    for i in range(len(X)):
        x = X[i:i + 1]
        learn(x, select(x), rewards[i])


def bench_dimension(d: int, *, n_fit: int, n_predict: int, n_steps: int, n_steps_mab: int,
                    repeats: int) -> dict[str, float]:
    X, actions, rewards = logged_data(n_fit, d, seed=d)
    X_new, _, r_new = logged_data(max(n_predict, n_steps), d, seed=d + 1)
    ours, mab = LinUCB(N_ARMS, alpha=ALPHA, ridge=RIDGE), mabwiser_linucb()
    result = {
        "fit_ours": median_time(lambda: ours.fit(X, actions, rewards), repeats),
        "fit_mab": median_time(lambda: mab.fit(actions, rewards, X), repeats),
    }
    X_pred = X_new[:n_predict]
    result["predict_ours"] = n_predict / median_time(lambda: ours.select(X_pred), repeats)
    result["predict_mab"] = n_predict / median_time(lambda: mab.predict(X_pred), repeats)
    result["agreement"] = float(np.mean(ours.select(X_pred) == np.asarray(mab.predict(X_pred))))

    def ours_step(x: np.ndarray) -> np.ndarray:
        return ours.select(x)

    def ours_learn(x: np.ndarray, arm: np.ndarray, r: float) -> None:
        ours.partial_fit(x, arm, [r])

    def fast_step(x: np.ndarray) -> np.ndarray:  # the public unchecked path (check_input=False)
        return ours.select(x, check_input=False)

    def fast_learn(x: np.ndarray, arm: np.ndarray, r: float) -> None:
        ours.partial_fit(x, arm, [r], check_input=False)

    steps = X_new[:n_steps], r_new[:n_steps]
    steps_mab = X_new[:n_steps_mab], r_new[:n_steps_mab]
    result["step_ours"] = 1e6 / n_steps * median_time(lambda: online_steps(ours_step, ours_learn, *steps), repeats)
    result["step_fast"] = 1e6 / n_steps * median_time(lambda: online_steps(fast_step, fast_learn, *steps), repeats)
    result["step_mab"] = 1e6 / n_steps_mab * median_time(
        lambda: online_steps(lambda x: mab.predict(x), lambda x, a, r: mab.partial_fit([a], [r], x), *steps_mab),
        repeats,
    )
    return result


def machine() -> str:
    """CPU model, cores, Python and numpy versions."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"CPU {model}, {os.cpu_count()} cores visible; Python {platform.python_version()}, "
            f"numpy {np.__version__}, MABWiser {version('mabwiser')}; BLAS threads pinned to "
            f"{os.environ['OPENBLAS_NUM_THREADS']}")


def table(results: dict[int, dict[str, float]]) -> str:
    """Markdown table of the results by feature dimension."""
    lines = [
        "| d | K | measure | banditspec | MABWiser | ratio |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for d, r in results.items():
        lines += [
            f"| {d} | {N_ARMS} | batch fit (ms) | {1e3 * r['fit_ours']:.2f} | {1e3 * r['fit_mab']:.2f} | "
            f"{r['fit_mab'] / r['fit_ours']:.1f}x faster |",
            f"| {d} | {N_ARMS} | batch predict (rows/s) | {r['predict_ours']:,.0f} | {r['predict_mab']:,.0f} | "
            f"{r['predict_ours'] / r['predict_mab']:.1f}x faster |",
            f"| {d} | {N_ARMS} | select + update (µs/step) | {r['step_ours']:.1f} | {r['step_mab']:.1f} | "
            f"{r['step_mab'] / r['step_ours']:.1f}x faster |",
            f"| {d} | {N_ARMS} | select + update, check_input=False (µs/step) | {r['step_fast']:.1f} | "
            f"{r['step_mab']:.1f} | {r['step_mab'] / r['step_fast']:.1f}x faster |",
            f"| {d} | {N_ARMS} | same choices on the predict rows | {100 * r['agreement']:.1f} % | | |",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run every measure at d = 16 and d = 64, print the table and write it to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="repetitions per measure (median reported)")
    parser.add_argument("--n-fit", type=int, default=20_000, help="logged rows for the batch fit")
    parser.add_argument("--n-predict", type=int, default=20_000, help="rows for the batch predict")
    parser.add_argument("--n-steps", type=int, default=2_000, help="online steps for banditspec")
    parser.add_argument("--n-steps-mab", type=int, default=200, help="online steps for MABWiser (slower)")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"), help="Markdown file to write")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
    results = {
        d: bench_dimension(d, n_fit=args.n_fit, n_predict=args.n_predict, n_steps=args.n_steps,
                           n_steps_mab=args.n_steps_mab, repeats=args.repeats)
        for d in (16, 64)
    }
    settings = (f"{args.repeats} repetitions per measure, median reported; {args.n_fit:,} rows fitted, "
                f"{args.n_predict:,} rows predicted, {args.n_steps:,} online steps for banditspec and "
                f"{args.n_steps_mab:,} for MABWiser; alpha = {ALPHA}, ridge = {RIDGE}.")
    report = f"{table(results)}\n\n{settings}\n\nMachine: {machine()}; load average {_load()} when the run ended.\n"
    print(report)
    _write_section(args.out, report)


def _load() -> str:
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


START, END = "<!-- linucb_vs_mabwiser:start -->", "<!-- linucb_vs_mabwiser:end -->"


def _write_section(path: Path, report: str) -> None:
    """Replace the generated section of ``path`` (between the markers) with ``report``."""
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text = f"{text.rstrip()}\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{head}{START}\n{report}{END}{tail}")


if __name__ == "__main__":
    main()
