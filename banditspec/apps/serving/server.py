"""The HTTP server: OpenAI-compatible completions on a :class:`Router`, with ``/metrics`` and ``/healthz``.

Endpoints: ``POST /v1/completions``, ``POST /v1/chat/completions`` (the
messages rendered with the target tokenizer's chat template),
``GET /v1/models``, ``GET /metrics`` (Prometheus text format) and
``GET /healthz``. Decoding runs in one worker thread, never on the event
loop; requests wait in a queue of at most ``queue_depth`` (one more is
answered 429). With an ``api_key`` the ``/v1`` endpoints need
``Authorization: Bearer <key>``.

Every error is an OpenAI-style JSON body with a message: 400 for malformed
JSON, unknown fields, sampling parameters, a bad prompt; 401 without the
key; 404 for another model or path; 413 for a prompt longer than
``max_prompt_chars`` or ``max_tokens`` above the world's limit; 429 when the
queue is full; 500 (its message, never a traceback) for anything unexpected.
The online update of a request runs after its answer, in the same worker.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from banditspec.apps.serving.api import ApiError, ChatRequest, CompletionRequest, error_body, parse_request
from banditspec.apps.serving.metrics import ServerMetrics
from banditspec.apps.serving.router import PromptError, Router, Served
from banditspec.bandits.validation import check_integer

__all__ = ["ServerSettings", "create_app"]

logger = logging.getLogger("banditspec.serve")


@dataclass(frozen=True)
class ServerSettings:
    """Limits and identity of the server.

    Attributes
    ----------
    model_name : str
        The model id clients name (``/v1/models`` lists it).
    api_key : str or None
        Bearer token the ``/v1`` endpoints require; None: no authentication.
    max_prompt_chars : int
        Longest prompt (or rendered chat) accepted, in characters.
    queue_depth : int
        Requests waiting or decoding at once; more are refused with 429.
    """

    model_name: str = "banditspec"
    api_key: str | None = None
    max_prompt_chars: int = 16_000
    queue_depth: int = 16

    def __post_init__(self) -> None:
        check_integer("max_prompt_chars", self.max_prompt_chars, low=1)
        check_integer("queue_depth", self.queue_depth, low=1)
        if self.api_key is not None and not self.api_key:
            raise ValueError("api_key must not be empty: give a token or none")


class _Service:
    """The router behind the endpoints: the worker thread, the queue count, the metrics."""

    def __init__(self, router: Router, settings: ServerSettings) -> None:
        self.router = router
        self.settings = settings
        self.metrics = ServerMetrics(router.names)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="banditspec-decode")
        self.pending = 0  # changed on the event loop only

    def authorize(self, request: Request) -> None:
        key = self.settings.api_key
        if key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), key.encode()):
            raise ApiError(401, "missing or wrong API key: send the header 'Authorization: Bearer <key>'",
                           kind="authentication_error", code="invalid_api_key")

    def check(self, request: CompletionRequest | ChatRequest, prompt: str) -> None:
        if request.model != self.settings.model_name:
            raise ApiError(404, f"model {request.model!r} is not served here; this server serves "
                           f"{self.settings.model_name!r}", param="model", code="model_not_found")
        if len(prompt) > self.settings.max_prompt_chars:
            raise ApiError(413, f"the prompt has {len(prompt)} characters; this server accepts at most "
                           f"{self.settings.max_prompt_chars}", param="prompt")
        limit = self.router.decoder.max_new_tokens
        if request.max_tokens is not None and request.max_tokens > limit:
            raise ApiError(413, f"max_tokens is {request.max_tokens}; this server generates at most {limit} tokens "
                           "per request", param="max_tokens")

    async def serve(self, prompt: str, max_tokens: int | None) -> Served:
        if self.pending >= self.settings.queue_depth:
            raise ApiError(429, f"the server is busy: {self.pending} requests are queued (at most "
                           f"{self.settings.queue_depth}); retry later", kind="rate_limit_error")
        loop = asyncio.get_running_loop()
        self.pending += 1
        self.metrics.queue.set(self.pending)
        try:
            served = await loop.run_in_executor(self.executor, lambda: self.router.generate(
                prompt, max_new_tokens=max_tokens, request_id=uuid.uuid4().hex, learn=False))
        except PromptError as error:
            raise ApiError(400, str(error), param="prompt") from None
        finally:
            self.pending -= 1
            self.metrics.queue.set(self.pending)
        self.metrics.served(served)
        loop.run_in_executor(self.executor, self._learn, served)  # after the answer, before the next request
        return served

    def _learn(self, served: Served) -> None:
        try:
            self.router.learn(served)
        except Exception:  # a failed update must not stop serving; it is logged with its traceback
            logger.exception("online update failed for request %s", served.decision.request_id)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.router.close()


def _usage(served: Served) -> dict[str, int]:
    prompt, completion = int(served.prompt_ids.size), int(served.ids.size)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def create_app(router: Router, settings: ServerSettings | None = None) -> FastAPI:
    """The FastAPI application serving ``router`` (run it with uvicorn; closing it flushes the router's log).

    Parameters
    ----------
    router : Router
    settings : ServerSettings, optional
    """
    service = _Service(router, settings or ServerSettings())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()

    app = FastAPI(title="banditspec", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service

    @app.middleware("http")
    async def count(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response = await call_next(request)
        service.metrics.requests.labels(request.url.path, str(response.status_code)).inc()
        return response

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(str(error.detail)), status_code=error.status_code)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> JSONResponse:
        logger.exception("request failed")
        return JSONResponse(error_body(f"internal error: {type(error).__name__}: {error}", kind="server_error"),
                            status_code=500)

    @app.post("/v1/completions")
    async def completions(request: Request) -> JSONResponse:
        service.authorize(request)
        body = parse_request(await request.body(), CompletionRequest)
        service.check(body, body.prompt)
        served = await service.serve(body.prompt, body.max_tokens)
        return JSONResponse({
            "id": f"cmpl-{served.decision.request_id}", "object": "text_completion", "created": int(time.time()),
            "model": body.model, "usage": _usage(served), "banditspec": served.decision.to_dict(),
            "choices": [{"index": 0, "text": served.text, "finish_reason": served.finish_reason, "logprobs": None}],
        })

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> JSONResponse:
        service.authorize(request)
        body = parse_request(await request.body(), ChatRequest)
        tokenizer = router.decoder.tokenizer
        if not getattr(tokenizer, "chat_template", None):
            raise ApiError(400, "the target's tokenizer has no chat template: use /v1/completions")
        messages = [message.model_dump() for message in body.messages]
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        service.check(body, prompt)
        served = await service.serve(prompt, body.max_tokens)
        message = {"role": "assistant", "content": served.text}
        return JSONResponse({
            "id": f"chatcmpl-{served.decision.request_id}", "object": "chat.completion", "created": int(time.time()),
            "model": body.model, "usage": _usage(served), "banditspec": served.decision.to_dict(),
            "choices": [{"index": 0, "message": message, "finish_reason": served.finish_reason, "logprobs": None}],
        })

    @app.get("/v1/models")
    async def models(request: Request) -> JSONResponse:
        service.authorize(request)
        return JSONResponse({"object": "list", "data": [{"id": service.settings.model_name, "object": "model",
                                                         "created": 0, "owned_by": "banditspec"}]})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        available = router.breaker.available()
        return JSONResponse({"status": "ok", "queued": service.pending,
                             "arms": {name: bool(a) for name, a in zip(router.names, available)}})

    return app
