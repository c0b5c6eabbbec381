"""`report RUN.csv --html OUT.html` and `compare A.csv B.csv --html OUT.html`: one self-contained page (no network, no server; the pictures
inline as PNG) that shows a run at a glance.

Sections, each with an id: `summary` (the report's table), `accuracy-speed` (J&F against FPS per
model, marker area by energy per frame, the Pareto front), `latency-frames` (latency across the
frame index per model: the median and the p10-p90 band over objects, from the traces), `stages`
(each model's mean frame split into its stages), `memory-power` (memory and power over the run's
frames, from the traces, with the stretches of throttled jobs shaded), `objects` (per object,
the worst first) and `manifest` (device, power mode, clocks, versions). A section without its data
(no traces, no stage times, no power) says why instead of drawing. The comparison's page puts the
files side by side (`files`: each one's table, accuracy against speed and stages), then each later
file against the first (`comparison`: the paired ratios, as `compare` prints them).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from .compare import COMPARE_HEADER, REPORT_HEADER, Run, compare_runs, group_rows, known, mismatch_warnings, ran_rows, report_lines
from .metrics import global_scores
from .plot import import_pyplot
from .results import STATUS_OK, traces_path
from .summary import number
from .timing import FRAME_STAGES

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
section { margin-bottom: 2em; }
p.missing { color: #a33; }
img { max-width: 100%; }
div.files { display: flex; gap: 2em; }
div.file { flex: 1; min-width: 0; overflow-x: auto; }
"""
# Set once the page has loaded: how many pictures decoded, for a headless browser to read back.
LOADED_SCRIPT = """
window.addEventListener("load", () => {
  const broken = [...document.images].filter((image) => !(image.complete && image.naturalWidth > 0)).length;
  document.body.dataset.pictures = `${document.images.length} pictures, ${broken} broken`;
});
"""


def write_html_report(run: Run, output: Path) -> None:
    traces = _read_traces(run)
    _write_page(
        output,
        str(run.path),
        [
            ("summary", "Summary", _table(REPORT_HEADER, report_lines(run))),
            ("accuracy-speed", "Accuracy against speed", _accuracy_speed(run)),
            ("latency-frames", "Latency across the frames", _latency_frames(traces)),
            ("stages", "Where a frame's time goes", _stages(run)),
            ("memory-power", "Memory and power over the run", _memory_power(run, traces)),
            ("objects", "Objects, the worst first", _objects(run)),
            ("manifest", "The run", _manifest(run)),
        ],
    )


def write_html_comparison(reference: Run, others: list[Run], output: Path, min_speed_pct: float = 0.0) -> None:
    runs = [reference, *others]
    columns = "".join(
        f'<div class="file"><h3>{html.escape(str(run.path))}</h3>{_table(REPORT_HEADER, report_lines(run))}'
        f"{_accuracy_speed(run)}{_stages(run)}</div>"
        for run in runs
    )
    pairs = "".join(
        f"<h3>{html.escape(str(other.path))} against {html.escape(str(reference.path))}</h3>"
        + "".join(f"<p>{html.escape(warning)}</p>" for warning in mismatch_warnings(reference, other))
        + _table(COMPARE_HEADER, [comparison.cells() for comparison in compare_runs(reference, other, min_speed_pct)])
        for other in others
    )
    title = " vs ".join(str(run.path) for run in runs)
    sections = [("files", "The files side by side", f'<div class="files">{columns}</div>'), ("comparison", "Paired per object", pairs)]
    _write_page(output, title, sections)


