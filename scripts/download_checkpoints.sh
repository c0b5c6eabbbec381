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
