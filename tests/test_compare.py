"""`report` and `compare` through the command line, on small CSVs whose figures are chosen by hand."""

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import assert_usage_error, cli, require

from sav_benchmark.compare import Run, cell_value, missing_shards
from sav_benchmark.results import COLUMNS
from sav_benchmark.stats import wilcoxon_p


def row(video, obj, model, prompt, *, J="", F="", fps="", p50="", p90="", status="ok", **extra):
    jf = repr((float(J) + float(F)) / 2) if J != "" else ""
    return {
        "video_id": video,
        "object_id": obj,
        "model": model,
        "prompt": prompt,
        "status": status,
        "J": J,
        "F": F,
        "JF": jf,
        "fps": fps,
        "latency_ms_p50": p50,
        "latency_ms_p90": p90,
        "build_s": "1.0",
        "init_s": "0.5",
        "device": "cuda",
        "dtype": "bfloat16",
        "imgsz": "1024",
        "weights": "checkpoint",
        **extra,
    }


def write_run(path, rows, manifest=None):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow({c: r.get(c, "") for c in COLUMNS})
    if manifest is not None:
        path.with_name(path.name + ".json").write_text(json.dumps(manifest))
    return path


def test_report_summarises_each_model_and_prompt(tmp_path):
    rows = [
        row("v1", "1", "a", "points", J="80", F="90", fps="10", p50="90", p90="100", peak_alloc_mb="500", energy_mj_per_frame="300"),
        row("v1", "2", "a", "points", J="60", F="70", fps="20", p50="40", p90="60", peak_alloc_mb="700", energy_mj_per_frame="100"),
        row("v2", "1", "a", "points", status="no_score", fps="30", p50="30", p90="35", peak_alloc_mb="600", energy_mj_per_frame="200"),
        row("v2", "2", "a", "points", status="oom"),
        row("v2", "3", "a", "points", status="skipped"),
        row("v1", "1", "b", "mask", J="50", F="50", fps="4", p50="250", p90="260"),
    ]
    result = cli("report", str(write_run(tmp_path / "r.csv", rows)))
    assert (result.returncode, result.stderr) == (0, "")
    # a: objects 1 and 2 scored: J (80+60)/2 = 70, F (90+70)/2 = 80, J&F 75; FPS 10, 20, 30: median 20,
    # p10 = 10 + 0.2*10 = 12, p90 = 20 + 0.8*10 = 28; p50s 90, 40, 30 -> 40; p90s 100, 60, 35 -> 60.
    assert result.stdout == (
        f"## {tmp_path / 'r.csv'}\n\n"
        "| model | prompt | ok | failed | J&F | J | F | FPS median | FPS p10-p90 | latency p50 ms | latency p90 ms | build s | init s | "
        "peak MB | mJ/frame |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        "| a | points | 3 | 1 | 75.0 | 70.0 | 80.0 | 20.00 | 12.00-28.00 | 40.0 | 60.0 | 1.00 | 0.50 | 700 | 200.0 |\n"
        "| b | mask | 1 | 0 | 50.0 | 50.0 | 50.0 | 4.00 | 4.00-4.00 | 250.0 | 260.0 | 1.00 | 0.50 | - | - |\n"
    )


def six_objects(model, prompt, fps_values, jf=60.0):
    return [
        row("v", str(i), model, prompt, J=str(jf), F=str(jf), fps=repr(f), p50=repr(1000 / f), p90=repr(1000 / f))
        for i, f in enumerate(fps_values)
    ]


REFERENCE_FPS = [10.0, 12.0, 9.0, 11.0, 13.0, 8.0]
HEADER = (
    "| model | prompt | matched | only in reference | only here | FPS | latency p90 | peak memory | energy per frame | J&F difference "
    "(points) |\n"
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
)


