"""Whether each model can run here, and if not, why and what to do. Imports no model package:
it looks at where the importable `sam2` is and what it ships.

Two packages install a module named `sam2`: Meta's (SAM 2 / 2.1) and EdgeTAM's fork of an older
SAM 2 (it ships configs/edgetam.yaml). They cannot share one interpreter. So SAM 2 models need
the importable `sam2` to be Meta's; EdgeTAM runs from the importable `sam2` if that is the fork,
and otherwise from an EdgeTAM checkout (--edgetam_repo) in a worker process of its own, with the
checkout first on that process's import path.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .errors import os_reason
from .provenance import verdict_for
from .runners import ModelSpec

EDGETAM_CONFIG = Path("configs") / "edgetam.yaml"
EDGETAM_REPOSITORY = "github.com/facebookresearch/EdgeTAM"
BUILDER, COMPILE_FLAG = "build_sam.py", "vos_optimized"


@dataclass(frozen=True)
class Availability:
    ready: bool
    detail: str  # where the model comes from when ready; why not and what to do otherwise
    import_path: str | None = None  # run in a worker with this folder first on its import path


def importable_sam2() -> tuple[Path | None, str]:
    """The folder of the importable `sam2` package and what it is: 'meta', 'edgetam' or 'missing'."""
    found = importlib.util.find_spec("sam2")
    if found is None or not found.submodule_search_locations:
        return None, "missing"
    folder = Path(list(found.submodule_search_locations)[0])
    return folder, "edgetam" if (folder / EDGETAM_CONFIG).is_file() else "meta"


def code_verdict(spec: ModelSpec, edgetam_repo: Path | None) -> str:
    """One word on where the code of the model package the model runs came from (provenance.py:
    meta, repackaged-identical, modified, unknown), '-' for a model without one. `unknown` too when
    the importable sam2 is the other package (Meta's for EdgeTAM without a checkout, EdgeTAM's fork
    for SAM 2): the model's own is not installed."""
    kind = importable_sam2()[1]
    if (spec.family in ("sam2", "sam2.1") and kind == "edgetam") or (spec.family == "edgetam" and edgetam_repo is None and kind == "meta"):
        return "unknown"
    return verdict_for(spec.family, edgetam_repo)


def is_edgetam_checkout(repo: Path) -> bool:
    return (repo / "sam2" / EDGETAM_CONFIG).is_file()


def _checkpoint_problem(spec: ModelSpec, weights: str, checkpoint_dir: Path) -> str:
    checkpoint = checkpoint_dir / spec.checkpoint
    if weights == "checkpoint" and not checkpoint.is_file():
        return (
            f"checkpoint {checkpoint} not found; fetch it with scripts/download_checkpoints.sh, "
            "point --checkpoint_dir at its folder, or use --weights random for a speed-only run"
        )
    return ""


def _sam2_availability(spec: ModelSpec) -> Availability:
    folder, kind = importable_sam2()
    if kind == "missing":
        return Availability(False, "the sam2 package is not installed; install it as docs/install.md says (scripts/install.sh)")
    if kind == "edgetam":
        return Availability(
            False,
            f"the importable sam2 ({folder}) is EdgeTAM's fork, not Meta's package; install Meta's sam2 "
            "(scripts/install.sh) and give EdgeTAM as a checkout with --edgetam_repo",
        )
    if not (folder / spec.config).is_file():
        return Availability(False, f"the installed sam2 ({folder}) has no {spec.config}; install sam2 1.0 or later")
    return Availability(True, f"the sam2 package ({folder}), {spec.config}")


def _edgetam_availability(edgetam_repo: Path | None) -> Availability:
    if importlib.util.find_spec("timm") is None:
        return Availability(False, "EdgeTAM's backbone needs timm, which is not installed; pip install 'timm>=1.0'")
    folder, kind = importable_sam2()
    if edgetam_repo is not None:
        if not is_edgetam_checkout(edgetam_repo):
            return Availability(
                False,
                f"--edgetam_repo {edgetam_repo} is not an EdgeTAM checkout (it has no sam2/{EDGETAM_CONFIG}); clone {EDGETAM_REPOSITORY}",
            )
        return Availability(True, f"EdgeTAM checkout {edgetam_repo}, in a worker process of its own", str(edgetam_repo.resolve()))
    if kind == "edgetam":
        return Availability(True, f"EdgeTAM's sam2 fork ({folder})")
    what = "not installed" if kind == "missing" else "Meta's package"
    return Availability(
        False,
        f"EdgeTAM is not importable here (the importable sam2 is {what}); give --edgetam_repo PATH, a checkout of {EDGETAM_REPOSITORY}",
    )


def compilation_problem(spec: ModelSpec, edgetam_repo: Path | None) -> str:
    """Why --compile cannot apply to the model ('' when it can): the package's full-model
    compilation is its video predictor builder's vos_optimized flag. Read from the package's
    source, not its signature: EdgeTAM's builder takes **kwargs and would ignore the flag."""
    if spec.family not in ("sam2", "sam2.1", "edgetam"):
        return f"--compile: {spec.name} has no predictor of the sam2 package to compile; drop --compile or that model"
    folder = edgetam_repo / "sam2" if spec.family == "edgetam" and edgetam_repo is not None else importable_sam2()[0]
    try:
        source = (folder / BUILDER).read_text() if folder is not None else ""
    except OSError:
        source = ""
    if COMPILE_FLAG not in source:
        return (
            f"--compile: {spec.name}'s predictor has no full-model compilation (its {BUILDER} has no {COMPILE_FLAG}; "
            f"sam2 1.1 or later has it); drop --compile or that model"
        )
    return ""


