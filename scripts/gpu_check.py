"""Every CUDA path of the benchmark checked in one run that fits a short device lease.

    bash scripts/gpu_check.sh [--dry-run] [--out DIR] [--budget_s 480]

Runs the steps below in order, each in a process of its own under its own timeout (a hang costs
one step), within the budget, and prints one table: the step, what it checks, PASS / FAIL / SKIP,
its figure and its time. The table goes to DIR/gpu_check.md and DIR/gpu_check.json, every step's
output to DIR/gpu_check.log. --dry-run is the rehearsal on a machine without CUDA: each step runs
its CPU stand-in (small sizes; its figure proves the step works, not the GPU) or says why it
cannot run there.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
RESULT = "gpu-check-result: "  # the line a step's process ends its output with


@dataclass
class Outcome:
    status: str
    figure: str


@dataclass
class Step:
    name: str
    checks: str
    timeout_s: int
    run: Callable[[str, Path], Outcome]  # (device, work folder) -> outcome


def benchmark(*args: object, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """The CLI in a subprocess; its output goes to this step's log."""
    command = [sys.executable, str(REPO / "jetson_benchmark.py"), *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout)
    print(f"$ {' '.join(command)}\n{done.stdout}{done.stderr}", flush=True)
    return done


def rows_of(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def small(device: str) -> dict[str, object]:
    """Sizes: the real ones on CUDA, a rehearsal's on the CPU."""
    return (
        {"imgsz": 1024, "frames": 40, "width": 854, "height": 480}
        if device == "cuda"
        else {"imgsz": 64, "frames": 9, "width": 64, "height": 48}
    )


def split_of(work: Path, device: str, videos: int = 1, objects: int = 1) -> Path:
    from sav_benchmark.split.synthetic import make_split

    size = small(device)
    make_split(work / "split", videos=videos, frames=size["frames"], width=size["width"], height=size["height"], objects=objects)
    return work / "split"


def step_environment(device: str, work: Path) -> Outcome:
    import torch

    sam2 = "sam2 present" if _importable("sam2.build_sam") else "sam2 MISSING"
    if device != "cuda":
        return Outcome(PASS, f"no CUDA (dry run): torch {torch.__version__}, {sam2}")
    properties = torch.cuda.get_device_properties(0)
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True)
        driver_version = driver.stdout.strip() or "?"
    except OSError:
        driver_version = "? (no nvidia-smi)"
    figure = (
        f"{properties.name}, compute capability {properties.major}.{properties.minor}, {properties.total_memory / 2**30:.0f} GiB, "
        f"driver {driver_version}, torch {torch.__version__}, CUDA {torch.version.cuda}, {sam2}"
    )
    return Outcome(PASS if "MISSING" not in sam2 else FAIL, figure)


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def step_gpu_tests(device: str, work: Path) -> Outcome:
    if device != "cuda":
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-m", "gpu", "--collect-only", "-q", "tests"], capture_output=True, text=True, cwd=REPO
        )
        print(done.stdout[-2000:], done.stderr[-2000:])
        collected = re.search(r"(\d+)(?:/\d+)? tests? (?:collected|selected)", done.stdout)
        return Outcome(SKIP, f"no CUDA: {collected.group(1) if collected else '?'} gpu tests collected, not run")
    # The compile step covers the compiled run (its test allows itself 30 minutes); pytest writes
    # straight to the log, so that a step stopped by its timeout still leaves what ran.
    sys.stdout.flush()
    done = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-k", "not compiled_run", "-q", "-rs", "tests"], cwd=REPO)
    return Outcome(PASS if done.returncode == 0 else FAIL, f"pytest exit code {done.returncode} (its summary is in gpu_check.log)")


