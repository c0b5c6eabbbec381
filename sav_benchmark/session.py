"""The `run` command: check everything, take the output's lock, continue or start the CSV, run the
benchmark, and say how it ended (summary, exit code, the command that resumes it)."""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import shutil
import socket
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import PROG
from .availability import availability, compilation_problem
from .configuration import CONFIG_VERSION, RunConfig
from .environment import check_allocator_config, describe, file_digest, folder_digest, is_jetson
from .errors import UsageError, os_reason
from .executors import make_executor
from .files import write_atomically
from .plan import OBJECTS_TOGETHER, plan_jobs, whole_groups
from .results import (
    NOT_FAILED,
    ResultsNotWritable,
    ResultWriter,
    current_job_path,
    log_path,
    manifest_path,
    prepared_path,
    run_files,
    traces_path,
    write_manifest,
)
from .resume import (
    OutputLock,
    ResultFile,
    check_comparable,
    keys_to_skip,
    read_result_file,
    resume_arguments,
    row_key,
    rows_of_partial_groups,
)
from .run import STOPPED_FAILURES, Benchmark, RunOptions, RunReport, warmup_job
from .runners import ModelSpec, resolve_models
from .runners.base import RunSettings, model_of
from .runners.sizes import check_size, default_imgsz
from .signals import Interrupted, SignalGuard, interruption_behind, signals_raised
from .split import DEMO_HINT, LAYOUT_LVOS, PROTOCOL_SAV, PROTOCOL_SERVER, PreparedSplit, prepare_split
from .submission import write_submissions
from .summary import summary_text
from .telemetry import choose_telemetry
from .traces import TraceWriter, keep_traces_of

SERVER_ZIP_ROOTS = {LAYOUT_LVOS: "Annotations"}  # where in its zip each challenge server reads the videos
SELECTION_FLAGS = ("split_dir", "video_ids", "limit_videos", "limit_objects", "shard", "masklets", "cache_dir")
EXIT_FAILED, EXIT_TOO_MANY_FAILURES = 1, 3
COMPILE_WARMUP_FRAMES = 8  # more than the memory bank (num_maskmem 7): every shape is compiled


def select_split(args: argparse.Namespace) -> PreparedSplit:
    if not args.split_dir:
        raise UsageError(f"--split_dir is required: the folder of an SA-V split ({DEMO_HINT})")
    video_ids = [v.strip() for v in args.video_ids.split(",") if v.strip()] if args.video_ids is not None else None
    if video_ids == []:
        raise UsageError(
            f"--video_ids {args.video_ids!r} names no video; give comma-separated video ids, or leave the flag out to run every video"
        )
    return prepare_split(
        args.split_dir,
        video_ids,
        args.limit_videos,
        args.limit_objects,
        args.num_points,
        args.shard,
        args.masklets or "manual",
        args.cache_dir,
    )


def _prepared_split(args: argparse.Namespace) -> PreparedSplit | None:
    """The split of --prepared (quick to read); None without it."""
    if not args.prepared:
        return None
    given = [f"--{name}" for name in SELECTION_FLAGS if getattr(args, name) is not None]
    if args.num_points != 1:
        given.append("--num_points")
    if given:
        raise UsageError(f"--prepared fixes the split and its selection; drop {', '.join(given)}, or run without --prepared")
    return PreparedSplit.load(Path(args.prepared))


def _shard_of(split: PreparedSplit) -> tuple[int, int] | None:
    """The part of a prepared split ("K/N" in its manifest) as --shard gives it."""
    if not split.shard:
        return None
    part, parts = split.shard.split("/")
    return int(part), int(parts)


def _check_models_runnable(specs: list[ModelSpec], args: argparse.Namespace) -> dict[str, str]:
    """Everything a model needs, checked before any work; returns the import paths of models that
    run from a checkout in a worker of their own."""

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


