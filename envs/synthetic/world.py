"""A fast simulated world: domains, drafts, and latency from the speculative-decoding cost model.

Every query belongs to a *domain* (translation, summarisation, ...). Every
drafting strategy ``s`` (a draft model, prompt lookup, ...) has a mean
per-token acceptance rate ``m[d, s]`` on domain ``d``; on one query the rate
varies around it on the logit scale,

.. math::

    \\operatorname{logit} a_{q,s} = \\operatorname{logit} m[d_q, s]
        + \\sigma_c z_q + \\sigma_s z_{q,s},

with ``z_q`` a difficulty shared by all strategies and ``z_{q,s}`` specific to
one. A strategy with block size ``g`` and cost ratio ``c`` (draft step /
target step) makes ``(1 - a^{g+1}) / (1 - a)`` tokens per target call in
expectation (Leviathan et al., 2023), so ``T`` new tokens take

.. math::

    t = T \\, t_{target} \\, (g c + 1) \\frac{1 - a}{1 - a^{g+1}} \\, e^{\\sigma_t \\varepsilon}

seconds (AR: ``T t_target e^{sigma_t eps}``), with independent lognormal noise
``eps ~ N(0, 1)`` per (query, arm, run). Each arm is one strategy at one block
size; arm 0 is AR. The reward (by default the speed-up over AR of the same
query and run) is computed from the simulated measurement columns.

The policy sees features ``x_q``: a per-domain centroid plus Gaussian noise in
the informative dimensions and pure noise in the nuisance ones, so the domain
is learnable but never given. The domain itself is in ``Queries.groups`` for
reports only.

Everything about a query is a function of its id (which encodes split, seed
and position), drawn block-wise with ``np.random.Generator`` seeded from
``(seed, split, query seed, block)``; the noise of a run likewise from
``(seed, ..., run seed)``. Hence :meth:`SyntheticWorld.step` returns exactly the
chosen columns of :meth:`SyntheticWorld.full_feedback` for the same run seed,
whatever the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy.special import expit, logit

from banditspec.bandits.arms import ArmSet
from banditspec.speculative.kinds import Autoregressive
from banditspec.bandits.env import Feedback, Queries
from banditspec.bandits.rewards import Reward, SpeedupOverAR
from banditspec.envs.synthetic.drafts import DEFAULT_DOMAINS, DraftSpec, default_drafts, make_arm, speedup_factor

__all__ = ["SyntheticWorld"]

_SPLITS = {"train": 0, "test": 1}
_BLOCK_BITS = 10  # queries are drawn in blocks of 2**10
_POSITION_BITS = 32
_MAX_QUERY_SEED = 2**30
_LATENT, _NOISE = 0, 1


class SyntheticWorld:
    """Simulated multi-domain speculative decoding with full information.

    Parameters
    ----------
    domains : Sequence[str], default :data:`DEFAULT_DOMAINS`
        Domain names, unique.
    drafts : Sequence[DraftSpec], optional
        Drafting strategies; :func:`default_drafts` when omitted (8 arms with AR).
    block_sizes : Sequence[int], default (5,)
        Block sizes of every strategy that does not fix its own; several sizes
        give one arm per (strategy, size), e.g. 7 strategies x 9 sizes + AR = 64 arms.
    domain_weights : Sequence[float], optional
        Probability of each domain (uniform when omitted).
    n_features : int, default 16
        Feature dimension ``d``.
    n_nuisance : int, default 4
        Trailing feature dimensions that are pure noise, in ``[0, d)``.
    domain_separation : float, default 5.0
        Distance between any two domain centroids (compare with ``feature_noise``;
        orthogonal centroids in the informative dimensions; random ones, at this
        distance on average, when there are more domains than such dimensions).
    feature_noise : float, default 1.0
        Standard deviation of the Gaussian noise added to every feature.
    query_spread : float, default 0.35
        ``sigma_c``: logit-scale spread of the difficulty shared by all strategies.
    arm_spread : float, default 0.3
        ``sigma_s``: logit-scale spread specific to each (query, strategy).
    latency_noise : float, default 0.08
        ``sigma_t``: log-scale standard deviation of the per-run latency noise.
    target_step_seconds : float, default 0.02
        ``t_target``: seconds of one target forward call.
    mean_new_tokens : float, default 128
        Median of the lognormal number of new tokens ``T`` per query.
    reward : Reward, default SpeedupOverAR()
        Reward computed from the simulated measurement columns.
    seed : int, default 0
        Seed of the world (centroids, queries, noise).
    """

    def __init__(
        self,
        *,
        domains: Sequence[str] = DEFAULT_DOMAINS,
        drafts: Sequence[DraftSpec] | None = None,
        block_sizes: Sequence[int] = (5,),
        domain_weights: Sequence[float] | None = None,
        n_features: int = 16,
        n_nuisance: int = 4,
        domain_separation: float = 5.0,
        feature_noise: float = 1.0,
        query_spread: float = 0.35,
        arm_spread: float = 0.3,
        latency_noise: float = 0.08,
        target_step_seconds: float = 0.02,
        mean_new_tokens: float = 128.0,
        reward: Reward | None = None,
        seed: int = 0,
    ) -> None:
        domains = tuple(str(d) for d in domains)
        if not domains or len(set(domains)) != len(domains):
            raise ValueError(f"domains must be non-empty and unique, got {domains}")
        drafts = tuple(default_drafts(domains) if drafts is None else drafts)
        names = [s.name for s in drafts]
        if len(set(names)) != len(names) or "ar" in names:
            raise ValueError(f"drafts must have unique names other than 'ar', got {names}")
        for spec in drafts:
            unknown = set(spec.acceptance) - set(domains)
            if unknown:
                raise ValueError(f"DraftSpec {spec.name!r} lists unknown domains {sorted(unknown)}; domains are {domains}")
        block_sizes = tuple(int(g) for g in block_sizes)
        if not block_sizes or min(block_sizes) < 1 or len(set(block_sizes)) != len(block_sizes):
            raise ValueError(f"block_sizes must be distinct integers >= 1, got {block_sizes}")
        weights = np.full(len(domains), 1.0 / len(domains)) if domain_weights is None else np.asarray(domain_weights, float)
        if weights.shape != (len(domains),) or np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
            raise ValueError(f"domain_weights must be {len(domains)} non-negative numbers summing to 1, got {domain_weights}")
        if not isinstance(n_features, int) or n_features < 1 or not 0 <= n_nuisance < n_features:
            raise ValueError(f"need n_features >= 1 and 0 <= n_nuisance < n_features, got {n_features}, {n_nuisance}")
        scales = dict(domain_separation=domain_separation, feature_noise=feature_noise, query_spread=query_spread,
                      arm_spread=arm_spread, latency_noise=latency_noise)
        bad = [k for k, v in scales.items() if not (np.isfinite(v) and v >= 0)]
        if bad or not (target_step_seconds > 0 and mean_new_tokens >= 1):
            raise ValueError(f"{bad or 'target_step_seconds/mean_new_tokens'} must be finite and >= 0 "
                             "(target_step_seconds > 0, mean_new_tokens >= 1)")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")

        self.domains = domains
        self.drafts = drafts
        self.block_sizes = block_sizes
        self.domain_weights = weights
        self.n_features = n_features
        self.n_nuisance = n_nuisance
        self.feature_noise = float(feature_noise)
        self.query_spread = float(query_spread)
        self.arm_spread = float(arm_spread)
        self.latency_noise = float(latency_noise)
        self.target_step_seconds = float(target_step_seconds)
        self.mean_new_tokens = float(mean_new_tokens)
        self.reward = SpeedupOverAR() if reward is None else reward
        self.seed = int(seed)

        self.arms = ArmSet([Autoregressive("ar")])
        strategy, block, cost = [-1], [0], [0.0]
        for s, spec in enumerate(drafts):
            sizes = spec.block_sizes or block_sizes
            for g in sizes:
                name = spec.name if len(sizes) == 1 else f"{spec.name}/g{g}"
                self.arms.add(make_arm(spec, name, g))
                strategy.append(s)
                block.append(g)
                cost.append(spec.cost_ratio)
        self._strategy = np.array(strategy)
        self._block = np.array(block, dtype=float)
        self._cost = np.array(cost)
        self._mean_logit = logit(np.array([[s.mean_acceptance(d) for s in drafts] for d in domains]))
        informative = n_features - n_nuisance
        rng = np.random.default_rng([self.seed, 2])
        if len(domains) <= informative:
            basis = np.linalg.qr(rng.standard_normal((informative, informative)))[0][:, : len(domains)].T
            centroids = basis * domain_separation / np.sqrt(2.0)
        else:
            centroids = rng.standard_normal((len(domains), informative)) * domain_separation / np.sqrt(2.0 * informative)
        #: Domain centroids, shape ``(n_domains, n_features)`` (zero in the nuisance dimensions).
        self.centroids = np.hstack([centroids, np.zeros((len(domains), n_nuisance))])

    # -- queries -------------------------------------------------------------------------
    def queries(self, n: int, *, split: str, seed: int) -> Queries:
        """Draw ``n`` queries of ``split`` ("train" or "test"); the same ``(split, seed)`` gives the same queries.

        The first ``m`` of ``n`` queries are the ``m`` queries drawn with ``n = m``.
        """
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {sorted(_SPLITS)}, got {split!r}")
        if not isinstance(n, (int, np.integer)) or not 0 < n < 2**_POSITION_BITS:
            raise ValueError(f"n must be a positive integer below 2**32, got {n!r}")
        if not isinstance(seed, (int, np.integer)) or not 0 <= seed < _MAX_QUERY_SEED:
            raise ValueError(f"seed must be an integer in [0, 2**30), got {seed!r}")
        tag = 2 * int(seed) + _SPLITS[split]
        ids = (np.int64(tag) << _POSITION_BITS) + np.arange(n, dtype=np.int64)
        latent = self._latents(ids)
        return Queries(ids=ids, X=latent["X"], groups=np.asarray(self.domains, dtype=object)[latent["domain"]])

    def _check_ids(self, queries: Queries) -> np.ndarray:
        ids = np.asarray(queries.ids)
        if not np.issubdtype(ids.dtype, np.integer) or ids.ndim != 1 or (len(ids) and ids.min() < 0):
            raise ValueError("queries.ids must be the non-negative integer ids this world's queries() returned")
        return ids.astype(np.int64)

    def _draw(self, ids: np.ndarray, stream: int, extra: tuple[int, ...], draw: Callable) -> dict[str, np.ndarray]:
        """The arrays ``draw(rng, block_len)`` gives, at the rows of ``ids``.

        Drawn per block of ``2**10`` consecutive positions with a generator
        seeded by ``(seed, stream, split/seed tag, block, *extra)``, so what a
        query gets depends only on its id, never on the batch it is in.
        """
        out = {k: np.empty((len(ids), *v.shape[1:]), v.dtype) for k, v in draw(np.random.default_rng(0), 0).items()}
        keys = ids >> _BLOCK_BITS
        for key in np.unique(keys):
            rows = np.flatnonzero(keys == key)
            tag, block = divmod(int(key), 2 ** (_POSITION_BITS - _BLOCK_BITS))
            arrays = draw(np.random.default_rng([self.seed, stream, tag, block, *extra]), 2**_BLOCK_BITS)
            for k, v in arrays.items():
                out[k][rows] = v[ids[rows] & (2**_BLOCK_BITS - 1)]
        return out

    def _latents(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """Domain, features, new tokens and per-strategy acceptance rates of the queries ``ids``."""

        def draw(rng: np.random.Generator, size: int) -> dict[str, np.ndarray]:
            return {
                "domain": rng.choice(len(self.domains), size=size, p=self.domain_weights),
                "noise": rng.standard_normal((size, self.n_features)),
                "z_query": rng.standard_normal(size),
                "z_arm": rng.standard_normal((size, len(self.drafts))),
                "z_len": rng.standard_normal(size),
            }

        out = self._draw(ids, _LATENT, (), draw)
        domain = out["domain"]
        z = self._mean_logit[domain] + self.query_spread * out["z_query"][:, None] + self.arm_spread * out["z_arm"]
        return {
            "domain": domain,
            "X": self.centroids[domain] + self.feature_noise * out["noise"],
            "tokens": np.maximum(1, np.rint(self.mean_new_tokens * np.exp(0.5 * out["z_len"]))).astype(np.int64),
            "acceptance": np.clip(expit(z), 1e-4, 0.999),
        }

    def _noise(self, ids: np.ndarray, seed: int) -> np.ndarray:
        """Standard normal latency noise of run ``seed``, shape ``(n, K)``."""
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        draw = lambda rng, size: {"z": rng.standard_normal((size, len(self.arms)))}  # noqa: E731
        return self._draw(ids, _NOISE, (int(seed),), draw)["z"]

    # -- measurements --------------------------------------------------------------------
    def _expected(self, queries: Queries) -> dict[str, np.ndarray]:
        """Noise-free measurement columns, shape ``(n, K)`` each, and ``ar_base`` ``(n,)``."""
        latent = self._latents(self._check_ids(queries))
        tokens = latent["tokens"]
        acceptance = np.ones((len(tokens), len(self.arms)))
        drafted = self._strategy >= 0
        acceptance[:, drafted] = latent["acceptance"][:, self._strategy[drafted]]
        factor = np.ones_like(acceptance)
        factor[:, drafted] = speedup_factor(acceptance[:, drafted], self._block[drafted], self._cost[drafted])
        ar_base = tokens * self.target_step_seconds
        calls = np.ones_like(acceptance)
        calls[:, drafted] = (1.0 - acceptance[:, drafted]) / (1.0 - acceptance[:, drafted] ** (self._block[drafted] + 1))
        calls = np.maximum(1, np.ceil(tokens[:, None] * calls - 1e-9)).astype(np.int64)
        shape = acceptance.shape
        return {
            "new_tokens": np.broadcast_to(tokens[:, None], shape),
            "wall_seconds": ar_base[:, None] / factor,
            "target_calls": calls,
            "accepted_tokens": np.where(drafted, np.maximum(0, tokens[:, None] - calls), 0),
            "proposed_tokens": np.where(drafted, calls * self._block.astype(np.int64), 0),
            "equals_ar": np.ones(shape, dtype=bool),
            "cost": np.broadcast_to(self._cost, shape),
            "align_token_match": acceptance,
            "ar_base": ar_base,
        }

    def measure(self, queries: Queries, actions: np.ndarray | None = None, *, seed: int = 0) -> dict[str, np.ndarray]:
        """Simulated measurement columns of run ``seed`` (the names of :class:`~banditspec.bandits.env.Measurement`).

        Columns have shape ``(n, K)`` (every arm) or, with ``actions``, ``(n,)``
        (arm ``actions[i]`` on query ``i``). ``align_token_match`` is the
        query's acceptance rate (1 for AR); ``ar_wall_seconds`` is the AR arm's
        time on the same query in the same run.
        """
        columns = self._expected(queries)
        ar_base = columns.pop("ar_base")
        seconds = columns["wall_seconds"] * np.exp(self.latency_noise * self._noise(self._check_ids(queries), seed))
        columns["wall_seconds"] = seconds
        columns["ar_wall_seconds"] = np.broadcast_to(seconds[:, :1], seconds.shape)
        if actions is None:
            return columns
        actions = self._check_actions(actions, len(ar_base))
        rows = np.arange(len(actions))
        return {k: np.asarray(v)[rows, actions] for k, v in columns.items()}

    def _check_actions(self, actions: np.ndarray, n: int) -> np.ndarray:
        actions = np.asarray(actions)
        if actions.shape != (n,) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(f"actions must be integer arm ids of shape ({n},), got {actions.dtype} {actions.shape}")
        if n and (actions.min() < 0 or actions.max() >= len(self.arms)):
            raise ValueError(f"actions must be arm ids in [0, {len(self.arms)}), got [{actions.min()}, {actions.max()}]")
        return actions

    def _rewards(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        shape = np.shape(columns["wall_seconds"])
        flat = {k: np.broadcast_to(v, shape).reshape(-1) for k, v in columns.items()}
        return np.asarray(self.reward.compute(flat), dtype=float).reshape(shape)

    # -- Environment protocol ------------------------------------------------------------
    def step(self, queries: Queries, actions: np.ndarray, *, seed: int = 0) -> Feedback:
        """Run arm ``actions[i]`` on query ``i`` in run ``seed`` (bandit feedback).

        Equals ``full_feedback(queries, seed=seed)`` at the chosen arms.
        """
        columns = self.measure(queries, actions, seed=seed)
        return Feedback(rewards=self._rewards(columns), seconds=columns["wall_seconds"],
                        ar_seconds=columns["ar_wall_seconds"], actions=np.asarray(actions))

    def full_feedback(self, queries: Queries, *, seed: int = 0) -> Feedback:
        """Every arm's reward and seconds on every query in run ``seed``, shape ``(n, K)``."""
        columns = self.measure(queries, seed=seed)
        return Feedback(rewards=self._rewards(columns), seconds=columns["wall_seconds"],
                        ar_seconds=columns["wall_seconds"][:, 0].copy())

    def true_values(self, queries: Queries, *, nodes: int = 8) -> np.ndarray:
        """Expected reward of every arm on every query over the latency noise, shape ``(n, K)``.

        Given the query (its domain, acceptance rates and length), the reward
        depends only on the AR noise ``eps_0`` and the arm's noise ``eps_k``;

        .. math::

            v_{q,k} = \\mathbb{E}_{\\varepsilon_0, \\varepsilon_k}\\, r(q, k; \\varepsilon_0, \\varepsilon_k)
                \\approx \\sum_{i,j} w_i w_j\\, r(q, k; x_i, x_j)

        by Gauss-Hermite quadrature with ``nodes`` points per noise (for the
        AR arm ``eps_k = eps_0``). For the speed-up reward this is
        ``speedup_factor * exp(sigma_t^2)`` to machine precision.
        """
        if not isinstance(nodes, int) or nodes < 1:
            raise ValueError(f"nodes must be a positive integer, got {nodes!r}")
        columns = self._expected(queries)
        ar_base = columns.pop("ar_base")
        base = columns["wall_seconds"]
        x, w = np.polynomial.hermite_e.hermegauss(nodes)
        w = w / w.sum()
        sigma = self.latency_noise
        values = np.zeros(base.shape)
        for xi, wi in zip(x, w):
            ar = ar_base * np.exp(sigma * xi)
            for xj, wj in zip(x, w):
                seconds = base * np.exp(sigma * xj)
                seconds[:, 0] = ar
                values += wi * wj * self._rewards({**columns, "wall_seconds": seconds, "ar_wall_seconds": ar[:, None]})
        return values
