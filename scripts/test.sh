#!/usr/bin/env bash
# Install (scripts/install.sh), then run the test suite. GPU tests are skipped where torch sees no CUDA device.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
"${PYTHON:-python3}" -m pytest -q -rs tests "$@"
