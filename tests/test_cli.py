"""The command line as a user meets it: run in a subprocess, exact output asserted."""

import csv
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, USAGE_ERROR, assert_usage_error, cli

from sav_benchmark.masks import write_mask
from sav_benchmark.split.synthetic import make_split


@pytest.fixture(scope="module")
def split(synthetic_split):
    return synthetic_split(videos=2, frames=9)


# Every import of torch or a model package is refused and recorded, whether the package is
# installed or not (a check of sys.modules alone passes wherever torch is absent). Looking a package
# up (find_spec, as `models` does) is no import and is answered as without the guard.
TORCH_GUARD = """
import importlib.machinery, sys
GUARDED, IMPORTED = ("torch", "torchvision", "sam2", "transformers", "timm"), []

class Refused:
    def create_module(self, spec):
        IMPORTED.append(spec.name)
        raise ImportError(f"{spec.name} imported where no model runs")

    def exec_module(self, module):
        pass

class Guard:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] not in GUARDED:
            return None
        if sys._getframe(2).f_code.co_name == "find_spec":  # called by importlib.util.find_spec: a look-up
            return importlib.machinery.PathFinder.find_spec(name, path)
        return importlib.machinery.ModuleSpec(name, Refused())

sys.meta_path.insert(0, Guard)
"""


