#!/usr/bin/env bash
# Every CUDA path checked in one run (scripts/gpu_check.py): bash scripts/gpu_check.sh [--dry-run] [--out DIR] [--budget_s S]
# On a bare GPU machine without network, sam2 and its small dependencies come from .whl/ (scripts/gpu_wheels.sh);
# --dry-run rehearses on this machine's CPU and installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# The benchmark itself runs from this folder (its scripts and tests put it on the import path): no install.
# A failed install is said, not fatal: the steps then say what is missing, and the table still comes back.
shopt -s nullglob
wheels=(.whl/*.whl)
if [[ " $* " != *" --dry-run "* ]] && ((${#wheels[@]})); then
  "$PY" -m pip install -q --no-index --no-deps "${wheels[@]}" || echo "gpu_check: installing .whl/ failed; going on" >&2
fi
exec "$PY" scripts/gpu_check.py "$@"
