"""The service under abuse, over real HTTP with a large cost budget (so that heavy requests outlast
their clients): clients that give up on heavy requests do not leave their work running, neither in
the head nor queued at the embedder; a light request is answered meanwhile; and /readyz says unready
while a job runs past stuck_after_s (1 s here), ready again after.
Slow (a server of its own, heavy requests): `pytest -m slow tests/test_serving_abuse.py`."""
from __future__ import annotations

import asyncio
import time

import httpx
import pytest

pytest.importorskip("bentoml")

from local_server import LocalServer  # noqa: E402

from tart.head.load import CHECKPOINTS  # noqa: E402
from tests.test_serving import ANIMALS, FOODS, examples  # noqa: E402,F401

pytestmark = pytest.mark.slow


def heavy_request(i: int) -> dict:
    """Under max_head_tokens=100000: 256 examples, 32 labels, 4 orders, 32 texts (98304 head tokens with
    a binary head of 64 examples' context, 81920 with a 10-label head of 128: 32 labels are one-vs-rest)."""
    return {"examples": [{"text": f"item {j} of batch {i}", "label": f"label-{j % 32}"} for j in range(256)],
            "texts": [f"query {j} of {i}" for j in range(32)], "options": {"n_permutations": 4}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # a head with Transformer blocks, whose work outlasts its clients (the default tart-base has none,
    # and answers these requests before a client could give up)
    tmp = tmp_path_factory.mktemp("abuse")
    env = {"TART_CHECKPOINT": str(CHECKPOINTS / "tart-residual"), "TART_EMBEDDER": "minilm-l6", "TART_CONFIG": "",
           "TART_STORE_PATH": str(tmp / "tasks.sqlite3"), "TART_HEAD_CONCURRENCY": "1",
           "TART_STUCK_AFTER_S": "1", "TART_MAX_HEAD_TOKENS": "1000000", "TART_MAX_EMBED_TOKENS": "120000", "TART_MAX_REQUEST_S": "0"}
    with LocalServer(env, log_path=tmp / "server.log") as srv:
        yield srv


def test_abandoned_heavy_requests_are_cancelled_and_light_ones_answered(server):
    cancelled_before = server.log_tail(10**7).count("the client disconnected; its request was cancelled")

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
    assert server.log_tail(10**7).count("the client disconnected; its request was cancelled") == cancelled_before + gave_up
    assert stats["heavy_completed"] < gave_up, stats
    assert stats["heavy_pending"] == 0 and stats["light_pending"] == 0, stats
    assert 503 in readiness, readiness  # a forward pass or head job ran past stuck_after_s=1
    assert ready_after == 200


LONG = " ".join(["the quick brown fox jumps over the lazy dog while the cat sleeps"] * 4)  # ~50 tokens


def maximal_request(i: int) -> dict:
    """At the size limits (256 examples, 32 labels, 128 texts) of ~50-token texts: 6 embedder chunks of 64."""
    return {"examples": [{"text": f"{i} {j} {LONG}", "label": f"label-{j % 32}"} for j in range(256)],
            "texts": [f"query {i} {j} {LONG}" for j in range(128)]}


def small_request() -> dict:
    return {"examples": [{"text": t, "label": y} for y, g in (("animal", ANIMALS), ("food", FOODS)) for t in g[:2]],
            "texts": [f"a goat {time.time()}"]}


def test_abandoned_requests_queued_embedder_work_is_dropped(server):
    """Four clients send maximal requests and give up after 1 s: their first chunks (64 long texts each)
    are at the embedder, one running, three waiting. The waiting ones are dropped, so once the running
    chunk has ended (we wait 1.5 times one chunk's idle time), a small request answers in at most twice
    its idle time. Before the fix the embedder ran all four chunks, one after another, for no one."""
    def timed(payload, timeout=120):
        t0 = time.perf_counter()
        r = httpx.post(server.url + "/classify", json=payload, timeout=timeout)
        assert r.status_code == 200, r.text
        return time.perf_counter() - t0

    timed(small_request())  # warm-up
    idle = sorted(timed(small_request()) for _ in range(3))[1]
    def one_chunk():  # 64 new texts (the embedder caches what it has seen): one chunk, little head work
        return {"examples": [{"text": f"c {j} {time.time()} {LONG}", "label": "ab"[j % 2]} for j in range(60)],
                "texts": [f"q {j} {time.time()} {LONG}" for j in range(4)]}
    chunk = min(timed(one_chunk()) for _ in range(2))
    stats0 = httpx.post(server.url + "/stats", json={}, timeout=30).json()["embedder"]
    cancelled0 = server.log_tail(10**7).count("the client disconnected; its request was cancelled")

    async def abandon():
        async with httpx.AsyncClient(base_url=server.url) as client:
            async def one(i):
                try:
                    await client.post("/classify", json=maximal_request(i), timeout=1)
                except httpx.TimeoutException:
                    return "gave up"
                return "answered"
            return await asyncio.gather(*(one(i) for i in range(4)))

    assert asyncio.run(abandon()) == ["gave up"] * 4
    deadline = time.monotonic() + 10
    while server.log_tail(10**7).count("the client disconnected; its request was cancelled") < cancelled0 + 4:
        assert time.monotonic() < deadline, "the abandoned requests were not all cancelled"
        time.sleep(0.05)
    time.sleep(1.5 * chunk + 0.5)  # the chunk that was running has ended
    after = timed(small_request())
    stats = httpx.post(server.url + "/stats", json={}, timeout=30).json()["embedder"]
    ran = stats["large_calls"] - stats0["large_calls"]
    dropped = stats["dropped_chunks"] - stats0.get("dropped_chunks", 0)
    print(f"small request: idle {idle:.2f} s, after 4 abandoned maximal requests {after:.2f} s; one chunk "
          f"{chunk:.2f} s; abandoned chunks run {ran}, dropped {dropped}")
    assert after <= 2 * idle, f"a small request took {after:.2f} s (idle {idle:.2f} s) after abandoned requests"
    # at most the running chunk (and one racing it) ran; every other chunk that reached the embedder was
    # dropped. Not an exact count, and cannot be one: a request sends its chunks one after another, so
    # one whose chunk ended before its client left (timing: 1 s against a chunk's time on this host) has
    # sent another, dropped too. What is exact: each request sent at least one chunk, and at most one
    # of its chunks is dropped (it sends no more once it is cancelled).
    assert ran <= 2 and 4 <= ran + dropped and dropped <= 4, (ran, dropped)


def test_abandoned_small_requests_texts_are_not_embedded(server):
    """Small requests (at most half a batch: the adaptive batcher's path) queued behind a maximal one whose
    client waits: their clients give up after 0.5 s, the service cancels them and tells the embedder, and
    their texts still waiting there are dropped instead of embedded for no one."""
    stats0 = httpx.post(server.url + "/stats", json={}, timeout=30).json()["embedder"]

    async def scenario():
        async with httpx.AsyncClient(base_url=server.url) as client:
            async def small(i):  # 28 new ~50-token texts (+4 examples): one batch's worth each
                payload = {"examples": [{"text": f"s {i} {j} {LONG}", "label": "ab"[j % 2]} for j in range(4)],
                           "texts": [f"t {i} {j} {time.time()} {LONG}" for j in range(28)]}
                try:
                    await client.post("/classify", json=payload, timeout=0.5)
                except httpx.TimeoutException:
                    return "gave up"
                return "answered"
            big = asyncio.ensure_future(client.post("/classify", json=maximal_request(99), timeout=120))
            await asyncio.sleep(0.5)  # its chunks hold the embedder
            outcomes = await asyncio.gather(*(small(i) for i in range(6)))
            return outcomes, await big

    outcomes, big = asyncio.run(scenario())
    assert big.status_code == 200, big.text
    time.sleep(1)
    stats = httpx.post(server.url + "/stats", json={}, timeout=30).json()["embedder"]
    dropped = stats["dropped_texts"] - stats0["dropped_texts"]
    gave_up = outcomes.count("gave up")
    print(f"{gave_up} of 6 small requests abandoned; {dropped} of their {32 * gave_up} texts not embedded")
    assert gave_up >= 4, outcomes
    assert dropped >= 32 * (gave_up - 2), (dropped, gave_up)  # all but one running batch (and one racing it)


def test_sigterm_with_requests_in_flight_stops_within_the_shutdown_timeout(server):
    """A clean stop waits shutdown_timeout_s (5 s by default) for running requests, then they answer 503
    "the server is shutting down" (it waited for a 96 s request before): one heavy request in the head, and
    maximal ones still waiting at the embedder, which stays up for them until then (it used to stop first,
    and they got a generic 500). Last in this file: it stops the server."""
    import signal
    import threading

    answers = {}

    def send(name, payload):
        try:
            answers[name] = httpx.post(server.url + "/classify", json=payload, timeout=300)
        except httpx.HTTPError as err:
            answers[name] = err

    # about 4 heavy requests' worth of head work: far longer than the shutdown timeout
    ex = [{"text": f"example {i} about topic {i % 32}", "label": f"l{i % 32}"} for i in range(256)]
    heavy = {"examples": ex, "texts": [f"query {i}" for i in range(128)],
             "options": {"multiclass": "ovo", "n_permutations": 4}}  # 761,856 head tokens
    clients = [threading.Thread(target=send, args=("heavy", heavy))]
    clients[0].start()
    time.sleep(3)
    for i in range(6):  # 6 embedder chunks each: most still wait at the embedder when the stop comes
        clients.append(threading.Thread(target=send, args=(f"maximal {i}", maximal_request(1000 + i))))
        clients[-1].start()
    time.sleep(3)  # the heavy one embedded, and in the head
    t0 = time.monotonic()
    killed = server.stop(signal.SIGTERM, timeout=120)
    seconds = time.monotonic() - t0
    for client in clients:
        client.join(60)
    assert killed == [] and seconds < 5 + 15, f"a clean stop took {seconds:.1f} s"
    assert len(answers) == 7
    for answer in answers.values():  # each one finished, or was told plainly (none a generic 500)
        assert isinstance(answer, httpx.Response), answer
        if answer.status_code != 200:
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"].startswith("the server is shutting down"), answer.text
            assert answer.headers["retry-after"] == "1"
    assert answers["heavy"].status_code == 503  # it cannot finish in time
