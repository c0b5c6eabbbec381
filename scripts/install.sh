#!/usr/bin/env bash
# Install sav-benchmark and the sam2 package without ever replacing an installed torch.
#
# - torch already installed (e.g. NVIDIA's JetPack wheel): it and its torchvision are pinned as
#   they are, so pip cannot swap them for registry builds.
# - no torch: torch and torchvision come from the package registry (on a machine without a GPU
#   their CUDA build runs on the CPU).
# - sam2 is installed without its dependency list (it asks for torch>=2.5.1, which JetPack's
#   pre-release builds do not satisfy on paper) and without build isolation (which would download
#   another torch just to build it); SAM2_BUILD_CUDA=0 skips its optional CUDA extension unless set.
# - transformers (the hf_* models) comes with the package's `hf` extra, under the same constraints,
#   so that it cannot pull another torch either.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! "$PY" -c "import torch" 2>/dev/null; then
  "$PY" -m pip install torch torchvision
elif ! "$PY" -c "import torchvision" 2>/dev/null; then
  echo "install.sh: torch $("$PY" -c 'import torch; print(torch.__version__)') is installed but torchvision is not;" \
       "install the torchvision built for it (on Jetson: NVIDIA's wheel for your JetPack), then run this again" >&2
  exit 2
fi

constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
# pip resolves against the installed distributions' metadata versions (not torch.__version__, which
# may carry a build suffix such as +cu132 that the metadata lacks).
"$PY" - >"$constraints" <<'PYEOF'
from importlib.metadata import version
for name in ("torch", "torchvision"):
    print(f"{name}=={version(name)}")
PYEOF

"$PY" -m pip install -c "$constraints" -e ".[test,edgetam,plot,hf]"
if ! "$PY" -c "import sam2.build_sam" 2>/dev/null; then
  "$PY" -m pip install -c "$constraints" "setuptools>=61" "hydra-core>=1.3.2" "iopath>=0.1.10" "pillow>=9.4.0"
  SAM2_BUILD_CUDA=${SAM2_BUILD_CUDA:-0} "$PY" -m pip install -c "$constraints" --no-deps --no-build-isolation "sam2>=1.0"
fi
# The test install declares itself: with this file, a test that needs one of these modules fails
# when it cannot import it, instead of being skipped (tests/conftest.py, `require`).
# A headless browser for the HTML report's test: Debian's Chromium where apt can install it (as root); without it
# that test is skipped and says so.
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null || echo "install.sh: chromium could not be installed" >&2
fi
browser=$(command -v chromium >/dev/null && echo chromium || true)
printf '%s\n' torch sam2.build_sam matplotlib timm hypothesis transformers $browser > .test-install
