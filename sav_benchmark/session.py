"""The `run` command: check everything, take the output's lock, continue or start the CSV, run the
benchmark, and say how it ended (summary, exit code, the command that resumes it)."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import UsageError, os_reason
from .prepare import DEMO_HINT, LAYOUT_DAVIS, PreparedSplit, prepare_split
from .results import NOT_FAILED, ResultWriter, current_job_path, log_path, manifest_path, prepared_path, run_files, write_manifest
from .resume import check_comparable, drop_rows, keys_to_skip, lock_output, partial_groups, read_rows
from .runners import ModelSpec, resolve_models
from .runners.sizes import DEFAULT_IMGSZ
from .signals import Interrupted, SignalGuard
from .summary import summary_text

PROG = "jetson_benchmark.py"
SELECTION_FLAGS = ("split_dir", "video_ids", "limit_videos", "limit_objects", "shard", "masklets", "cache_dir")
EXIT_FAILED, EXIT_TOO_MANY_FAILURES = 1, 3
COMPILE_WARMUP_FRAMES = 8  # more than the memory bank (num_maskmem 7): every shape is compiled


def select_split(args: argparse.Namespace) -> PreparedSplit:
    if not args.split_dir:
        raise UsageError(f"--split_dir is required: the folder of an SA-V split ({DEMO_HINT})")
    video_ids = [v.strip() for v in args.video_ids.split(",") if v.strip()] if args.video_ids else None
    return prepare_split(
        args.split_dir, video_ids, args.limit_videos, args.limit_objects, args.num_points, args.shard, args.masklets or "manual", args.cache_dir
    )


def _split_for_run(args: argparse.Namespace) -> PreparedSplit:
    if not args.prepared:
        return select_split(args)
    given = [f"--{name}" for name in SELECTION_FLAGS if getattr(args, name) is not None]
    if args.num_points != 1:
        given.append("--num_points")
    if given:
        raise UsageError(f"--prepared fixes the split and its selection; drop {', '.join(given)}, or run without --prepared")
    return PreparedSplit.load(Path(args.prepared))


def _check_models_runnable(specs: list[ModelSpec], args: argparse.Namespace) -> dict[str, str]:
    """Everything a model needs, checked before any work; returns the import paths of models that
    run from a checkout in a worker of their own."""
    from .availability import availability

    repo = Path(args.edgetam_repo) if args.edgetam_repo else None
    import_paths = {}
    for spec in specs:
        found = availability(spec, args.weights, Path(args.checkpoint_dir), repo)
        if not found.ready:
            raise UsageError(f"{spec.name} cannot run here: {found.detail}")
        if found.import_path:
            import_paths[spec.name] = found.import_path
    return import_paths


def _warmup_frames(args: argparse.Namespace, device: str, specs: list[ModelSpec]) -> int:
    """8 on CUDA, 0 on the CPU; with --compile at least 8, since the warm-up is what compiles."""
    if args.compile:
        from .availability import compilation_problem

        repo = Path(args.edgetam_repo) if args.edgetam_repo else None
        for spec in specs:
            problem = compilation_problem(spec, repo)
            if problem:
                raise UsageError(problem)
        if args.warmup_frames == 0:
            raise UsageError("--compile compiles during the warm-up, before the timers start; drop --warmup_frames 0")
        return args.warmup_frames or COMPILE_WARMUP_FRAMES
    return args.warmup_frames if args.warmup_frames is not None else (8 if device == "cuda" else 0)


def _default_output() -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("results") / f"{stamp}_{socket.gethostname()}.csv"


def _check_save_masks(save_masks: Path | None) -> None:
    if save_masks is None:
        return
    try:
        save_masks.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=save_masks):
            pass
    except OSError as exc:
        raise UsageError(f"--save_masks {save_masks}: cannot write there ({os_reason(exc)}); choose a writable folder") from None


def _refuse_earlier_files(output: Path) -> None:
    for path in run_files(output):
        if path.exists():
            raise UsageError(
                f"--output {output}: {path} already exists; add --resume to continue that run, "
                "or choose a new --output so that no earlier result is mixed in"
            )


def resume_command(argv: list[str], output: Path, retry_failed: bool = False) -> str:
    """The command that continues this run: the same one, with --resume and the output made explicit."""
    args = list(argv)
    for flag in ("--resume", *(["--retry_failed"] if retry_failed else [])):
        if flag not in args:
            args.append(flag)
    if "--output" not in args and not any(a.startswith("--output=") for a in args):
        args += ["--output", str(output)]
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else PROG
    if program == "jetson-benchmark":
        prefix = program
    elif program == "__main__.py":
        prefix = "python -m sav_benchmark"
    else:
        prefix = f"python {PROG}"
    return f"{prefix} {shlex.join(args)}"


@dataclass
class _Earlier:
    """What a resumed run takes over from the run it continues."""

    rows: list[dict[str, Any]]
    manifest: dict[str, Any] | None


def _take_over(output: Path, args: argparse.Namespace, config: dict[str, Any], checkpoints: dict[str, Any]) -> _Earlier:
    if not args.resume:
        if args.retry_failed or args.force:
            raise UsageError("--retry_failed and --force only apply with --resume")
        _refuse_earlier_files(output)  # again, now under the lock
        return _Earlier([], None)
    if not output.exists():
        print(f"{PROG}: note: {output} does not exist yet, so there is nothing to resume: starting the run", file=sys.stderr)
        return _Earlier([], None)
    rows, warning = read_rows(output)
    if warning:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    if not rows and not manifest_path(output).exists():
        return _Earlier([], None)  # the earlier run stopped before its first job: start afresh
    return _Earlier(rows, check_comparable(output, config, checkpoints, args.force))


def _checkpoint_digests(specs: list[ModelSpec], args: argparse.Namespace) -> dict[str, Any]:
    from .environment import file_digest

    if args.weights != "checkpoint":
        return {}
    files = dict.fromkeys(Path(args.checkpoint_dir) / spec.checkpoint for spec in specs if spec.checkpoint)
    return {path.name: file_digest(path) for path in files}


def _setup_log(path: Path) -> None:
    """Tracebacks of failed jobs go to a log beside the CSV; the user sees the one-line reason in the row."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("sav_benchmark")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logging.raiseExceptions = False  # a log that cannot be written (full disk) must not print tracebacks


