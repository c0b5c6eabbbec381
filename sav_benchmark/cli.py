"""Command line: `run` (the default), `prepare` and `models`.

Anything wrong before the first job ends the command with exit code 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib.util
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

from . import __version__
from .errors import UsageError
from .prepare import DEMO_HINT, PreparedSplit, prepare_split
from .results import NOT_FAILED, ResultWriter, log_path, manifest_path, prepared_path, run_files, write_manifest
from .resume import check_comparable, drop_failed_rows, keys_to_skip, read_rows
from .runners import MODELS, ModelSpec, load_plugins, resolve_models
from .signals import Interrupted, SignalGuard
from .summary import summary_text

COMMANDS = ("run", "prepare", "models")
PROG = "jetson_benchmark.py"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one line, as every other usage error is."""

    command = ""  # the sub-command whose flags were being parsed, for the help hint

    def error(self, message: str) -> None:  # type: ignore[override]
        help_of = f"{self.prog} {self.command}" if self.command and self.prog == PROG else self.prog
        raise UsageError(f"{message} (see {help_of} --help)")


def _integer_at_least(minimum: int, wanted: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {wanted}, not {text}")
        return value

    return parse


_positive = _integer_at_least(1, "a positive integer")
_non_negative = _integer_at_least(0, "zero or more")


def _add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split_dir", help="SA-V val/test split: JPEGImages_24fps/, Annotations_6fps/, optional sav_val.txt")
    parser.add_argument("--video_ids", help="comma-separated videos to run (default: all, in the split's list order)")
    parser.add_argument("--limit_videos", type=_positive, help="run only the first N selected videos")
    parser.add_argument("--limit_objects", type=_positive, help="run only the first K objects of each video")
    parser.add_argument("--num_points", type=_positive, default=1, help="positive clicks for *_points models (default 1)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Accuracy (J&F), speed and memory of promptable video segmentation on SA-V.",
        epilog=f"Without a command, run is assumed: {PROG} --split_dir DIR --models a,b. Its flags: {PROG} run --help",
    )
    parser.add_argument("--version", action="version", version=f"sav-benchmark {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{run,prepare,models}", parser_class=_Parser)

    run = sub.add_parser("run", help="prepare the split, then benchmark every (video, object, model); the default command")
    _add_selection(run)
    run.add_argument("--prepared", help="a manifest written by `prepare`, instead of --split_dir and the selection flags")
    run.add_argument("--models", default="sam2.1_tiny_points", help="comma-separated model names (list: `models`); default sam2.1_tiny_points")
    run.add_argument("--checkpoint_dir", default="checkpoints", help="folder of the official checkpoint files (default checkpoints/)")
    run.add_argument("--weights", choices=("checkpoint", "random"), default="checkpoint", help="random: build from the config without a checkpoint (speed only)")
    run.add_argument("--imgsz", type=_positive, help="model input resolution (default: the model's own, 1024)")
    run.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto", help="auto = CUDA when available")
    run.add_argument("--autocast_dtype", choices=("bfloat16", "float16", "float32"), default="bfloat16", help="autocast dtype; float32 = no autocast (default bfloat16)")
    run.add_argument("--warmup_frames", type=_non_negative, help="warm-up frames before each model's first job (default 8 on CUDA, 0 on CPU)")
    run.add_argument("--output", help="result CSV (default results/<UTC time>_<host>.csv); the manifest goes beside it as .json")
    run.add_argument("--save_masks", help="write predicted masks as DIR/<model>/<video>/<object>/<frame>.png for the official evaluator")
    run.add_argument("--do_not_skip_first_and_last_frame", action="store_true", help="score the first and last annotated frames too")
    run.add_argument("--isolation", choices=("auto", "process", "none"), default="auto",
                     help="process: each model in its own worker process, so a crash costs one row; none: all in this process; auto = process on CUDA, none on CPU")
    run.add_argument("--resume", action="store_true", help="continue the run whose CSV is --output: jobs already in it are skipped")
    run.add_argument("--retry_failed", action="store_true", help="with --resume: run the failed jobs again (their old rows are dropped)")
    run.add_argument("--force", action="store_true", help="with --resume: accept settings that differ from the earlier run's")
    run.add_argument("--quiet", action="store_true", help="no progress bars (they are shown only on a terminal anyway)")
    run.add_argument("--oom_retry_imgsz", type=_positive, help="retry a job that ran out of memory once at this lower --imgsz (the row says so)")
    run.add_argument("--fail_fast", action="store_true", help="stop at the first failed job (exit code 1)")
    run.add_argument("--max_consecutive_failures", type=_non_negative, default=10, help="stop after N failed jobs in a row, exit code 3 (default 10; 0 = never)")

    prepare = sub.add_parser("prepare", help="only index, check and select the split, and write the prepared manifest")
    _add_selection(prepare)
    prepare.add_argument("--output", help="prepared manifest path (default results/<split name>.prepared.json)")

    sub.add_parser("models", help="list the model names")
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    if not argv or argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version"):
        argv = ["run", *argv]
    parser = build_parser()
    parser.command = argv[0] if argv[0] in COMMANDS else ""
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse_args(argv)
        if args.command == "models":
            return _cmd_models()
        if args.command == "prepare":
            return _cmd_prepare(args)
        return _cmd_run(args, argv)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return UsageError.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; finished rows are in the CSV", file=sys.stderr)
        return 130


def _cmd_models() -> int:
    load_plugins()
    for spec in MODELS.values():
        source = f"{spec.config}, checkpoint {spec.checkpoint}" if spec.uses_torch else "baseline, no model"
        print(f"{spec.name:<28} prompt={spec.prompt:<6} {source}")
    return 0


def _selection(args: argparse.Namespace) -> PreparedSplit:
    if not args.split_dir:
        raise UsageError(f"--split_dir is required: the folder of an SA-V split ({DEMO_HINT})")
    video_ids = [v.strip() for v in args.video_ids.split(",") if v.strip()] if args.video_ids else None
    return prepare_split(args.split_dir, video_ids, args.limit_videos, args.limit_objects, args.num_points)


def _cmd_prepare(args: argparse.Namespace) -> int:
    split = _selection(args)
    output = Path(args.output) if args.output else Path("results") / f"{Path(split.split_dir).name}.prepared.json"
    try:
        split.save(output)
    except OSError as exc:
        raise UsageError(f"--output {output}: cannot write it ({_os_reason(exc)}); choose a writable path") from None
    n_objects = sum(len(v.objects) for v in split.videos)
    print(f"prepared {len(split.videos)} videos, {n_objects} objects: {output}")
    return 0


def _check_models_runnable(specs: list[ModelSpec], args: argparse.Namespace) -> None:
    """Everything a model needs, checked before any work: its package, config and checkpoint."""
    for spec in specs:
        if spec.family not in ("sam2", "sam2.1"):
            continue
        found = importlib.util.find_spec("sam2")
        if found is None or not found.submodule_search_locations:
            raise UsageError(f"{spec.name} needs the sam2 package, which is not installed; install it as the README's Install section says")
        config = Path(list(found.submodule_search_locations)[0]) / spec.config
        if not config.is_file():
            raise UsageError(f"{spec.name}: the installed sam2 package has no {spec.config}; install sam2 1.0 or later")
        if args.weights == "checkpoint":
            checkpoint = Path(args.checkpoint_dir) / spec.checkpoint
            if not checkpoint.is_file():
                raise UsageError(
                    f"{spec.name}: checkpoint {checkpoint} not found; fetch it with scripts/download_checkpoints.sh, "
                    "point --checkpoint_dir at its folder, or use --weights random for a speed-only run"
                )


def _default_output() -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("results") / f"{stamp}_{socket.gethostname()}.csv"


SELECTION_FLAGS = ("split_dir", "video_ids", "limit_videos", "limit_objects")


def _split_for_run(args: argparse.Namespace) -> PreparedSplit:
    if not args.prepared:
        return _selection(args)
    given = [f"--{name}" for name in SELECTION_FLAGS if getattr(args, name) is not None]
    if args.num_points != 1:
        given.append("--num_points")
    if given:
        raise UsageError(f"--prepared fixes the split and its selection; drop {', '.join(given)}, or run without --prepared")
    return PreparedSplit.load(Path(args.prepared))


def _os_reason(exc: OSError) -> str:
    return f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc)