def step_timing(device: str, work: Path) -> Outcome:
    """One job through the real execute_job: its per-frame latencies against the model's own time
    for each frame (CUDA events around the runner's frame on CUDA; perf_counter on the CPU) and the
    sum of the latencies against the wall time of the whole loop."""
    import torch

    from sav_benchmark import measure
    from sav_benchmark.progress import FrameCounter
    from sav_benchmark.run import make_job
    from sav_benchmark.runners import MODELS
    from sav_benchmark.runners.base import RunSettings
    from sav_benchmark.runners.sam2_family import Sam2Runner
    from sav_benchmark.split import prepare_split
    from sav_benchmark.timing import FRAME_STAGES

    split = prepare_split(split_of(work, device, videos=2), video_ids=["synth_001"])
    video, obj = split.videos[0], split.videos[0].objects[0]
    latencies, model_s, loop = [], [], {}
    original = measure.latency_columns
    measure.latency_columns = lambda found: latencies.extend(found) or original(found)

    class TimedRunner(Sam2Runner):
        def propagate(self, job):
            inner = super().propagate(job)
            loop["start"] = time.perf_counter()
            while True:
                if device == "cuda":
                    began, ended = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    began.record()
                else:
                    began = time.perf_counter()
                try:
                    item = next(inner)
                except StopIteration:
                    break
                if device == "cuda":
                    ended.record()
                    model_s.append((began, ended))
                else:
                    model_s.append(time.perf_counter() - began)
                yield item
            loop["end"] = time.perf_counter()

    size = small(device)
    settings = RunSettings(device, "bfloat16" if device == "cuda" else "float32", size["imgsz"], "random", REPO / "checkpoints")
    outcome = measure.execute_job(TimedRunner, MODELS["sam2.1_tiny_mask"], settings, make_job(split, video, [obj]), set(), FrameCounter())
    if outcome.status:
        return Outcome(FAIL, f"the job failed: {outcome.reason}")
    if device == "cuda":
        torch.cuda.synchronize()
        model_s = [began.elapsed_time(ended) / 1000 for began, ended in model_s]
    wall = loop["end"] - loop["start"]
    gap = 100 * abs(sum(latencies) - wall) / wall
    shorter = sum(latency < model for latency, model in zip(latencies, model_s))
    stages = {stage: outcome.columns.get(f"stage_{stage}_ms_mean") for stage in FRAME_STAGES}
    split = all(value is not None for value in stages.values())
    ok = len(latencies) == len(model_s) and gap <= 2.0 and shorter == 0 and split
    clock = "CUDA events" if device == "cuda" else "perf_counter (CPU stand-in for CUDA events)"
    figure = (
        f"{len(latencies)} frames: latencies sum to {gap:.2f}% off the loop's wall time (goal <= 2%); frames timed shorter than "
        f"the model's own time by {clock}: {shorter}; stage means (ms): "
        + (", ".join(f"{stage} {ms:.1f}" for stage, ms in stages.items()) if split else f"none ({outcome.columns.get('warning')})")
    )
    return Outcome(PASS if ok else FAIL, figure)


def step_cleanup(device: str, work: Path) -> Outcome:
    """Many jobs in one process with each --cleanup level: the device memory still allocated and
    reserved after the cleanup, from the second job to the last (the first builds the process's
    caches), shows whether memory leaks from job to job and what each call of the protocol does."""
    from sav_benchmark.split.synthetic import make_split

    jobs = 30 if device == "cuda" else 2
    levels = ("full", "gc", "none") if device == "cuda" else ("none",)  # the rehearsal: the option works (the tests run "full")
    make_split(work / "split", videos=jobs - 1, frames=9, width=small(device)["width"], height=small(device)["height"], objects=1)
    drift = {}
    for level in levels:
        out = work / f"{level}.csv"
        done = benchmark(
            "--split_dir", work / "split", "--models", "sam2.1_tiny_mask", "--weights", "random",
            "--imgsz", 512 if device == "cuda" else 64, "--device", device, "--isolation", "none", "--cleanup", level,
            "--quiet", "--output", out,
        )  # fmt: skip
        rows = rows_of(out) if out.exists() else []
        if done.returncode or len(rows) != jobs:
            return Outcome(FAIL, f"--cleanup {level}: the run failed (exit code {done.returncode}, {len(rows)} of {jobs} rows)")
        columns = ("mem_alloc_after_cleanup_mb", "mem_reserved_after_cleanup_mb")
        drift[level] = [float(rows[-1][c]) - float(rows[1][c]) if rows[1][c] else None for c in columns]
    if device != "cuda":
        return Outcome(PASS, f"CPU rehearsal: {jobs} jobs with --cleanup none; no device memory counters here")
    figure = "; ".join(f"{level}: allocated {a:+.1f} MB, reserved {r:+.1f} MB" for level, (a, r) in drift.items())
    full = drift["full"]
    return Outcome(
        PASS if abs(full[0]) < 1 and abs(full[1]) < 1 else FAIL, f"after cleanup, job 2 to job {jobs}: {figure} (goal: full within 1 MB)"
    )


