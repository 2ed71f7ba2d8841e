"""The paper's learner: a softmax policy trained by REINFORCE on logged data.

The policy is a small MLP ``f_theta`` from standardised features to one logit
per arm, ``pi_theta(a | x) = softmax(f_theta(x))_a``. Training data are logged
tuples ``(x, a, r, mu)`` where ``mu = mu(a | x)`` is the logging propensity.
The off-policy policy gradient

.. math::

    \\nabla_\\theta J = \\mathbb{E}_{\\mu}\\Big[\\frac{\\pi_\\theta(a|x)}{\\mu(a|x)}
        \\,(r - b)\\, \\nabla_\\theta \\log \\pi_\\theta(a|x)\\Big]
        + \\beta\\, \\nabla_\\theta \\mathbb{E}_x H(\\pi_\\theta(\\cdot|x))

is estimated on minibatches, with the importance ratio held constant (no
gradient through it) and clipped at ``max_weight``; ``b`` is a running mean of
the (standardised) reward, the variance-reducing baseline, and ``beta`` the
entropy bonus that keeps the policy from collapsing early. With full
information (every arm's reward per query), log every arm with propensity
``1/K`` and the estimate becomes the exact expected gradient.

Training is deterministic under ``seed`` for a fixed torch thread count.
The saved state is complete (network, Adam's moment estimates and step
counts, standardisation, baseline), so a policy saved, loaded and trained on
with ``partial_fit`` is exactly the policy that was trained on without the
round trip.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from banditspec.bandits.persistence import StateShapes
from banditspec.bandits.policy import Policy, masked_softmax
from banditspec.bandits.validation import check_integer, check_real

__all__ = ["Reinforce"]


class Reinforce(Policy):
    """Softmax MLP policy trained with off-policy REINFORCE.

    Parameters
    ----------
    n_arms : int
        Number of arms ``K``.
    hidden : int, default 64
        Width of the hidden layer (0 for a linear softmax policy).
    epochs : int, default 20
        Passes over the data in :meth:`fit`; :meth:`partial_fit` makes one.
    batch_size : int, default 256
        Minibatch size.
    lr : float, default 0.01
        Adam learning rate.
    entropy : float, default 0.01
        Entropy bonus weight ``beta``.
    baseline_momentum : float, default 0.9
        Momentum of the running-mean reward baseline ``b``.
    max_weight : float, default 50.0
        Clip of the importance ratio ``pi / mu``.
    seed : int, default 0
        Seed of the initialisation and the minibatch order.

    Notes
    -----
    ``n_arms``, ``hidden`` and ``lr`` are built into the network and the
    optimizer: :meth:`set_params` cannot change them on a fitted policy.
    """

    _state_params: ClassVar[tuple[str, ...]] = ("n_arms", "hidden", "lr")

    def __init__(
        self,
        n_arms: int,
        *,
        hidden: int = 64,
        epochs: int = 20,
        batch_size: int = 256,
        lr: float = 0.01,
        entropy: float = 0.01,
        baseline_momentum: float = 0.9,
        max_weight: float = 50.0,
        seed: int = 0,
    ) -> None:
        super().__init__(n_arms, seed=seed)
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.entropy = entropy
        self.baseline_momentum = baseline_momentum
        self.max_weight = max_weight

    def _check_params(self) -> None:
        super()._check_params()
        check_integer("hidden", self.hidden, low=0)
        check_integer("epochs", self.epochs, low=1)
        check_integer("batch_size", self.batch_size, low=1)
        check_real("lr", self.lr, 0.0, open_low=True)
        check_real("entropy", self.entropy, 0.0)
        check_real("baseline_momentum", self.baseline_momentum, 0.0, 1.0, open_high=True)
        check_real("max_weight", self.max_weight, 1.0)

    # -- state ---------------------------------------------------------------------------
    def _network(self, n_features: int) -> nn.Module:
        if self.hidden == 0:
            return nn.Linear(n_features, self.n_arms)
        return nn.Sequential(nn.Linear(n_features, self.hidden), nn.Tanh(), nn.Linear(self.hidden, self.n_arms))

    def _init_state(self, n_features: int) -> None:
        self.n_features_ = n_features
        generator = torch.Generator().manual_seed(self.seed)
        net = self._network(n_features)
        with torch.no_grad():
            for p in net.parameters():
                bound = 1.0 / np.sqrt(p.shape[-1])
                p.copy_(torch.empty(p.shape).uniform_(-bound, bound, generator=generator))
        self.net_ = net.eval()  # predicting is the common case: _epoch switches to training mode and back
        self.optimizer_ = torch.optim.Adam(net.parameters(), lr=self.lr)
        self.x_mean_ = np.zeros(n_features)
        self.x_scale_ = np.ones(n_features)
        self.r_mean_ = 0.0
        self.r_scale_ = 1.0
        self.baseline_ = 0.0
        self.steps_ = 0

    def _state(self) -> dict[str, np.ndarray]:
        """Network weights ``net.*``, Adam's slots ``adam.<param>.<slot>``, standardisation and scalars."""
        state = {f"net.{k}": v.detach().numpy().copy() for k, v in self.net_.state_dict().items()}
        for index, slots in self.optimizer_.state_dict()["state"].items():
            state.update({f"adam.{index}.{slot}": v.detach().numpy().copy() for slot, v in slots.items()})
        state.update(
            x_mean=self.x_mean_,
            x_scale=self.x_scale_,
            scalars=np.array([self.r_mean_, self.r_scale_, self.baseline_, self.steps_], dtype=float),
        )
        return state

    def _parameter_shapes(self, n_features: int) -> list[tuple[str, tuple[int, ...]]]:
        """Names and shapes of the network's parameters in ``parameters()`` order, as :meth:`_network` builds them."""
        if self.hidden == 0:
            return [("weight", (self.n_arms, n_features)), ("bias", (self.n_arms,))]
        return [("0.weight", (self.hidden, n_features)), ("0.bias", (self.hidden,)),
                ("2.weight", (self.n_arms, self.hidden)), ("2.bias", (self.n_arms,))]

    def _state_shapes(self, n_features: int) -> StateShapes:
        """The arrays of a fitted policy, computed from the sizes alone (nothing is allocated)."""
        single, double = np.dtype(np.float32), np.dtype(np.float64)
        shapes: StateShapes = {}
        for index, (name, shape) in enumerate(self._parameter_shapes(n_features)):
            shapes.update({f"net.{name}": (shape, single), f"adam.{index}.exp_avg": (shape, single),
                           f"adam.{index}.exp_avg_sq": (shape, single), f"adam.{index}.step": ((), single)})
        shapes.update(x_mean=((n_features,), double), x_scale=((n_features,), double), scalars=((4,), double))
        return shapes

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        r_mean, r_scale, baseline, steps = (float(v) for v in state["scalars"])
        if not (r_scale > 0 and steps >= 0 and steps.is_integer()):
            raise ValueError(f"field 'scalars': expected [r_mean, r_scale > 0, baseline, steps >= 0 whole], "
                             f"got {state['scalars'].tolist()}")
        if not np.all(state["x_scale"] > 0):
            raise ValueError("field 'x_scale': feature scales must be > 0")
        slots: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in state.items():
            if key.startswith("adam."):
                _, index, slot = key.split(".")
                slots.setdefault(int(index), {})[slot] = torch.from_numpy(value.copy())
        for index, slot in slots.items():
            step = float(slot["step"])
            if not (step >= 1 and step.is_integer() and bool((slot["exp_avg_sq"] >= 0).all())):
                raise ValueError(f"field 'adam.{index}': expected a whole step >= 1 and exp_avg_sq >= 0")
        self._init_state(self.n_features_)
        self.net_.load_state_dict({k[4:]: torch.from_numpy(v.copy()) for k, v in state.items() if k.startswith("net.")})
        self.optimizer_.load_state_dict({"state": slots, "param_groups": self.optimizer_.state_dict()["param_groups"]})
        self.x_mean_, self.x_scale_ = state["x_mean"], state["x_scale"]
        self.r_mean_, self.r_scale_, self.baseline_, self.steps_ = r_mean, r_scale, baseline, int(steps)

    # -- learning ------------------------------------------------------------------------
    def _fit(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray) -> None:
        self._init_state(X.shape[1])
        self.x_mean_ = X.mean(axis=0)
        self.x_scale_ = np.where(X.std(axis=0) > 1e-12, X.std(axis=0), 1.0)
        self.r_mean_ = float(rewards.mean())
        self.r_scale_ = float(rewards.std()) if rewards.std() > 1e-12 else 1.0
        for epoch in range(self.epochs):
            self._epoch(X, actions, rewards, propensities, epoch)

    def _update(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray) -> None:
        self._epoch(X, actions, rewards, propensities, self.steps_)

    def _epoch(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray, epoch: int) -> None:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(X))
        x_all = torch.from_numpy((X - self.x_mean_) / self.x_scale_).float()
        r_all = torch.from_numpy((rewards - self.r_mean_) / self.r_scale_).float()
        a_all = torch.from_numpy(actions)
        mu_all = torch.from_numpy(propensities).float()
        self.net_.train()
        try:
            for start in range(0, len(X), self.batch_size):
                rows = torch.from_numpy(order[start : start + self.batch_size])
                x, a, r, mu = x_all[rows], a_all[rows], r_all[rows], mu_all[rows]
                log_pi = torch.log_softmax(self.net_(x), dim=1)
                log_pi_a = log_pi.gather(1, a[:, None]).squeeze(1)
                weight = (log_pi_a.detach().exp() / mu).clamp(max=self.max_weight)
                advantage = r - self.baseline_
                entropy = -(log_pi.exp() * log_pi).sum(dim=1).mean()
                loss = -(weight * advantage * log_pi_a).mean() - self.entropy * entropy
                self.optimizer_.zero_grad()
                loss.backward()
                self.optimizer_.step()
                m = self.baseline_momentum
                self.baseline_ = m * self.baseline_ + (1 - m) * float((weight * r).sum() / weight.sum())
        finally:
            self.net_.eval()
        self.steps_ += 1

    # -- prediction ----------------------------------------------------------------------
    def _predict_proba(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Softmax of the network's logits over the available arms (the network is in eval mode outside training).

        Raises
        ------
        ValueError
            If a logit is not finite (weights that overflow float32 on these rows).
        """
        with torch.inference_mode():
            logits = self.net_(torch.from_numpy((X - self.x_mean_) / self.x_scale_).float()).double().numpy()
        if not np.isfinite(logits).all():
            raise ValueError("Reinforce logits are not finite on some rows: the network's weights overflow float32 "
                             "there (a diverged fit, or features far outside the training range); refit with a "
                             "lower lr or standardised features")
        return masked_softmax(logits, mask)
