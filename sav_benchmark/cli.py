"""Command line: `run` (the default), `prepare`, `models`, `report`, `compare` and `evaluate`.

Anything wrong before the first job ends the command with exit code 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from . import PROG, __version__
from .availability import availability, code_verdict
from .compare import compare_text, load_run, merge_runs, missing_shards, report_text, write_findings
from .convert import convert_command
from .errors import UsageError, os_reason
from .evaluate import run_evaluate
from .html_report import write_html_comparison, write_html_report
from .memory import CLEANUP_LEVELS
from .plan import OBJECTS_MODES, OBJECTS_SEPARATE
from .plot import check_plot_path, import_pyplot, write_plot
from .results import manifest_path, run_files
from .runners import MODELS, load_plugins
from .runners.sizes import MAX_IMGSZ
from .session import run_command, select_split
from .signals import Interrupted
from .split import MASKLET_CHOICES, is_prepared_manifest, parse_shard
from .split.prompts import MAX_POINTS
from .status import status_command
from .telemetry import CHOICES as TELEMETRY_CHOICES
from .telemetry import DEFAULT_INTERVAL_MS

COMMANDS = ("run", "prepare", "models", "report", "compare", "evaluate", "status", "convert")


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


def _integer_up_to(maximum: int, why: str):
    def parse(text: str) -> int:
        value = _positive(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum} ({why}), not {text}")
        return value

    return parse


_image_size = _integer_up_to(MAX_IMGSZ, "the largest input size this benchmark runs; the models are trained at 1024")


def _model_image_size(text: str) -> str:
    model, equals, size = text.partition("=")
    if not equals or not model:
        raise argparse.ArgumentTypeError(f"must be MODEL=SIZE, e.g. hf_sam3_tracker=336, not {text}")
    return f"{model}={_image_size(size)}"


_click_count = _integer_up_to(MAX_POINTS, "each click is placed by one more distance transform of the prompt mask")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, 0 or more, not {text}")
    return value


def _shard(text: str) -> tuple[int, int]:
    """K/N, or auto[/N] resolved here, before any work (a scheduler's variables that do not fit are a UsageError)."""
    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--shard ")) from None


def _add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--split_dir",
        help="the split: SA-V val/test (JPEGImages_24fps/, Annotations_6fps/, optional sav_val.txt), "
        "SA-V train (sav_*.mp4 with sav_*_manual.json) or DAVIS 2017 (JPEGImages/480p/, Annotations/480p/)",
    )
    parser.add_argument("--video_ids", help="comma-separated videos to run (default: all, in the split's list order)")
    parser.add_argument("--limit_videos", type=_positive, help="run only the first N selected videos")
    parser.add_argument("--limit_objects", type=_positive, help="run only the first K objects of each video")
    parser.add_argument(
        "--shard",
        type=_shard,
        metavar="K/N|auto",
        help="run only the K-th of N disjoint parts of the selected videos (one per device; join the CSVs with compare --merge); "
        "auto: K/N of this Slurm array task (SLURM_ARRAY_TASK_*); auto/N: with N parts, e.g. a Kubernetes Indexed Job's "
        "completions (its pod's JOB_COMPLETION_INDEX is K-1)",
    )
    parser.add_argument("--num_points", type=_click_count, default=1, help="positive clicks for *_points models (default 1)")
    parser.add_argument("--masklets", choices=MASKLET_CHOICES, help="SA-V train: which masklets are objects (default manual)")
    parser.add_argument("--cache_dir", help="SA-V train: where the decoded frames and masks go (default cache/<split folder name>)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Accuracy (J&F), speed and memory of promptable video segmentation on SA-V.",
        epilog=f"Without a command, run is assumed: {PROG} --split_dir DIR --models a,b. Its flags: {PROG} run --help",
    )
    parser.add_argument("--version", action="version", version=f"sav-benchmark {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}", parser_class=_Parser)

    run = sub.add_parser("run", help="prepare the split, then benchmark every (video, object, model); the default command")
    _add_selection(run)
    run.add_argument("--prepared", help="a manifest written by `prepare`, instead of --split_dir and the selection flags")
    run.add_argument(
        "--models", default="sam2.1_tiny_points", help="comma-separated model names (list: `models`); default sam2.1_tiny_points"
    )
    run.add_argument("--checkpoint_dir", default="checkpoints", help="folder of the official checkpoint files (default checkpoints/)")
    run.add_argument(
        "--edgetam_repo", help="a checkout of github.com/facebookresearch/EdgeTAM: edgetam_* models run from it in a worker of their own"
    )
    run.add_argument(
        "--weights",
        choices=("checkpoint", "random"),
        default="checkpoint",
        help="random: build from the config without a checkpoint (speed only)",
    )
    run.add_argument("--imgsz", type=_image_size, help="model input resolution (default: the model's own, 1024)")
    run.add_argument(
        "--imgsz_for",
        action="append",
        type=_model_image_size,
        metavar="MODEL=SIZE",
        help="one model's own input size, over --imgsz (the model part of its name, without the prompt kind; e.g. "
        "hf_sam3_tracker=336, whose ViT needs multiples of 336); repeat for more models",
    )
    run.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto", help="auto = CUDA when available")
    run.add_argument(
        "--autocast_dtype",
        choices=("bfloat16", "float16", "float32"),
        default="bfloat16",
        help="autocast dtype; float32 = no autocast (default bfloat16)",
    )
    run.add_argument(
        "--compile",
        action="store_true",
        help="SAM 2 / 2.1: the sam2 package's full-model compilation (vos_optimized=True); the warm-up (8 frames unless set) compiles "
        "before the timers",
    )
    run.add_argument(
        "--stream",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="decode frames on demand and drop tracker outputs no later frame reads, so memory stays flat in video length; "
        "masks are the same bit for bit (default); --no-stream: the package's own path, every frame loaded up front",
    )
    run.add_argument(
        "--postprocessing",
        action="store_true",
        help="build predictors with the package's interactive post-processing (apply_postprocessing=True: clicked frames' masks "
        "binarised into memory, the stability fallback among multi-mask outputs, holes filled where sam2's compiled extension "
        "exists); default off, as the model owners' VOS evaluation (tools/vos_inference.py) runs",
    )
    run.add_argument(
        "--objects",
        choices=OBJECTS_MODES,
        default=OBJECTS_SEPARATE,
        help="separate: a predictor per object (default); together: one predictor per video and model tracks the objects prompted on "
        "the video's first prompt frame, as tools/vos_inference.py does (one image encoding per frame; their rows share the job's "
        "time, memory and power cells), and objects that start later are tracked separately, as that script does",
    )
    run.add_argument(
        "--stages",
        choices=("on", "off"),
        default="on",
        help="time each frame's model stages (image encoder, memory attention, mask decoder, memory encoder, rest) into the row's "
        "stage_* columns (default on)",
    )
    run.add_argument(
        "--traces",
        choices=("on", "off"),
        default="on",
        help="write one record per propagated frame (latency, stages, telemetry at that frame) to OUTPUT.traces.csv (default on)",
    )
    # A measurement aid for developers (docs/gpu-check.md), not shown in --help: "gc" and "none"
    # leave out parts of the cleanup protocol, to show what each call of it does.
    run.add_argument("--cleanup", choices=CLEANUP_LEVELS, default="full", help=argparse.SUPPRESS)
    run.add_argument(
        "--warmup_frames", type=_non_negative, help="warm-up frames before each model's first job (default 8 on CUDA, 0 on CPU)"
    )
    run.add_argument("--output", help="result CSV (default results/<UTC time>_<host>.csv); the manifest goes beside it as .json")
    run.add_argument("--save_masks", help="write predicted masks as DIR/<model>/<video>/<object>/<frame>.png for the official evaluator")
    run.add_argument("--do_not_skip_first_and_last_frame", action="store_true", help="score the first and last annotated frames too")
    run.add_argument(
        "--isolation",
        choices=("auto", "process", "none"),
        default="auto",
        help="process: each model in its own worker process, so a crash costs one row; none: all in this process; auto = process on CUDA, "
        "none on CPU",
    )
    run.add_argument(
        "--job_timeout_s",
        type=_seconds,
        default=0,
        help="with --isolation process: a job silent this long is taken as hung, its worker killed and the row marked timeout (default 0 = "
        "600 s + 10 s per frame and object)",
    )
    run.add_argument("--resume", action="store_true", help="continue the run whose CSV is --output: jobs already in it are skipped")
    run.add_argument("--retry_failed", action="store_true", help="with --resume: run the failed jobs again (their old rows are dropped)")
    run.add_argument(
        "--force",
        action="store_true",
        help="with --resume: accept settings that differ from the earlier run's; with --save_masks: write into a folder that holds files",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars (they are shown only on a terminal anyway)")
    run.add_argument(
        "--oom_retry_imgsz", type=_image_size, help="retry a job that ran out of memory once at this lower --imgsz (the row says so)"
    )
    run.add_argument(
        "--telemetry",
        choices=TELEMETRY_CHOICES,
        default="auto",
        help="power, memory and thermals per job, sampled in the background: sysfs (Jetson INA3221), tegrastats (Jetson), "
        "nvml (NVIDIA GPUs), procfs (process and system figures only); auto = the first of these that works here (default)",
    )
    run.add_argument(
        "--telemetry_interval_ms",
        type=_integer_at_least(10, "at least 10"),
        default=DEFAULT_INTERVAL_MS,
        help=f"sampling interval (default {DEFAULT_INTERVAL_MS} ms)",
    )
    run.add_argument("--fail_fast", action="store_true", help="stop at the first failed job (exit code 1)")
    run.add_argument(
        "--max_consecutive_failures",
        type=_non_negative,
        default=10,
        help="stop after N failed jobs in a row, exit code 3 (default 10; 0 = never)",
    )

    prepare = sub.add_parser("prepare", help="only index, check and select the split, and write the prepared manifest")
    _add_selection(prepare)
    prepare.add_argument("--output", help="prepared manifest path (default results/<split name>.prepared.json)")
    prepare.add_argument("--force", action="store_true", help="overwrite --output even if it is not a prepared manifest")

    models = sub.add_parser("models", help="list the models, whether each can run here, and if not why and what to do")
    models.add_argument("--checkpoint_dir", default="checkpoints", help="where the checkpoints would be (default checkpoints/)")
    models.add_argument("--weights", choices=("checkpoint", "random"), default="checkpoint", help="random: checkpoints are not needed")
    models.add_argument("--edgetam_repo", help="a checkout of github.com/facebookresearch/EdgeTAM")
    report = sub.add_parser("report", help="the summary of one run's CSV, as a Markdown table")
    report.add_argument("csv", help="a result CSV")
    report.add_argument(
        "--html",
        metavar="OUT.html",
        help="also write one self-contained page: the table, accuracy against speed, latency across frames, stages, memory and power, "
        "objects, the run's manifest (needs matplotlib)",
    )
    report.add_argument("--force", action="store_true", help="overwrite an existing --html file")

    compare = sub.add_parser("compare", help="each later result CSV against the first: paired per object, with significance")
    compare.add_argument("reference", help="the reference result CSV")
    compare.add_argument("others", nargs="+", metavar="csv", help="result CSVs to compare with it")
    compare.add_argument(
        "--min_speed", type=float, default=0.0, metavar="PCT", help="call FPS differences below PCT percent no change (default 0)"
    )
    compare.add_argument(
        "--plot", metavar="FILE.png", help="also draw J&F against FPS per model and file, and the per-object latencies (needs matplotlib)"
    )
    compare.add_argument("--csv", metavar="FILE", help="also write the comparison's numbers at full precision to FILE")
    compare.add_argument(
        "--html", metavar="OUT.html", help="also write one self-contained page: the files side by side, then the paired ratios"
    )
    compare.add_argument("--merge", metavar="OUT.csv", help="instead: join shards of one run (same settings, disjoint jobs) into OUT.csv")
    compare.add_argument(
        "--force", action="store_true", help="overwrite an existing --csv, --plot, --html or --merge file (never an input)"
    )

    status = sub.add_parser(
        "status", help="how far a run got: jobs done, failures, ETA, whether its process is alive, and how to continue it"
    )
    status.add_argument("csv", help="the run's result CSV (its --output), running or ended")

    evaluate = sub.add_parser(
        "evaluate",
        help="J&F of saved masks against the ground truth, as the official SA-V evaluator prints and saves it (results.csv beside the "
        "masks)",
    )
    evaluate.add_argument(
        "--gt_root", required=True, help="the ground truth: one folder per video (SA-V: sav_val/Annotations_6fps; DAVIS: Annotations/480p)"
    )
    evaluate.add_argument(
        "--pred_root", required=True, help="the predicted masks, laid out as --gt_root (e.g. a --save_masks folder's DIR/<model>)"
    )
    evaluate.add_argument(
        "-n", "--num_processes", type=_positive, default=16, help="processes, one video each at a time (default 16, at most one per video)"
    )
    evaluate.add_argument("-s", "--strict", action="store_true", help="every video of --gt_root must have predictions, and no others")
    evaluate.add_argument("-q", "--quiet", action="store_true", help="print only where the results are saved")
    evaluate.add_argument("--do_not_skip_first_and_last_frame", action="store_true", help="score the first and last annotated frames too")
    convert = sub.add_parser(
        "convert", help="an official checkpoint (sam2.1_hiera_tiny.pt, edgetam.pt) as the transformers model folder of its hf_* models"
    )
    convert.add_argument("model", help="sam2.1_tiny ... sam2.1_large, sam2_tiny ... sam2_large, or edgetam")
    convert.add_argument("checkpoint", type=Path, help="the official checkpoint file, {'model': state_dict}")
    convert.add_argument(
        "--out", type=Path, help="the folder to write (default: the model's folder beside the checkpoint, as --checkpoint_dir reads it)"
    )
    convert.add_argument("--imgsz", type=_image_size, help="the input size stored in the folder's configuration (default 1024)")
    convert.add_argument("--force", action="store_true", help="replace an existing --out folder")
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
            return _cmd_models(args)
        if args.command == "prepare":
            return _cmd_prepare(args)
        if args.command == "report":
            return _cmd_report(args)
        if args.command == "status":
            return status_command(args.csv)
        if args.command == "compare":
            return _cmd_compare(args)
        if args.command == "convert":
            return convert_command(args.model, args.checkpoint, args.out, args.imgsz, args.force)
        if args.command == "evaluate":
            return run_evaluate(
                args.gt_root, args.pred_root, args.num_processes, args.strict, not args.do_not_skip_first_and_last_frame, args.quiet
            )
        return run_command(args, argv)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return UsageError.exit_code
    except KeyboardInterrupt:  # before the run's own signal handling is in place, or another command
        print(f"{PROG}: interrupted{' before any job ran' if argv[:1] != ['evaluate'] else ''}", file=sys.stderr)
        return 130
    except Interrupted as exc:  # a backstop: the run itself reports its interruption
        print(f"{PROG}: interrupted by {exc}", file=sys.stderr)
        return exc.exit_code


def _cmd_models(args: argparse.Namespace) -> int:

    load_plugins()
    repo = Path(args.edgetam_repo) if args.edgetam_repo else None
    for spec in MODELS.values():
        found = availability(spec, args.weights, Path(args.checkpoint_dir), repo)
        code = code_verdict(spec, repo)  # where its model package's code came from
        print(f"{spec.name:<26} {'ready' if found.ready else 'cannot run':<10}  {code:<20}  {found.detail}")
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    if args.output:  # before preparing, which can take long (SA-V training videos are decoded)
        _check_prepared_output(Path(args.output), args.force)
    split = select_split(args)
    output = Path(args.output) if args.output else Path("results") / f"{Path(split.split_dir).name}.prepared.json"
    _check_prepared_output(output, args.force)
    try:
        split.save(output)
    except OSError as exc:
        raise UsageError(f"--output {output}: cannot write it ({os_reason(exc)}); choose a writable path") from None
    n_objects = sum(len(v.objects) for v in split.videos)
    problems = sum(bool(v.problem) for v in split.videos)
    flaw = f" ({problems} with a problem: their jobs will fail with the reason)" if problems else ""
    print(f"prepared {len(split.videos)} videos{flaw}, {n_objects} objects: {output}")
    return 0


def _check_prepared_output(output: Path, force: bool) -> None:
    if not is_prepared_manifest(output):  # an earlier prepared manifest is remade, anything else kept
        _refuse_to_overwrite("--output", output, force)


def _refuse_to_overwrite(flag: str, path: Path, force: bool) -> None:
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; give a file name")
    if path.exists() and not path.is_file():  # a device such as /dev/null, even with --force
        raise UsageError(f"{flag} {path} is not a regular file; give the path of a file to write")
    if path.exists() and not force:
        raise UsageError(f"{flag} {path} exists already; choose a new file, or add --force to overwrite it")


def _same_file(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))


