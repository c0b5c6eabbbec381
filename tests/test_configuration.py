"""The run configuration: declared once, stored in the manifest with its version, compared by
--resume field by field, and read from manifests that earlier versions wrote."""

import json
from dataclasses import fields, replace

import pytest
from conftest import ROOT, assert_usage_error, cli, cli_with_fakes, require, rows_of

from sav_benchmark.cli import build_parser
from sav_benchmark.configuration import CONFIG_VERSION, RunConfig
from sav_benchmark.errors import UsageError
from sav_benchmark.results import COLUMNS, PROTOCOL_SCORE_COLUMNS
from sav_benchmark.split.synthetic import make_split
from sav_benchmark.timing import FRAME_STAGE_COLUMNS

STAGES = ", ".join(FRAME_STAGE_COLUMNS)  # the stage columns, which every CSV begun before them gains on resume
PROTOCOL = ", ".join(("protocol", *PROTOCOL_SCORE_COLUMNS))  # and the protocol's
BY_SAV = "its rows were scored by the SA-V evaluator's rules"
# The demo's manifest as the version before the declaration wrote it (commit 6936d76; version 1, no "config_version").
DEMO_MANIFEST = ROOT / "tests" / "data" / "manifest_version_1.json"


def test_every_flag_of_run_is_stored():
    flags = vars(build_parser().parse_args(["run", "--split_dir", "x"]))
    assert set(flags) <= {f.name for f in fields(RunConfig)}, "a flag of run that the manifest would not store"


def test_a_version_1_manifest_is_read_under_the_same_names():
    manifest = json.loads(DEMO_MANIFEST.read_text())
    assert "config_version" not in manifest
    earlier = RunConfig.from_manifest(manifest, "demo.csv.json")
    stored = earlier.to_manifest()
    assert stored.pop("postprocessing") is True  # added by version 3; the runs before it post-processed
    assert stored.pop("objects") == "separate"  # added by version 4; the runs before it tracked each object on its own
    assert stored.pop("cleanup") == "full"  # added by version 5; the runs before it ran the whole protocol
    assert (stored.pop("stages"), stored.pop("traces")) == ("off", "off")  # added by version 6; none before
    assert stored.pop("imgsz_for") is None  # added by version 7; every model ran at --imgsz before
    assert list(stored) == list(manifest["config"])  # the stored names, in their order, unchanged
    assert stored == manifest["config"]
    assert (earlier.imgsz, earlier.device, earlier.uses_torch) == (256, "cpu", True)


def test_fields_are_compared_one_by_one():
    earlier = RunConfig.from_manifest(json.loads(DEMO_MANIFEST.read_text()), "demo.csv.json")
    assert replace(earlier).differences(earlier) == []
    assert replace(earlier, imgsz=512, stream=False).differences(earlier) == ["imgsz 256 -> 512", "stream True -> False"]
    assert replace(earlier, postprocessing=False).differences(earlier) == ["postprocessing True -> False"]
    assert replace(earlier, imgsz=None).differences(replace(earlier, imgsz=1024)) == []  # unset is the model's own 1024
    assert replace(earlier, quiet=True, output="elsewhere.csv").differences(earlier) == []
    without_torch = replace(earlier, uses_torch=False, imgsz=512, num_points=2)
    assert without_torch.differences(earlier) == ["num_points 1 -> 2"]


def test_a_field_missing_from_an_older_manifest_reads_as_unset_or_as_those_versions_ran():
    none = {"stages": "off", "traces": "off"}  # version 6 added them; the runs before had neither
    assert RunConfig.from_manifest({"config": {"imgsz": 512, "renamed_long_ago": 1}, "config_version": 6}, "m.json") == RunConfig(imgsz=512)
    assert RunConfig.from_manifest({"config": {"imgsz": 512}, "config_version": 5}, "m.json") == RunConfig(imgsz=512, **none)
    assert RunConfig.from_manifest({"config": {"imgsz": 512}, "config_version": 4}, "m.json") == RunConfig(
        imgsz=512, cleanup="full", **none
    )
    assert RunConfig.from_manifest({"config": {"imgsz": 512}, "config_version": 3}, "m.json") == RunConfig(
        imgsz=512, objects="separate", cleanup="full", **none
    )
    assert RunConfig.from_manifest({"config": {"imgsz": 512}, "config_version": 2}, "m.json") == RunConfig(
        imgsz=512, postprocessing=True, objects="separate", cleanup="full", **none
    )


