"""The program's entry point, for jetson_benchmark.py, `python -m sav_benchmark` and the
jetson-benchmark console script: a Ctrl-C at any moment ends the program with one line, never a
traceback, even while it loads."""

from __future__ import annotations

import signal
import sys

from . import PROG
from .signals import interrupt_on_ctrl_c, last_raised


def main() -> int:
    interrupt_on_ctrl_c()
    try:
        # Imported here, not above: loading the command line takes a noticeable moment (numpy,
        # OpenCV), and a Ctrl-C then must end the program as one at any other moment does.
        from .cli import main as run_cli

        return run_cli()
    except (KeyboardInterrupt, Exception):
        signum = last_raised()
        if signum is None:  # a failure of its own, not a Ctrl-C in disguise
            raise
        print(f"{PROG}: interrupted by {signal.Signals(signum).name}", file=sys.stderr)
        return 128 + signum
