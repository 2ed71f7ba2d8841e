"""The OpenAI-compatible request bodies the server accepts, checked strictly (pydantic), and its error bodies.

Only greedy decoding is served — the outputs are promised identical to the
target's greedy output — so sampling parameters are refused unless they ask
for greedy decoding anyway (``temperature`` 0 or absent, ``top_p`` 1 or
absent, ``n`` 1 or absent); streaming, stop sequences and log-probabilities
are not offered. A field the API does not know is refused too, never ignored.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError

__all__ = ["ApiError", "ChatRequest", "CompletionRequest", "error_body", "parse_request"]


class ApiError(Exception):
    """An error answered as ``status`` with an OpenAI-style error body."""

    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        return error_body(self.message, kind=self.kind, param=self.param, code=self.code)


def error_body(message: str, *, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}``, as the OpenAI API answers errors."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class _Greedy(BaseModel):
    """Fields shared by both endpoints; the sampling ones must ask for greedy decoding."""

    model_config = ConfigDict(extra="forbid")

    model: StrictStr
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    temperature: StrictFloat | None = None
    top_p: StrictFloat | None = None
    n: StrictInt | None = None
    stream: StrictBool | None = None
    stop: StrictStr | list[StrictStr] | None = None
    seed: StrictInt | None = None
    user: StrictStr | None = None

    def check_greedy(self) -> None:
        """Raise :class:`ApiError` (400) for anything but greedy, single, non-streamed decoding."""
        refused = [("temperature", self.temperature not in (None, 0), "only greedy decoding is served, so that "
                    "outputs equal the target's greedy output: give temperature 0 or leave it out"),
                   ("top_p", self.top_p not in (None, 1), "only greedy decoding is served: give top_p 1 or leave it out"),
                   ("n", self.n not in (None, 1), "one completion per request: give n 1 or leave it out"),
                   ("stream", bool(self.stream), "streaming is not supported: leave stream out or false"),
                   ("stop", self.stop not in (None, [], ""), "stop sequences are not supported: leave stop out")]
        for param, bad, message in refused:
            if bad:
                raise ApiError(400, f"{message} (got {param}={getattr(self, param)!r})", param=param)


class CompletionRequest(_Greedy):
    """``POST /v1/completions``: one text prompt."""

    prompt: StrictStr


class ChatMessage(BaseModel):
    """One chat message with text content."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: StrictStr


class ChatRequest(_Greedy):
    """``POST /v1/chat/completions``: messages rendered with the target tokenizer's chat template."""

    messages: list[ChatMessage] = Field(min_length=1)


def parse_request(raw: bytes, model: type[_Greedy]) -> Any:
    """The request body ``raw`` as ``model``, checked; :class:`ApiError` (400) naming the field otherwise."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ApiError(400, f"the request body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise ApiError(400, f"the request body must be a JSON object, got {type(document).__name__}")
    try:
        request = model.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or None
        message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise ApiError(400, f"field {where!r}: {message} ({error.error_count()} problem(s) in the request)",
                       param=where) from None
    request.check_greedy()
    return request