@pytest.mark.parametrize("version", [CONFIG_VERSION + 1, "2", 0])
def test_a_configuration_of_an_unknown_version_is_refused(version):
    with pytest.raises(UsageError) as refused:
        RunConfig.from_manifest({"config": {}, "config_version": version}, "m.json")
    assert str(refused.value) == (
        f"--resume: m.json has a run configuration of version {version!r}, which this version of the benchmark cannot read (it reads 1 "
        f"to {CONFIG_VERSION}); resume with the version that wrote it, or start a new --output"
    )


def test_resume_reads_a_manifest_without_a_version_and_writes_this_version_beside_it(tmp_path):
    make_split(tmp_path / "s", videos=2, frames=9, width=64, height=48, objects=1)
    out = tmp_path / "o.csv"
    common = ("--split_dir", str(tmp_path / "s"), "--models", "static_mask", "--output", str(out))
    assert cli_with_fakes(*common, "--limit_videos", "1").returncode == 0
    manifest = json.loads(out.with_name("o.csv.json").read_text())
    assert manifest["config_version"] == CONFIG_VERSION
    del manifest["config_version"]  # as the version before wrote it
    out.with_name("o.csv.json").write_text(json.dumps(manifest))
    assert cli_with_fakes(*common, "--resume", "--num_points", "3").stderr.endswith(
        "(num_points 1 -> 3); its rows would not be comparable. Use the same settings, a new --output, or --force\n"
    )
    resumed = cli_with_fakes(*common, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    manifest = json.loads(out.with_name("o.csv.json").read_text())
    assert "config_version" not in manifest and manifest["resumed"][0]["config_version"] == CONFIG_VERSION
    assert manifest["resumed"][0]["config"]["limit_videos"] is None and manifest["config"]["limit_videos"] == 1


def test_post_processing_on_and_off_are_refused_as_one_run(tmp_path, synthetic_split):
    require("sam2.build_sam")
    out = tmp_path / "o.csv"
    common = ("--split_dir", synthetic_split(videos=1, frames=5, objects=1), "--models", "sam2.1_tiny_mask", "--weights", "random")
    common += ("--imgsz", "128", "--device", "cpu", "--output", out, "--limit_objects", "1")
    assert cli(*common).returncode == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert_usage_error(
        cli(*common, "--resume", "--postprocessing"),
        "--resume: settings differ from the earlier run's (postprocessing False -> True); its rows would not be comparable. Use the "
        "same settings, a new --output, or --force",
    )
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def earlier_run(data: str, tmp_path):
    """tests/data/<data> (a CSV and manifest that an earlier version wrote, static_mask and
    sam2.1_tiny_mask on the first of the two videos of this split) in tmp_path: the output, the
    arguments that resume it, and the files as they are before."""
    require("sam2.build_sam")
    make_split(tmp_path / "split", videos=2, frames=5, width=64, height=48, objects=1)
    for name in ("run.csv", "run.csv.json"):
        (tmp_path / name).write_bytes((ROOT / "tests" / "data" / data / name).read_bytes())
    out = tmp_path / "run.csv"
    common = ("--split_dir", tmp_path / "split", "--models", "static_mask,sam2.1_tiny_mask", "--weights", "random", "--imgsz", "128")
    common += ("--device", "cpu", "--output", out, "--resume")
    return out, common, {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}


def test_a_run_begun_before_the_postprocessing_column_is_resumed_with_it_on(tmp_path):
    """tests/data/before_postprocessing: the CSV and manifest of a run made by commit 912d2e0 (no
    postprocessing column, no config_version), static_mask and sam2.1_tiny_mask on the first of
    the two videos of this split. Those runs post-processed: resuming without --postprocessing is
    refused; with it, the header gains the column, the earlier rows say on, the new rows too."""
    out, common, before = earlier_run("before_postprocessing", tmp_path)
    assert_usage_error(
        cli(*common),
        "--resume: settings differ from the earlier run's (postprocessing True -> False); its rows would not be comparable. Use the "
        "same settings, a new --output, or --force",
    )
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    resumed = cli(*common, "--postprocessing")
    assert resumed.returncode == 0, resumed.stderr
    assert (
        f"added the columns this version has since {out} was begun (postprocessing, tracking, objects_in_job, {STAGES}, {PROTOCOL}; "
        f"its rows ran with post-processing on; its rows tracked each object separately; its rows have no stage times; {BY_SAV})"
        in resumed.stderr
    )
    assert out.read_text().splitlines()[0] == ",".join(COLUMNS)
    rows = rows_of(out)
    assert [(r["video_id"], r["model"], r["postprocessing"]) for r in rows] == [
        *[("synth_000", "static_mask", ""), ("synth_000", "sam2.1_tiny_mask", "on")] * 2,  # two objects
        ("synth_001", "static_mask", ""),
        ("synth_001", "sam2.1_tiny_mask", "on"),
    ]
    assert {(r["tracking"], r["objects_in_job"]) for r in rows} == {("separate", "1")}


def test_a_run_begun_before_the_tracking_columns_is_resumed_with_each_object_separate(tmp_path):
    """tests/data/before_tracking: the CSV and manifest of a run made by commit 093649c (config
    version 3, no tracking or objects_in_job columns), static_mask and sam2.1_tiny_mask on the
    first video of this split. Those runs tracked each object separately: resuming with --objects
    together is refused; without it, the header gains the columns and every row says separate, 1."""
    out, common, before = earlier_run("before_tracking", tmp_path)
    assert_usage_error(
        cli(*common, "--objects", "together"),
        "--resume: settings differ from the earlier run's (objects 'separate' -> 'together'); its rows would not be comparable. Use "
        "the same settings, a new --output, or --force",
    )
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    resumed = cli(*common)
    assert resumed.returncode == 0, resumed.stderr
    assert (
        f"added the columns this version has since {out} was begun (tracking, objects_in_job, {STAGES}, {PROTOCOL}; its rows tracked "
        f"each object separately; its rows have no stage times; {BY_SAV})" in resumed.stderr
    )
    assert out.read_text().splitlines()[0] == ",".join(COLUMNS)
    rows = rows_of(out)
    assert [(r["video_id"], r["model"], r["tracking"], r["objects_in_job"]) for r in rows] == [
        *[("synth_000", "static_mask", "separate", "1"), ("synth_000", "sam2.1_tiny_mask", "separate", "1")] * 2,
        ("synth_001", "static_mask", "separate", "1"),
        ("synth_001", "sam2.1_tiny_mask", "separate", "1"),
    ]
    assert [r["postprocessing"] for r in rows] == ["", "off"] * 3


def test_a_run_begun_before_the_protocol_columns_is_resumed_as_scored_by_the_sav_rules(tmp_path):
    """tests/data/before_protocol: the CSV and manifest of a run made by commit 2a0df25 (no protocol,
    V or MOSEv2 columns), static_mask and sam2.1_tiny_mask on the first video of this split. Its
    rows were scored by the SA-V evaluator's rules: the header gains the columns, its rows say sav."""
    out, common, _ = earlier_run("before_protocol", tmp_path)
    resumed = cli(*common, "--warmup_frames", "0", "--isolation", "none")
    assert resumed.returncode == 0, resumed.stderr
    assert f"added the columns this version has since {out} was begun ({PROTOCOL}; {BY_SAV})" in resumed.stderr
    assert out.read_text().splitlines()[0] == ",".join(COLUMNS)
    rows = rows_of(out)
    assert [(r["video_id"], r["model"], r["status"], r["protocol"], r["V"]) for r in rows] == [
        *[("synth_000", "static_mask", "no_score", "sav", ""), ("synth_000", "sam2.1_tiny_mask", "no_score", "sav", "")] * 2,
        ("synth_001", "static_mask", "no_score", "sav", ""),
        ("synth_001", "sam2.1_tiny_mask", "no_score", "sav", ""),
    ]
