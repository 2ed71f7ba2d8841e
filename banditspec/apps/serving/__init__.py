"""Serving with a learned selector: the router, its fault handling, decision log and online learning, and the server.

* :mod:`~banditspec.apps.serving.router` — :class:`Router`: per request,
  choose the arm, decode losslessly (AR on a failure), log, learn;
* :mod:`~banditspec.apps.serving.breaker` — :class:`CircuitBreaker`: failing
  arms leave the availability mask for a cool-down;
* :mod:`~banditspec.apps.serving.decisions` — :class:`Decision` and the
  :class:`DecisionLog` of Parquet shards the OPE estimators read;
* :mod:`~banditspec.apps.serving.snapshots` — atomic policy snapshots;
* :mod:`~banditspec.apps.serving.api`, :mod:`~banditspec.apps.serving.server`,
  :mod:`~banditspec.apps.serving.metrics` — the OpenAI-compatible HTTP server
  (the ``serve`` extra);
* :mod:`~banditspec.apps.serving.command` — ``banditspec serve``.

The server modules import the ``serve`` extra (FastAPI, uvicorn,
prometheus_client); the router needs only the core.
"""

from banditspec.apps.serving.breaker import CircuitBreaker
from banditspec.apps.serving.decisions import Decision, DecisionLog
from banditspec.apps.serving.router import ONLINE, PromptError, Router, Served
from banditspec.apps.serving.snapshots import Snapshots

__all__ = ["ONLINE", "CircuitBreaker", "Decision", "DecisionLog", "PromptError", "Router", "Served", "Snapshots"]
