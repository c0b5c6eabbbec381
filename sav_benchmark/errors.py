"""Errors that end a command before any work, shown to the user as one line with exit code 2."""


class UsageError(Exception):
    """Bad command line, configuration or input found before any job ran.

    The message must say what is wrong, where, and how to fix it, in one line.
    """

    exit_code = 2


def os_reason(exc: OSError) -> str:
    """An OS error as the user needs it: what went wrong, and with which path."""
    return f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no message"
    return f"{type(exc).__name__}: {text}"[:300]
