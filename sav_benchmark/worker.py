"""A worker process: runs the jobs of one model for the driver, a fresh predictor for each.

Started with 'spawn' (CUDA cannot be used in a forked child). Its standard error, C-level output
included, goes to a file that the driver reads if the worker dies, to say why in the job's row.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import signal
import sys
from multiprocessing.connection import Connection
from typing import Any

from .errors import one_line
from .measure import execute_job, execute_warmup, freeze_long_lived_objects
from .runners import ModelSpec, load_plugins, load_runner_class


def _redirect_output(path: str) -> None:
    """The worker's stdout and stderr (C-level too) go to a file: the user's terminal shows the
    driver's output only, and the driver reads the file to say why a worker died."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    faulthandler.enable()  # a segfault prints the Python stack before the process dies


PR_SET_PDEATHSIG = 1


def _die_with_driver(driver_pid: int) -> None:
    """Have the kernel kill this process when the driver dies (kill -9 included): an orphan would
    hold device memory and compete with the run that resumes."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        # not Linux: the worker still ends at its next message, when the pipe is gone
        pass
    if os.getppid() != driver_pid:
        os._exit(1)  # the driver died before the request above took effect


def worker_main(conn: Connection, spec: ModelSpec, stderr_path: str, progress: Any, driver_pid: int, import_path: str | None) -> None:
    """Serve jobs until told to stop; `progress` is a shared int the driver reads for its display.

    With import_path, that folder comes first on this process's import path (an EdgeTAM checkout,
    whose `sam2` must not meet Meta's in one interpreter).
    """
    # Ctrl-C reaches the whole group; the driver decides. SIGINT came blocked from the driver:
    # ignore it (discarding one already pending), then unblock it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _die_with_driver(driver_pid)
    if import_path:
        sys.path.insert(0, import_path)
    _redirect_output(stderr_path)
    try:
        load_plugins()
        runner_class = load_runner_class(spec)
    except BaseException as exc:
        conn.send(("failed", one_line(exc)))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            kind, payload = conn.recv()
        except EOFError:  # the driver is gone
            return
        if kind == "stop":
            return
        reply: Any
        if kind == "job":
            job, keep, settings = payload
            reply = execute_job(runner_class, spec, settings, job, keep, progress)
            if not reply.status and spec.uses_torch:
                freeze_long_lived_objects()
        else:
            job, settings = payload
            reply = execute_warmup(runner_class, spec, settings, job)
        conn.send((kind, reply))
