"""The run's configuration: what the command line asked for, with what the run resolved (the
device, the isolation, the warm-up), built once. The manifest stores it, and --resume compares
an earlier session's with the new one field by field.

Its fields are a stored file format, so they are declared here rather than taken from argparse;
a flag added to `run` must be added here too (a test checks). The manifest stores the version
beside each session's configuration:
- version 1 (manifests without "config_version"): the flags under their own names, plus the
  resolved fields below; the same names as version 2.
- version 2: the same, declared here.
- version 3: adds postprocessing. Versions 1 and 2 ran with the package's post-processing, so
  their postprocessing reads as True.
- version 4: adds objects. Earlier versions tracked each object separately.
- version 5: adds cleanup (a developer's measurement aid). Earlier versions ran the full protocol.
- version 6: adds stages and traces. Earlier versions timed no stages and wrote no traces.
A field an older manifest lacks reads as None, unless ADDED_WITH says what those versions did.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import UsageError
from .runners.base import RANDOM_WEIGHTS_SEED
from .runners.sizes import DEFAULT_IMGSZ

CONFIG_VERSION = 7
# What makes two sessions' rows incomparable, in the order a refusal lists them: the first two
# for every model, the rest only when both sessions ran torch models (static_mask has no weights).
# A shard is compared too: a CSV that holds two shards' rows would be merged twice with its siblings.
ALWAYS_COMPARED = ("num_points", "do_not_skip_first_and_last_frame", "shard")
TORCH_COMPARED = ("imgsz", "imgsz_for", "autocast_dtype", "weights", "device", "stream", "postprocessing", "objects", "cleanup")
UNSET_MEANS = {"imgsz": DEFAULT_IMGSZ}  # an unset --imgsz is the model's own size
# field -> (the version that added it, what the runs of earlier versions did)
ADDED_WITH = {
    "postprocessing": (3, True),
    "objects": (4, "separate"),
    "cleanup": (5, "full"),
    "stages": (6, "off"),
    "traces": (6, "off"),
    "imgsz_for": (7, None),
}


@dataclass(frozen=True)
class RunConfig:
    """One session's configuration, in the order the manifest lists it."""

    command: str | None = None
    split_dir: str | None = None
    video_ids: list[str] | None = None
    limit_videos: int | None = None
    limit_objects: int | None = None
    shard: tuple[int, int] | None = None
    num_points: int | None = None  # the prepared split's, with --prepared
    masklets: str | None = None
    cache_dir: str | None = None
    prepared: str | None = None
    models: str | None = None
    checkpoint_dir: str | None = None
    edgetam_repo: str | None = None
    weights: str | None = None
    imgsz: int | None = None
    imgsz_for: list[str] | None = None  # MODEL=SIZE, sorted by model
    device: str | None = None  # resolved: cuda or cpu
    autocast_dtype: str | None = None
    compile: bool | None = None
    stream: bool | None = None
    postprocessing: bool | None = None
    objects: str | None = None
    cleanup: str | None = None
    stages: str | None = None
    traces: str | None = None
    warmup_frames: int | None = None  # resolved: the default for the device
    output: str | None = None
    save_masks: str | None = None
    do_not_skip_first_and_last_frame: bool | None = None
    isolation: str | None = None  # resolved: process or none
    job_timeout_s: float | None = None
    resume: bool | None = None
    retry_failed: bool | None = None
    force: bool | None = None
    quiet: bool | None = None
    oom_retry_imgsz: int | None = None
    telemetry: str | None = None
    telemetry_interval_ms: int | None = None
    fail_fast: bool | None = None
    max_consecutive_failures: int | None = None
    uses_torch: bool | None = None
    random_weights_seed: int | None = None

    @classmethod
    def from_command_line(cls, args: argparse.Namespace, **resolved: Any) -> RunConfig:
        """The flags, with the values the run resolved (device, isolation, num_points, warmup_frames, uses_torch)."""
        given = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
        seed = RANDOM_WEIGHTS_SEED if args.weights == "random" else None
        return cls(**{**given, **resolved, "random_weights_seed": seed})

    @classmethod
    def from_manifest(cls, session: dict[str, Any], where: str) -> RunConfig:
        """A session's configuration as an earlier version stored it; names it does not declare are ignored."""
        version, stored = session.get("config_version", 1), session.get("config")
        if not isinstance(stored, dict):
            raise UsageError(f"--resume: {where} is not the manifest of a run; start a new --output")
        if not isinstance(version, int) or not 1 <= version <= CONFIG_VERSION:
            raise UsageError(
                f"--resume: {where} has a run configuration of version {version!r}, which this version of the benchmark "
                f"cannot read (it reads 1 to {CONFIG_VERSION}); resume with the version that wrote it, or start a new --output"
            )
        known = {f.name for f in fields(cls)}
        earlier_runs = {name: did for name, (added, did) in ADDED_WITH.items() if version < added}
        return cls(**{**earlier_runs, **{name: value for name, value in stored.items() if name in known}})

    def to_manifest(self) -> dict[str, Any]:
        return asdict(self)

    def differences(self, earlier: RunConfig) -> list[str]:
        """'name earlier -> now' for each field that makes the two sessions' rows incomparable."""
        names = list(ALWAYS_COMPARED)
        if earlier.uses_torch and self.uses_torch:
            names += TORCH_COMPARED
        return [f"{name} {before!r} -> {now!r}" for name in names if (before := earlier._compared(name)) != (now := self._compared(name))]

    def _compared(self, name: str) -> Any:
        value = getattr(self, name)
        if name == "shard" and value is not None:
            return "/".join(str(part) for part in value)  # a tuple here, a list when read from a manifest
        return UNSET_MEANS.get(name) if value is None else value
