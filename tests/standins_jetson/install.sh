#!/bin/bash
# A stand-in for scripts/install.sh, for tests of scripts/setup_jetson.sh: it notes the PYTHON it
# was given and, when $JETSON_STANDIN_DIR/install-replaces-torch exists, gives torch another
# version, as a pip that replaced NVIDIA's torch would.
echo "install.sh PYTHON=$PYTHON" >>"$JETSON_STANDIN_DIR/calls.log"
echo "install.sh (stand-in): installing sav-benchmark"
if [[ -e $JETSON_STANDIN_DIR/install-replaces-torch ]]; then
  "$PYTHON" - <<'PY'
import json, os
path = os.path.join(os.environ["JETSON_STANDIN_DIR"], "torch.json")
facts = json.load(open(path))
facts.update(version="2.9.1+cpu", cuda=None, gpu=False)
json.dump(facts, open(path, "w"))
PY
fi
