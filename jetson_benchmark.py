#!/usr/bin/env python3
"""Benchmark promptable video segmentation on SA-V: see README.md, or run with --help."""

# First, before anything else is loaded: Ctrl-C is held back while the package is found and
# loaded; sav_benchmark.launch takes it from there (it notes one that came meanwhile and ends the
# program with one line). The C module, already loaded, not signal.py, which takes a while to run.
import _signal

_signal.pthread_sigmask(_signal.SIG_BLOCK, {_signal.SIGINT})

import sys  # noqa: E402

from sav_benchmark.launch import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
