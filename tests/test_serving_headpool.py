"""The head's lanes (serving/headpool.py) with real threads, and the gate's cancel-on-disconnect:
a gone request's work stops, a full lane says so at once, light work does not wait behind heavy work,
and a stuck job is visible."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tart.serving.headpool import Busy, HeadLanes, Lane
from tart.serving.settings import Settings, load_settings


def spinning_job(started: threading.Event, steps: list, release: threading.Event | None = None):
    def job():  # chunks as iter_proba makes them: up to 4 s, 10 ms each, until released
        started.set()
        for _ in range(400):
            if release is not None and release.is_set():
                break
            steps.append(1)
            time.sleep(0.01)
            yield len(steps)
    return job


def one_chunk(make):
    """A job of one chunk: make()'s value."""
    return lambda: iter([make()])


def test_cancelled_request_stops_its_running_job_and_its_queued_one():
    async def scenario():
        lane = Lane("heavy", threads=1, max_waiting=4)
        started, steps = threading.Event(), []
        first = asyncio.ensure_future(lane.run(spinning_job(started, steps)))
        queued_ran = []
        second = asyncio.ensure_future(lane.run(one_chunk(lambda: queued_ran.append(1))))
        await asyncio.to_thread(started.wait, 5)
        await asyncio.sleep(0.1)
        first.cancel()
        second.cancel()
        for task in (first, second):
            with pytest.raises(asyncio.CancelledError):
                await task
        await asyncio.sleep(0.3)  # let the thread notice
        return lane, len(steps), queued_ran

    lane, steps, queued_ran = asyncio.run(scenario())
    assert steps < 100, "the running job went on after its request was cancelled"
    assert queued_ran == [], "a cancelled job that had not started ran anyway"
    assert lane.pending == 0 and lane.cancelled == 2


def test_full_lane_is_busy_and_light_work_has_its_own_lane():
    async def scenario():
        lanes = HeadLanes(light_threads=1, heavy_threads=1, light_tokens=100, max_waiting=1)
        release, started = threading.Event(), threading.Event()
        heavy = [asyncio.ensure_future(lanes.run(10_000, spinning_job(started, [], release))) for _ in range(2)]
        await asyncio.to_thread(started.wait, 5)
        with pytest.raises(Busy, match="heavy lane is full"):
            await lanes.run(10_000, one_chunk(lambda: None))  # 1 running + 1 waiting: full
        with pytest.raises(Busy, match="heavy lane is full"):
            lanes.lane(10_000).check()  # asked before a request embeds anything
        lanes.lane(50).check()  # the light lane is not full
        t0 = time.perf_counter()
        light = await lanes.run(50, one_chunk(lambda: "light done"))  # does not wait for the heavy ones
        light_wait = time.perf_counter() - t0
        stuck = lanes.oldest_running_s()
        release.set()
        await asyncio.gather(*heavy)
        return light, light_wait, stuck, lanes.oldest_running_s()

    light, light_wait, stuck, after = asyncio.run(scenario())
    assert light == ["light done"] and light_wait < 1.0
    assert stuck > 0 and after == 0.0


def test_gate_cancels_the_app_when_the_client_disconnects():
    from tart.serving.gate import RequestGate

    state = {"cancelled": False, "finished": False}

    async def slow_app(scope, receive, send):
        await receive()  # the body
        try:
            await asyncio.sleep(5)
            state["finished"] = True
        except asyncio.CancelledError:
            state["cancelled"] = True
            raise

    async def scenario():
        messages = asyncio.Queue()
        await messages.put({"type": "http.request", "body": b"{}", "more_body": False})
        sent = []

        async def send(message):
            sent.append(message)

        gate = RequestGate(slow_app, max_body_bytes=100)
        scope = {"type": "http", "method": "POST", "path": "/stats", "headers": [(b"content-type", b"application/json")]}
        call = asyncio.ensure_future(gate(scope, messages.get, send))
        await asyncio.sleep(0.2)
        await messages.put({"type": "http.disconnect"})  # the client gives up
        t0 = time.perf_counter()
        await asyncio.wait_for(call, 2)
        return time.perf_counter() - t0, sent

    elapsed, sent = asyncio.run(scenario())
    assert state == {"cancelled": True, "finished": False} and elapsed < 1 and sent == []


def test_lane_limits_follow_the_settings():
    """A lane holds its threads + head_queue; head_queue unset follows max_concurrency, from any source."""
    default = HeadLanes.from_settings(Settings())
    assert Settings().head_queue == Settings().max_concurrency == 64
    assert (default.light.capacity, default.heavy.capacity) == (1 + 64, 2 + 64)
    lanes = HeadLanes.from_settings(Settings(max_concurrency=8, head_concurrency=3, light_head_tokens=123))
    assert (lanes.light.capacity, lanes.heavy.capacity, lanes.light_tokens) == (1 + 8, 3 + 8, 123)
    assert load_settings(env={"TART_MAX_CONCURRENCY": "10"}).head_queue == 10
    assert load_settings(env={"TART_MAX_CONCURRENCY": "10", "TART_HEAD_QUEUE": "0"}).head_queue == 0
    assert Settings(head_queue=4).head_queue == 4 and Settings(head_queue=4).max_concurrency == 64
    with pytest.raises(ValueError, match=r"^setting max_concurrency = 'x': [^;]*$"):  # named once, not twice
        load_settings(env={"TART_MAX_CONCURRENCY": "x"})


def _refused_of_32_light_requests(settings) -> int:
    """32 light requests at once (each 20 ms of real work on the lane's thread): how many get Busy."""
    async def scenario():
        lanes = HeadLanes.from_settings(settings)
        results = await asyncio.gather(*(lanes.run(50, one_chunk(lambda: time.sleep(0.02))) for _ in range(32)),
                                       return_exceptions=True)
        assert lanes.light.pending == 0 and lanes.light.completed == sum(r == [None] for r in results)
        return sum(isinstance(r, Busy) for r in results)
    return asyncio.run(scenario())


def test_32_clients_are_not_refused_by_a_head_lane_under_the_default_max_concurrency():
    """Issue 28 item 9: at 32 clients (half of max_concurrency) the light lane used to queue 16 and
    refuse the rest; now only an explicit, smaller head_queue sheds load, exactly past its capacity."""
    assert _refused_of_32_light_requests(Settings()) == 0
    assert _refused_of_32_light_requests(Settings(head_queue=16)) == 32 - (1 + 16)