def _check_compare_outputs(args: argparse.Namespace) -> list[tuple[str, Path]]:
    """The files compare writes, refused before any work: an existing one (unless --force), an
    input or its manifest (even with --force), one named twice, a plot format matplotlib lacks."""

    inputs = [file for p in (args.reference, *args.others) for file in run_files(Path(p))]
    given = (("--csv", args.csv), ("--plot", args.plot), ("--html", args.html), ("--merge", args.merge))
    outputs = [(flag, Path(value)) for flag, value in given if value]
    if args.merge:
        outputs.append(("--merge", manifest_path(Path(args.merge))))
    for index, (flag, path) in enumerate(outputs):
        for given in inputs:
            if _same_file(path, given):
                raise UsageError(f"{flag} {path} is {given}, an input of this comparison; write the result to another file")
        for other_flag, other in outputs[:index]:
            if _same_file(path, other):
                raise UsageError(f"{flag} and {other_flag} both name {path}; give each its own file")
    for flag, path in outputs:
        _refuse_to_overwrite(flag, path, args.force)
    if args.plot:
        check_plot_path(Path(args.plot))
    if args.html:
        import_pyplot("--html")  # matplotlib, which draws the pictures, is there
    return outputs


def _cmd_report(args: argparse.Namespace) -> int:
    html = Path(args.html) if args.html else None
    if html is not None:
        _refuse_to_overwrite("--html", html, args.force)
        for given in run_files(Path(args.csv)):
            if _same_file(html, given):
                raise UsageError(f"--html {html} is {given}, a file of the run to report; give another file name")
        import_pyplot("--html")  # matplotlib, which draws the pictures, is there
    run = load_run(Path(args.csv))
    print(report_text(run))
    if html is not None:
        try:
            write_html_report(run, html)
        except OSError as exc:
            raise UsageError(f"--html {html}: cannot write it ({os_reason(exc)}); choose another path") from None
        print(f"html: {html}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:

    _check_compare_outputs(args)
    reference = load_run(Path(args.reference))
    others = [load_run(Path(path)) for path in args.others]
    if args.merge:
        count = merge_runs([reference, *others], Path(args.merge))
        print(f"merged {count} rows from {1 + len(others)} files: {args.merge}")
        missing = missing_shards([reference, *others])
        if missing:
            print(f"{PROG}: warning: shard {', '.join(missing)} is not among the files: the merged run is incomplete", file=sys.stderr)
        return 0
    if args.csv:  # first: a path that cannot be written is refused before anything is printed
        write_findings(Path(args.csv), reference, others, args.min_speed)
    if args.plot:
        write_plot(Path(args.plot), [reference, *others])
    if args.html:
        try:
            write_html_comparison(reference, others, Path(args.html), args.min_speed)
        except OSError as exc:
            raise UsageError(f"--html {args.html}: cannot write it ({os_reason(exc)}); choose another path") from None
    print(compare_text(reference, others, args.min_speed))
    return 0