def _finish_files(writer: ResultWriter, manifest_file: Path, manifest: dict[str, Any]) -> bool:
    """Close the CSV and update the manifest; False (with a warning) if the disk refused either."""
    ok = True
    for action in (writer.close, lambda: write_manifest(manifest_file, manifest)):
        try:
            action()
        except OSError as exc:
            print(f"{PROG}: warning: {exc}", file=sys.stderr)
            ok = False
    return ok


def _settings(args: argparse.Namespace, specs: list[ModelSpec]) -> tuple[str, str]:
    """The device and autocast dtype, after refusing what the device or the models cannot do."""
    if not any(spec.uses_torch for spec in specs):
        return "cpu", args.autocast_dtype
    from .device import check_dtype, resolve_device
    from .environment import check_allocator_config
    from .runners.sizes import check_size

    check_allocator_config(dict(os.environ))
    for spec in specs:
        check_size(spec.family, args.imgsz)  # refuses a size the model cannot take
        if args.oom_retry_imgsz:
            check_size(spec.family, args.oom_retry_imgsz)
    if args.oom_retry_imgsz:
        if args.oom_retry_imgsz >= (args.imgsz or DEFAULT_IMGSZ):
            raise UsageError(f"--oom_retry_imgsz {args.oom_retry_imgsz} must be below --imgsz ({args.imgsz or DEFAULT_IMGSZ})")
    device = resolve_device(args.device)
    check_dtype(device, args.autocast_dtype)
    return device, args.autocast_dtype


def _telemetry(args: argparse.Namespace, device: str) -> tuple[Any, dict[str, Any]]:
    """The telemetry source (a TelemetryConfig) and its description for the manifest."""
    from .environment import is_jetson
    from .telemetry import choose_telemetry

    uuid = None
    if device == "cuda":
        from .device import gpu_uuid

        uuid = gpu_uuid(device)
    return choose_telemetry(args.telemetry, args.telemetry_interval_ms, device, uuid, is_jetson())


