"""``banditspec serve``'s HTTP API end to end, with the official openai client against a live server."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import openai
import pytest

from banditspec.apps.serving import DecisionLog, Router
from banditspec.apps.serving.server import ServerSettings, create_app
from banditspec.bandits import ope
from banditspec.bandits.data import LoggedDataset
from banditspec.speculative.kinds import Autoregressive
from tests.banditspec.apps.serving.conftest import ARMS, arm
from tests.banditspec.apps.serving.live import request, serving
from tests.banditspec.speculative.world.checkpoints import CHAT_TEMPLATE, prompt_rows

PROMPTS = [row["text"] for row in prompt_rows(16)]
MODEL = "banditspec"


def ar_text(world, prompt: str) -> str:
    return world.decoder.generate(Autoregressive("ar"), prompt).text


def client(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


@pytest.fixture
def app_for(world, latency, make_selector):
    """An app on a router with the given policy and options."""

    def make(policy: str = "egreedy", *, settings: ServerSettings | None = None, **options):
        params = {"arm": arm(options.pop("arm"))} if "arm" in options else {}
        router = Router(world, make_selector(policy, **params), latency=latency, **options)
        return create_app(router, settings or ServerSettings()), router

    return make


def test_completions_from_the_openai_client_equal_ar_and_are_logged_for_ope(world, app_for, tmp_path):
    log = DecisionLog(tmp_path / "log", ARMS, flush_rows=4)
    app, _ = app_for("egreedy", epsilon=0.5, log=log, seed=2)
    with serving(app) as url:
        api = client(url)
        completions = [api.completions.create(model=MODEL, prompt=p, max_tokens=8, temperature=0) for p in PROMPTS[:6]]
        models = api.models.list()
    assert [m.id for m in models.data] == [MODEL]
    for prompt, completion in zip(PROMPTS, completions):
        assert completion.choices[0].text == ar_text(world, prompt)
        assert completion.choices[0].finish_reason in ("stop", "length")
        decision = completion.to_dict()["banditspec"]
        assert sum(decision["distribution"]) == pytest.approx(1.0)
        assert decision["propensity"] == decision["distribution"][decision["arm"]]
        assert completion.usage.completion_tokens == decision["measurement"]["new_tokens"]
    data = LoggedDataset.load(tmp_path / "log")  # the server's shutdown wrote the last, partial shard
    assert len(data) == 6
    assert list(data.columns["request_id"]) == [c.to_dict()["banditspec"]["request_id"] for c in completions]
    estimate = ope.snips(data, np.full((6, len(ARMS)), 1.0 / len(ARMS)))
    assert np.isfinite(estimate.value) and estimate.value > 0


def test_chat_completions_use_the_tokenizer_s_chat_template(world, app_for, monkeypatch):
    app, _ = app_for("fixed", arm="same")
    with serving(app) as url:
        with pytest.raises(openai.BadRequestError, match="chat template"):
            client(url).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "the cat"}])
        monkeypatch.setattr(world.decoder.tokenizer, "chat_template", CHAT_TEMPLATE, raising=False)
        messages = [{"role": "user", "content": "the cat sat"}, {"role": "user", "content": "on the mat"}]
        chat = client(url).chat.completions.create(model=MODEL, messages=messages)
    rendered = world.decoder.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert chat.choices[0].message.content == ar_text(world, rendered)
    assert chat.choices[0].message.role == "assistant"


def test_concurrent_requests_are_all_served_and_counted(world, app_for):
    app, _ = app_for("egreedy", epsilon=1.0, seed=5)
    with serving(app) as url:
        api = client(url)
        with ThreadPoolExecutor(8) as pool:
            texts = list(pool.map(lambda p: api.completions.create(model=MODEL, prompt=p).choices[0].text,
                                  PROMPTS[:12]))
        metrics = request("GET", f"{url}/metrics").text
        health = request("GET", f"{url}/healthz").json()
    assert texts == [ar_text(world, p) for p in PROMPTS[:12]]
    chosen = sum(float(line.split()[-1]) for line in metrics.splitlines()
                 if line.startswith("banditspec_arm_choices_total{"))
    assert chosen == 12
    assert 'banditspec_requests_total{endpoint="/v1/completions",status="200"} 12.0' in metrics
    assert "banditspec_decode_seconds_bucket" in metrics and "banditspec_queue_depth 0.0" in metrics
    assert health["status"] == "ok" and set(health["arms"]) == set(ARMS)


@pytest.mark.parametrize(("name", "budget", "reason"), [("raising", None, "error"), ("sleeping", 0.05, "timeout")])
def test_a_failing_arm_is_answered_by_ar_and_counted_as_a_fallback(world, app_for, name, budget, reason):
    app, _ = app_for("fixed", arm=name, time_budget=budget)
    with serving(app) as url:
        completion = client(url).completions.create(model=MODEL, prompt=PROMPTS[0])
        metrics = request("GET", f"{url}/metrics").text
    decision = completion.to_dict()["banditspec"]
    assert completion.choices[0].text == ar_text(world, PROMPTS[0])
    assert decision["served_arm"] == "ar" and decision["fallback"] and decision["failure"].startswith(reason)
    assert f'banditspec_fallbacks_total{{arm="{name}",reason="{reason}"}} 1.0' in metrics


@pytest.mark.parametrize(("body", "status", "named"), [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"model": "banditspec", "prompt": "the cat", "colour": 1}', 400, "colour"),
    (b'{"model": "banditspec", "prompt": ["the", "cat"]}', 400, "prompt"),
    (b'{"model": "banditspec", "prompt": 7}', 400, "prompt"),
    (b'{"model": "banditspec"}', 400, "prompt"),
    (b'{"model": "banditspec", "prompt": "the cat", "temperature": 0.7}', 400, "greedy"),
    (b'{"model": "banditspec", "prompt": "the cat", "top_p": 0.5}', 400, "top_p"),
    (b'{"model": "banditspec", "prompt": "the cat", "n": 2}', 400, "n"),
    (b'{"model": "banditspec", "prompt": "the cat", "stream": true}', 400, "stream"),
    (b'{"model": "banditspec", "prompt": "the cat", "max_tokens": 0}', 400, "max_tokens"),
    (b'{"model": "banditspec", "prompt": ""}', 400, "empty"),
    (b'{"model": "banditspec", "prompt": "' + b" ".join([b"the"] * 130) + b'"}', 400, "context"),
    (b'{"model": "banditspec", "prompt": "the cat", "max_tokens": 9}', 413, "max_tokens"),
    (b'{"model": "banditspec", "prompt": "' + b"a" * 601 + b'"}', 413, "600"),
    (b'{"model": "gpt-4", "prompt": "the cat"}', 404, "gpt-4"),
])
def test_bad_requests_get_a_4xx_with_a_message_and_the_next_request_is_served(world, app_for, body, status, named):
    app, router = app_for("fixed", arm="same", settings=ServerSettings(max_prompt_chars=600))
    with serving(app) as url:
        answer = request("POST", f"{url}/v1/completions", content=body)
        good = client(url).completions.create(model=MODEL, prompt=PROMPTS[0])
    assert answer.status_code == status
    assert named in answer.json()["error"]["message"] and "Traceback" not in answer.text
    assert good.choices[0].text == ar_text(world, PROMPTS[0])


def test_sampling_is_refused_through_the_openai_client(app_for):
    app, _ = app_for("fixed", arm="same")
    with serving(app) as url:
        with pytest.raises(openai.BadRequestError, match="greedy"):
            client(url).completions.create(model=MODEL, prompt="the cat", temperature=1.0)


def test_an_api_key_is_required_when_set(world, app_for):
    app, _ = app_for("fixed", arm="same", settings=ServerSettings(api_key="s3cret"))
    with serving(app) as url:
        with pytest.raises(openai.AuthenticationError):
            client(url, "wrong").completions.create(model=MODEL, prompt=PROMPTS[0])
        assert request("POST", f"{url}/v1/completions", json_body={"model": MODEL, "prompt": "x"}).status_code == 401
        completion = client(url, "s3cret").completions.create(model=MODEL, prompt=PROMPTS[0])
        assert request("GET", f"{url}/healthz").status_code == 200
    assert completion.choices[0].text == ar_text(world, PROMPTS[0])


def test_a_full_queue_answers_429_and_an_unexpected_error_500_without_a_traceback(world, app_for, monkeypatch):
    app, router = app_for("fixed", arm="same", settings=ServerSettings(queue_depth=1))
    release, generate = threading.Event(), router.generate
    monkeypatch.setattr(router, "generate", lambda *a, **k: release.wait() and generate(*a, **k))
    with serving(app) as url:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(client(url).completions.create, model=MODEL, prompt=PROMPTS[0])
            while request("GET", f"{url}/healthz").json()["queued"] < 1:
                pass
            busy = request("POST", f"{url}/v1/completions", json_body={"model": MODEL, "prompt": PROMPTS[1]})
            release.set()
            assert first.result().choices[0].text == ar_text(world, PROMPTS[0])
        monkeypatch.setattr(router, "generate", lambda *a, **k: 1 / 0)
        broken = request("POST", f"{url}/v1/completions", json_body={"model": MODEL, "prompt": PROMPTS[1]})
        missing = request("GET", f"{url}/v2/nothing")
    assert busy.status_code == 429 and "busy" in busy.json()["error"]["message"]
    assert broken.status_code == 500 and "ZeroDivisionError" in broken.json()["error"]["message"]
    assert "Traceback" not in broken.text
    assert missing.status_code == 404 and missing.json()["error"]["message"]
