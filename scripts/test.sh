#!/usr/bin/env bash
# Install (scripts/install.sh), lint and format check (ruff), then the test suite. GPU tests are skipped where torch sees no CUDA device.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# Lint and format first (pyproject.toml's [tool.ruff]): a failure there ends the run before the tests.
"${PYTHON:-python3}" -m ruff check .
"${PYTHON:-python3}" -m ruff format --check .
# The layering and the torch-free modules (pyproject.toml's [tool.importlinter] contracts).
"${PYTHON:-python3}" -c "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
"${PYTHON:-python3}" -m pytest -q -rs tests "$@"
