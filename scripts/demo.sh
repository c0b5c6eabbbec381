#!/usr/bin/env bash
# Install (scripts/install.sh), make a synthetic SA-V split and benchmark it on the CPU with random weights.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
bash scripts/install.sh
rm -rf demo_split demo_masks results/demo.csv*
"$PY" -m sav_benchmark.synthetic --out demo_split
"$PY" jetson_benchmark.py --split_dir demo_split \
  --models static_mask,sam2.1_tiny_points,sam2.1_tiny_bbox,sam2.1_tiny_mask \
  --weights random --imgsz 256 --device cpu --output results/demo.csv --save_masks demo_masks