def test_help_models_static_baseline_report_compare_and_status_never_import_torch(split, tmp_path):
    out = str(tmp_path / "o.csv")
    code = TORCH_GUARD + (
        "from sav_benchmark.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert main(['models']) == 0\n"
        f"assert main(['--split_dir', {str(split)!r}, '--models', 'static_mask', '--output', {out!r}]) == 0\n"
        f"assert main(['report', {out!r}]) == 0 and main(['compare', {out!r}, {out!r}]) == 0 and main(['status', {out!r}]) == 0\n"
        "assert not IMPORTED, f'imported: {IMPORTED}'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr


def test_the_torch_guard_catches_an_import_even_where_torch_is_absent():
    """The guard itself: an import of torch (installed or not) is caught and recorded."""
    code = TORCH_GUARD + "try:\n    import torch\nexcept ImportError:\n    pass\nassert IMPORTED == ['torch'], IMPORTED\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr


def test_models_lists_every_family_and_prompt():
    result = cli("models")
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names[0] == "static_mask"
    assert {"sam2.1_tiny_points", "sam2.1_base_plus_mask", "sam2_large_bbox", "edgetam_points"} <= set(names)
    assert {"hf_sam2.1_tiny_points", "hf_sam2_large_mask", "hf_edgetam_bbox", "hf_sam3_tracker_points"} <= set(names)
    # baseline; each SAM 2 family and size, EdgeTAM, and their transformers twins with the SAM 3 tracker; 3 prompts each
    assert len(names) == 1 + (2 * 4 + 1) * 3 + (2 * 4 + 1 + 1) * 3
    assert result.stdout.splitlines()[0] == "static_mask                ready       -                     baseline, no model"


def test_missing_split_dir(tmp_path):
    assert_usage_error(
        cli("--split_dir", str(tmp_path / "nope"), "--models", "static_mask"),
        f"--split_dir {tmp_path / 'nope'} does not exist; give the folder of an SA-V split "
        "(make a demo split with: python -m sav_benchmark.synthetic --out DIR)",
    )


def test_empty_split(tmp_path):
    (tmp_path / "JPEGImages_24fps").mkdir()
    (tmp_path / "Annotations_6fps").mkdir()
    assert_usage_error(
        cli("--split_dir", str(tmp_path), "--models", "static_mask"),
        f"--split_dir {tmp_path} holds no videos: {tmp_path / 'Annotations_6fps'} is empty "
        "(make a demo split with: python -m sav_benchmark.synthetic --out DIR)",
    )


def test_unknown_model_gets_did_you_mean(split):
    result = cli("--split_dir", str(split), "--models", "static_mask,sam2.1_tiny_point")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(
        USAGE_ERROR
        + "--models: unknown model sam2.1_tiny_point; did you mean sam2.1_tiny_points? known models: static_mask, "
        + "sam2.1_tiny_points,"
    )
    assert result.stderr.count("\n") == 1


def test_missing_checkpoint_names_path_and_script(split, tmp_path):
    assert_usage_error(
        cli("--split_dir", str(split), "--models", "sam2.1_small_bbox", "--checkpoint_dir", str(tmp_path)),
        f"sam2.1_small_bbox cannot run here: checkpoint {tmp_path / 'sam2.1_hiera_small.pt'} not found; fetch it with "
        "scripts/download_checkpoints.sh, point --checkpoint_dir at its folder, or use --weights random for a speed-only run",
    )


def test_mask_frame_size_mismatch_names_video_object_frame(tmp_path):
    make_split(tmp_path, videos=1, frames=9, width=64, height=48)
    bad = tmp_path / "Annotations_6fps/synth_000/001/00004.png"
    write_mask(bad, np.zeros((24, 32), bool))
    assert_usage_error(
        cli("--split_dir", str(tmp_path), "--models", "static_mask"),
        f"video synth_000, object 001, frame 00004: mask {bad} is 32x24 but the video's frames are 64x48; "
        "ground truth must be at frame resolution",
    )


def test_bad_imgsz_is_refused_before_any_work(split, tmp_path):
    assert_usage_error(
        cli(
            "--split_dir",
            str(split),
            "--models",
            "sam2.1_tiny_points",
            "--weights",
            "random",
            "--imgsz",
            "100",
            "--output",
            str(tmp_path / "o.csv"),
        ),
        "--imgsz 100: SAM 2 needs a multiple of 32 of at least 64 (e.g. 256, 512, 1024)",
    )
    assert not (tmp_path / "o.csv").exists()


def test_unknown_flag_and_bad_numbers_are_one_line():
    assert_usage_error(cli("--bogus"), "unrecognized arguments: --bogus (see jetson_benchmark.py run --help)")
    assert_usage_error(
        cli("--limit_videos", "abc"), "argument --limit_videos: must be a positive integer, not abc (see jetson_benchmark.py run --help)"
    )
    assert_usage_error(
        cli("prepare", "--num_points", "0"),
        "argument --num_points: must be a positive integer, not 0 (see jetson_benchmark.py prepare --help)",
    )


def test_no_split_is_reported_before_anything_else():
    assert_usage_error(
        cli(), "--split_dir is required: the folder of an SA-V split (make a demo split with: python -m sav_benchmark.synthetic --out DIR)"
    )


@pytest.mark.parametrize("existing", ["o.csv", "o.csv.json", "o.csv.log", "o.csv.prepared.json"])
def test_no_file_of_an_earlier_run_is_overwritten(split, tmp_path, existing):
    out, earlier = tmp_path / "o.csv", tmp_path / existing
    earlier.write_text("earlier results\n")
    assert_usage_error(
        cli("--split_dir", str(split), "--models", "static_mask", "--output", str(out)),
        f"--output {out}: {earlier} already exists; add --resume to continue that run, or choose a new --output so that no earlier result "
        "is mixed in",
    )
    assert earlier.read_text() == "earlier results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [existing]


def test_side_files_never_replace_the_csv(split, tmp_path):
    out = tmp_path / "o.json"  # a CSV named like a manifest still keeps its rows
    assert cli("--split_dir", str(split), "--models", "static_mask", "--output", str(out)).returncode == 0
    assert len(list(csv.DictReader(out.open()))) == 5
    names = ["o.json", "o.json.json", "o.json.log", "o.json.prepared.json", "o.json.traces.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # the lock is gone


def test_unwritable_outputs_are_usage_errors(split, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert_usage_error(
        cli("--split_dir", str(split), "--models", "static_mask", "--output", str(blocker / "o.csv")),
        f"--output {blocker / 'o.csv'}: cannot create it (File exists: {blocker}); choose a writable path",
    )
    assert_usage_error(
        cli("--split_dir", str(split), "--models", "static_mask", "--output", str(tmp_path / "o.csv"), "--save_masks", str(blocker / "m")),
        f"--save_masks {blocker / 'm'}: cannot write there ({blocker} is not a writable folder); choose a writable folder",
    )


def test_object_without_ground_truth_on_evaluated_frames_gets_no_score(tmp_path):
    make_split(tmp_path / "s", videos=1, frames=9, width=64, height=48, objects=1)  # annotated 0, 4, 8
    for frame in ("00004", "00008"):
        write_mask(tmp_path / f"s/Annotations_6fps/synth_000/000/{frame}.png", np.zeros((48, 64), bool))
    result = cli("--split_dir", str(tmp_path / "s"), "--models", "static_mask", "--output", str(tmp_path / "o.csv"))
    assert result.returncode == 0, result.stderr
    row = next(csv.DictReader((tmp_path / "o.csv").open()))
    assert (row["status"], row["error"], row["J"], row["JF"]) == ("no_score", "ground truth empty on every evaluated frame", "", "")
    assert result.stdout.splitlines()[2].split()[:3] == ["static_mask", "2/2", "1"]


def test_stray_files_in_a_frame_folder_are_ignored(tmp_path):
    make_split(tmp_path / "s", videos=1, frames=9, width=64, height=48, objects=1)
    (tmp_path / "s/JPEGImages_24fps/synth_000/notes.txt").write_text("")
    (tmp_path / "s/JPEGImages_24fps/synth_000/.DS_Store").write_text("")
    assert cli("--split_dir", str(tmp_path / "s"), "--models", "static_mask", "--output", str(tmp_path / "o.csv")).returncode == 0


def test_prepare_then_run_from_the_prepared_manifest(split, tmp_path):
    prepared = tmp_path / "p.json"
    result = cli("prepare", "--split_dir", str(split), "--limit_objects", "1", "--output", str(prepared))
    assert (result.returncode, result.stdout) == (0, f"prepared 2 videos, 2 objects: {prepared}\n")
    result = cli("--prepared", str(prepared), "--models", "static_mask", "--output", str(tmp_path / "o.csv"))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "o.csv").open()))
    assert [(r["video_id"], r["object_id"], r["status"]) for r in rows] == [("synth_000", "000", "ok"), ("synth_001", "000", "ok")]


