"""What a run's numbers depend on, for its manifest: versions, device, git commit."""

from __future__ import annotations

import hashlib
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from . import __version__
from .errors import UsageError
from .provenance import model_code

# Where a Jetson describes itself; module constants so that tests can point them at stand-in files.
JETSON_MODEL_FILE = Path("/proc/device-tree/model")
L4T_RELEASE_FILE = Path("/etc/nv_tegra_release")
NVIDIA_DRIVER_FILE = Path("/proc/driver/nvidia/version")


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    """Output of a git command in the project's checkout; None from an installed copy or without git."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state() -> dict[str, Any]:
    """The commit, and whether the checkout had changes not in it (then the commit alone does not say what ran)."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": _git("rev-parse", "HEAD") or None, "git_dirty": None if status is None else bool(status)}


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").replace("\x00", "").strip() or None
    except OSError:
        return None


def _command(*args: str) -> str | None:
    """A tool's output when it runs without root and succeeds; None otherwise."""
    try:
        out = subprocess.run(list(args), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def is_jetson() -> bool:
    return L4T_RELEASE_FILE.exists() or "jetson" in (_read(JETSON_MODEL_FILE) or "").lower()


def jetson_info() -> dict[str, Any] | None:
    """Board, L4T release, power mode and clocks: what makes two Jetson runs comparable or not."""
    if not is_jetson():
        return None
    release = _read(L4T_RELEASE_FILE)
    return {
        "board": _read(JETSON_MODEL_FILE),
        "l4t_release": release.splitlines()[0] if release else None,
        "power_mode": _command("nvpmodel", "-q"),
        "clocks": _command("jetson_clocks", "--show"),
    }


ALLOCATOR_VARIABLE = "PYTORCH_CUDA_ALLOC_CONF"


def check_allocator_config(environ: dict[str, str]) -> None:
    """Refuse expandable_segments on Jetson, where it breaks PyTorch's caching allocator."""
    config = environ.get(ALLOCATOR_VARIABLE, "").replace(" ", "").lower()
    if "expandable_segments:true" in config and is_jetson():
        raise UsageError(
            f"{ALLOCATOR_VARIABLE}={environ[ALLOCATOR_VARIABLE]}: expandable_segments:True breaks PyTorch's CUDA "
            "caching allocator on Jetson (Tegra); remove it from the variable (or set expandable_segments:False)"
        )


def file_digest(path: Path) -> dict[str, Any]:
    """Size and sha256 of a checkpoint, so that runs name exactly the weights they used."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def folder_digest(folder: Path) -> dict[str, Any]:
    """Each file of a model folder (transformers' layout) with its size and sha256, and one sha256
    over them all (of each file's name and sha256, in order), which names the folder's weights. Only
    the folder's own visible files: a download tool's cache in it (.cache/) changes from one download
    of the same weights to the next."""
    files = {path.name: file_digest(path) for path in sorted(folder.iterdir()) if path.is_file() and not path.name.startswith(".")}
    combined = hashlib.sha256("".join(f"{name}\0{digest['sha256']}\n" for name, digest in files.items()).encode())
    return {
        "path": str(folder),
        "files": {name: {"bytes": digest["bytes"], "sha256": digest["sha256"]} for name, digest in files.items()},
        "sha256": combined.hexdigest(),
    }


def gpu_info() -> dict[str, Any]:
    import torch

    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    driver = _read(NVIDIA_DRIVER_FILE)
    return {
        "gpu_name": props.name,
        "compute_capability": f"{props.major}.{props.minor}",
        "gpu_total_memory_mb": props.total_memory / (1024 * 1024),
        "multiprocessors": props.multi_processor_count,
        "nvidia_driver": driver.splitlines()[0] if driver else None,
    }


def describe(device: str, uses_torch: bool, families: Iterable[str] = (), edgetam_repo: Path | None = None) -> dict[str, Any]:
    """The run's environment; with the model families it runs, where each one's model package came
    from (model_code: provenance.py, per package: distribution, installer record, verdict)."""
    info: dict[str, Any] = {
        "sav_benchmark": __version__,
        **git_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "numpy": package_version("numpy"),
        "opencv": package_version("opencv-python-headless") or package_version("opencv-python"),
        "sam2": package_version("sam2"),
        "transformers": package_version("transformers"),
        "model_code": model_code(list(families), edgetam_repo),
    }
    if uses_torch:
        import torch

        from .device import device_name
        from .runners.sam2_family import has_compiled_extension

        info.update(
            torch=torch.__version__,
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            device_name=device_name(device),
            sam2_compiled_extension=has_compiled_extension(),
        )
        if device == "cuda":
            info.update(gpu_info())
    info["jetson"] = jetson_info()
    return info
