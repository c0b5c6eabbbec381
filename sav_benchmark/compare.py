"""`report` and `compare`: result CSVs read back and shown as Markdown tables.

`report` summarises one run per (model, prompt). `compare` pairs the jobs of later files with the
first file's by (video, object, model, prompt) and says, per metric in its own right direction,
whether the difference is larger than the objects' own spread (Wilcoxon signed-rank, p < 0.05),
with a bootstrap 95% interval. Nothing here imports torch.

Files are compared by value, not by text: pandas writes a column that has an empty cell back as
floats (imgsz 256 becomes 256.0) and reads object 000 as the number 0, so keys and settings are
matched through `cell_value`, and an empty cell is unknown, never a value that differs.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UsageError, os_reason
from .files import write_atomically
from .metrics import global_scores
from .results import (
    COLUMNS,
    NOT_FAILED,
    NUMBER,
    STATUS_NO_SCORE,
    STATUS_OK,
    STATUS_SKIPPED,
    manifest_path,
    row_problem,
    write_manifest,
)
from .stats import bootstrap_mean_interval, wilcoxon_p
from .summary import fmt, median, number

REQUIRED = (
    "video_id",
    "object_id",
    "model",
    "prompt",
    "status",
    "J",
    "F",
    "JF",
    "fps",
    "latency_ms_p50",
    "latency_ms_p90",
    "build_s",
    "init_s",
)
# Row settings that change the numbers: files that differ in them are compared with a warning.
SETTINGS = ("device", "dtype", "imgsz", "weights", "stream", "postprocessing", "protocol")
SCORING_SETTINGS = ("protocol",)  # the ones the baseline has too: which rules scored it
# What a CSV from before a setting's column ran with: the plain path, the package's post-processing,
# the SA-V evaluator's rules.
BEFORE_THE_COLUMN = {"stream": "off", "postprocessing": "on", "protocol": "sav"}
# Settings of the whole run, from its manifest: --objects (rows say how each object was tracked,
# and in a run of objects together some are tracked separately), torch, the Jetson power mode.
RUN_SETTINGS = ("objects", "torch", "power mode")
SIGNIFICANCE = 0.05
FEWEST_PAIRS = 6  # below this no sign assignment reaches p < 0.05: 2/2**5 at the least, ties or not
Group = tuple[str, str]  # (model, prompt)
Value = str | int | float  # a cell as cell_value reads it


def cell_value(cell: Any) -> Value | None:
    """What a CSV cell (or a manifest's value) stands for, so that two files are compared by value:
    None when it is empty (unknown), a number when it is written as one (256, 256.0 and 2.56e2 are
    one value; 000 and 0 too), else its text."""
    if cell is None:
        return None
    text = str(cell).strip()
    if not text:
        return None
    if NUMBER.fullmatch(text):
        value = float(text) if any(c in text for c in ".eE") else int(text)  # an int stays exact at any length
        if math.isfinite(value):
            return value
    return text


def job_key(row: dict[str, str], columns: tuple[str, ...] = ("video_id", "object_id", "model")) -> tuple[Value | None, ...]:
    """A row's job by value: pandas may have written object 000 as 0 (or 0.0) in one file and not in
    another. A video id is a number only when it is all digits: hexadecimal ids such as 0001e003
    and 00010e02 would otherwise both read as 1000.0. Models and prompts are names."""
    return tuple(_key_part(column, row[column]) for column in columns)


def _key_part(column: str, cell: str) -> Value | None:
    if column == "object_id":
        return cell_value(cell)
    if column == "video_id":
        text = str(cell).strip()
        return int(text) if text.isascii() and text.isdigit() else text
    return cell


@dataclass
class Run:
    path: Path
    rows: list[dict[str, str]]
    manifest: dict[str, Any] | None


def load_run(path: Path) -> Run:
    """A result CSV and its manifest (if beside it); anything else is a UsageError naming the file,
    and a cell or row this benchmark cannot have written names its line and column too."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # a spreadsheet may have added a byte-order mark
            reader = csv.DictReader(f)
            rows, lines = [], []
            for row in reader:
                rows.append(row)
                lines.append(reader.line_num)
            columns = reader.fieldnames or []
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path}: not a result CSV ({exc})") from None
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise UsageError(f"{path}: not a result CSV of this benchmark (no column {', '.join(missing)})")
    _check_rows(path, rows, lines)
    try:
        manifest = json.loads(manifest_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    return Run(path, rows, manifest)


def _check_rows(path: Path, rows: list[dict[str, str]], lines: list[int]) -> None:
    """Every row whole, every cell what its column holds, and one row per job: a job counted
    twice would move every mean."""
    first_line: dict[tuple[Value | None, ...], int] = {}
    for row, line in zip(rows, lines):
        if None in row or None in row.values():
            raise UsageError(
                f"{path}, line {line}: the row has {'more' if None in row else 'fewer'} cells than the header; mend or delete that line"
            )
        problem = row_problem(row)
        if problem:
            raise UsageError(f"{path}, line {line}, {problem}; mend or delete that line")
        key = job_key(row)
        if key in first_line:
            raise UsageError(
                f"{path}: {row['video_id']}/{row['object_id']} {row['model']} has two rows, on lines {first_line[key]} and {line}; "
                "a job has one row: "
                "delete one of them (or resume the run with --retry_failed, which runs such jobs again)"
            )
        first_line[key] = line


def group_rows(rows: list[dict[str, str]]) -> dict[Group, list[dict[str, str]]]:
    groups: dict[Group, list[dict[str, str]]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["prompt"]), []).append(row)
    return groups