def test_bad_prepared_manifest(tmp_path):
    bad = tmp_path / "p.json"
    bad.write_text("{}")
    assert_usage_error(
        cli("--prepared", str(bad), "--models", "static_mask"),
        f"--prepared {bad} is not a prepared manifest (sav-benchmark-prepared/1); make one with: jetson_benchmark.py prepare",
    )
    bad.write_text('{"format": "sav-benchmark-prepared/1"}')
    assert_usage_error(
        cli("--prepared", str(bad), "--models", "static_mask"),
        f"--prepared {bad} is damaged (KeyError: 'videos'); make a new one with: jetson_benchmark.py prepare",
    )


def test_prepared_with_selection_flags_is_refused(split, tmp_path):
    prepared = tmp_path / "p.json"
    assert cli("prepare", "--split_dir", str(split), "--output", str(prepared)).returncode == 0
    assert_usage_error(
        cli("--prepared", str(prepared), "--split_dir", str(split), "--limit_videos", "1", "--models", "static_mask"),
        "--prepared fixes the split and its selection; drop --split_dir, --limit_videos, or run without --prepared",
    )


@pytest.mark.skipif(__import__("importlib").util.find_spec("torch") is None, reason="torch not installed")
def test_cuda_without_a_gpu_is_refused(split):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    assert_usage_error(
        cli("--split_dir", str(split), "--models", "sam2.1_tiny_points", "--weights", "random", "--device", "cuda"),
        "--device cuda: no CUDA device is visible to torch here; use --device cpu or --device auto",
    )