def _output_path(text: str | None) -> Path:
    """--output as a path the run can write, read back and resume."""
    if text is None:
        return _default_output()
    if text.endswith(("/", os.sep)):
        raise UsageError(f"--output {text} names a folder; give the CSV's file name, e.g. {text.rstrip('/' + os.sep)}/run.csv")
    path = Path(text)
    if path.is_dir():
        raise UsageError(f"--output {text} is a folder; give the CSV's file name, e.g. {path / 'run.csv'}")
    if path.exists() and not path.is_file():
        raise UsageError(
            f"--output {text} is not a regular file; the rows must go to a file that can be read back (for --resume): give a file path"
        )
    return path


def _check_save_masks(save_masks: Path | None, earlier: list[RunConfig], force: bool) -> None:
    """Refuse a folder that cannot be written, or that holds files other than this run's own
    masks: a mix of two runs' masks would be scored as one. Nothing is created here."""
    if save_masks is None:
        return
    if save_masks.exists() and not save_masks.is_dir():
        raise UsageError(f"--save_masks {save_masks} is a file; give a folder")
    existing = next(folder for folder in (save_masks, *save_masks.absolute().parents) if folder.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--save_masks {save_masks}: cannot write there ({existing} is not a writable folder); choose a writable folder")
    try:
        held = min(save_masks.iterdir(), default=None) if save_masks.is_dir() else None
    except OSError as exc:
        raise UsageError(f"--save_masks {save_masks}: cannot list it ({os_reason(exc)}); choose a readable folder") from None
    if held is None or force:
        return
    if any(_same_path(config.save_masks, save_masks) for config in earlier):
        return  # the run being resumed saved its masks there
    raise UsageError(
        f"--save_masks {save_masks} holds files already (e.g. {held.name}): another run's masks would be mixed with this one's. "
        "Choose a new or empty folder, or add --force to write into it anyway"
    )


def _same_path(given: str | None, path: Path) -> bool:
    return bool(given) and Path(given).resolve() == path.resolve()


def _refuse_earlier_files(output: Path) -> None:
    for path in run_files(output):
        if path.exists():
            raise UsageError(
                f"--output {output}: {path} already exists; add --resume to continue that run, "
                "or choose a new --output so that no earlier result is mixed in"
            )


CONSOLE_SCRIPT = "jetson-benchmark"


def invoked_as() -> list[str]:
    """The words that started this program, before its arguments, as they were typed: e.g.
    `python3 jetson_benchmark.py`, `python -m sav_benchmark` or `jetson-benchmark`."""
    typed = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
    prefix = typed[: len(typed) - (len(sys.argv) - 1)]
    script = prefix[-1] if prefix else PROG
    if Path(script).name == CONSOLE_SCRIPT:  # the interpreter comes from the script's own first line
        on_path = shutil.which(CONSOLE_SCRIPT)
        return [CONSOLE_SCRIPT if on_path and Path(on_path).resolve() == Path(script).resolve() else script]
    return prefix or ["python", PROG]


def resume_command(argv: list[str], output: Path, retry_failed: bool = False, shard: str = "") -> str:
    """The command that continues this run: the same one, with --resume and the output made explicit."""
    return resume_arguments([*invoked_as(), *argv], output, retry_failed, shard)


@dataclass
class _Earlier:
    """What a resumed run takes over from the run it continues."""

    rows: list[dict[str, Any]]  # the rows it keeps
    manifest: dict[str, Any] | None
    configs: list[RunConfig] = field(default_factory=list)  # each earlier session's
    file: ResultFile | None = None  # the CSV as read: mended and rewritten once every check passed


def _take_over(output: Path, args: argparse.Namespace, config: RunConfig, checkpoints: dict[str, Any]) -> _Earlier:
    """The earlier run's rows and manifest, after every check that can refuse the resume; changes nothing."""
    if not args.resume:
        _refuse_earlier_files(output)  # under the lock: no other run can be making them now
        return _Earlier([], None)
    if not output.exists():
        print(f"{PROG}: note: {output} does not exist yet, so there is nothing to resume: starting the run", file=sys.stderr)
        return _Earlier([], None)
    found = read_result_file(output)
    if not found.rows and not manifest_path(output).exists():
        return _Earlier([], None, file=found)  # the earlier run stopped before its first job: start afresh
    manifest, configs = check_comparable(output, config, checkpoints, args.force)
    duplicates = found.duplicates()
    if duplicates and not args.retry_failed:
        (video, obj, model), lines = next(iter(duplicates.items()))
        more = f" ({len(duplicates) - 1} more jobs have several rows too)" if len(duplicates) > 1 else ""
        raise UsageError(
            f"--resume: {video}/{obj} {model} has {len(lines)} rows in {output}, on lines {', '.join(map(str, lines))}{more}; "
            "a job has one row. Delete all but one of them, or add --retry_failed to drop them and run the job again"
        )
    keep = found.rows
    if args.retry_failed:  # failed jobs and jobs with several rows run again
        keep = [row for row in keep if row["status"] in NOT_FAILED and row_key(row) not in duplicates]
    return _Earlier(keep, manifest, configs, found)


def _checkpoint_digests(specs: list[ModelSpec], args: argparse.Namespace) -> dict[str, Any]:

    if args.weights != "checkpoint":
        return {}
    files = dict.fromkeys(Path(args.checkpoint_dir) / spec.checkpoint for spec in specs if spec.checkpoint)
    return {path.name: folder_digest(path) if path.is_dir() else file_digest(path) for path in files}


def _setup_log(path: Path) -> logging.Handler:
    """Tracebacks of failed jobs go to a log beside the CSV; the user sees the one-line reason in the row."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("sav_benchmark")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logging.raiseExceptions = False  # a log that cannot be written (full disk) must not print tracebacks
    return handler


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def _snapshot(paths: list[Path]) -> dict[Path, bytes | None]:
    """What the files hold now (None: absent), to put back if the run's files cannot all be written."""
    return {path: path.read_bytes() if path.exists() else None for path in paths}


def _restore(snapshot: dict[Path, bytes | None]) -> None:
    for path, content in snapshot.items():
        try:
            if content is None:
                path.unlink(missing_ok=True)
            elif not path.exists() or path.read_bytes() != content:
                write_atomically(path, content)
        except OSError:  # the disk refuses even this: the error the user sees says so already
            pass


def _close_files(writer: ResultWriter, traces: TraceWriter | None, manifest_file: Path, manifest: dict[str, Any]) -> bool:
    """Close the CSV and the traces and update the manifest; False (with a warning) if the disk refused any."""
    ok = True
    for action in (writer.close, traces.close if traces else lambda: None, lambda: write_manifest(manifest_file, manifest)):
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

    check_allocator_config(dict(os.environ))
    own = dict(own_sizes(args.imgsz_for, specs))
    for spec in specs:
        size = own.get(model_of(spec), args.imgsz)
        check_size(spec.family, size)  # refuses a size the model cannot take
        if args.oom_retry_imgsz:
            check_size(spec.family, args.oom_retry_imgsz)
            if args.oom_retry_imgsz >= (size or default_imgsz(spec.family)):
                raise UsageError(
                    f"--oom_retry_imgsz {args.oom_retry_imgsz} must be below {spec.name}'s size ({size or default_imgsz(spec.family)})"
                )
    device = resolve_device(args.device)
    check_dtype(device, args.autocast_dtype)
    return device, args.autocast_dtype


def _telemetry(args: argparse.Namespace, device: str) -> tuple[Any, dict[str, Any]]:
    """The telemetry source (a TelemetryConfig) and its description for the manifest."""
    uuid = None
    if device == "cuda":
        from .device import gpu_uuid

        uuid = gpu_uuid(device)
    return choose_telemetry(args.telemetry, args.telemetry_interval_ms, device, uuid, is_jetson())


def own_sizes(given: list[str] | None, specs: list[ModelSpec]) -> tuple[tuple[str, int], ...]:
    """--imgsz_for MODEL=SIZE as (model, size) pairs; a model that --models does not run is refused."""
    models = list(dict.fromkeys(model_of(spec) for spec in specs))
    sizes: dict[str, int] = {}
    for item in given or []:
        model, size = item.split("=")
        if model not in models:
            close = difflib.get_close_matches(model, models, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}? " if close else ""
            raise UsageError(f"--imgsz_for {item}: --models runs no {model} model; {hint}give one of {', '.join(models)}")
        if sizes.get(model, int(size)) != int(size):
            raise UsageError(f"--imgsz_for gives {model} two sizes ({sizes[model]} and {size}); give it one")
        sizes[model] = int(size)
    return tuple(sorted(sizes.items()))


FAILURES_SHOWN = 3


def failure_summary(failed: list[dict[str, Any]], log: Path, retry: str) -> str:
    """Why a run that went to its end exits 1: its failed rows by status, the first reasons, where
    the tracebacks are and how to run those jobs again."""
    counts = Counter(row["status"] for row in failed)
    jobs = "1 job" if len(failed) == 1 else f"{len(failed)} jobs"
    first = ":" if len(failed) <= FAILURES_SHOWN else "; the first:"
    lines = [f"{PROG}: {jobs} failed ({', '.join(f'{n} {status}' for status, n in counts.most_common())}){first}"]
    # a reason may name a file whose name holds a newline: one line each, still
    lines += [
        f"  {row['video_id']}/{row['object_id']} {row['model']}: {row['status']}: {row['error']}".replace("\n", "\\n")
        for row in failed[:FAILURES_SHOWN]
    ]
    if len(failed) > FAILURES_SHOWN:
        lines.append(f"  ... and {len(failed) - FAILURES_SHOWN} more (the CSV's status and error columns)")
    lines.append(f"Details of each failure are in {log}. Once the cause is fixed, run them again with:\n  {retry}")
    return "\n".join(lines)


class RunSession:
    """One invocation of `run`: open (checks, lock, files), execute, conclude (summary, exit code)."""

    def __init__(self, args: argparse.Namespace, argv: list[str]) -> None:
        self.args, self.argv = args, argv

    def open(self) -> None:
        """Everything that can refuse the run happens here, before any job and before any file changes."""

        args = self.args
        if not args.prepared and not args.split_dir:
            raise UsageError(f"--split_dir is required: the folder of an SA-V split ({DEMO_HINT})")
        if args.resume and not args.output:
            raise UsageError("--resume needs --output: the CSV of the run to continue")
        if args.retry_failed and not args.resume:
            raise UsageError("--retry_failed only applies with --resume")
        if args.force and not (args.resume or args.save_masks):
            raise UsageError("--force only applies with --resume (settings that differ) or --save_masks (a folder that holds files)")
        self.specs = resolve_models(args.models)
        self.import_paths = _check_models_runnable(self.specs, args)
        device, dtype = _settings(args, self.specs)
        telemetry, self.telemetry_description = _telemetry(args, device)
        self.output = _output_path(args.output)
        prepared = _prepared_split(args)
        self.save_masks = Path(args.save_masks) if args.save_masks else None
        uses_torch = any(spec.uses_torch for spec in self.specs)
        warmup = _warmup_frames(args, device, self.specs)
        self.isolation = args.isolation if args.isolation != "auto" else ("process" if device == "cuda" else "none")
        config = RunConfig.from_command_line(
            args,
            device=device,
            uses_torch=uses_torch,
            isolation=self.isolation,
            num_points=prepared.num_points if prepared else args.num_points,
            shard=_shard_of(prepared) if prepared else args.shard,  # what the rows cover, however it was given
            warmup_frames=warmup,
            # as sizes, not as typed: the same sizes in another order are the same run
            imgsz_for=[f"{model}={size}" for model, size in own_sizes(args.imgsz_for, self.specs)] or None,
        )
        checkpoints = _checkpoint_digests(self.specs, args)
        self._lock = OutputLock(self.output)  # released when the command ends
        earlier = _take_over(self.output, args, config, checkpoints)
        _check_save_masks(self.save_masks, earlier.configs, args.force)
        # Only now, when nothing else can refuse the run: preparing SA-V training videos takes long.
        self.split = prepared or select_split(args)
        if args.do_not_skip_first_and_last_frame and self.split.protocol not in (PROTOCOL_SAV, PROTOCOL_SERVER):
            raise UsageError(
                f"--do_not_skip_first_and_last_frame changes the SA-V evaluator's frames; {self.split.split_dir} is scored by "
                f"{self.split.protocol}'s rules, which fix their own frames: leave the flag out"
            )
        if self.split.protocol == PROTOCOL_SERVER and self.save_masks is None:
            raise UsageError(
                f"--split_dir {self.split.split_dir} is a val/test split: only its first frames are annotated, and its challenge server "
                "scores the masks; give --save_masks DIR, then submit DIR/<model>.zip"
            )
        if earlier.rows:  # rows made together (a shared job's, a DAVIS video's) are kept all or none
            again = rows_of_partial_groups(
                earlier.rows, whole_groups(self.split, self.specs, plan_jobs(self.split, self.specs, args.objects))
            )
            earlier.rows = [row for row in earlier.rows if row_key(row) not in again]
        self.earlier_rows = earlier.rows
        run_id = earlier.manifest["run_id"] if earlier.manifest else uuid.uuid4().hex[:12]
        self.options = RunOptions(
            RunSettings(
                device,
                dtype,
                args.imgsz,
                args.weights,
                Path(args.checkpoint_dir),
                telemetry,
                args.compile,
                args.stream,
                args.postprocessing,
                non_overlap_masks=args.objects == OBJECTS_TOGETHER and self.split.label_maps,
                cleanup=args.cleanup,
                stages=args.stages == "on",
                traces=args.traces == "on",
                imgsz_for=own_sizes(args.imgsz_for, self.specs),
            ),
            warmup,
            self.save_masks,
            not args.do_not_skip_first_and_last_frame,
            run_id,
            done=keys_to_skip(earlier.rows, args.retry_failed),
            fail_fast=args.fail_fast,
            max_consecutive_failures=args.max_consecutive_failures or None,
            oom_retry_imgsz=args.oom_retry_imgsz,
            current_job_file=current_job_path(self.output) if self.isolation == "none" else None,
            objects=args.objects,
        )
        self._start_manifest(earlier.manifest, config, checkpoints, device, uses_torch, run_id)
        self._open_files(earlier)

    def _start_manifest(
        self,
        earlier: dict[str, Any] | None,
        config: RunConfig,
        checkpoints: dict[str, Any],
        device: str,
        uses_torch: bool,
        run_id: str,
    ) -> None:
        stored = {"config": config.to_manifest(), "config_version": CONFIG_VERSION}
        session = {
            "command": [*invoked_as(), *self.argv],
            "cwd": os.getcwd(),  # where the command's relative paths start (status prints it with the resume command)
            "checkpoints": checkpoints,
            "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "models": [spec.name for spec in self.specs],
            "videos": [v.video_id for v in self.split.videos],
            "environment": describe(
                device, uses_torch, [spec.family for spec in self.specs], Path(self.args.edgetam_repo) if self.args.edgetam_repo else None
            ),
            "telemetry": self.telemetry_description,
        }
        source = getattr(self.args.shard, "source", "")  # --shard auto: the scheduler whose variables gave the shard
        scheduler = {"shard_source": source} if source else {}
        if earlier:
            self.manifest = earlier
            self.manifest.setdefault("resumed", []).append({**session, **stored, **scheduler, "rows_before": len(self.earlier_rows)})
            self.session = self.manifest["resumed"][-1]
        else:
            self.manifest = {
                **session,
                "run_id": run_id,
                **stored,
                "split_dir": self.split.split_dir,
                "shard": self.split.shard,
                **scheduler,
                "prepared": self.args.prepared or str(prepared_path(self.output)),
            }
            self.session = self.manifest

    def _open_files(self, earlier: _Earlier) -> None:
        """The first change to any file: the prepared split and the log written, the earlier CSV
        mended (rows to run again dropped) and opened, the manifest written last, so that a run
        killed meanwhile leaves no manifest beside a CSV without rows and --resume starts afresh.
        If the disk refuses any of it, every file is put back as it was and the run is refused."""
        files = [
            self.output,
            manifest_path(self.output),
            log_path(self.output),
            traces_path(self.output),
            *([] if self.args.prepared else [prepared_path(self.output)]),
        ]
        before = _snapshot(files)
        handler, writer, traces, made, without = None, None, None, [], []
        try:
            if self.save_masks is not None:
                made = [folder for folder in (self.save_masks, *self.save_masks.parents) if not folder.exists()]
                self.save_masks.mkdir(parents=True, exist_ok=True)
            if not self.args.prepared:
                self.split.save(prepared_path(self.output))
            handler = _setup_log(log_path(self.output))
            mended = earlier.file.rewrite(earlier.rows) if earlier.file is not None else ""
            with_records = keep_traces_of(traces_path(self.output), {row_key(row) for row in earlier.rows})  # not of rows to run again
            without = [row for row in earlier.rows if row.get("n_propagated") not in (None, "", "0") and row_key(row) not in with_records]
            traces = TraceWriter(traces_path(self.output)) if self.args.traces == "on" else None
            writer = ResultWriter(self.output)
            write_manifest(manifest_path(self.output), self.manifest)
            self.writer, self.traces = writer, traces
        except OSError as exc:
            if handler is not None:
                logging.getLogger("sav_benchmark").removeHandler(handler)
                handler.close()
            for opened in (writer, traces):
                if opened is not None:
                    opened.close()
            _restore(before)
            for folder in made:
                _remove_if_empty(folder)
            raise UsageError(
                f"--output {self.output}: cannot write the run's files ({os_reason(exc)}); make room or choose another path"
            ) from None
        if mended:
            print(f"{PROG}: warning: {mended}", file=sys.stderr)
        if without and self.args.traces == "on":
            print(
                f"{PROG}: warning: {len(without)} rows of the earlier run have no per-frame records in {traces_path(self.output)} "
                "(it ran with --traces off, or before traces); the traces cover the other rows",
                file=sys.stderr,
            )

    def release(self) -> None:
        """Give up the output's lock (and its file), whatever became of the run."""
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.release(ran=hasattr(self, "writer"))

    def execute(self) -> None:
        """Run the jobs. Signals end it between rows; during shut-down they are only recorded."""

        self.interrupted: Interrupted | None = None
        self.unwritable: ResultsNotWritable | None = None
        self.report = RunReport()
        start = time.perf_counter()
        executor, warmup, no_warmup = None, None, "no warm-up: interrupted first"
        raised_before = signals_raised()
        with SignalGuard() as guard:
            try:
                warmup, no_warmup = warmup_job(self.split, self.options.warmup_frames, self.options.objects)
                executor = make_executor(
                    self.isolation, self.specs, self.options.settings, warmup, self.args.job_timeout_s, self.import_paths
                )
                benchmark = Benchmark(self.split, self.specs, self.options, self.writer, executor, guard, traces=self.traces)
                self.report = benchmark.report
                benchmark.run(show_progress=not self.args.quiet and sys.stderr.isatty())
            except Interrupted as exc:
                self.interrupted = exc
            except ResultsNotWritable as exc:
                self.unwritable = exc
            except Exception as exc:  # a signal that an extension reported as its own error (while torch imports)
                self.interrupted = interruption_behind(exc, raised_before)
                if self.interrupted is None:
                    raise
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
                    self.files_ok = _close_files(self.writer, self.traces, manifest_path(self.output), self.manifest)
                self.interrupted = self.interrupted or guard.pending

    def _part_of_split(self) -> str:
        """Why the run covers only part of the split ('' when it covers it all)."""
        args = self.args
        flags = [flag for flag, value in (("--video_ids", args.video_ids), ("--limit_videos", args.limit_videos)) if value]
        flags += [flag for flag, value in (("--limit_objects", args.limit_objects), ("--shard", args.shard or self.split.shard)) if value]
        return f"{', '.join(flags)} ran part of the split; a server scores what is missing as 0" if flags else ""

    def conclude(self) -> int:

        rows = self.earlier_rows + self.report.rows
        print(summary_text(rows, self.split.unseen_videos))
        masks = f"  masks: {self.save_masks}" if self.save_masks else ""
        complete = not (self.unwritable or self.interrupted or self.report.stopped)
        if self.split.protocol == PROTOCOL_SERVER and self.save_masks is not None and complete:
            try:
                zips, refused = write_submissions(self.save_masks, rows, SERVER_ZIP_ROOTS.get(self.split.layout, ""), self._part_of_split())
            except OSError as exc:
                self.unwritable = f"cannot write the zip for the challenge server in {self.save_masks} ({os_reason(exc)})"
            else:
                masks += "".join(f"  for the challenge server: {path}" for path in zips)
                for line in refused:
                    print(f"warning: {line}", file=sys.stderr)
        print(f"rows: {self.output}  manifest: {manifest_path(self.output)}{masks}")
        resume = resume_command(self.argv, self.output, shard=self.split.shard)
        if self.unwritable:
            print(f"{PROG}: error: {self.unwritable}; the run stopped there. Make room, then resume with:\n  {resume}", file=sys.stderr)
            return EXIT_FAILED
        if self.interrupted:
            held = (
                " (with label-map input, DAVIS, LVOS or MOSE, neither did the finished jobs of its video: their rows are written together)"
                if self.split.label_maps
                else ""
            )
            print(
                f"{PROG}: interrupted by {self.interrupted}; the current job was cleaned up and left no row{held}. "
                f"Resume with:\n  {resume}",
                file=sys.stderr,
            )
            return self.interrupted.exit_code
        stopped = self.report.stopped
        if stopped:
            last = self.report.stopped_at
            why = (
                f"after {self.args.max_consecutive_failures} failed jobs in a row (--max_consecutive_failures)"
                if stopped == STOPPED_FAILURES
                else "at the first failed job (--fail_fast)"
            )
            print(
                f"{PROG}: stopped {why}; the last, {last['video_id']}/{last['object_id']} {last['model']}, said: {last['error']}\n"
                f"Fix the cause, then resume with:\n  {resume_command(self.argv, self.output, True, self.split.shard)}",
                file=sys.stderr,
            )
            return EXIT_TOO_MANY_FAILURES if stopped == STOPPED_FAILURES else EXIT_FAILED
        if not self.files_ok:
            return EXIT_FAILED
        failed = [r for r in rows if r["status"] not in NOT_FAILED]
        if failed:
            again = resume_command(self.argv, self.output, True, self.split.shard)
            print(failure_summary(failed, log_path(self.output), again), file=sys.stderr)
            return EXIT_FAILED
        return 0


def run_command(args: argparse.Namespace, argv: list[str]) -> int:
    session = RunSession(args, argv)
    try:
        session.open()
        session.execute()
        return session.conclude()
    finally:
        session.release()