def test_one_model_twice_as_fast_and_the_others_unchanged(tmp_path):
    """The issue's check: one model's FPS doubled (latencies halved) in a copy of the run."""
    reference = six_objects("sam2.1_tiny", "points", REFERENCE_FPS) + six_objects("edgetam", "points", REFERENCE_FPS)
    faster = six_objects("sam2.1_tiny", "points", [2 * f for f in REFERENCE_FPS]) + six_objects("edgetam", "points", REFERENCE_FPS)
    ref, other = write_run(tmp_path / "ref.csv", reference), write_run(tmp_path / "fast.csv", faster)
    result = cli("compare", str(ref), str(other))
    assert (result.returncode, result.stderr) == (0, "")
    each_file = cli("report", str(ref)).stdout + "\n" + cli("report", str(other)).stdout + "\n"  # then the pairs:
    assert result.stdout == (
        each_file
        + f"## {other} vs {ref}\n\n"
        + HEADER
        + "| sam2.1_tiny | points | 6 | 0 | 0 | 2.00x faster [2.00x, 2.00x] | 2.00x lower [2.00x, 2.00x] | - | - | +0.0 [+0.0, +0.0] |\n"
        "| edgetam | points | 6 | 0 | 0 | no significant change (1.00x [1.00x, 1.00x]) | no significant change (1.00x [1.00x, 1.00x]) | - "
        "| - | +0.0 [+0.0, +0.0] |\n"
    )


@pytest.mark.parametrize(
    "ratios, expected",
    [
        # every object faster by 1.46x to 1.54x: the signed-rank test's smallest p for 8 pairs, 2/256
        ([1.5, 1.52, 1.48, 1.51, 1.49, 1.53, 1.47, 1.54], "1.50x faster"),
        # faster on half the objects, slower by as much on the other half: W+ = 18 of 36, p = 1
        ([1.1, 1 / 1.1, 1.2, 1 / 1.2, 1.05, 1 / 1.05, 1.15, 1 / 1.15], "no significant change (1.00x"),
        # three objects, all twice as fast: with 3 pairs no result can reach p < 0.05
        ([2.0, 2.1, 1.9], "too few objects to tell (2.00x"),
        # five objects, each exactly twice as fast: tied, yet no better than 2/32 over the sign assignments
        # (the normal approximation said p = 0.025 and "2.00x faster")
        ([2.0] * 5, "too few objects to tell (2.00x [2.00x, 2.00x], n=5)"),
    ],
)
def test_significance(tmp_path, ratios, expected):
    fps = REFERENCE_FPS + [7.0, 14.0]
    reference = six_objects("m", "points", fps[: len(ratios)])
    other = six_objects("m", "points", [f * r for f, r in zip(fps, ratios)])
    result = cli("compare", str(write_run(tmp_path / "a.csv", reference)), str(write_run(tmp_path / "b.csv", other)))
    fps_cell = result.stdout.splitlines()[-1].split(" | ")[5]
    assert fps_cell.startswith(expected), fps_cell


def test_the_signed_rank_test_matches_counting_every_sign_assignment():
    from itertools import product

    differences = [0.5, -1.2, 2.0, 3.1, -0.7, 4.4, 5.0]
    magnitudes = sorted(abs(d) for d in differences)
    ranks = {m: i + 1 for i, m in enumerate(magnitudes)}
    observed = sum(ranks[abs(d)] for d in differences if d > 0)
    mean = len(differences) * (len(differences) + 1) / 4
    totals = [sum(r for r, positive in zip(range(1, 8), signs) if positive) for signs in product([0, 1], repeat=7)]
    by_counting = sum(abs(t - mean) >= abs(observed - mean) for t in totals) / len(totals)
    assert wilcoxon_p(differences) == pytest.approx(by_counting)


def test_unmatched_jobs_are_counted_and_settings_that_differ_are_warned_about(tmp_path):
    reference = six_objects("m", "points", REFERENCE_FPS)
    other = [dict(r, dtype="float16") for r in six_objects("m", "points", REFERENCE_FPS)[2:]] + [
        row("w", "9", "m", "points", J="1", F="1", fps="5", p50="1", p90="1", dtype="float16")
    ]
    ref = write_run(tmp_path / "ref.csv", reference, {"environment": {"torch": "2.5.0"}})
    new = write_run(tmp_path / "new.csv", other, {"environment": {"torch": "2.6.0"}})
    result = cli("compare", str(ref), str(new))
    lines = result.stdout.splitlines()
    lines = lines[lines.index(f"## {new} vs {ref}") :]
    assert lines[2:4] == [
        "warning: dtype differs: bfloat16 in the reference, float16 here",
        "warning: torch differs: 2.5.0 in the reference, 2.6.0 here",
    ]
    assert lines[-1].startswith(
        "| m | points | 4 | 2 | 1 | no significant change (1.00x"
    )  # 4 matched, 2 only in the reference, 1 only here