def _open_outputs(output: Path, save_masks: Path | None, resume: bool) -> ResultWriter:
    """Create (or, resuming, reopen) the run's files; never touch an earlier run's otherwise."""
    if not resume:
        for path in run_files(output):
            if path.exists():
                raise UsageError(
                    f"--output {output}: {path} already exists; add --resume to continue that run, "
                    "or choose a new --output so that no earlier result is mixed in"
                )
    try:
        writer = ResultWriter(output)
    except OSError as exc:
        raise UsageError(f"--output {output}: cannot create it ({_os_reason(exc)}); choose a writable path") from None
    if save_masks is not None:
        try:
            save_masks.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=save_masks):
                pass
        except OSError as exc:
            writer.close()
            raise UsageError(f"--save_masks {save_masks}: cannot write there ({_os_reason(exc)}); choose a writable folder") from None
    return writer


def _resume_command(argv: list[str], output: Path) -> str:
    """The command that continues this run: the same one, with --resume and the output made explicit."""
    args = list(argv)
    if "--resume" not in args:
        args.append("--resume")
    if "--output" not in args and not any(a.startswith("--output=") for a in args):
        args += ["--output", str(output)]
    program = Path(sys.argv[0]).name if sys.argv[0] else PROG
    prefix = program if program == "jetson-benchmark" else f"python {PROG}"
    return f"{prefix} {shlex.join(args)}"