def step_bare_loop(device: str, work: Path) -> Outcome:
    size = small(device)
    command = [sys.executable, str(REPO / "scripts" / "bare_loop.py"), "--device", device, "--imgsz", str(size["imgsz"])]
    command += ["--frames", str(size["frames"]), "--width", str(size["width"]), "--height", str(size["height"])]
    command += ["--repeats", "5", "--lockstep", "3"] if device == "cuda" else ["--repeats", "1", "--lockstep", "1"]
    done = subprocess.run(command, capture_output=True, text=True)
    print(done.stdout, done.stderr[-3000:])
    ratios = dict(re.findall(r"^--(stream|no-stream): .* ratio ([\d.]+)$", done.stdout, re.MULTILINE))
    by_frame = dict(re.findall(r"^frame by frame, --(stream|no-stream): .* ratio ([\d.]+)$", done.stdout, re.MULTILINE))
    if done.returncode or len(ratios) != 2 or len(by_frame) != 2:
        return Outcome(FAIL, f"bare_loop.py failed (exit code {done.returncode})")
    figure = (
        f"ours / bare, frame by frame: --stream {by_frame['stream']}, --no-stream {by_frame['no-stream']}; "
        f"whole jobs: --stream {ratios['stream']}, --no-stream {ratios['no-stream']}"
    )
    if device != "cuda":
        return Outcome(PASS, figure + " (CPU rehearsal: no verdict)")
    # --stream decodes frames inside the loop, which the bare loop does in init_state: its ratio is a figure, not the verdict
    return Outcome(PASS if float(by_frame["no-stream"]) >= 0.98 else FAIL, figure + " (goal: --no-stream frame by frame >= 0.98)")


def step_bf16(device: str, work: Path) -> Outcome:
    split, size = split_of(work, device), small(device)
    fps, masks = {}, {}
    for dtype in ("bfloat16", "float32"):
        out = work / f"{dtype}.csv"
        done = benchmark(
            "--split_dir", split, "--models", "sam2.1_tiny_mask", "--weights", "random", "--imgsz", size["imgsz"], "--device", device,
            "--autocast_dtype", dtype, "--quiet", "--output", out, "--save_masks", work / dtype,
        )  # fmt: skip
        if done.returncode:
            return Outcome(FAIL, f"the {dtype} run failed (exit code {done.returncode})")
        fps[dtype] = sum(float(r["fps"]) for r in rows_of(out)) / len(rows_of(out))
        masks[dtype] = {p.relative_to(work / dtype): p for p in (work / dtype).rglob("*.png")}
    return Outcome(PASS, f"FPS bf16 / fp32 {fps['bfloat16'] / fps['float32']:.2f}, masks' mean IoU {_mean_iou(masks):.3f}")


def _mean_iou(masks: dict[str, dict[Path, Path]]) -> float:
    from sav_benchmark.masks import read_mask

    ious = []
    for name, path in masks["bfloat16"].items():
        a, b = read_mask(path), read_mask(masks["float32"][name])
        union = (a | b).sum()
        ious.append(1.0 if union == 0 else float((a & b).sum() / union))
    return sum(ious) / len(ious)


def step_isolation_oom(device: str, work: Path) -> Outcome:
    """A job that runs out of device memory in its worker: an oom row, the next job ok, the worker replaced."""
    split, out = split_of(work, device, videos=2), work / "oom.csv"
    env = {"SAV_BENCHMARK_PLUGINS": "fake_runners", "PYTHONPATH": str(REPO / "tests" / "plugins"), "FAKE_FAIL_VIDEOS": "synth_000"}
    if device == "cuda":
        env["FAKE_REAL_DEVICE_OOM"] = "1"  # a real allocation past the device's memory
    benchmark("--split_dir", split, "--models", "fake_oom", "--isolation", "process", "--quiet", "--output", out, env=env)
    rows = rows_of(out) if out.exists() else []
    statuses = [(r["video_id"], r["status"]) for r in rows]
    manifest = json.loads(Path(f"{out}.json").read_text()) if Path(f"{out}.json").exists() else {}
    starts = len((manifest.get("worker_startup_s") or {}).get("fake_oom", []))
    ooms = sum(status == "oom" for _, status in statuses)
    # every job of the first video runs out of memory, each in a fresh worker; the next video's job is fine
    ok = bool(rows) and statuses[0] == ("synth_000", "oom") and statuses[-1] == ("synth_001", "ok") and starts == ooms + 1
    kind = "a real CUDA allocation" if device == "cuda" else "a stand-in RuntimeError (CPU rehearsal)"
    reason = rows[0]["error"][:80] if rows else "no rows"
    return Outcome(PASS if ok else FAIL, f"{kind}: rows {[s for _, s in statuses]}, worker started {starts} times; {reason}")


