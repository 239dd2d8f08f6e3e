"""serving.lifecycle's stop handling, with real signals in a process of its own: the embedding worker
passes a stop on to its server only once idle (or at its bound), and after refusing new work."""
from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    from tart.serving import lifecycle

    events = []
    signal.signal(signal.SIGTERM, lambda *_: events.append(("told", time.monotonic())))
    busy_until = time.monotonic() + float(sys.argv[1])  # a worker busy for this long, then idle
    lifecycle.linger_on_stop(lambda: max(0.0, time.monotonic() - busy_until), idle_s=0.3, max_s=float(sys.argv[2]),
                             then=lambda: events.append(("closed", time.monotonic())), only_workers=False)
    t0 = time.monotonic()
    os.kill(os.getpid(), signal.SIGTERM)
    assert lifecycle.stopping() and not events  # noted at once, the server not told yet
    while len(events) < 2 and time.monotonic() - t0 < 10:
        time.sleep(0.01)
    print(" ".join(f"{name}@{when - t0:.2f}" for name, when in events))
""")


def run(busy_s: float, max_s: float) -> list[tuple[str, float]]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(busy_s), str(max_s)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return [(name, float(at)) for name, at in (e.split("@") for e in out.stdout.split())]


def test_a_stop_reaches_the_server_once_the_worker_is_idle():
    (closed, t1), (told, t2) = run(busy_s=1.0, max_s=5.0)
    assert (closed, told) == ("closed", "told")
    assert 1.25 <= t1 <= t2 < 2.5  # busy 1 s, then idle 0.3 s


def test_a_stop_reaches_the_server_at_the_bound_when_the_worker_stays_busy():
    (closed, t1), (told, t2) = run(busy_s=30.0, max_s=0.8)
    assert (closed, told) == ("closed", "told")
    assert 0.8 <= t1 <= t2 < 2.0
