"""The service under abuse, over real HTTP with a large cost budget (the issue's first one, so that
heavy requests outlast their clients): clients that give up on
heavy requests do not leave their work running, a light request is answered meanwhile, and /readyz
says unready while a job runs past stuck_after_s (1 s here), ready again after.
Slow (a server of its own, heavy requests): `pytest -m slow tests/test_serving_abuse.py`."""
from __future__ import annotations

import asyncio
import time

import httpx
import pytest

pytest.importorskip("bentoml")

from tart.serving.launch import LocalServer  # noqa: E402
from tests.test_serving import ANIMALS, FOODS, examples, head_dir  # noqa: E402,F401

pytestmark = pytest.mark.slow


def heavy_request(i: int) -> dict:
    """Under max_head_tokens=100000: 256 examples, 32 labels, 4 orders, 32 texts (98304 head tokens with
    a binary head of 64 examples' context, 81920 with a 10-label head of 128: 32 labels are one-vs-rest)."""
    return {"examples": [{"text": f"item {j} of batch {i}", "label": f"label-{j % 32}"} for j in range(256)],
            "texts": [f"query {j} of {i}" for j in range(32)], "options": {"n_permutations": 4}}


def test_abandoned_heavy_requests_are_cancelled_and_light_ones_answered(head_dir, tmp_path):  # noqa: F811
    env = {"TART_CHECKPOINT": head_dir, "TART_EMBEDDER": "minilm-l6", "TART_CONFIG": "",
           "TART_STORE_PATH": str(tmp_path / "tasks.sqlite3"), "TART_HEAD_CONCURRENCY": "1",
           "TART_STUCK_AFTER_S": "1", "TART_MAX_HEAD_TOKENS": "100000", "TART_MAX_EMBED_TOKENS": "8192"}
    with LocalServer(env, log_path=tmp_path / "server.log") as server:
        async def scenario():
            async with httpx.AsyncClient(base_url=server.url) as client:
                async def abandon(i):
                    try:  # the client gives up after 3 s
                        await client.post("/classify", json=heavy_request(i), timeout=3)
                    except httpx.TimeoutException:
                        return "gave up"
                    return "answered"
                readiness = []

                async def poll_readyz():  # until it went unready and ready again, or 60 s
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline and not (503 in readiness and readiness[-1] == 200):
                        readiness.append((await client.get("/readyz", timeout=10)).status_code)
                        await asyncio.sleep(0.25)

                poller = asyncio.ensure_future(poll_readyz())
                outcomes = asyncio.gather(*(abandon(i) for i in range(4)))
                await asyncio.sleep(4)  # the heavy ones are running or queued, their clients gone
                t0 = time.perf_counter()
                light = await client.post("/classify", json={"examples": examples(ANIMALS, FOODS), "texts": ["a goat"]},
                                          timeout=60)
                light_seconds = time.perf_counter() - t0
                await poller
                return await outcomes, light, light_seconds, readiness

        outcomes, light, light_seconds, readiness = asyncio.run(scenario())
        deadline = time.monotonic() + 60
        while True:  # a job already inside its one query batch finishes it; then nothing is left
            stats = httpx.post(server.url + "/stats", json={}, timeout=30).json()["service"]
            if stats["heavy_pending"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        time.sleep(1)
        ready_after = httpx.get(server.url + "/readyz", timeout=10).status_code
    assert light.status_code == 200, light.text
    assert light_seconds < 15, f"a light request waited {light_seconds:.1f} s behind abandoned heavy ones"
    gave_up = outcomes.count("gave up")
    assert gave_up >= 1, outcomes
    # every disconnect was noticed and its request cancelled (in the embedder call or in the head's
    # queue); so not every abandoned request's head work ran
    assert server.log_tail(10**6).count("the client disconnected; its request was cancelled") == gave_up
    assert stats["heavy_completed"] < gave_up, stats
    assert stats["heavy_pending"] == 0 and stats["light_pending"] == 0, stats
    assert 503 in readiness, readiness  # a forward pass or head job ran past stuck_after_s=1
    assert ready_after == 200