def step_compile(device: str, work: Path) -> Outcome:
    if device != "cuda":
        return Outcome(SKIP, "needs CUDA: the package's compiled predictor is a CUDA path")
    split, out = split_of(work, device), work / "compile.csv"
    env = {"TORCH_LOGS": "recompiles,cudagraphs"}
    done = benchmark(
        "--split_dir", split, "--models", "sam2.1_tiny_mask", "--weights", "random", "--compile", "--device", "cuda",
        "--isolation", "none", "--quiet", "--output", out, env=env, timeout=1500,
    )  # fmt: skip
    if done.returncode:
        return Outcome(FAIL, f"the run failed (exit code {done.returncode})")
    rows = rows_of(out)
    compiled = [r["compiled_graphs"] for r in rows]
    warmup = json.loads(Path(f"{out}.json").read_text()).get("warmup_s")
    recompiles = done.stderr.count("Recompiling")
    ok = all(c == "0" for c in compiled)
    return Outcome(
        PASS if ok else FAIL, f"warm-up {warmup}, compiled_graphs {compiled}, recompile lines {recompiles}, FPS {rows[0]['fps'][:6]}"
    )


def step_stream_memory(device: str, work: Path) -> Outcome:
    size = small(device)
    frames = "50,400" if device == "cuda" else "9,17"  # at least 3 annotated frames, so that the rows are scored
    command = [
        sys.executable,
        str(REPO / "scripts" / "stream_memory.py"),
        "--device",
        device,
        "--frames",
        frames,
        "--imgsz",
        str(size["imgsz"]),
    ]
    command += ["--width", str(size["width"]), "--height", str(size["height"])]
    done = subprocess.run(command, capture_output=True, text=True)
    print(done.stdout, done.stderr[-3000:])
    verdict = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode or "--stream" not in verdict:
        return Outcome(FAIL, f"stream_memory.py failed (exit code {done.returncode})")
    good = ": met" in verdict if device == "cuda" else "all masks equal" in verdict  # two bf16 CUDA processes may differ in a bit
    return Outcome(PASS if good else FAIL, verdict)


def step_nvml(device: str, work: Path) -> Outcome:
    if device != "cuda":
        return Outcome(SKIP, "needs an NVIDIA GPU's NVML")
    split, out = split_of(work, device), work / "nvml.csv"
    done = benchmark(
        "--split_dir", split, "--models", "sam2.1_tiny_mask", "--weights", "random", "--device", "cuda", "--telemetry", "nvml",
        "--quiet", "--output", out,
    )  # fmt: skip
    if done.returncode:
        return Outcome(FAIL, f"the run failed (exit code {done.returncode})")
    row = rows_of(out)[0]
    cells = ("avg_power_w", "energy_mj_per_frame", "gpu_clock_mhz_mean", "throttled")
    missing = [c for c in cells if row[c] == ""]
    figure = ", ".join(f"{c} {row[c][:8]}" for c in cells)
    return Outcome(FAIL if missing else PASS, figure + (f"; empty: {', '.join(missing)}" if missing else ""))


STEPS = [  # cheap, decisive steps first; the compile step last (its warm-up may take minutes)
    Step("environment", "GPU, compute capability, driver, torch and CUDA, sam2", 30, step_environment),
    Step("timing", "per-frame latencies against CUDA events and the loop's wall time; the stages' split", 90, step_timing),
    Step("isolation_oom", "--isolation process: an oom row, the next job ok, the worker replaced", 120, step_isolation_oom),
    Step("bare_loop", "FPS of the benchmark's job over a bare propagate_in_video loop, --stream and --no-stream", 150, step_bare_loop),
    Step("bf16", "bfloat16 against float32: FPS ratio, masks' mean IoU", 120, step_bf16),
    Step("nvml", "NVML telemetry: power, energy per frame, clocks, throttling filled", 90, step_nvml),
    Step("stream_memory", "--stream: peak memory for a short and a long video, masks equal", 180, step_stream_memory),
    Step("cleanup", "memory after cleanup over 30 jobs, with each --cleanup level", 180, step_cleanup),
    Step("gpu_tests", "pytest -m gpu tests (but the compiled run)", 240, step_gpu_tests),
    Step("compile", "--compile: warm-up, compiled_graphs 0 in every row, recompilations", 300, step_compile),
]


