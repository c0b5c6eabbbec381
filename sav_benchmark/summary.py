"""The per-model summary table printed at the end of a run."""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from .metrics import global_scores
from .metrics_lvos import GLOBAL_COLUMNS, global_table
from .metrics_mosev2 import MOSEV2_COLUMNS
from .results import STATUS_NO_SCORE, STATUS_OK, STATUS_SKIPPED
from .split import PROTOCOL_LVOS, PROTOCOL_MOSEV2

HEADER = ("model", "objects", "scored", "J&F", "J", "F", "FPS med", "lat p90 ms", "peak MB", "overhead")
POWER_HEADER = ("W med", "mJ/frame med")  # shown when some row has a power figure


def number(value: Any) -> float:
    """A cell as a float: rows read back from a CSV hold strings, empty for unknown."""
    if value is None or value == "":
        return math.nan
    return float(value)


def fmt(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def median(values: list[float]) -> float:
    """The median of the known values (NaN where none is)."""
    known = [v for v in values if not math.isnan(v)]
    return float(np.median(known)) if known else math.nan


def summarise(rows: Iterable[dict[str, Any]], with_power: bool = False) -> list[tuple[str, ...]]:
    """One line per model in order of first appearance; aggregates follow SPEC-metrics."""
    by_model: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_model.setdefault(row["model"], []).append(row)
    lines = []
    for model, model_rows in by_model.items():
        ran = [r for r in model_rows if r["status"] != STATUS_SKIPPED]
        ok = [r for r in ran if r["status"] in (STATUS_OK, STATUS_NO_SCORE)]
        scored = [(number(r["J"]), number(r["F"])) for r in ok if r["status"] == STATUS_OK]
        jf, j, f = global_scores(scored)
        fps = [number(r["fps"]) for r in ok]
        p90 = [number(r["latency_ms_p90"]) for r in ok]
        peaks = [v for v in (number(r["peak_alloc_mb"]) for r in ok) if not math.isnan(v)]
        lines.append(
            (
                model,
                f"{len(ok)}/{len(ran)}",
                str(len(scored)),
                fmt(jf),
                fmt(j),
                fmt(f),
                fmt(float(np.median(fps)) if fps else math.nan),
                fmt(float(np.median(p90)) if p90 else math.nan),
                fmt(max(peaks) if peaks else math.nan, 0),
                overhead_share(model_rows),
            )
        )
        if with_power:
            lines[-1] += (
                fmt(median([number(r.get("avg_power_w")) for r in ok])),
                fmt(median([number(r.get("energy_mj_per_frame")) for r in ok])),
            )
    return lines


def overhead_share(rows: list[dict[str, Any]]) -> str:
    """The harness's share of the wall time of the jobs that ran: sum(overhead_s) / sum(wall_s)."""
    timed = [(number(r.get("overhead_s")), number(r.get("wall_s"))) for r in rows if r["status"] != STATUS_SKIPPED]
    timed = [(o, w) for o, w in timed if not math.isnan(o) and not math.isnan(w)]
    wall = sum(w for _, w in timed)
    return f"{100 * sum(o for o, _ in timed) / wall:.1f}%" if wall > 0 else "-"


def format_table(lines: list[tuple[str, ...]], header: tuple[str, ...] = HEADER) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    rows = [header, tuple("-" * w for w in widths), *lines]
    return "\n".join("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))) for row in rows)


def lvos_lines(rows: list[dict[str, Any]], unseen_videos: Iterable[str]) -> list[tuple[str, ...]]:
    """Per model, LVOS v2's global table from its scored rows (fractions, as its toolkit writes them)."""
    lines = []
    for model, model_rows in _scored_by_model(rows, PROTOCOL_LVOS).items():
        objects = [(r["video_id"], number(r["J"]) / 100, number(r["F"]) / 100, number(r["V"]) / 100) for r in model_rows]
        lines.append(
            (model, _objects(rows, model, model_rows), *(fmt(value, 3) for value in global_table(objects, unseen_videos).values()))
        )
    return lines


def mosev2_lines(rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """Per model, MOSEv2's scores (scores.txt: percent, 2 decimals) from its scored rows."""
    lines = []
    for model, model_rows in _scored_by_model(rows, PROTOCOL_MOSEV2).items():

        def mean(column: str) -> float:
            return known_mean([number(r[column]) for r in model_rows])

        j, f_dot, f = mean("J"), mean("F_dot"), mean("F")
        values = ((j + f_dot) / 2, j, f_dot, mean("JF_dot_disappear"), mean("JF_dot_reappear"), f, (j + f) / 2)
        lines.append((model, _objects(rows, model, model_rows), *(fmt(value, 2) for value in values)))
    return lines


def _objects(rows: list[dict[str, Any]], model: str, scored: list[dict[str, Any]]) -> str:
    """Objects scored of the model's objects: the official tables count every object of the split."""
    return f"{len(scored)}/{sum(r['model'] == model for r in rows)}"


def known_mean(values: list[float]) -> float:
    """The mean of the known values (NaN where none is)."""
    known = [v for v in values if not math.isnan(v)]
    return float(np.mean(known)) if known else math.nan


def _scored_by_model(rows: Iterable[dict[str, Any]], protocol: str) -> dict[str, list[dict[str, Any]]]:
    by_model: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == STATUS_OK and row.get("protocol") == protocol:
            by_model.setdefault(row["model"], []).append(row)
    return by_model


def summary_text(rows: list[dict[str, Any]], unseen_videos: Iterable[str] = ()) -> str:
    """The table, each protocol's own global scores where rows have them, and a warning when some
    rows come from random weights."""
    with_power = any(r.get("avg_power_w") not in (None, "") for r in rows)
    text = format_table(summarise(rows, with_power), HEADER + POWER_HEADER if with_power else HEADER)
    lvos = lvos_lines(rows, unseen_videos)
    if lvos:
        text += "\n\nLVOS v2, as its toolkit's global_results (seen and unseen videos averaged; a group without videos is '-'):\n"
        text += format_table(lvos, ("model", "objects", *GLOBAL_COLUMNS))
    mosev2 = mosev2_lines(rows)
    if mosev2:
        text += "\n\nMOSEv2, as its scorer's scores.txt (J&F_new, its headline, uses its size-adaptive boundary measure):\n"
        text += format_table(mosev2, ("model", "objects", *MOSEV2_COLUMNS))
    if any(line[1].split("/")[0] != line[1].split("/")[1] for line in lvos + mosev2):
        text += "\nwarning: some objects have no score here; the official tables count every object of the split: not comparable."
    if any(r.get("weights") == "random" for r in rows):
        text += "\nwarning: rows with --weights random measure speed only; their J&F is meaningless."
    return text
