#!/usr/bin/env bash
# What the bare GPU machine lacks, as wheels in .whl/ (git-ignored; the device tool's carry list names it):
# sam2 and its small dependencies (hydra-core, omegaconf, antlr4-python3-runtime, iopath) and pycocotools,
# for Python 3.12 (GPU_PYTHON=3.11 for a rehearsal here) on manylinux x86_64. That machine has torch, torchvision, timm
# (and so PyYAML), opencv, numpy, tqdm and pytest (and so packaging); portalocker, which iopath imports and sam2
# with it, is not on its list: it travels too (gpu_check.sh installs each wheel only where it is missing).
# sam2 exists on the registry only as an sdist: it is built here into a pure-Python wheel, its CUDA extension off
# (the extension only fills small holes with post-processing on, which the benchmark leaves off by default).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
rm -rf .whl
mkdir -p .whl
"$PY" -m pip download -q --dest .whl --no-deps --only-binary=:all: --implementation cp --python-version "${GPU_PYTHON:-3.12}" \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  pycocotools "hydra-core==1.3.2" "omegaconf==2.3.0" portalocker
"$PY" -m pip wheel -q --wheel-dir .whl --no-deps "antlr4-python3-runtime==4.9.3" "iopath==0.1.10"
SAM2_BUILD_CUDA=0 SAM2_BUILD_ALLOW_ERRORS=1 "$PY" -m pip wheel -q --wheel-dir .whl --no-deps --no-build-isolation "sam2==1.1.0"
ls -l .whl
du -sh .whl