def run_step(name: str, device: str, work: Path) -> int:
    """The child process of one step: its output is the log, its last line the outcome."""
    sys.path.insert(0, str(REPO))
    step = next(step for step in STEPS if step.name == name)
    try:
        outcome = step.run(device, work)
    except Exception as exc:  # the step's FAIL, with the reason in the table
        outcome = Outcome(FAIL, f"{type(exc).__name__}: {exc}"[:200])
    print(RESULT + json.dumps(asdict(outcome)), flush=True)
    return 0


def run_all(device: str, out: Path, budget_s: float) -> list[dict[str, object]]:
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "gpu_check.log", "w")
    results, start = [], time.monotonic()
    for step in STEPS:
        left = budget_s - (time.monotonic() - start)
        began = time.monotonic()
        if left < min(step.timeout_s, 30):
            outcome = Outcome(SKIP, f"the budget ({budget_s:.0f} s) is spent")
        else:
            outcome = _child(step, device, min(step.timeout_s, left), log)
            if outcome.status == FAIL and outcome.figure.startswith(STOPPED) and left < step.timeout_s:
                outcome = Outcome(SKIP, f"cut by the budget ({budget_s:.0f} s) after {left:.0f} s")
        results.append({"step": step.name, "checks": step.checks, **asdict(outcome), "seconds": round(time.monotonic() - began, 1)})
        print(f"{step.name}: {outcome.status} {outcome.figure}", file=sys.stderr, flush=True)
        write_table(results, device, out)  # after every step: a run cut short still leaves its table
    log.close()
    return results


STOPPED = "no result within"


def _child(step: Step, device: str, timeout_s: float, log) -> Outcome:
    """The step in a process group of its own, its output into the log; on its timeout the whole
    group is killed (a benchmark or pytest it started included), so nothing runs on into the next step."""
    log.write(f"\n===== {step.name} ({step.checks}) =====\n")
    log.flush()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as work:
        command = [sys.executable, __file__, "--step", step.name, "--device", device, "--work", work]
        with open(Path(work) / "step.out", "w+") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
            try:
                process.wait(timeout=timeout_s)
                stopped = False
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                stopped = True
            output.seek(0)
            text = output.read()
        log.write(text)
        log.flush()
    if stopped:
        return Outcome(FAIL, f"{STOPPED} its {timeout_s:.0f} s: stopped")
    found = [line for line in text.splitlines() if line.startswith(RESULT)]
    if not found:
        return Outcome(FAIL, f"its process ended without a result (exit code {process.returncode}); see gpu_check.log")
    return Outcome(**json.loads(found[-1][len(RESULT) :]))


def write_table(results: list[dict[str, object]], device: str, out: Path) -> None:
    (out / "gpu_check.md").write_text(table(results, device) + "\n")
    (out / "gpu_check.json").write_text(json.dumps({"device": device, "steps": results}, indent=2) + "\n")


def table(results: list[dict[str, object]], device: str) -> str:
    lines = [
        f"GPU check ({'dry run on the CPU' if device != 'cuda' else 'CUDA'}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
    ]
    lines += ["| step | checks | result | figure | s |", "| --- | --- | --- | --- | ---: |"]
    lines += [f"| {r['step']} | {r['checks']} | {r['status']} | {str(r['figure']).replace('|', '/')} | {r['seconds']} |" for r in results]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="the rehearsal on the CPU: stand-ins, or a SKIP that says why")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_check_out")), help="folder for the table and the log")
    parser.add_argument("--budget_s", type=float, default=480.0, help="all steps together (default 480 s)")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--device", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        return run_step(args.step, args.device, args.work)
    device = "cpu" if args.dry_run else "cuda"
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("gpu_check: error: torch sees no CUDA device here; run with --dry-run to rehearse on the CPU", file=sys.stderr)
            return 2
    results = run_all(device, args.out, args.budget_s)
    print((args.out / "gpu_check.md").read_text(), end="")
    failed = [r["step"] for r in results if r["status"] == FAIL]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