class RunSession:
    """One invocation of `run`: open (checks, lock, files), execute, conclude (summary, exit code)."""

    def __init__(self, args: argparse.Namespace, argv: list[str]) -> None:
        self.args, self.argv = args, argv

    def open(self) -> None:
        """Everything that can refuse the run happens here, before any job and before any file changes."""
        from .run import RunOptions
        from .runners.base import RANDOM_WEIGHTS_SEED, RunSettings

        args = self.args
        if not args.prepared and not args.split_dir:
            raise UsageError(f"--split_dir is required: the folder of an SA-V split ({DEMO_HINT})")
        if args.resume and not args.output:
            raise UsageError("--resume needs --output: the CSV of the run to continue")
        self.specs = resolve_models(args.models)
        self.import_paths = _check_models_runnable(self.specs, args)
        device, dtype = _settings(args, self.specs)
        telemetry, self.telemetry_description = _telemetry(args, device)
        self.output = Path(args.output) if args.output else _default_output()
        if not args.resume:  # before the split: preparing SA-V training videos can take long
            _refuse_earlier_files(self.output)
        self.split = _split_for_run(args)
        self.save_masks = Path(args.save_masks) if args.save_masks else None
        uses_torch = any(spec.uses_torch for spec in self.specs)
        warmup = _warmup_frames(args, device, self.specs)
        self.isolation = args.isolation if args.isolation != "auto" else ("process" if device == "cuda" else "none")
        config = {
            **vars(args),
            "device": device,
            "uses_torch": uses_torch,
            "isolation": self.isolation,
            "num_points": self.split.num_points,
            "warmup_frames": warmup,
            "random_weights_seed": RANDOM_WEIGHTS_SEED if args.weights == "random" else None,
        }
        checkpoints = _checkpoint_digests(self.specs, args)
        self._lock = lock_output(self.output)  # held until this process ends
        earlier = _take_over(self.output, args, config, checkpoints)
        _check_save_masks(self.save_masks)
        if args.retry_failed:  # only now that every check has passed
            earlier.rows = drop_rows(self.output, earlier.rows, lambda row: row["status"] in NOT_FAILED)
        if self.split.layout == LAYOUT_DAVIS and earlier.rows:
            partial = partial_groups(earlier.rows, {v.video_id: {o.object_id for o in v.objects} for v in self.split.videos})
            if partial:  # DAVIS scores a model's objects of a video together: such groups run again whole
                earlier.rows = drop_rows(self.output, earlier.rows, lambda row: (row["video_id"], row["model"]) not in partial)
        self.earlier_rows = earlier.rows
        run_id = earlier.manifest["run_id"] if earlier.manifest else uuid.uuid4().hex[:12]
        self.options = RunOptions(
            RunSettings(device, dtype, args.imgsz, args.weights, Path(args.checkpoint_dir), telemetry, args.compile, args.stream),
            warmup, self.save_masks, not args.do_not_skip_first_and_last_frame, run_id,
            done=keys_to_skip(earlier.rows, args.retry_failed),
            fail_fast=args.fail_fast,
            max_consecutive_failures=args.max_consecutive_failures or None,
            oom_retry_imgsz=args.oom_retry_imgsz,
            current_job_file=current_job_path(self.output) if self.isolation == "none" else None,
        )  # fmt: skip
        self._start_manifest(earlier.manifest, config, checkpoints, device, uses_torch, run_id)
        self._open_files()

    def _start_manifest(self, earlier: dict[str, Any] | None, config: dict[str, Any], checkpoints: dict[str, Any], device: str, uses_torch: bool, run_id: str) -> None:
        from .environment import describe

        session = {
            "command": [PROG, *self.argv],
            "checkpoints": checkpoints,
            "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "models": [spec.name for spec in self.specs],
            "videos": [v.video_id for v in self.split.videos],
            "environment": describe(device, uses_torch),
            "telemetry": self.telemetry_description,
        }
        if earlier:
            self.manifest = earlier
            self.manifest.setdefault("resumed", []).append({**session, "config": config, "rows_before": len(self.earlier_rows)})
            self.session = self.manifest["resumed"][-1]
        else:
            self.manifest = {**session, "run_id": run_id, "config": config, "split_dir": self.split.split_dir, "shard": self.split.shard,
                             "prepared": self.args.prepared or str(prepared_path(self.output))}  # fmt: skip
            self.session = self.manifest

    def _open_files(self) -> None:
        try:
            self.writer = ResultWriter(self.output)
            if not self.args.prepared:
                self.split.save(prepared_path(self.output))
            _setup_log(log_path(self.output))
            write_manifest(manifest_path(self.output), self.manifest)
        except OSError as exc:
            raise UsageError(f"--output {self.output}: cannot write the run's files ({os_reason(exc)}); make room or choose another path") from None

    def execute(self) -> None:
        """Run the jobs. Signals end it between rows; during shut-down they are only recorded."""
        from .executors import make_executor
        from .run import Benchmark, ResultsNotWritable, RunReport, warmup_job

        self.interrupted: Interrupted | None = None
        self.unwritable: ResultsNotWritable | None = None
        self.report = RunReport()
        start = time.perf_counter()
        executor, warmup, no_warmup = None, None, "no warm-up: interrupted first"
        with SignalGuard() as guard:
            try:
                warmup, no_warmup = warmup_job(self.split, self.options.warmup_frames)
                executor = make_executor(self.isolation, self.specs, self.options.settings, warmup, self.args.job_timeout_s, self.import_paths)
                benchmark = Benchmark(self.split, self.specs, self.options, self.writer, executor, guard)
                self.report = benchmark.report
                benchmark.run(show_progress=not self.args.quiet and sys.stderr.isatty())
            except Interrupted as exc:
                self.interrupted = exc
            except ResultsNotWritable as exc:
                self.unwritable = exc
            finally:
                with guard.hold():
                    if executor is not None:
                        executor.close(abandon=self.interrupted is not None or guard.pending is not None)
                    self.session.update(
                        finished_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        wall_s=time.perf_counter() - start,
                        warmup_s=executor.warmup_s if executor is not None and warmup is not None else no_warmup,
                        worker_startup_s=executor.startup_s if executor is not None else {},
                        rows=len(self.report.rows),
                        stopped=f"interrupted by {self.interrupted}" if self.interrupted else str(self.unwritable or self.report.stopped),
                    )
                    self.files_ok = _finish_files(self.writer, manifest_path(self.output), self.manifest)
                self.interrupted = self.interrupted or guard.pending

    def conclude(self) -> int:
        from .run import STOPPED_FAILURES

        rows = self.earlier_rows + self.report.rows
        print(summary_text(rows))
        masks = f"  masks: {self.save_masks}" if self.save_masks else ""
        print(f"rows: {self.output}  manifest: {manifest_path(self.output)}{masks}")
        resume = resume_command(self.argv, self.output)
        if self.unwritable:
            print(f"{PROG}: error: {self.unwritable}; the run stopped there. Make room, then resume with:\n  {resume}", file=sys.stderr)
            return EXIT_FAILED
        if self.interrupted:
            held = " (with DAVIS input, neither did the finished jobs of its video: their rows are written together)" if self.split.layout == LAYOUT_DAVIS else ""
            print(f"{PROG}: interrupted by {self.interrupted}; the current job was cleaned up and left no row{held}. Resume with:\n  {resume}", file=sys.stderr)
            return self.interrupted.exit_code
        stopped = self.report.stopped
        if stopped:
            last = self.report.stopped_at
            why = f"after {self.args.max_consecutive_failures} failed jobs in a row (--max_consecutive_failures)" if stopped == STOPPED_FAILURES else "at the first failed job (--fail_fast)"
            print(
                f"{PROG}: stopped {why}; the last, {last['video_id']}/{last['object_id']} {last['model']}, said: {last['error']}\n"
                f"Fix the cause, then resume with:\n  {resume_command(self.argv, self.output, retry_failed=True)}",
                file=sys.stderr,
            )
            return EXIT_TOO_MANY_FAILURES if stopped == STOPPED_FAILURES else EXIT_FAILED
        if not self.files_ok:
            return EXIT_FAILED
        return 0 if all(r["status"] in NOT_FAILED for r in rows) else EXIT_FAILED


def run_command(args: argparse.Namespace, argv: list[str]) -> int:
    session = RunSession(args, argv)
    session.open()
    session.execute()
    return session.conclude()
