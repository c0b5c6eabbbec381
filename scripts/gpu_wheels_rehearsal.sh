#!/usr/bin/env bash
# The GPU machine's install rehearsed here: an empty venv that sees, of this machine's site-packages, only what the
# GPU machine has too (torch and everything else but the packages .whl/ carries), then gpu_check.sh's own install
# from .whl/ (what is missing, without an index), then a benchmark run with that venv's Python.
#   GPU_PYTHON=3.11 bash scripts/gpu_wheels.sh && bash scripts/gpu_wheels_rehearsal.sh [VENV]
# (3.11: the Python of this machine's torch; the GPU machine's is 3.12.)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${1:-$(mktemp -d)/venv}
CARRIED='^(sam2|hydra|hydra_core|omegaconf|antlr4|antlr4_python3_runtime|iopath|portalocker|pycocotools)([-_.].*)?$'
"$PY" -m venv "$VENV"
site=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
venv_site=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
machine="$VENV/machine-site-packages"  # the GPU machine's packages, as links to this machine's
mkdir -p "$machine"
for entry in "$site"/*; do
  name=$(basename "$entry")
  [[ $name =~ $CARRIED || $name == __editable__* || $name == *.pth || $name == pip* || $name == sav_benchmark* ]] || ln -s "$entry" "$machine/$name"
done
echo "$machine" >"$venv_site/machine.pth"
if "$VENV/bin/python" -c "import sam2" 2>/dev/null; then
  echo "rehearsal: sam2 is importable before the install: the venv is not empty" >&2
  exit 1
fi
# gpu_check.sh installs, then finds no CUDA here and exits 2: its install is what is rehearsed
PYTHON="$VENV/bin/python" bash scripts/gpu_check.sh || [[ $? == 2 ]]
"$VENV/bin/python" -m pip list --path "$venv_site" --format freeze
split=$(mktemp -d)
"$VENV/bin/python" -c "import sys; sys.path.insert(0, '.'); from pathlib import Path; from sav_benchmark.split.synthetic import make_split; make_split(Path(sys.argv[1]), videos=2, frames=9, width=64, height=48, objects=2)" "$split"
"$VENV/bin/python" jetson_benchmark.py run --split_dir "$split" --models sam2.1_tiny_mask --weights random --imgsz 64 \
  --isolation process --quiet --output "$split/rehearsal.csv"
"$VENV/bin/python" - "$split/rehearsal.csv" <<'PY'
import csv
import sys

rows = list(csv.DictReader(open(sys.argv[1])))
ok = sum(row["status"] == "ok" for row in rows)
print(f"rehearsal: {ok} of {len(rows)} jobs ok")
sys.exit(0 if rows and ok == len(rows) else 1)
PY
