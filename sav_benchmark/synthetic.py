"""`python -m sav_benchmark.synthetic`: the command that makes a synthetic split (the generator is
sav_benchmark.split.synthetic)."""

import sys

from .split.synthetic import main

if __name__ == "__main__":
    sys.exit(main())