def test_a_csv_from_before_the_stream_and_postprocessing_columns_is_read_as_it_ran(tmp_path):
    """Before those columns the package's own path ran, with its post-processing: off and on."""
    old_columns = [c for c in COLUMNS if c not in ("stream", "postprocessing")]
    ref = tmp_path / "old.csv"
    with open(ref, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=old_columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({c: r.get(c, "") for c in old_columns} for r in six_objects("m", "points", REFERENCE_FPS))
    new = write_run(tmp_path / "new.csv", [dict(r, stream="on", postprocessing="off") for r in six_objects("m", "points", REFERENCE_FPS)])
    lines = cli("compare", ref, new).stdout.splitlines()
    lines = lines[lines.index(f"## {new} vs {ref}") :]
    assert lines[2:4] == [
        "warning: stream differs: off in the reference, on here",
        "warning: postprocessing differs: on in the reference, off here",
    ]


def test_bad_files_end_the_command_with_one_line(tmp_path):
    missing = cli("report", str(tmp_path / "nope.csv"))
    assert (missing.returncode, missing.stdout, missing.stderr) == (
        2,
        "",
        f"jetson_benchmark.py: error: {tmp_path / 'nope.csv'}: cannot read it (No such file or directory)\n",
    )
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    wrong = cli("compare", str(tmp_path / "other.csv"), str(tmp_path / "other.csv"))
    assert wrong.returncode == 2 and wrong.stderr.startswith(
        f"jetson_benchmark.py: error: {tmp_path / 'other.csv'}: not a result CSV of this benchmark (no column video_id, "
    )


def test_merge_joins_disjoint_shards_of_one_run(tmp_path):
    rows = six_objects("m", "points", REFERENCE_FPS)
    first, second = write_run(tmp_path / "s1.csv", rows[:4]), write_run(tmp_path / "s2.csv", rows[4:])
    out = tmp_path / "merged" / "all.csv"
    result = cli("compare", str(first), str(second), "--merge", str(out))
    assert (result.returncode, result.stdout, result.stderr) == (0, f"merged 6 rows from 2 files: {out}\n", "")
    merged = list(csv.DictReader(out.open()))
    assert [(r["video_id"], r["object_id"], r["fps"]) for r in merged] == [("v", str(i), repr(f)) for i, f in enumerate(REFERENCE_FPS)]
    assert json.loads((tmp_path / "merged" / "all.csv.json").read_text())["merged_from"] == [str(first), str(second)]
    again = cli("compare", str(first), str(second), "--merge", str(out))
    assert (again.returncode, again.stderr) == (
        2,
        f"jetson_benchmark.py: error: --merge {out} exists already; choose a new file, or add --force to overwrite it\n",
    )


def test_merge_refuses_overlapping_shards_and_other_settings(tmp_path):
    rows = six_objects("m", "points", REFERENCE_FPS)
    first, overlapping = write_run(tmp_path / "s1.csv", rows[:4]), write_run(tmp_path / "s2.csv", rows[3:])
    result = cli("compare", str(first), str(overlapping), "--merge", str(tmp_path / "o.csv"))
    assert (result.returncode, result.stderr) == (
        2,
        f"jetson_benchmark.py: error: --merge: v/3 m is in both {first} and {overlapping}: shards must not overlap\n",
    )
    other_size = write_run(tmp_path / "s3.csv", [dict(r, imgsz="512") for r in rows[4:]])
    result = cli("compare", str(first), str(other_size), "--merge", str(tmp_path / "o.csv"))
    assert (result.returncode, result.stderr) == (
        2,
        f"jetson_benchmark.py: error: --merge: the files differ in imgsz (1024 in {first}; 512 in {other_size}): "
        "only shards of one run with the same settings can be merged\n",
    )
    assert not (tmp_path / "o.csv").exists()


def test_csv_holds_the_comparison_at_full_precision(tmp_path):
    reference = write_run(tmp_path / "ref.csv", six_objects("m", "points", REFERENCE_FPS))
    faster = write_run(tmp_path / "fast.csv", six_objects("m", "points", [2 * f for f in REFERENCE_FPS], jf=61.5))
    result = cli("compare", str(reference), str(faster), "--csv", str(tmp_path / "c.csv"))
    assert result.returncode == 0, result.stderr
    found = {r["metric"]: r for r in csv.DictReader((tmp_path / "c.csv").open())}
    assert list(found) == ["fps", "latency_ms_p90", "JF"]  # no memory or energy figures in these files
    fps = found["fps"]
    assert (fps["file"], fps["model"], fps["prompt"], fps["matched"], fps["n"]) == (str(faster), "m", "points", "6", "6")
    assert (float(fps["value"]), float(fps["ci95_low"]), float(fps["ci95_high"])) == (2.0, 2.0, 2.0)
    # Six equal log ratios, all above 0: of the 64 sign assignments of their tied ranks only all
    # positive and all negative are as extreme, p = 2/64 (the normal approximation gave 0.0143).
    assert float(fps["p_value"]) == pytest.approx(2 / 64)
    assert fps["verdict"] == "2.00x faster [2.00x, 2.00x]"
    assert (float(found["JF"]["value"]), found["JF"]["verdict"]) == (1.5, "+1.5 [+1.5, +1.5]")


def test_plot_is_written_and_opens(tmp_path):
    require("matplotlib")
    from matplotlib.image import imread

    reference = write_run(
        tmp_path / "ref.csv", six_objects("m", "points", REFERENCE_FPS) + six_objects("n", "mask", REFERENCE_FPS, jf=40.0)
    )
    faster = write_run(tmp_path / "fast.csv", six_objects("m", "points", [2 * f for f in REFERENCE_FPS]))
    result = cli("compare", str(reference), str(faster), "--plot", str(tmp_path / "p.png"))
    assert result.returncode == 0, result.stderr
    height, width, _ = imread(tmp_path / "p.png").shape
    assert (width, height) == (1680, 720)  # 14 x 6 inches at 120 dpi


def test_plot_without_matplotlib_is_refused_with_the_fix(tmp_path):
    blocker = tmp_path / "no_matplotlib" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('a stand-in for a missing matplotlib')\n")
    path = write_run(tmp_path / "r.csv", six_objects("m", "points", REFERENCE_FPS))
    result = cli("compare", path, path, "--plot", tmp_path / "p.png", pythonpath=(blocker.parent,))
    assert_usage_error(result, "--plot needs matplotlib: pip install matplotlib (or the project's plot extra: pip install -e .[plot])")
    for command in (["compare", path, path], ["report", path]):  # the page's pictures need it too
        result = cli(*command, "--html", tmp_path / "p.html", pythonpath=(blocker.parent,))
        assert_usage_error(result, "--html needs matplotlib: pip install matplotlib (or the project's plot extra: pip install -e .[plot])")
    assert not (tmp_path / "p.html").exists()


# Settings and keys by value: pandas writes a column that has an empty cell back as floats and reads
# SA-V's object ids (000, 001, ...) as numbers.


def test_cells_are_compared_by_value():
    assert cell_value("256") == cell_value("256.0") == cell_value("2.56e2") == cell_value(256.0) == 256
    assert cell_value("000") == cell_value("0") == 0 and cell_value("1e3") == cell_value("1000")
    assert cell_value("") is None and cell_value("  ") is None and cell_value(None) is None  # unknown, not a value
    for text in ("bfloat16", "2.5.0", "inf", "nan", "1e999", "1_000", "0x10"):  # not plain finite numbers: their text
        assert cell_value(text) == text
    assert cell_value("12345678901234567891") != cell_value("12345678901234567890")  # equal as floats


def sav_rows(model, prompt, fps_values):
    """six_objects with SA-V's object ids, and two baseline rows (no dtype or imgsz: empty cells)."""
    baseline = {"weights": "none", "device": "cpu", "dtype": "", "imgsz": ""}
    return [dict(r, object_id=f"{i:03d}") for i, r in enumerate(six_objects(model, prompt, fps_values))] + [
        row("v", f"{i:03d}", "static_mask", "mask", J="50", F="50", fps="900", p50="1", p90="1", **baseline) for i in range(2)
    ]


def saved_again_by_pandas(path, again, manifest=None):
    pd.read_csv(path).to_csv(again, index=False)
    text = again.read_text()
    assert ",1024.0," in text and ",000," not in text and ",0," in text  # what pandas rewrote
    if manifest is not None:
        again.with_name(again.name + ".json").write_text(json.dumps(manifest))
    return again


def comparison(result, other, reference):
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    return lines[lines.index(f"## {other} vs {reference}") + 1 :]


def test_a_csv_pandas_saved_again_compares_as_the_original(tmp_path):
    manifest = {"environment": {"torch": "2.5.0"}}
    ref = write_run(tmp_path / "ref.csv", sav_rows("m", "points", REFERENCE_FPS), manifest)
    fast = write_run(tmp_path / "fast.csv", sav_rows("m", "points", [2 * f for f in REFERENCE_FPS]), manifest)
    again = saved_again_by_pandas(ref, tmp_path / "again.csv", manifest)
    original = comparison(cli("compare", ref, fast), fast, ref)
    assert original == [
        "",
        *HEADER.splitlines(),
        "| m | points | 6 | 0 | 0 | 2.00x faster [2.00x, 2.00x] | 2.00x lower [2.00x, 2.00x] | - | - | +0.0 [+0.0, +0.0] |",
        "| static_mask | mask | 2 | 0 | 0 | no significant change (1.00x [1.00x, 1.00x]) | no significant change (1.00x [1.00x, 1.00x]) "
        "| - | - | +0.0 [+0.0, +0.0] |",
    ]
    assert comparison(cli("compare", again, fast), fast, again) == original  # no warning, every object paired
    assert comparison(cli("compare", ref, again), again, ref)[:4] == [
        "",
        *HEADER.splitlines(),
        "| m | points | 6 | 0 | 0 | no significant change (1.00x [1.00x, 1.00x]) | no significant change (1.00x [1.00x, 1.00x]) | - | - "
        "| +0.0 [+0.0, +0.0] |",
    ]


def test_a_shard_pandas_saved_again_merges_with_its_sibling_and_overlaps_by_value(tmp_path):
    rows = sav_rows("m", "points", REFERENCE_FPS)
    first = write_run(tmp_path / "s1.csv", rows[:4], {"shard": "1/2"})
    second = saved_again_by_pandas(write_run(tmp_path / "s2.csv", rows[4:]), tmp_path / "s2_again.csv", {"shard": "2/2"})
    out = tmp_path / "all.csv"
    result = cli("compare", first, second, "--merge", out)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"merged 8 rows from 2 files: {out}\n", "")
    overlapping = saved_again_by_pandas(write_run(tmp_path / "s3.csv", rows[3:]), tmp_path / "s3_again.csv")
    assert_usage_error(
        cli("compare", first, overlapping, "--merge", tmp_path / "o.csv"),
        f"--merge: v/3 m is in both {first} and {overlapping}: shards must not overlap",
    )


