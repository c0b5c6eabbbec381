"""A stand-in for torch, for tests of scripts/setup_jetson.sh: it says what
$JETSON_STANDIN_DIR/torch.json says (version, cuda, gpu, device; import_error: importing fails;
no version: torch is not installed)."""

import json
import os

_facts = json.load(open(os.path.join(os.environ["JETSON_STANDIN_DIR"], "torch.json")))
if "version" not in _facts:
    raise ModuleNotFoundError("No module named 'torch'", name="torch")
if _facts.get("import_error"):
    raise ImportError(_facts["import_error"])
__version__ = _facts["version"]


class version:
    cuda = _facts.get("cuda")


class cuda:
    @staticmethod
    def is_available():
        return bool(_facts.get("gpu"))

    @staticmethod
    def get_device_name(index=0):
        return _facts.get("device", "")
