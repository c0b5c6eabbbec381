"""SIGINT, SIGTERM and SIGHUP end a run between two rows: the current job cleans up, no partial row is written.

A signal that the run was started with ignored (nohup, a background job of a script) stays ignored.
Every signal a handler here raises as an exception is also recorded: a C extension that is running
Python code when the exception arrives (numpy and torch while they import, for one) may report it
as an error of its own, and the record lets the program still take it for the interruption it was.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator


class Interrupted(BaseException):
    """Raised in the main thread for SIGINT, SIGTERM or SIGHUP. A BaseException, so that a job's
    `except Exception` reports it as nothing but lets it end the run."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # SIGHUP: the ssh session of an overnight run dropped
_raised: list[int] = []  # every signal raised as an exception in this process, in order


def signals_raised() -> int:
    """How many signals have been raised as exceptions so far: compare before and after some work."""
    return len(_raised)


def last_raised() -> int | None:
    return _raised[-1] if _raised else None


def _raise_for(signum: int, exception: BaseException) -> None:
    _raised.append(signum)
    raise exception


def interruption_behind(exc: BaseException, raised_before: int) -> Interrupted | None:
    """The interruption that a failure really is: a signal raised since `raised_before` that
    surfaced as another exception."""
    if isinstance(exc, Interrupted) or len(_raised) == raised_before:
        return None
    return Interrupted(_raised[-1])


def interrupt_on_ctrl_c() -> None:
    """Until a run's SignalGuard takes over: Ctrl-C raises KeyboardInterrupt, recorded as well (the
    program ends with one line); left alone where it is ignored."""
    _catch_swallowed_interruptions()
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, lambda signum, frame: _raise_for(signum, KeyboardInterrupt()))


REDELIVERY_DELAY_S = 0.01


def _redeliver_swallowed(unraisable: Any) -> None:
    """A handler's exception that arrives where Python cannot raise it (a weakref callback or a
    __del__, which the import machinery runs often) is swallowed with an "Exception ignored"
    message, and the interruption would be lost. The signal is sent again a moment later, from a
    helper thread, when the main thread has left that place; nothing is printed."""
    if isinstance(unraisable.exc_value, (Interrupted, KeyboardInterrupt)) and _raised:
        threading.Timer(REDELIVERY_DELAY_S, signal.raise_signal, (_raised[-1],)).start()
        return
    _previous_hook(unraisable)


_previous_hook = sys.unraisablehook


def _catch_swallowed_interruptions() -> None:
    if sys.unraisablehook is not _redeliver_swallowed:
        sys.unraisablehook = _redeliver_swallowed


class SignalGuard:
    """Turns the signals into Interrupted, deferred while a row is being written or the run shuts down."""

    def __init__(self) -> None:
        self._pending: int | None = None
        self._depth = 0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "SignalGuard":
        _catch_swallowed_interruptions()
        for signum in SIGNALS:
            # One the parent set to be ignored stays ignored: that is how nohup (SIGHUP) and a
            # shell's background job (SIGINT) keep a run alive.
            if signal.getsignal(signum) is not signal.SIG_IGN:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self._depth:
            self._pending = signum
            return
        _raise_for(signum, Interrupted(signum))

    @property
    def pending(self) -> Interrupted | None:
        return Interrupted(self._pending) if self._pending is not None else None

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Shutting down: a signal now is only recorded (see `pending`), never raised."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    @contextmanager
    def critical(self) -> Iterator[None]:
        """A section a signal must not cut in two; the signal takes effect at its end."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth and self._pending is not None:
                signum, self._pending = self._pending, None
                _raise_for(signum, Interrupted(signum))
