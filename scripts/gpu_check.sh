#!/usr/bin/env bash
# Every CUDA path checked in one run (scripts/gpu_check.py): bash scripts/gpu_check.sh [--dry-run] [--out DIR] [--budget_s S]
# On a bare GPU machine without network, sam2 and its small dependencies come from .whl/ (scripts/gpu_wheels.sh);
# --dry-run rehearses on this machine's CPU and installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# The benchmark itself runs from this folder (its scripts and tests put it on the import path): no install.
# From .whl/, each wheel whose distribution is missing here, without dependencies: what the machine has is never
# replaced (torch least of all: pip's resolver would reach for another torch wherever one of torch's own
# requirements looked unmet). A failure is said, not fatal: the steps say what is missing, the table still comes back.
shopt -s nullglob
missing=()
if [[ " $* " != *" --dry-run "* ]]; then
  for wheel in .whl/*.whl; do
    distribution=$(basename "$wheel")  # name-version-...: the name's own dashes are underscores in a wheel's file name
    "$PY" -c "import importlib.metadata, sys; importlib.metadata.version(sys.argv[1])" "${distribution%%-*}" 2>/dev/null || missing+=("$wheel")
  done
fi
if ((${#missing[@]})); then
  echo "gpu_check: installing ${missing[*]}" >&2
  "$PY" -m pip install -q --no-index --no-deps "${missing[@]}" || echo "gpu_check: installing from .whl/ failed; going on" >&2
fi
exec "$PY" scripts/gpu_check.py "$@"