@dataclass
class _Earlier:
    """What a resumed run takes over from the run it continues."""

    rows: list[dict[str, Any]]
    manifest: dict[str, Any] | None


def _take_over(output: Path, args: argparse.Namespace, config: dict[str, Any]) -> _Earlier:
    if (args.retry_failed or args.force) and not args.resume:
        raise UsageError("--retry_failed and --force only apply with --resume")
    if not (args.resume and output.exists()):
        return _Earlier([], None)
    rows, warning = read_rows(output)
    if warning:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    if not rows and not manifest_path(output).exists():
        return _Earlier([], None)  # the earlier run stopped before its first job: start afresh
    manifest = check_comparable(output, config, args.force)
    if args.retry_failed:
        rows = drop_failed_rows(output, rows)
    return _Earlier(rows, manifest)


def _cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    from .executors import make_executor
    from .run import STOPPED_FAILURES, Benchmark, ResultsNotWritable, RunOptions
    from .runners.base import RANDOM_WEIGHTS_SEED, RunSettings

    if not args.prepared and not args.split_dir:
        raise UsageError(f"--split_dir is required: the folder of an SA-V split ({DEMO_HINT})")
    specs = resolve_models(args.models)
    _check_models_runnable(specs, args)
    uses_torch = any(spec.uses_torch for spec in specs)
    device, dtype = "cpu", args.autocast_dtype
    if uses_torch:
        from .device import check_dtype, resolve_device
        from .environment import check_allocator_config
        from .runners.sam2_family import image_size_overrides

        check_allocator_config(dict(os.environ))
        image_size_overrides(args.imgsz)  # refuses a size the model cannot take
        if args.oom_retry_imgsz:
            image_size_overrides(args.oom_retry_imgsz)
            if args.oom_retry_imgsz >= (args.imgsz or 1024):
                raise UsageError(f"--oom_retry_imgsz {args.oom_retry_imgsz} must be below --imgsz ({args.imgsz or 1024})")
        device = resolve_device(args.device)
        check_dtype(device, dtype)
    split = _split_for_run(args)
    output = Path(args.output) if args.output else _default_output()
    save_masks = Path(args.save_masks) if args.save_masks else None
    warmup = args.warmup_frames if args.warmup_frames is not None else (8 if device == "cuda" else 0)
    isolation = args.isolation if args.isolation != "auto" else ("process" if device == "cuda" else "none")
    config = {
        **vars(args),
        "device": device,
        "isolation": isolation,
        "num_points": split.num_points,
        "warmup_frames": warmup,
        "random_weights_seed": RANDOM_WEIGHTS_SEED if args.weights == "random" else None,
    }
    earlier = _take_over(output, args, config)
    writer = _open_outputs(output, save_masks, args.resume)

    settings = RunSettings(device, dtype, args.imgsz, args.weights, Path(args.checkpoint_dir))
    run_id = earlier.manifest["run_id"] if earlier.manifest else uuid.uuid4().hex[:12]
    options = RunOptions(
        settings, warmup, save_masks, not args.do_not_skip_first_and_last_frame, run_id,
        done=keys_to_skip(earlier.rows, args.retry_failed),
        fail_fast=args.fail_fast,
        max_consecutive_failures=args.max_consecutive_failures or None,
        oom_retry_imgsz=args.oom_retry_imgsz,
    )  # fmt: skip
    if not args.prepared:
        split.save(prepared_path(output))
    _setup_log(log_path(output))
    from .environment import describe

    this_start = {
        "command": [PROG, *argv],
        "checkpoints": _checkpoint_digests(specs, args),
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "models": [spec.name for spec in specs],
        "videos": [v.video_id for v in split.videos],
        "environment": describe(device, uses_torch),
    }
    if earlier.manifest:
        manifest = earlier.manifest
        manifest.setdefault("resumed", []).append({**this_start, "config": config, "rows_before": len(earlier.rows)})
        session = manifest["resumed"][-1]
    else:
        manifest = {"run_id": run_id, **this_start, "config": config, "split_dir": split.split_dir,
                    "prepared": args.prepared or str(prepared_path(output))}  # fmt: skip
        session = manifest
    write_manifest(manifest_path(output), manifest)
    start = time.perf_counter()
    interrupted = unwritable = None
    with SignalGuard() as guard:
        executor = make_executor(isolation, specs, settings)
        benchmark = Benchmark(split, specs, options, writer, executor, guard)
        try:
            benchmark.run(show_progress=not args.quiet and sys.stderr.isatty())
        except Interrupted as exc:
            interrupted = exc
        except ResultsNotWritable as exc:
            unwritable = exc
        finally:
            with guard.critical():  # a second Ctrl-C must not cut the shutdown short
                executor.close(abandon=interrupted is not None)
                report = benchmark.report
                session.update(
                    finished_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    wall_s=time.perf_counter() - start,
                    warmup_s=report.warmup_s,
                    worker_startup_s=executor.startup_s,
                    rows=len(report.rows),
                    stopped=f"interrupted by {interrupted}" if interrupted else str(unwritable or report.stopped),
                )
                _close_quietly(writer, manifest_path(output), manifest)
    rows = earlier.rows + report.rows
    print(summary_text(rows))
    print(f"rows: {output}  manifest: {manifest_path(output)}" + (f"  masks: {save_masks}" if save_masks else ""))
    resume = _resume_command(argv, output)
    if unwritable:
        print(f"{PROG}: error: {unwritable}; the run stopped there. Make room, then resume with:\n  {resume}", file=sys.stderr)
        return 1
    if interrupted:
        print(f"{PROG}: interrupted by {interrupted}; the current job was cleaned up and left no row. Resume with:\n  {resume}", file=sys.stderr)
        return interrupted.exit_code
    if report.stopped:
        last = report.rows[-1]
        why = "at the first failed job (--fail_fast)" if not report.stopped == STOPPED_FAILURES else f"after {args.max_consecutive_failures} failed jobs in a row (--max_consecutive_failures)"
        print(
            f"{PROG}: stopped {why}; the last, {last['video_id']}/{last['object_id']} {last['model']}, said: {last['error']}\n"
            f"Fix the cause, then resume with:\n  {resume} --retry_failed",
            file=sys.stderr,
        )
        return 3 if report.stopped == STOPPED_FAILURES else 1
    return 0 if all(r["status"] in NOT_FAILED for r in rows) else 1


def _checkpoint_digests(specs: list[ModelSpec], args: argparse.Namespace) -> dict[str, Any]:
    from .environment import file_digest

    if args.weights != "checkpoint":
        return {}
    files = dict.fromkeys(Path(args.checkpoint_dir) / spec.checkpoint for spec in specs if spec.checkpoint)
    return {path.name: file_digest(path) for path in files}


def _close_quietly(writer: ResultWriter, manifest_file: Path, manifest: dict[str, Any]) -> None:
    """Close the CSV and update the manifest; on a full disk the rows already written still stand."""
    for action in (writer.close, lambda: write_manifest(manifest_file, manifest)):
        try:
            action()
        except OSError as exc:
            print(f"{PROG}: warning: {exc}", file=sys.stderr)


def _setup_log(path: Path) -> None:
    """Tracebacks of failed jobs go to a log beside the CSV; the user sees the one-line reason in the row."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("sav_benchmark")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logging.raiseExceptions = False  # a log that cannot be written (full disk) must not print tracebacks
