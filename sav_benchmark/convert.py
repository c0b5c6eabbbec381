"""The convert command: an official checkpoint (sam2.1_hiera_tiny.pt, edgetam.pt, ...) as the
transformers model folder that its hf_* models read, with no hub. Written whole or not at all."""

from __future__ import annotations

import difflib
import shutil
import tempfile
from pathlib import Path

from . import PROG
from .errors import UsageError, os_reason
from .runners import HF_HUB_REPOSITORIES
from .runners.sizes import check_size

# The models with an official checkpoint to convert (the SAM 3 tracker has none: fetch its folder).
CONVERTIBLE = tuple(key for key in HF_HUB_REPOSITORIES if key != "sam3_tracker")


def default_folder(model: str, checkpoint: Path) -> Path:
    """Where --weights checkpoint looks for the model's folder when --checkpoint_dir is the checkpoint's folder."""
    return checkpoint.parent / HF_HUB_REPOSITORIES[model].split("/")[1]


def convert_command(model: str, checkpoint: Path, out: Path | None, imgsz: int | None, force: bool) -> int:
    if model not in CONVERTIBLE:
        close = difflib.get_close_matches(model, CONVERTIBLE, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UsageError(f"convert: no model {model}; {hint}give one of {', '.join(CONVERTIBLE)}")
    if not checkpoint.is_file():
        raise UsageError(f"convert: checkpoint {checkpoint} not found; fetch it with scripts/download_checkpoints.sh")
    family = "hf-edgetam" if model == "edgetam" else "hf-sam2"
    check_size(family, imgsz)
    out = out or default_folder(model, checkpoint)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise UsageError(f"convert: --out {out} exists already; choose another folder, or add --force to replace it")
    from .runners.hf_convert import convert_checkpoint  # torch and transformers, only now

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as work:
            try:
                convert_checkpoint(model, checkpoint, Path(work) / "model", imgsz)
            except ValueError as exc:
                raise UsageError(f"convert: {exc}") from None
            if out.exists():
                shutil.rmtree(out) if out.is_dir() else out.unlink()
            (Path(work) / "model").rename(out)
    except OSError as exc:
        where = exc.filename or out
        raise UsageError(f"convert: {where}: {os_reason(exc)}; check that {checkpoint} is readable and --out {out} writable") from None
    print(f"{PROG}: {checkpoint} converted for hf_{model}_*: {out}")
    return 0
