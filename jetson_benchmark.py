#!/usr/bin/env python3
"""Benchmark promptable video segmentation on SA-V: see README.md, or run with --help."""

import signal
import sys

# Ctrl-C is held back while the package is found and loaded; sav_benchmark.launch takes it from
# there (it notes one that came meanwhile and ends the program with one line).
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

from sav_benchmark.launch import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
