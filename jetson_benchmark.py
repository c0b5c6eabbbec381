#!/usr/bin/env python3
"""Benchmark promptable video segmentation on SA-V: see README.md, or run with --help."""

import sys

from sav_benchmark.launch import main

if __name__ == "__main__":
    sys.exit(main())
