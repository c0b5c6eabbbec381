"""A stand-in for torchvision, for tests of scripts/setup_jetson.sh: its version is torch.json's
"torchvision" (none: not installed)."""

import json
import os

_facts = json.load(open(os.path.join(os.environ["JETSON_STANDIN_DIR"], "torch.json")))
if not _facts.get("torchvision"):
    raise ModuleNotFoundError("No module named 'torchvision'", name="torchvision")
__version__ = _facts["torchvision"]
