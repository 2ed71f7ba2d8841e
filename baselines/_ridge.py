"""Per-arm ridge regression statistics shared by the linear learners.

For every arm ``k`` the learners keep

.. math::

    A_k = \\lambda I + \\sum_{t: a_t = k} x_t x_t^\\top, \\qquad
    b_k = \\sum_{t: a_t = k} r_t x_t, \\qquad
    \\theta_k = A_k^{-1} b_k,

with ``lambda = ridge > 0``, together with ``A_k^{-1}`` itself. One new row
updates ``A_k^{-1}`` by the Sherman–Morrison identity

.. math::

    (A + x x^\\top)^{-1} = A^{-1} - \\frac{(A^{-1} x)(A^{-1} x)^\\top}{1 + x^\\top A^{-1} x},

in ``O(d^2)``; a batch of ``m < d`` rows of one arm uses its block form (the
Woodbury identity, ``O(m d^2 + m^3)``); a batch of ``m >= d`` rows adds
``X_k^T X_k`` to ``A_k`` once and refactors it by Cholesky (``O(d^3)`` per arm
and batch, never per row). A single well-formed row takes a short path that
skips the batch machinery (:meth:`RidgePolicy.partial_fit`); its ``x x^T``
waits in a small buffer and reaches ``A_k`` as one rank-``m`` product per arm
when ``A_k`` is next read or the buffer is full (``A_k`` is only needed for
refactoring and saving, so the online loop does not touch it).
:class:`RidgePolicy` holds this state for
:class:`~banditspec.baselines.linucb.LinUCB`, :class:`~banditspec.baselines.egreedy.ContextualGreedy`
and :class:`~banditspec.baselines.thompson.LinearThompson`.

Numerical safety. Every update is checked before it is committed: the new
statistics of every arm of a batch are computed aside, and if any of them
overflows float64 (features or rewards too large for the ridge penalty) the
batch is refused with a ``ValueError`` and nothing changes; a single row
takes the in-place path only when cheap bounds show it cannot overflow.
Where round-off has made ``A_k`` or ``A_k^{-1}`` numerically indefinite
(collinear features at large scales, long runs of rank-one updates), the
inverse is rebuilt from ``A_k``, by Cholesky or from its eigendecomposition
with the eigenvalues floored at ``lambda`` (``A_k >= lambda I`` holds exactly).
Decisions are taken on rows divided by a power of two where their entries are
huge (:func:`decision_rows`), so that ``x^T A_k^{-1} x`` does not overflow.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from numpy.linalg import LinAlgError
from scipy.linalg import cho_factor, cho_solve
from scipy.linalg.blas import dger

from banditspec.bandits.persistence import StateShapes
from banditspec.bandits.policy import Policy
from banditspec.bandits.validation import check_real

__all__ = ["RidgePolicy", "decision_rows"]

#: rows added one at a time whose outer products wait before they are added to ``A_k``
GRAM_BUFFER_ROWS = 64
#: a row with ``x^T x`` above this takes the checked batch path (below it, sums of ``x x^T`` overflow
#: only after 1e158 rows)
ROW_NORM2_LIMIT = 1e150
#: rows with an entry beyond this magnitude are scaled down before a decision
DECISION_LIMIT = 2.0**256


def decision_rows(X: np.ndarray) -> np.ndarray:
    """``X`` with every row whose largest entry exceeds ``2**256`` divided by a power of two.

    Each ridge learner picks ``argmax_k x^T theta_k + c_k sqrt(x^T A_k^{-1} x)``
    with ``c_k >= 0`` (its bonus or posterior draw), which is unchanged when
    ``x`` is multiplied by a positive factor; a power of two multiplies every
    rounded intermediate by exactly that factor. The decision is then the one
    the unscaled row would get with an unbounded exponent, instead of one
    taken on scores that overflowed to infinity. Other rows are returned as
    they are (the same array when no row is scaled).
    """
    top = np.abs(X).max(axis=1)
    big = top > DECISION_LIMIT
    if not big.any():
        return X
    scaled = X.copy()
    _, exponent = np.frexp(top[big])
    scaled[big] = np.ldexp(X[big], -exponent[:, None])
    return scaled


class RidgePolicy(Policy):
    """Base class of learners with one ridge regression per arm.

    Subclasses set ``self.ridge`` in ``__init__`` and implement
    ``_predict_proba`` from :meth:`_moments` (on :func:`decision_rows`).
    ``n_arms`` and ``ridge`` are built into ``A_k``: :meth:`set_params`
    cannot change them on a fitted policy.

    Attributes
    ----------
    A_ : np.ndarray, shape (K, d, d)
        Regularised Gram matrices ``A_k``.
    A_inv_ : np.ndarray, shape (K, d, d)
        Their inverses, kept up to date by rank-one (Woodbury) updates.
    b_ : np.ndarray, shape (K, d)
        Reward-weighted feature sums ``b_k``.
    theta_ : np.ndarray, shape (K, d)
        Ridge estimates ``theta_k = A_k^{-1} b_k``.
    """

    ridge: float
    _state_params: ClassVar[tuple[str, ...]] = ("n_arms", "ridge")

    @property
    def A_(self) -> np.ndarray:
        """Regularised Gram matrices ``A_k``, shape ``(K, d, d)``, with every buffered row added."""
        self._flush_gram()
        return self._A

    @A_.setter
    def A_(self, value: np.ndarray) -> None:
        self._A = value
        self._pending_rows = np.empty((GRAM_BUFFER_ROWS, value.shape[-1]))
        self._pending_arms = np.empty(GRAM_BUFFER_ROWS, dtype=np.intp)
        self._n_pending = 0

    def _flush_gram(self) -> None:
        """Add the buffered rows' ``x x^T`` to their arms' ``A_k``, one product per arm."""
        n = self._n_pending
        if n:
            rows, arms = self._pending_rows[:n], self._pending_arms[:n]
            for k in np.unique(arms):
                X = rows[arms == k]
                self._A[k] += X.T @ X
            self._n_pending = 0

    def _check_params(self) -> None:
        super()._check_params()
        check_real("ridge", self.ridge, 1.0 / np.finfo(float).max)  # A_k^{-1} = I / lambda must be finite

    def _init_state(self, n_features: int) -> None:
        eye = np.eye(n_features)
        self.n_features_ = n_features
        self.A_ = np.tile(self.ridge * eye, (self.n_arms, 1, 1))
        self.A_inv_ = np.tile(eye / self.ridge, (self.n_arms, 1, 1))
        self.b_ = np.zeros((self.n_arms, n_features))
        self.theta_ = np.zeros((self.n_arms, n_features))

    def partial_fit(
        self, X: Any, actions: Any, rewards: Any, propensities: Any = None, *, check_input: bool = True
    ) -> RidgePolicy:
        """Update with one more batch; same arguments and checks as :meth:`Policy.partial_fit`.

        One row of a fitted policy (the online loop) is checked with a few
        scalar tests and added by one Sherman–Morrison step, without the batch
        machinery; anything else, including input that fails those tests, goes
        through the general path, which validates it and raises its errors.
        """
        row = self._single_row_update(X, actions, rewards, propensities, check_input) if self.is_fitted() else None
        if row is None:
            super().partial_fit(X, actions, rewards, propensities, check_input=check_input)
        else:
            self._add_row(*row)
        return self

    def _single_row_update(
        self, X: Any, actions: Any, rewards: Any, propensities: Any, check_input: bool
    ) -> tuple[int, np.ndarray, float] | None:
        """``(arm, row, reward)`` of one well-formed row, or None to take the general path.

        When checked, the row must have a finite ``x^T x``, which implies finite
        entries. Checked or not, it must pass :meth:`_row_is_safe` (a row so
        large that it could overflow the statistics takes the general path).
        """
        X, actions, rewards = np.asarray(X, dtype=float), np.asarray(actions), np.asarray(rewards, dtype=float)
        if X.shape != (1, self.n_features_) or actions.shape != (1,) or rewards.shape != (1,) \
                or actions.dtype.kind not in "iu":
            return None
        x, k, r = X[0], int(actions[0]), float(rewards[0])
        if check_input and not (0 <= k < self.n_arms and math.isfinite(r) and _valid_propensity(propensities)):
            return None
        return (k, x, r) if self._row_is_safe(k, x, r) else None

    def _row_is_safe(self, k: int, x: np.ndarray, r: float) -> bool:
        """Whether cheap bounds show that adding row ``x`` with reward ``r`` to arm ``k`` cannot overflow.

        ``x^T x`` must be finite and at most :data:`ROW_NORM2_LIMIT`, and
        ``(|b_k| + |r| |x|) / lambda``, which bounds ``|theta_k|`` after the
        update (``A_k^{-1} <= I / lambda``), finite.
        """
        xx = x.dot(x)
        b = self.b_[k]
        return xx <= ROW_NORM2_LIMIT and math.isfinite((math.sqrt(b.dot(b)) + abs(r) * math.sqrt(xx)) / self.ridge)

    def _update(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray) -> None:
        """Add the rows of each arm to its statistics; propensities are not used.

        A single safe row takes the in-place step; otherwise every arm's new
        statistics are computed aside and committed only if all are finite.
        """
        if len(actions) == 1 and self._row_is_safe(int(actions[0]), X[0], float(rewards[0])):
            self._add_row(int(actions[0]), X[0], float(rewards[0]))
            return
        order = np.argsort(actions, kind="stable")
        arms, starts = np.unique(actions[order], return_index=True)
        updates = [(int(arm), self._arm_statistics(int(arm), X[rows], rewards[rows]))
                   for arm, rows in zip(arms, np.split(order, starts[1:]))]
        for k, statistics in updates:
            self._commit(k, *statistics)

    def _add_row(self, k: int, x: np.ndarray, r: float) -> None:
        """One Sherman–Morrison step: the row ``x`` with reward ``r`` for arm ``k``, ``O(d^2)``.

        ``A_inv_``, ``b_`` and ``theta_`` are updated at once; ``x x^T`` joins the Gram buffer.
        ``1 + x^T A_k^{-1} x >= 1`` holds exactly; where round-off has broken
        it, ``A_k^{-1}`` is rebuilt from ``A_k`` instead.
        """
        A_inv, b, i = self.A_inv_[k], self.b_[k], self._n_pending
        u = A_inv.dot(x)  # ndarray.dot: less dispatch than @ on one row
        denominator = 1.0 + x.dot(u)
        if not denominator >= 1.0:
            self._commit(k, *self._arm_statistics(k, x[None], np.array([r]), refactor=True))
            return
        self._pending_rows[i] = x
        self._pending_arms[i] = k
        self._n_pending = i + 1
        if i + 1 == GRAM_BUFFER_ROWS:
            self._flush_gram()
        _add_outer(A_inv, -1.0 / denominator, u)
        b += r * x
        A_inv.dot(b, out=self.theta_[k])

    def _arm_statistics(
        self, k: int, X: np.ndarray, r: np.ndarray, *, refactor: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """New ``(A_k, A_k^{-1}, b_k, theta_k)`` with the rows ``X`` (rewards ``r``) added; nothing is changed.

        ``A_k^{-1}`` comes from the Woodbury identity for fewer rows than
        features (unless ``refactor``), else from :meth:`_inverse`.

        Raises
        ------
        ValueError
            If the new statistics overflow float64.
        """
        m, d = X.shape
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is detected and refused below
            A, b = self.A_[k] + X.T @ X, self.b_[k] + r @ X
        if not (np.isfinite(A).all() and np.isfinite(b).all()):
            raise self._overflow(k, X, r)
        A_inv = None
        if m < d and not refactor:
            U = self.A_inv_[k] @ X.T
            try:
                A_inv = self.A_inv_[k] - U @ np.linalg.solve(np.eye(m) + X @ U, U.T)
            except LinAlgError:  # a drifted inverse: rebuild it below
                A_inv = None
        if A_inv is None or not np.isfinite(A_inv).all():
            A_inv = self._inverse(A)
        with np.errstate(over="ignore", invalid="ignore"):
            theta = A_inv @ b
        if not np.isfinite(theta).all():
            raise self._overflow(k, X, r)
        return A, A_inv, b, theta

    def _inverse(self, A: np.ndarray) -> np.ndarray:
        """``A^{-1}`` of a finite regularised Gram matrix ``A >= lambda I``.

        By Cholesky; where round-off has made ``A`` numerically indefinite,
        from its eigendecomposition with the eigenvalues floored at ``lambda``.
        """
        eye = np.eye(len(A))
        try:
            return cho_solve(cho_factor(A), eye)
        except LinAlgError:
            eigenvalues, vectors = np.linalg.eigh(A)
            return (vectors / np.maximum(eigenvalues, self.ridge)) @ vectors.T

    def _commit(self, k: int, A: np.ndarray, A_inv: np.ndarray, b: np.ndarray, theta: np.ndarray) -> None:
        self.A_[k], self.A_inv_[k], self.b_[k], self.theta_[k] = A, A_inv, b, theta

    def _overflow(self, k: int, X: np.ndarray, r: np.ndarray) -> ValueError:
        return ValueError(
            f"{type(self).__name__}: the ridge statistics of arm {k} would overflow float64 (features up to "
            f"{np.abs(X).max():.3g}, rewards up to {np.abs(r).max():.3g}, ridge={self.ridge:g}); standardise the "
            "features, rescale the rewards or raise ridge. Nothing was changed")

    def _check_scores(self, *scores: np.ndarray) -> None:
        """Raise ValueError if any of the decision ``scores`` (on :func:`decision_rows`) is not finite."""
        if not all(np.isfinite(s).all() for s in scores):
            raise ValueError(f"{type(self).__name__}: decision scores overflow float64 with {self.get_params()}; "
                             "rescale the rewards or lower the exploration scale")

    def _moments(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ridge predictions and their scaled variances for every arm.

        Returns
        -------
        mean : np.ndarray, shape (n, K)
            ``x^T theta_k``.
        var : np.ndarray, shape (n, K)
            ``x^T A_k^{-1} x``, clipped at 0 against round-off.
        """
        if len(X) == 1:
            mean, var = self._row_moments(X[0])
            return mean[None], var[None]
        mean = X @ self.theta_.T
        var = np.empty_like(mean)
        for k in range(self.n_arms):
            var[:, k] = self._arm_variance(X, k)
        return mean, var

    def _row_moments(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_moments` of one row ``x``, shape ``(K,)`` each: two matrix-vector products.

        ``A_k^{-1} x`` for all arms at once is one ``(K d, d) @ (d,)`` product
        on the stacked inverses.
        """
        K, d = self.theta_.shape
        var = self.A_inv_.reshape(K * d, d).dot(x).reshape(K, d).dot(x)
        return self.theta_.dot(x), np.maximum(var, 0.0, out=var)

    def _arm_variance(self, X: np.ndarray, k: int) -> np.ndarray:
        """``x^T A_k^{-1} x`` for every row of ``X``, clipped at 0, shape ``(n,)``."""
        return np.maximum(np.einsum("nd,nd->n", X @ self.A_inv_[k], X), 0.0)

    def _state(self) -> dict[str, np.ndarray]:
        return {"A": self.A_, "A_inv": self.A_inv_, "b": self.b_, "theta": self.theta_}

    def _state_shapes(self, n_features: int) -> StateShapes:
        square, flat, double = (self.n_arms, n_features, n_features), (self.n_arms, n_features), np.dtype(float)
        return {"A": (square, double), "A_inv": (square, double), "b": (flat, double), "theta": (flat, double)}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        self.A_, self.A_inv_, self.b_, self.theta_ = (
            np.array(state[name], dtype=float, order="C") for name in ("A", "A_inv", "b", "theta")
        )


def _valid_propensity(propensities: Any) -> bool:
    """Whether ``propensities`` is None or one value in ``(0, 1]``."""
    if propensities is None:
        return True
    p = np.asarray(propensities, dtype=float)
    return p.shape == (1,) and 0.0 < float(p[0]) <= 1.0


def _add_outer(M: np.ndarray, scale: float, u: np.ndarray) -> None:
    """In place ``M += scale * u u^T`` for a symmetric C-ordered ``M`` (BLAS ``dger`` on ``M^T``)."""
    transposed = M.T
    out = dger(scale, u, u, a=transposed, overwrite_a=True)
    if out is not transposed:  # BLAS worked on a copy
        M[...] = out.T