def ran_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [r for r in rows if r["status"] in (STATUS_OK, STATUS_NO_SCORE)]


def known(values: list[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


def markdown_table(header: list[str], lines: list[list[str]]) -> str:
    rule = ["---"] + ["---:"] * (len(header) - 1)
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [header, rule, *lines])


REPORT_HEADER = [
    "model",
    "prompt",
    "ok",
    "failed",
    "J&F",
    "J",
    "F",
    "FPS median",
    "FPS p10-p90",
    "latency p50 ms",
    "latency p90 ms",
    "build s",
    "init s",
    "peak MB",
    "mJ/frame",
]


def _report_line(group: Group, rows: list[dict[str, str]]) -> list[str]:
    ran = ran_rows(rows)
    failed = [r for r in rows if r["status"] not in NOT_FAILED]
    jf, j, f = global_scores([(number(r["J"]), number(r["F"])) for r in ran if r["status"] == STATUS_OK])
    fps = known([number(r["fps"]) for r in ran])
    p10, p90 = np.percentile(fps, [10, 90]) if fps else (math.nan, math.nan)
    peaks = known([number(r.get("peak_alloc_mb")) for r in ran]) or known([number(r.get("peak_device_mem_mb")) for r in ran])
    return [
        *group,
        str(len(ran)),
        str(len(failed)),
        fmt(jf),
        fmt(j),
        fmt(f),
        fmt(median(fps), 2),
        f"{fmt(p10, 2)}-{fmt(p90, 2)}",
        fmt(median([number(r["latency_ms_p50"]) for r in ran])),
        fmt(median([number(r["latency_ms_p90"]) for r in ran])),
        fmt(median([number(r["build_s"]) for r in ran]), 2),
        fmt(median([number(r["init_s"]) for r in ran]), 2),
        fmt(max(peaks) if peaks else math.nan, 0),
        fmt(median([number(r.get("energy_mj_per_frame")) for r in ran])),
    ]


def report_text(run: Run) -> str:
    """Per (model, prompt): objects that ran and failed (skipped ones left out), global J&F, J and F
    (SPEC-metrics), FPS median and p10-p90 over objects, the medians over objects of the per-object
    latency p50 and p90, build and init medians, the largest peak memory, energy per frame."""
    return f"## {run.path}\n\n" + markdown_table(REPORT_HEADER, report_lines(run))


def report_lines(run: Run) -> list[list[str]]:
    """The report's table, a line per (model, prompt), cells as REPORT_HEADER names them."""
    groups = group_rows([r for r in run.rows if r["status"] != STATUS_SKIPPED])
    return [_report_line(group, rows) for group, rows in groups.items()]


@dataclass(frozen=True)
class Metric:
    column: str
    higher_is_better: bool
    better: str  # "faster": what a ratio in the good direction is called
    worse: str


SPEED = Metric("fps", True, "faster", "slower")
RATIO_METRICS = [
    SPEED,
    Metric("latency_ms_p90", False, "lower", "higher"),
    Metric("peak_alloc_mb", False, "less", "more"),
    Metric("energy_mj_per_frame", False, "less", "more"),
]
COMPARE_HEADER = [
    "model",
    "prompt",
    "matched",
    "only in reference",
    "only here",
    "FPS",
    "latency p90",
    "peak memory",
    "energy per frame",
    "J&F difference (points)",
]


def _key(row: dict[str, str]) -> tuple[Value | None, ...]:
    return job_key(row, ("video_id", "object_id"))


@dataclass
class Finding:
    """One metric of one (model, prompt) between two files, at full precision."""

    metric: str
    n: int  # pairs it rests on
    value: float  # geometric mean ratio OTHER/REF, or the mean difference in points
    low: float  # bootstrap 95% interval of the value
    high: float
    p_value: float  # Wilcoxon signed-rank, two-sided
    text: str  # as the table shows it


def ratio_finding(ratios: list[float], metric: Metric, min_change_pct: float = 0.0) -> Finding | None:
    """How OTHER compares with the reference on one metric, from per-object ratios OTHER/REF."""
    if not ratios:
        return None
    logs = [math.log(r) for r in ratios]
    centre = math.exp(float(np.mean(logs)))  # the geometric mean ratio
    low, high = (math.exp(x) for x in bootstrap_mean_interval(logs))
    p = wilcoxon_p(logs)
    finding = Finding(metric.column, len(ratios), centre, low, high, p, "")
    interval = f"{centre:.2f}x [{low:.2f}x, {high:.2f}x]"
    if p >= SIGNIFICANCE:
        few = len(ratios) < FEWEST_PAIRS and any(logs)
        finding.text = f"too few objects to tell ({interval}, n={len(ratios)})" if few else f"no significant change ({interval})"
    elif abs(centre - 1.0) * 100.0 < min_change_pct:
        finding.text = f"no change above {min_change_pct:g}% ({interval})"
    elif centre < 1.0:  # "2.00x lower", not "0.50x higher": the factor and its interval turned over
        finding.text = f"{1 / centre:.2f}x {metric.worse if metric.higher_is_better else metric.better} [{1 / high:.2f}x, {1 / low:.2f}x]"
    else:
        finding.text = f"{centre:.2f}x {metric.better if metric.higher_is_better else metric.worse} [{low:.2f}x, {high:.2f}x]"
    return finding


def _ratios(pairs: list[tuple[dict[str, str], dict[str, str]]], column: str) -> list[float]:
    ratios = []
    for ref, other in pairs:
        a, b = number(ref.get(column)), number(other.get(column))
        if a > 0 and b > 0:
            ratios.append(b / a)
    return ratios


def difference_finding(differences: list[float]) -> Finding | None:
    """The mean paired J&F difference in points, OTHER - REF."""
    if not differences:
        return None
    low, high = bootstrap_mean_interval(differences)
    mean = float(np.mean(differences))
    return Finding("JF", len(differences), mean, low, high, wilcoxon_p(differences), f"{mean:+.1f} [{low:+.1f}, {high:+.1f}]")


@dataclass
class GroupComparison:
    group: Group
    matched: int
    only_reference: int
    only_other: int
    findings: list[Finding | None]  # RATIO_METRICS, then J&F

    def cells(self) -> list[str]:
        return [
            *self.group,
            str(self.matched),
            str(self.only_reference),
            str(self.only_other),
            *(f.text if f else "-" for f in self.findings),
        ]


def compare_group(group: Group, reference: list[dict[str, str]], other: list[dict[str, str]], min_speed_pct: float) -> GroupComparison:
    ref_by_key, other_by_key = {_key(r): r for r in reference}, {_key(r): r for r in other}
    matched = [k for k in ref_by_key if k in other_by_key]
    ran = (STATUS_OK, STATUS_NO_SCORE)
    pairs = [(ref_by_key[k], other_by_key[k]) for k in matched if ref_by_key[k]["status"] in ran and other_by_key[k]["status"] in ran]
    scored = [(a, b) for a, b in pairs if a["status"] == STATUS_OK and b["status"] == STATUS_OK]
    findings = [ratio_finding(_ratios(pairs, m.column), m, min_speed_pct if m is SPEED else 0.0) for m in RATIO_METRICS]
    findings.append(difference_finding([number(b["JF"]) - number(a["JF"]) for a, b in scored]))
    return GroupComparison(group, len(matched), len(ref_by_key) - len(matched), len(other_by_key) - len(matched), findings)


Settings = dict[str, dict[Value, str]]  # setting -> each value a file has -> the text it was first written as


def _setting_values(run: Run) -> Settings:
    """The settings a file's rows and manifest record, by value; empty cells are left out (unknown)."""
    values: Settings = {}
    for row in run.rows:
        for name in SCORING_SETTINGS if _is_baseline(row) else SETTINGS:
            _note(values, name, row.get(name, BEFORE_THE_COLUMN.get(name)))
    environment = (run.manifest or {}).get("environment") or {}
    _note(values, "objects", _objects_mode(run))
    _note(values, "torch", environment.get("torch"))
    _note(values, "power mode", (environment.get("jetson") or {}).get("power_mode"))
    return values


def _is_baseline(row: dict[str, str]) -> bool:
    return row.get("weights") == "none"  # it has no model settings


def _note(values: Settings, name: str, cell: Any) -> None:
    value = cell_value(cell)
    if value is not None:
        values.setdefault(name, {}).setdefault(value, str(cell).strip())


def _shown(values: dict[Value, str]) -> str:
    return ", ".join(sorted(values.values()))


def _should_record(run: Run, name: str) -> bool:
    """Whether a file lacking `name` lacks something its kind of run records: model settings are
    recorded by model rows (a baseline row has none), the protocol by every row that ran, the rest by
    every run (torch and the power mode in its manifest, that a copied CSV may have lost)."""
    if name in SCORING_SETTINGS:
        return any(row["status"] in (STATUS_OK, STATUS_NO_SCORE) for row in run.rows)
    if name in SETTINGS:
        return any(not _is_baseline(row) for row in run.rows)
    return True


def _objects_mode(run: Run) -> str:
    """The run's --objects: its manifest's (runs before the flag: separate), else what its rows say."""
    config = (run.manifest or {}).get("config")
    if isinstance(config, dict):
        return config.get("objects") or "separate"
    return "together" if any(row.get("tracking") == "together" for row in run.rows) else "separate"


def mismatch_warnings(reference: Run, other: Run) -> list[str]:
    """What differs between the files and changes the numbers, compared by value (256 and 256.0 are
    one imgsz). A setting one file records and the other does not (empty cells, no manifest) is
    unknown there, not different: a note says it was not compared."""
    ref_values, other_values = _setting_values(reference), _setting_values(other)
    warnings = []
    for name in [*SETTINGS, *RUN_SETTINGS]:
        a, b = ref_values.get(name, {}), other_values.get(name, {})
        if a and b and a.keys() != b.keys():
            warnings.append(f"warning: {name} differs: {_shown(a)} in the reference, {_shown(b)} here")
        elif a and not b and _should_record(other, name):
            warnings.append(f"note: {name} is unknown here ({_shown(a)} in the reference), so it was not compared")
        elif b and not a and _should_record(reference, name):
            warnings.append(f"note: {name} is unknown in the reference ({_shown(b)} here), so it was not compared")
    return warnings


def compare_runs(reference: Run, other: Run, min_speed_pct: float = 0.0) -> list[GroupComparison]:
    ref_groups, other_groups = group_rows(reference.rows), group_rows(other.rows)
    groups = list(dict.fromkeys([*ref_groups, *other_groups]))
    return [compare_group(g, ref_groups.get(g, []), other_groups.get(g, []), min_speed_pct) for g in groups]


def compare_text(reference: Run, others: list[Run], min_speed_pct: float = 0.0) -> str:
    """Each file's own summary, then each later file against the reference."""
    sections = [report_text(run) for run in (reference, *others)]
    for other in others:
        lines = [comparison.cells() for comparison in compare_runs(reference, other, min_speed_pct)]
        warnings = "".join(f"{w}\n" for w in mismatch_warnings(reference, other))
        sections.append(
            f"## {other.path} vs {reference.path}\n\n" + warnings + ("\n" if warnings else "") + markdown_table(COMPARE_HEADER, lines)
        )
    return "\n\n".join(sections)


FINDING_COLUMNS = [
    "reference",
    "file",
    "model",
    "prompt",
    "matched",
    "only_in_reference",
    "only_in_file",
    "metric",
    "n",
    "value",
    "ci95_low",
    "ci95_high",
    "p_value",
    "verdict",
]


def write_findings(path: Path, reference: Run, others: list[Run], min_speed_pct: float = 0.0) -> None:
    """The comparison's numbers at full precision, one line per (file, model, prompt, metric);
    `value` is the geometric mean ratio file/reference, or for JF the mean difference in points."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(FINDING_COLUMNS)
    for other in others:
        for comparison in compare_runs(reference, other, min_speed_pct):
            for finding in filter(None, comparison.findings):
                writer.writerow(
                    [
                        reference.path,
                        other.path,
                        *comparison.group,
                        comparison.matched,
                        comparison.only_reference,
                        comparison.only_other,
                        finding.metric,
                        finding.n,
                        repr(finding.value),
                        repr(finding.low),
                        repr(finding.high),
                        repr(finding.p_value),
                        finding.text,
                    ]
                )
    try:
        write_atomically(path, buffer.getvalue())
    except OSError as exc:
        raise UsageError(f"--csv {path}: cannot write it ({os_reason(exc)}); choose a writable path") from None


def _shard(run: Run) -> tuple[int, int] | None:
    """The run's --shard K/N from its manifest ("K/N", or [K, N]), as numbers; None when it has none."""
    shard = (run.manifest or {}).get("shard")
    try:
        k, n = (int(part) for part in (shard if isinstance(shard, (list, tuple)) else str(shard).split("/")))
    except (TypeError, ValueError):
        return None
    return k, n


def missing_shards(runs: list[Run]) -> list[str]:
    """The parts K/N absent from a merge of runs that were all made with --shard .../N."""
    shards = [_shard(run) for run in runs]
    if None in shards or len({n for _, n in shards}) != 1:
        return []
    n = shards[0][1]
    return [f"{k}/{n}" for k in range(1, n + 1) if (k, n) not in shards]


def merge_runs(runs: list[Run], output: Path) -> int:
    """Join shards of one run (same settings, disjoint jobs) into one CSV; returns its row count.
    Overlapping jobs and settings that differ are UsageErrors (the command line refuses an
    existing output before). Settings and jobs are compared by value, as `compare` does: a shard
    pandas saved again (imgsz 256.0, object 0 for 000) merges with its siblings, and a setting a shard
    does not record (empty cells, no manifest) is not a difference. Rows are written as they are."""
    by_file = {str(run.path): _setting_values(run) for run in runs}
    for name in [*SETTINGS, *RUN_SETTINGS]:
        seen = {path: values[name] for path, values in by_file.items() if values.get(name)}
        if len({frozenset(v) for v in seen.values()}) > 1:
            listed = "; ".join(f"{_shown(v)} in {path}" for path, v in seen.items())
            raise UsageError(f"--merge: the files differ in {name} ({listed}): only shards of one run with the same settings can be merged")
    owner: dict[tuple[Value | None, ...], Path] = {}
    for run in runs:
        for row in run.rows:
            key = job_key(row, ("video_id", "object_id", "model", "prompt"))
            if key in owner:
                raise UsageError(
                    f"--merge: {row['video_id']}/{row['object_id']} {row['model']} is in both {owner[key]} and {run.path}: "
                    "shards must not overlap"
                )
            owner[key] = run.path
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for run in runs:
        writer.writerows({c: row.get(c, "") for c in COLUMNS} for row in run.rows)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(output, buffer.getvalue())
        write_manifest(manifest_path(output), {"merged_from": [str(run.path) for run in runs], "manifests": [run.manifest for run in runs]})
    except OSError as exc:
        raise UsageError(f"--merge {output}: cannot write it ({os_reason(exc)}); choose a writable path") from None
    return len(owner)