def _write_page(output: Path, title: str, sections: list[tuple[str, str, str]]) -> None:
    body = "\n".join(f'<section id="{key}"><h2>{heading}</h2>\n{content}</section>' for key, heading, content in sections)
    page = (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style><script>{LOADED_SCRIPT}</script></head>\n"
        f"<body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )
    output.write_text(page, encoding="utf-8")


def _read_traces(run: Run) -> list[dict[str, str]] | None:
    """The records of the CSV's rows (a killed run may have those of a job it wrote no row for), a
    shared job's once (its objects' records are the same frames)."""
    try:
        with open(traces_path(run.path), newline="", encoding="utf-8") as f:
            records = list(csv.DictReader(f))
    except OSError:
        return None
    rows = {(r["video_id"], r["object_id"], r["model"]): r for r in run.rows}
    seen, kept = set(), []
    for record in records:
        row = rows.get((record["video_id"], record["object_id"], record["model"]))
        shared = (record["video_id"], record["model"], record["frame"], record["latency_ms"])
        if row is None or (row.get("tracking") == "together" and shared in seen):
            continue
        seen.add(shared)
        kept.append(record)
    return kept


def _missing(why: str) -> str:
    return f'<p class="missing">{html.escape(why)}</p>'


def _table(header: list[str], lines: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in line) + "</tr>" for line in lines)
    return f"<table><tr>{head}</tr>{body}</table>"


def _picture(figure: Any) -> str:
    plt = import_pyplot()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _accuracy_speed(run: Run) -> str:
    points = []
    for (model, prompt), rows in group_rows(run.rows).items():
        ran = ran_rows(rows)
        scores = [(number(r["J"]), number(r["F"])) for r in ran if r["status"] == STATUS_OK]
        fps = known([number(r["fps"]) for r in ran])
        if scores and fps:
            energy = known([number(r.get("energy_mj_per_frame")) for r in ran])
            points.append((model, float(np.median(fps)), global_scores(scores)[0], float(np.median(energy)) if energy else None))
    if not points:
        return _missing("No model has both a J&F and an FPS (no scored row).")
    plt = import_pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    energies = [e for *_, e in points if e is not None]
    for model, fps, jf, energy in points:
        size = 40 + 400 * (energy / max(energies)) if energy is not None and energies else 60
        axes.scatter(fps, jf, s=size, alpha=0.7)
        axes.annotate(model, (fps, jf), textcoords="offset points", xytext=(6, 4), fontsize=8)
    front = _pareto_front([(fps, jf) for _, fps, jf, _ in points])
    axes.plot(*zip(*front), "k--", linewidth=1, label="Pareto front (faster and more accurate)")
    axes.set_xscale("log")
    axes.set(xlabel="FPS, median over objects", ylabel="J&F (%)")
    axes.legend(fontsize=8)
    note = "Marker area: energy per frame." if energies else "No energy per frame in this run (no power source): markers of one size."
    return _picture(figure) + f"<p>{note}</p>"


