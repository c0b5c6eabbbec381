#!/usr/bin/env bash
# Fetch the official SAM 2 (July 2024), SAM 2.1 (September 2024) and EdgeTAM checkpoints into
# checkpoints/ (or the folder given as the first argument), under the file names the benchmark expects.
set -euo pipefail
dest=${1:-checkpoints}
mkdir -p "$dest"
base=https://dl.fbaipublicfiles.com/segment_anything_2
for size in tiny small base_plus large; do
  for pair in "092824/sam2.1_hiera_${size}.pt" "072824/sam2_hiera_${size}.pt"; do
    file=${pair#*/}
    if [ -s "$dest/$file" ]; then
      echo "have $dest/$file"
    else
      echo "fetching $file"
      curl -fL --retry 3 -o "$dest/$file.part" "$base/$pair" && mv "$dest/$file.part" "$dest/$file"
    fi
  done
done
if [ -s "$dest/edgetam.pt" ]; then
  echo "have $dest/edgetam.pt"
else
  echo "fetching edgetam.pt"
  curl -fL --retry 3 -o "$dest/edgetam.pt.part" https://github.com/facebookresearch/EdgeTAM/raw/main/checkpoints/edgetam.pt && mv "$dest/edgetam.pt.part" "$dest/edgetam.pt"
fi
# The hf_* models read transformers model folders, named after their repositories on the Hugging Face
# hub (docs/backends.md). They need the `hf` command of huggingface_hub (installed with transformers);
# facebook/sam3 is gated: accept its licence on the hub and log in (`hf auth login`) first. Set
# SKIP_HF=1 to fetch only the official checkpoints above (the convert command makes the SAM 2 / 2.1
# and EdgeTAM folders from them, with no hub).
if [ "${SKIP_HF:-0}" = 1 ]; then exit 0; fi
if ! command -v hf >/dev/null; then
  echo "download_checkpoints.sh: no hf command (pip install transformers, or run scripts/install.sh); hf_* folders not fetched" >&2
  exit 1
fi
for repo in facebook/sam2.1-hiera-{tiny,small,base-plus,large} facebook/sam2-hiera-{tiny,small,base-plus,large} \
  yonigozlan/EdgeTAM-hf facebook/sam3; do
  folder="$dest/${repo#*/}"
  if [ -s "$folder/config.json" ] && { [ -s "$folder/model.safetensors" ] || [ -s "$folder/model.safetensors.index.json" ]; }; then
    echo "have $folder"
  else
    echo "fetching $repo"
    # Only the transformers files: the repositories of SAM 2 also hold the official .pt, fetched above.
    hf download "$repo" --local-dir "$folder" --include "*.json" "*.safetensors" "*.txt" || { echo "could not fetch $repo" >&2; failed=1; }
  fi
done
exit "${failed:-0}"
