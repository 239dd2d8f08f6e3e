"""Start and stop a local server as a child process, for tests and benchmarks.

`LocalServer` runs `bentoml serve tart.serving.service:Tart` on 127.0.0.1 and a free port, waits for
/readyz, and stops it with the signal asked for: SIGTERM for a clean stop, SIGKILL to simulate a
crash. BentoML runs one process per service worker; stopping the server reaches them all.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



def _ended(p: psutil.Process) -> bool:
    try:
        return p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True

class LocalServer:
    def __init__(self, env: dict[str, str], port: int | None = None, log_path: str | Path | None = None,
                 via_cli: bool = False):
        self.env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true", "HF_HUB_OFFLINE": "1", **env}
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path or tempfile.mkstemp(prefix="tart-serve-", suffix=".log")[1])
        self.via_cli = via_cli  # start through `tart serve` instead of `bentoml serve`
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 180.0) -> "LocalServer":
        if self.via_cli:
            argv = [sys.executable, "-m", "tart.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        else:
            from tart.serving.cli import bentoml_serve_argv
            from tart.serving.settings import load_settings

            argv = bentoml_serve_argv("127.0.0.1", self.port, load_settings(env=self.env))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop(signal.SIGKILL)
        raise TimeoutError(f"server not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0, leader_only: bool = False) -> list[int]:
        """Stop the server and wait until all its processes are gone; return the pids that had to be
        killed because they outlived the wait.

        SIGTERM goes to `bentoml serve`, which stops its workers itself. SIGKILL goes to every
        process of the server at once (the workers run in sessions of their own, so a process group
        does not reach them): that is a crash, with no shutdown code run anywhere. With
        `leader_only`, any signal goes to `bentoml serve` alone: the workers must then end by
        themselves (serving/lifecycle.py), as they do when the server is killed for real."""
        if self.proc is None:
            return []
        try:
            leader = psutil.Process(self.proc.pid)
            processes = [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            processes = []
        for p in processes if sig == signal.SIGKILL and not leader_only else processes[:1]:
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(processes, timeout=timeout)
        # a zombie has ended: it waits only for whoever adopted it (init, here maybe slow) to reap it
        alive = [p for p in alive if not _ended(p)]
        self.survivor_commands = []
        for p in alive:  # did not stop in time (it may end right now: not an error)
            try:
                self.survivor_commands.append(" ".join(p.cmdline())[:200])
            except psutil.Error:
                pass
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=10)
        self.proc.wait(10)
        self.proc = None
        return [p.pid for p in alive]

    def restart(self, sig: int = signal.SIGTERM, env: dict[str, str] | None = None, leader_only: bool = False,
                timeout: float = 60.0) -> list[int]:
        """Stop (see `stop`) and start again on the same port; return the pids `stop` had to kill."""
        survivors = self.stop(sig, timeout=timeout, leader_only=leader_only)
        self.env.update(env or {})
        self.start()
        return survivors

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
