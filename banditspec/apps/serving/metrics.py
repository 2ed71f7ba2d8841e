"""The server's Prometheus metrics (``prometheus_client``), in a registry of their own per server."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from banditspec.apps.serving.router import Served

__all__ = ["ServerMetrics"]


class ServerMetrics:
    """Requests, arm choices, fallbacks, tokens, decode latency and queue depth.

    Parameters
    ----------
    arm_names : list of str
        Arms, so that every arm's series exists from the start (at 0).
    """

    def __init__(self, arm_names: list[str]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("banditspec_requests", "HTTP requests by endpoint and status",
                                ["endpoint", "status"], registry=self.registry)
        self.choices = Counter("banditspec_arm_choices", "Arms chosen by the selector", ["arm"],
                               registry=self.registry)
        self.fallbacks = Counter("banditspec_fallbacks", "Requests whose chosen arm failed and AR decoded instead",
                                 ["arm", "reason"], registry=self.registry)
        self.tokens = Counter("banditspec_generated_tokens", "New tokens served", registry=self.registry)
        self.latency = Histogram("banditspec_decode_seconds", "Decoding seconds per request (fallback included)",
                                 registry=self.registry,
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0))
        self.queue = Gauge("banditspec_queue_depth", "Requests waiting or decoding", registry=self.registry)
        for arm in arm_names:
            self.choices.labels(arm)

    def served(self, served: Served) -> None:
        """Count one served request."""
        decision = served.decision
        self.choices.labels(decision.arm_name).inc()
        if decision.fallback:
            self.fallbacks.labels(decision.arm_name, decision.failure.split(":", 1)[0]).inc()
        self.tokens.inc(int(served.ids.size))
        self.latency.observe(decision.measurement.wall_seconds)