def _pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats in both FPS and J&F, by FPS."""
    front = [p for p in points if not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in points)]
    return sorted(front)


def _latency_frames(traces: list[dict[str, str]] | None) -> str:
    if not traces:
        return _missing(
            "No traces beside this CSV (a run with --traces off, from before traces, or merged by compare --merge): no latency per frame."
        )
    by_model: dict[str, dict[int, list[float]]] = {}
    for record in traces:
        by_model.setdefault(record["model"], {}).setdefault(int(record["frame"]), []).append(float(record["latency_ms"]))
    plt = import_pyplot()
    figure, axes = plt.subplots(figsize=(9, 4.5))
    for model, frames in by_model.items():
        index = sorted(frames)
        low, middle, high = (np.array([np.percentile(frames[i], q) for i in index]) for q in (10, 50, 90))
        axes.plot(index, middle, label=model)
        axes.fill_between(index, low, high, alpha=0.2)
    axes.set(xlabel="frame index", ylabel="latency (ms): median, p10-p90 over objects")
    axes.legend(fontsize=8)
    return _picture(figure)


def _stages(run: Run) -> str:
    means: dict[str, list[float]] = {}
    for (model, _), rows in group_rows(ran_rows(run.rows)).items():
        stage_means = [known([number(r.get(f"stage_{stage}_ms_mean")) for r in rows]) for stage in FRAME_STAGES]
        if all(stage_means):
            means[model] = [float(np.mean(values)) for values in stage_means]
    if not means:
        return _missing("No stage times in this run (--stages off, models without stages, or a run from before them).")
    plt = import_pyplot()
    figure, axes = plt.subplots(figsize=(8, 0.6 * len(means) + 1.5))
    left = np.zeros(len(means))
    for index, stage in enumerate(FRAME_STAGES):
        widths = np.array([values[index] for values in means.values()])
        axes.barh(list(means), widths, left=left, label=stage)
        left += widths
    axes.set(xlabel="ms per frame (mean over objects of each object's mean)")
    axes.legend(fontsize=8, ncol=len(FRAME_STAGES), loc="upper center", bbox_to_anchor=(0.5, -0.25))
    return _picture(figure)


def _memory_power(run: Run, traces: list[dict[str, str]] | None) -> str:
    if not traces:
        return _missing("No traces beside this CSV: no memory or power across the run.")
    plt = import_pyplot()
    memory = "device_mem_mb" if any(r["device_mem_mb"] for r in traces) else "rss_mb"
    power = [number(r["power_w"]) for r in traces]
    figure, axes = plt.subplots(figsize=(9, 4))
    axes.plot([number(r[memory]) for r in traces], color="tab:blue")
    axes.set(xlabel="frame of the run (records in order)", ylabel=f"{memory} (MB)")
    notes = []
    if known(power):
        twin = axes.twinx()
        twin.plot(power, color="tab:red", alpha=0.7)
        twin.set_ylabel("power_w (W)")
    else:
        notes.append("No power in this run's telemetry (no power source here).")
    throttled = {(r["video_id"], r["object_id"], r["model"]) for r in run.rows if r.get("throttled") == "True"}
    for start, end in _spans([(r["video_id"], r["object_id"], r["model"]) in throttled for r in traces]):
        axes.axvspan(start, end, color="orange", alpha=0.3)
    if not any(r.get("throttled") for r in run.rows):
        notes.append("Throttling unknown (the telemetry source cannot tell).")
    return _picture(figure) + "".join(f"<p>{html.escape(note)}</p>" for note in notes)


def _spans(flags: list[bool]) -> list[tuple[int, int]]:
    spans, start = [], None
    for index, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            spans.append((start, index - 1))
            start = None
    return spans


def _objects(run: Run) -> str:
    def worst_first(row: dict[str, str]) -> tuple[int, float]:
        score = number(row["JF"])
        return (0 if row["status"] not in (STATUS_OK,) else 1, score if not math.isnan(score) else -1.0)

    header = ["video", "object", "model", "status", "J&F", "FPS", "latency p90 ms", "error"]
    lines = [
        [r["video_id"], r["object_id"], r["model"], r["status"], r["JF"][:6], r["fps"][:7], r["latency_ms_p90"][:7], r["error"]]
        for r in sorted(run.rows, key=worst_first)
    ]
    return _table(header, lines)


def _manifest(run: Run) -> str:
    manifest = run.manifest
    if not manifest:
        return _missing("No manifest beside this CSV.")
    environment = manifest.get("environment") or {}
    facts = [
        ["run id", manifest.get("run_id", "")],
        ["command", " ".join(manifest.get("command") or [])],
        ["started", manifest.get("started_utc", "")],
        *[[key, str(value)] for key, value in environment.items() if not isinstance(value, (dict, list))],
        *[
            [f"{group}: {key}", _fact(value)]
            for group, values in environment.items()
            if isinstance(values, dict)
            for key, value in values.items()
        ],
    ]
    return _table(["", ""], facts)


def _fact(value: Any) -> str:
    """A manifest value in a cell: where a model package's code came from in a word (with its
    distribution), the manifest holding the rest; anything else as it is."""
    if isinstance(value, dict) and "verdict" in value:
        distribution = " ".join(str(part) for part in (value.get("distribution"), value.get("version")) if part)
        return f"{value['verdict']} ({distribution})" if distribution else str(value["verdict"])
    return str(value)