# transformers' video models by family: the class, the release that brought it, and the model_type
# a model folder's config.json may name (SAM 3's own folder, facebook/sam3, holds the whole SAM 3
# video model, whose tracker the tracker model reads).
TRANSFORMERS_MODELS = {
    "hf-sam2": ("Sam2VideoModel", ("sam2_video",)),
    "hf-sam2.1": ("Sam2VideoModel", ("sam2_video",)),
    "hf-edgetam": ("EdgeTamVideoModel", ("edgetam_video",)),
    "hf-sam3": ("Sam3TrackerVideoModel", ("sam3_tracker_video", "sam3_video")),
}
# The first release with all three (Sam3TrackerVideoModel came with 5.0), as setup.cfg's `hf` extra asks.
TRANSFORMERS_RELEASE = (5, 0)
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


def _transformers_availability(spec: ModelSpec, weights: str, checkpoint_dir: Path) -> Availability:
    """Whether transformers has the model's class, read from its files (importing it takes seconds),
    and with --weights checkpoint whether its model folder is there and holds that model."""
    found = importlib.util.find_spec("transformers")
    class_name, model_types = TRANSFORMERS_MODELS[spec.family]
    release = ".".join(map(str, TRANSFORMERS_RELEASE))
    install = f"pip install 'transformers>={release}' (scripts/install.sh installs it without replacing torch)"
    if found is None or not found.submodule_search_locations:
        return Availability(False, f"transformers is not installed; {install}")
    package = Path(list(found.submodule_search_locations)[0])
    version = _installed_version("transformers")
    if _release(version) < TRANSFORMERS_RELEASE:
        return Availability(False, f"the installed transformers is {version}; {install}")
    if weights == "checkpoint":
        problem = model_folder_problem(checkpoint_dir / spec.checkpoint, model_types)
        if problem:
            return Availability(False, problem)
    return Availability(True, f"transformers ({package.parent}), {class_name}")


def model_folder_problem(folder: Path, model_types: tuple[str, ...]) -> str:
    """Why `folder` is not a transformers model folder of one of these types ('' when it is)."""
    config_file = folder / "config.json"
    if not config_file.is_file():
        return (
            f"model folder {folder} not found (or it has no config.json); fetch it with scripts/download_checkpoints.sh, "
            "convert an official checkpoint with the convert command, or use --weights random for a speed-only run"
        )
    try:
        model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError) as exc:
        return f"{config_file} is not a transformers configuration ({exc}); fetch the folder again with scripts/download_checkpoints.sh"
    if model_type not in model_types:
        return (
            f"{folder} holds a {model_type} model, not {' or '.join(model_types)}; put that model's folder there "
            "(docs/backends.md names each folder)"
        )
    return _weights_problem(folder)


def _weights_problem(folder: Path) -> str:
    """Why the folder's weights cannot be read ('' when a safetensors file opens): a download cut
    short leaves config.json without them."""
    found = [folder / name for name in WEIGHT_FILES if (folder / name).is_file()]
    fetch = "fetch the folder again with scripts/download_checkpoints.sh"
    if not found:
        return f"model folder {folder} has no weights ({' or '.join(WEIGHT_FILES)}); {fetch}"
    if found[0].name.endswith(".json"):
        return ""  # sharded: the index names the shards, which transformers checks when it loads them
    try:
        with open(found[0], "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            json.loads(f.read(size) if 0 < size < 100_000_000 else b"")
    except (OSError, ValueError) as exc:
        return (
            f"{found[0]} is not a safetensors file ({os_reason(exc) if isinstance(exc, OSError) else 'its header does not parse'}); {fetch}"
        )
    return ""


def _release(version: str) -> tuple[int, ...]:
    """(major, minor) of a version string such as 5.24.0 or 5.0.0rc1."""
    parts = [int("".join(ch for ch in part if ch.isdigit()) or 0) for part in version.split(".")[:2]]
    return tuple(parts + [0] * (2 - len(parts)))


def _installed_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "0"


def availability(spec: ModelSpec, weights: str, checkpoint_dir: Path, edgetam_repo: Path | None) -> Availability:
    if spec.family in TRANSFORMERS_MODELS:
        return _transformers_availability(spec, weights, checkpoint_dir)
    if spec.family not in ("sam2", "sam2.1", "edgetam"):
        return Availability(True, "baseline, no model" if spec.family == "static" else f"runner {spec.module}")
    found = _edgetam_availability(edgetam_repo) if spec.family == "edgetam" else _sam2_availability(spec)
    if not found.ready:
        return found
    problem = _checkpoint_problem(spec, weights, checkpoint_dir)
    return Availability(False, problem) if problem else found
