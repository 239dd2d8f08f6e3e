"""Service workers die with the server process that started them, whatever killed it.

`bentoml serve` (what `tart serve` becomes) starts one process per service worker. If it is killed
with SIGKILL it cannot stop them, and they would keep answering on the port, so the next
`tart serve` could not bind it. Each worker calls `die_with_parent()` once at start:
- on Linux, prctl(PR_SET_PDEATHSIG, SIGKILL): the kernel ends the worker when its parent dies. Not
  SIGTERM: the worker's graceful shutdown waited on open connections and, on a busy host, for CPU
  (7 s measured), and with its server gone it has no one to answer; the task store is crash-safe;
- everywhere, a daemon thread that checks every 0.2 s whether the parent changed (the worker was
  re-parented to init or a subreaper), and then ends the worker with SIGTERM, then, 0.3 s later,
  at once (os._exit).

A clean stop (SIGTERM, Ctrl+C) reaches every worker at once. The embedding worker would stop as soon
as no call is running, while the API worker's requests in flight still need it for their next chunk
(they got a generic 500). So the embedding worker lingers (`linger_on_stop`): it passes the signal on
to its server only once it has been idle a moment, or after the API's own shutdown timeout. And the API
worker notes the stop (`note_stop`), so a request that finds the embedder gone anyway says so plainly.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from typing import Callable

PR_SET_PDEATHSIG = 1
WATCH_INTERVAL_S = 0.2  # how often the watch thread checks the parent
WATCH_GRACE_S = 0.3  # from its SIGTERM to os._exit


def _pdeathsig(sig: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCH_INTERVAL_S)
    os.kill(os.getpid(), signal.SIGTERM)  # let the worker's shutdown run
    time.sleep(WATCH_GRACE_S)
    os._exit(1)


_started = False


def is_service_worker() -> bool:
    """Whether this process is a BentoML service worker (`python -m _bentoml_impl.worker.service`)."""
    main = sys.modules.get("__main__")
    return getattr(getattr(main, "__spec__", None), "name", "") == "_bentoml_impl.worker.service"


def die_with_parent() -> None:
    """Make this process end when its parent does (idempotent). Only in a BentoML worker: a service
    built in-process (tests, notebooks) must not tie its host process to that one's parent."""
    global _started
    if _started or not is_service_worker():
        return
    _started = True
    parent = os.getppid()
    _pdeathsig(signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the prctl call
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=_watch, args=(parent,), name="die-with-parent", daemon=True).start()


_stopping = threading.Event()


def stopping() -> bool:
    """Whether this worker has been told to stop (after `note_stop` or `linger_on_stop`)."""
    return _stopping.is_set()


def _on_stop(pass_on: Callable) -> None:
    """Wrap the server's SIGTERM/SIGINT handlers (uvicorn's, installed before the services start):
    `pass_on(previous_handler, signum, frame)` decides when the server hears of it."""
    if threading.current_thread() is not threading.main_thread():
        return  # signals are the main thread's
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum, frame, previous=previous):
            again = _stopping.is_set()
            _stopping.set()
            if again:  # a second signal: no more waiting
                previous(signum, frame)
            else:
                pass_on(previous, signum, frame)
        signal.signal(sig, handler)


def note_stop(only_workers: bool = True) -> None:
    """Remember that a stop began; the server hears of it at once."""
    if not only_workers or is_service_worker():
        _on_stop(lambda previous, signum, frame: previous(signum, frame))


def linger_on_stop(idle_for: Callable[[], float], idle_s: float, max_s: float, then: Callable[[], None],
                   only_workers: bool = True) -> None:
    """On a stop signal, keep serving until `idle_for()` (seconds since this worker last worked) reaches
    `idle_s`, or `max_s` have passed; then call `then()` and pass the signal on to the server."""
    if only_workers and not is_service_worker():
        return

    def pass_on(previous, signum, frame):
        def wait():
            deadline = time.monotonic() + max_s
            while idle_for() < idle_s and time.monotonic() < deadline:
                time.sleep(0.05)
            then()
            previous(signum, frame)  # uvicorn's handler only sets flags: any thread may call it
        threading.Thread(target=wait, name="linger-on-stop", daemon=True).start()

    _on_stop(pass_on)
