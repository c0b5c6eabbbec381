"""SIGINT, SIGTERM and SIGHUP end a run between two rows: the current job cleans up, no partial row is written."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Iterator


class Interrupted(BaseException):
    """Raised in the main thread for SIGINT, SIGTERM or SIGHUP. A BaseException, so that a job's
    `except Exception` reports it as nothing but lets it end the run."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # SIGHUP: the ssh session of an overnight run dropped


class SignalGuard:
    """Turns the signals into Interrupted, deferred while a row is being written or the run shuts down."""

    def __init__(self) -> None:
        self._pending: int | None = None
        self._depth = 0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "SignalGuard":
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self._depth:
            self._pending = signum
            return
        raise Interrupted(signum)

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
                raise Interrupted(signum)