def test_a_job_is_one_job_whatever_its_key_looks_like(tmp_path):
    path = write_run(tmp_path / "r.csv", [row("v", "000", "m", "points", fps="1"), row("v", "0", "m", "points", fps="2")])
    assert_usage_error(
        cli("report", path),
        f"{path}: v/0 m has two rows, on lines 2 and 3; a job has one row: delete one of them (or resume the run with --retry_failed, "
        "which runs such jobs again)",
    )
    # Hexadecimal video ids are names: 0001e003 and 00010e02 are two videos, not both 1000.0.
    hex_ids = write_run(tmp_path / "hex.csv", [row("0001e003", "1", "m", "points", fps="1"), row("00010e02", "1", "m", "points", fps="2")])
    assert cli("report", hex_ids).returncode == 0


def test_a_setting_one_file_leaves_empty_is_unknown_not_different(tmp_path):
    blank = [dict(r, imgsz="") for r in six_objects("m", "points", REFERENCE_FPS)]
    ref = write_run(tmp_path / "ref.csv", blank, {"environment": {"torch": "2.5.0"}})
    other = write_run(tmp_path / "other.csv", [dict(r, imgsz="1.024e3") for r in six_objects("m", "points", REFERENCE_FPS)])
    assert comparison(cli("compare", ref, other), other, ref)[:3] == [
        "",
        "note: imgsz is unknown in the reference (1.024e3 here), so it was not compared",
        "note: torch is unknown here (2.5.0 in the reference), so it was not compared",
    ]
    # A file of the baseline alone has no model settings to know: nothing to note about them.
    baseline = write_run(tmp_path / "baseline.csv", [r for r in sav_rows("m", "points", REFERENCE_FPS) if r["weights"] == "none"])
    assert comparison(cli("compare", baseline, other), other, baseline)[1].startswith("| ")


def test_missing_shards_are_found_by_value_and_an_odd_shard_is_none():
    def runs(*shards):
        return [Run(Path(f"{i}.csv"), [], None if shard is None else {"shard": shard}) for i, shard in enumerate(shards)]

    assert missing_shards(runs("1/3", "3/3")) == ["2/3"]
    assert missing_shards(runs("1/3", "3/03")) == missing_shards(runs("1/3", [3, 3])) == ["2/3"]
    for odd in ("all", "", None, "1/3/3"):
        assert missing_shards(runs("1/3", odd)) == []
