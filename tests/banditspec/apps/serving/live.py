"""A live server for the tests (uvicorn in a thread on a free port of 127.0.0.1) and plain HTTP requests to it."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` until the block ends (then shut it down, which closes its router); yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    ready = threading.Event()
    while not ready.wait(0.01):
        if server.started:
            ready.set()
        if not thread.is_alive():
            raise RuntimeError("the server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status and body."""

    status_code: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def request(method: str, url: str, *, content: bytes | None = None, json_body: Any = None,
            headers: dict[str, str] | None = None) -> Answer:
    """One plain HTTP request (standard library), whatever its status."""
    if json_body is not None:
        content = json.dumps(json_body).encode()
    headers = {"content-type": "application/json", **(headers or {})}
    call = urllib.request.Request(url, data=content, method=method, headers=headers)
    try:
        with urllib.request.urlopen(call) as response:
            return Answer(response.status, response.read().decode())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read().decode())
