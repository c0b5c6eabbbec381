"""`compare --plot`: J&F against FPS per (model, prompt) and file, and per-object latencies.

matplotlib is optional (the `plot` extra); it is imported only here, without a display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .compare import Run, group_rows, known, ran_rows
from .errors import UsageError, os_reason
from .metrics import global_scores
from .results import STATUS_OK
from .stats import bootstrap_mean_interval
from .summary import number

MARKERS = "osD^v<>pPX*h"


def import_pyplot(flag: str = "--plot"):
    """matplotlib's pyplot without a display; without matplotlib, a usage error that names the flag that needs it."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError(f"{flag} needs matplotlib: pip install matplotlib (or the project's plot extra: pip install -e .[plot])") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_plot_path(path: Path) -> None:
    """Refuse, before any work, a file name whose format matplotlib cannot write."""
    plt = import_pyplot()
    figure = plt.figure()
    try:
        formats = sorted(figure.canvas.get_supported_filetypes())
    finally:
        plt.close(figure)
    if path.suffix.lower().lstrip(".") not in formats:
        said = f"cannot write {path.suffix} files" if path.suffix else "needs the format as the file's extension"
        raise UsageError(f"--plot {path}: matplotlib {said}; give a name ending in one of {', '.join('.' + f for f in formats)}")


def write_plot(path: Path, runs: list[Run]) -> None:
    """Left: global J&F (bootstrap 95% interval of the object mean) against median FPS (p10-p90),
    one marker per (model, prompt), one colour per file. Right: per-object latency p50 per
    (model, prompt) and file."""
    plt = import_pyplot()
    figure, (scatter, latency) = plt.subplots(1, 2, figsize=(14, 6), gridspec_kw={"width_ratios": [1, 1.3]})
    groups = list(dict.fromkeys(g for run in runs for g in group_rows(run.rows)))
    colours = plt.get_cmap("tab10")
    boxes, labels, box_colours = [], [], []
    by_file = [group_rows(run.rows) for run in runs]
    for position, group in enumerate(groups):  # each model's files side by side
        for index, run in enumerate(runs):
            ran = ran_rows(by_file[index].get(group, []))
            fps = known([number(r["fps"]) for r in ran])
            scores = [(number(r["J"]), number(r["F"])) for r in ran if r["status"] == STATUS_OK]
            if fps and scores:
                jf = global_scores(scores)[0]
                low, high = bootstrap_mean_interval([(j + f) / 2 for j, f in scores])
                median, p10, p90 = np.median(fps), *np.percentile(fps, [10, 90])
                scatter.errorbar(
                    median,
                    jf,
                    xerr=[[median - p10], [p90 - median]],
                    yerr=[[jf - low], [high - jf]],
                    fmt=MARKERS[position % len(MARKERS)],
                    color=colours(index),
                    capsize=3,
                    label=f"{group[0]} ({run.path.name})",
                )
            latencies = known([number(r["latency_ms_p50"]) for r in ran])
            if latencies:
                boxes.append(latencies)
                labels.append(f"{group[0]}\n{run.path.name}")
                box_colours.append(colours(index))
    scatter.set_xscale("log")
    scatter.set_xlabel("FPS, median over objects (bars: p10-p90)")
    scatter.set_ylabel("J&F (bars: bootstrap 95% interval)")
    scatter.set_title("Accuracy against speed")
    scatter.grid(True, which="both", alpha=0.3)
    if scatter.has_data():
        scatter.legend(fontsize=7, loc="best")
    if boxes:
        parts = latency.boxplot(boxes, patch_artist=True)
        for box, colour in zip(parts["boxes"], box_colours):
            box.set_facecolor(colour)
            box.set_alpha(0.5)
        latency.set_xticks(range(1, len(labels) + 1), labels, rotation=45, ha="right", fontsize=7)
        latency.set_yscale("log" if max(map(max, boxes)) / max(min(map(min, boxes)), 1e-9) > 100 else "linear")
    latency.set_ylabel("per-object latency p50, ms")
    latency.set_title("Per-frame latency over objects")
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=120)
    except OSError as exc:
        raise UsageError(f"--plot {path}: cannot write it ({os_reason(exc)}); choose a writable path") from None
    finally:
        plt.close(figure)
