"""The program's entry point, for jetson_benchmark.py, `python -m sav_benchmark` and the
jetson-benchmark console script: a Ctrl-C at any moment ends the program with one line, never a
traceback, even while it loads."""

import signal

# First of all, before any other import: while the program loads (numpy, OpenCV: a noticeable
# moment), a Ctrl-C is only noted, and acted on once loading is done. Raised in the middle of an
# import it would be a traceback, an ImportError (numpy turns it into one) or lost (Python drops
# an exception raised in the import machinery's callbacks).
_noted_while_loading: list[int] = []
if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
    signal.signal(signal.SIGINT, lambda signum, frame: _noted_while_loading.append(signum))
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # jetson_benchmark.py held it back until now

import sys  # noqa: E402 - the imports come after the handler, on purpose

from . import PROG  # noqa: E402
from .cli import main as run_cli  # noqa: E402
from .signals import interrupt_on_ctrl_c, last_raised  # noqa: E402


def main() -> int:
    if _noted_while_loading:
        print(f"{PROG}: interrupted before any job ran", file=sys.stderr)
        return 128 + _noted_while_loading[0]
    interrupt_on_ctrl_c()
    try:
        return run_cli()
    except (KeyboardInterrupt, Exception):
        signum = last_raised()
        if signum is None:  # a failure of its own, not a Ctrl-C in disguise
            raise
        print(f"{PROG}: interrupted by {signal.Signals(signum).name}", file=sys.stderr)
        return 128 + signum
