"""``banditspec train``: a selector trained on a collected dataset, saved with what it was trained on.

A saved selector is a folder: the policy (``policy.json`` +
``state.safetensors``, :meth:`~banditspec.bandits.policy.Policy.load`) and
``selector.json`` — the arm names in action order, the features it reads
(``target``: the world's own features, e.g. the target's hidden states;
``hashing``: hashed n-grams of the prompt text), the reward it learned, and
where its data came from — so that whoever serves it can rebuild exactly
what was evaluated. The demo saves every learner it trains this way.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from banditspec.apps.checks import non_negative_int, output_folder
from banditspec.apps.scoring import FEATURES, REWARDS, Fitted, LearnerSpec, resolve_learners, train_learners
from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.policy import Policy

__all__ = ["SELECTOR_FILE", "Selector", "add_arguments", "check_arguments", "load_selector", "run", "save_selector",
           "write_selector_description"]

#: The description of a saved selector, next to its policy files.
SELECTOR_FILE = "selector.json"


@dataclass(frozen=True)
class Selector:
    """A saved selector, loaded: its policy and what it was trained on.

    Attributes
    ----------
    policy : Policy
        The fitted policy.
    arms : list of str
        Arm names in action order.
    features : {"target", "hashing"}
        What it reads (see :data:`~banditspec.apps.scoring.FEATURES`).
    reward : {"speedup", "proxy"}
        What it learned.
    description : dict
        The whole ``selector.json`` (``policy``, ``source``, ...).
    folder : Path
        Where it was loaded from.
    """

    policy: Policy
    arms: list[str]
    features: str
    reward: str
    description: dict[str, Any]
    folder: Path


def save_selector(fitted: Fitted, folder: str | Path, *, arms: list[str], source: dict[str, Any]) -> Path:
    """Save ``fitted`` to ``folder``: its policy and ``selector.json`` (arms, features, reward, ``source``)."""
    folder = Path(folder)
    fitted.policy.save(folder)
    description = {"arms": list(arms), "policy": fitted.spec.describe()[0], "features": fitted.spec.features,
                   "reward": fitted.spec.reward, "source": source}
    write_selector_description(folder, description)
    return folder


def write_selector_description(folder: str | Path, description: dict[str, Any]) -> Path:
    """Write ``selector.json`` into ``folder`` atomically (a temporary file, then a rename)."""
    path = Path(folder) / SELECTOR_FILE
    tmp = path.with_name(SELECTOR_FILE + ".tmp")
    tmp.write_text(json.dumps(description, indent=1))
    tmp.replace(path)
    return path


def load_selector(folder: str | Path) -> Selector:
    """Load a selector saved by :func:`save_selector`, every field checked.

    Raises
    ------
    ValueError
        Naming the file and the field: no or unreadable ``selector.json``, a
        missing or malformed key, a policy file that fails its checks
        (:class:`~banditspec.bandits.policy.PolicyFileError`), or a policy
        whose number of arms differs from the arm names.
    """
    path = Path(folder) / SELECTOR_FILE
    try:
        description = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{folder} is not a saved selector: cannot read {path} ({error}); save one with "
                         "banditspec train") from error
    if not isinstance(description, dict):
        raise ValueError(f"{path}: expected a JSON object")
    arms = description.get("arms")
    if not (isinstance(arms, list) and arms and all(isinstance(a, str) for a in arms) and len(set(arms)) == len(arms)):
        raise ValueError(f"{path}: field 'arms' must be a non-empty list of distinct arm names, got {arms!r}")
    for key, allowed in (("features", FEATURES), ("reward", REWARDS)):
        if description.get(key) not in allowed:
            raise ValueError(f"{path}: field {key!r} must be one of {allowed}, got {description.get(key)!r}")
    policy = Policy.load(folder)
    if policy.n_arms != len(arms):
        raise ValueError(f"{path}: the policy has {policy.n_arms} arms but 'arms' names {len(arms)}")
    return Selector(policy, list(arms), description["features"], description["reward"], description, Path(folder))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``banditspec train``."""
    parser.add_argument("--data", required=True, type=Path,
                        help="a collection folder (banditspec collect) or a merged Parquet file")
    parser.add_argument("--learner", default="reinforce", help="a registered learner (default: reinforce)")
    parser.add_argument("--features", default="target", choices=FEATURES,
                        help="what it reads: the dataset's features (default) or hashed n-grams of the prompts")
    parser.add_argument("--reward", default="speedup", choices=REWARDS,
                        help="what it learns: the logged speed-up over AR (default) or the paper's alignment proxy")
    parser.add_argument("--alpha", type=float, default=0.5, help="cost weight of the proxy reward (default: 0.5)")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--out", required=True, type=Path, help="folder of the saved selector")


def check_arguments(args: argparse.Namespace) -> None:
    """Check ``banditspec train``'s options before any work: the learner, the data, ``--alpha`` and ``--out``."""
    resolve_learners([args.learner])
    if not args.data.exists():
        raise ValueError(f"--data {args.data}: no collection folder or Parquet file there")
    if not (math.isfinite(args.alpha) and args.alpha >= 0):
        raise ValueError(f"--alpha must be a finite cost weight >= 0, got {args.alpha}")
    output_folder(args.out)


def run(args: argparse.Namespace) -> int:
    """Run ``banditspec train`` (after :func:`check_arguments`)."""
    data = LoggedDataset.load(args.data)
    spec = LearnerSpec(args.learner, features=args.features, reward=args.reward)
    fitted = train_learners(data, {args.learner: spec}, seed=args.seed, alpha=args.alpha)[args.learner]
    save_selector(fitted, args.out, arms=data.arm_names,
                  source={"data": str(args.data.resolve()), "rows": len(data), "seed": args.seed,
                          "alpha": args.alpha})
    print(f"trained {args.learner} on {len(data)} rows ({data.n_arms} arms) in {fitted.fit_seconds:.1f} s; "
          f"saved to {args.out}")
    return 0
