"""The per-model summary table printed at the end of a run."""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from .metrics import global_scores
from .results import STATUS_NO_SCORE, STATUS_OK, STATUS_SKIPPED

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


def summary_text(rows: list[dict[str, Any]]) -> str:
    """The table, with a warning when some rows come from random weights."""
    with_power = any(r.get("avg_power_w") not in (None, "") for r in rows)
    text = format_table(summarise(rows, with_power), HEADER + POWER_HEADER if with_power else HEADER)
    if any(r.get("weights") == "random" for r in rows):
        text += "\nwarning: rows with --weights random measure speed only; their J&F is meaningless."
    return text
