"""Time limits: a case with one runs in a worker process, which is killed when the case overruns.

Why a process. A forward that never returns cannot be stopped from inside its own process: signal.alarm
reaches only the main thread and only between Python bytecodes, while the checker runs forwards on its
own threads (gradcheck.strategies.plans) and a forward may be stuck in C code (a BLAS call, a deadlock);
a thread abandoned on timeout keeps spinning a core and holding the layer's state, and the interpreter waits
for it at exit. pytest-timeout has the same two tools: its signal method has these limits, and its thread
method ends the whole pytest process (every later case lost). A process is stopped whatever it is doing
(SIGKILL), and one that dies (out of memory, os._exit in the layer) is reported as the case's error too.

How. One worker process serves the cases one after another, so imports (numpy, the user's layer module) are
paid once. It is a fresh interpreter started with subprocess: fork would inherit locks held by the caller's
threads, and multiprocessing's spawn runs the caller's __main__ again (which fails from a notebook or stdin,
and re-runs a script without a __main__ guard). It loads the case from its file by name, runs it as
gradcheck.catalogue.runner.run_one does in-process, and sends back the Outcome (the JSON data the runner
makes anyway, plus what ``keep(report)`` drew). On a timeout the worker is killed and the next case starts
a new one. Starting a worker (about a second: a Python with numpy) is not counted against a case's limit.
The worker dies with its parent (PR_SET_PDEATHSIG on Linux; elsewhere it ends when its pipe closes, after
the case at hand). Cases without a limit run in the caller's process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

STARTUP_SECONDS = 120.0  # how long a new worker may take to import numpy and gradcheck

# The worker's first lines: only the standard library until it has the caller's sys.path and folder.
_BOOT = """\
import ctypes, os, sys
from multiprocessing.connection import Connection
try:
    ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL: die with the parent (Linux)
except (AttributeError, OSError):
    pass
conn = Connection(int(sys.argv[1]))
sys.path[:], folder = conn.recv()
os.chdir(folder)
from gradcheck.catalogue.isolation import _serve
_serve(conn)
"""


def limit_of(case, default: float | None, option: str) -> tuple[float | None, str]:
    """(seconds, how the limit was given) for a case: its check.timeout, else the caller's default."""
    if case.timeout is not None:
        return case.timeout, f"check.timeout: {case.timeout:g}"
    if default is not None:
        return float(default), f"{option} {default:g}"
    return None, ""


def _serve(conn) -> None:
    """The worker's loop: (file, name, seed, explain, keep) in; ("done", Outcome), ("failed", one-line error)
    or ("interrupted",) out."""
    import gradcheck.checker  # noqa: F401  (its imports are the worker's start-up, not a case's time)
    from gradcheck.catalogue.case import load_file
    from gradcheck.catalogue.runner import run_one
    from gradcheck.errors import one_line
    conn.send(("ready",))
    while True:
        try:
            file, name, seed, explain, keep = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        try:
            case = next((c for c in load_file(file) if c.name == name), None)
            if case is None:
                conn.send(("failed", "the case is no longer in its file"))
                continue
            outcome = run_one(case, seed, explain, keep)
        except KeyboardInterrupt:
            conn.send(("interrupted",))
            return
        except BaseException as exc:  # noqa: B036  (loading the case again raised: the case's error)
            conn.send(("failed", one_line(exc)))
            continue
        try:
            conn.send(("done", outcome))
        except Exception as exc:  # a kept object that does not pickle: the verdict still goes back
            outcome.kept, outcome.trace = None, f"(could not send what was kept: {exc})"
            conn.send(("done", outcome))


class Worker:
    """The worker process of one run (started on the first case with a limit, again after a timeout)."""

    def __init__(self):
        self._process = None
        self._conn = None

    def _start(self) -> None:
        ours, theirs = socket.socketpair()
        self._process = subprocess.Popen([sys.executable, "-c", _BOOT, str(theirs.fileno())],
                                         pass_fds=(theirs.fileno(),))
        theirs.close()
        self._conn = Connection(ours.detach())
        self._conn.send((list(sys.path), os.getcwd()))
        if not self._conn.poll(STARTUP_SECONDS):
            self.stop()
            raise RuntimeError(f"the gradcheck worker process did not start within {STARTUP_SECONDS:g} s")
        self._conn.recv()

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Kill the worker (if any) and wait for it."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            self._conn.close()
        self._process = self._conn = None

    def _death(self) -> str:
        """Why the worker is gone, in words."""
        try:
            code = self._process.wait(5)
        except subprocess.TimeoutExpired:
            return "the case's process stopped answering"
        if code < 0:
            name = signal.Signals(-code).name
            why = "; out of memory?" if name == "SIGKILL" else ""
            return f"the case's process was killed by {name}{why}"
        return f"the case's process exited with status {code} before reporting"

    def run(self, case, seed: int | None, explain: float | None, keep, limit: float, source: str) -> Any:
        """The case's Outcome from the worker, or an error Outcome when it overran ``limit`` seconds."""
        from gradcheck.catalogue.runner import error_outcome

        if not self.alive():
            self.stop()
            self._start()
        start = time.perf_counter()
        try:
            self._conn.send((str(case.file), case.name, seed, explain, keep))
            ready = self._conn.poll(limit)
            message = self._conn.recv() if ready else None
        except KeyboardInterrupt:
            self.stop()
            raise
        except (EOFError, OSError):
            text = self._death()
            self.stop()
            return error_outcome(case, text, start)
        if message is None:
            self.stop()
            text = f"timed out: no verdict within {limit:g} s ({source}); the case was stopped"
            return error_outcome(case, text, start, timeout=limit)
        if message[0] == "interrupted":
            self.stop()
            raise KeyboardInterrupt
        if message[0] == "failed":
            return error_outcome(case, message[1], start)
        outcome = message[1]
        outcome.seconds = time.perf_counter() - start
        return outcome
