"""--stream: frames decoded on demand and spent tracker outputs dropped, with the real sam2
predictor (random weights, small --imgsz, CPU float32), compared bit for bit with the package's
own path; the memory window checked against what the model actually reads."""

import csv
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import cli, require
from hypothesis import given
from hypothesis import strategies as st
from streaming_probe import built, compare_modes, job_of, track

from sav_benchmark.masks import PackedMasks, read_mask
from sav_benchmark.runners import MODELS
from sav_benchmark.runners.base import RunSettings
from sav_benchmark.split.synthetic import make_split

require("sam2.build_sam")
import torch  # noqa: E402
from sam2.utils.misc import load_video_frames  # noqa: E402

from sav_benchmark.measure import execute_job  # noqa: E402
from sav_benchmark.runners import streaming  # noqa: E402
from sav_benchmark.runners.sam2_family import Sam2Runner  # noqa: E402

pytestmark = pytest.mark.slow
SPEC = MODELS["sam2.1_tiny_mask"]
SETTINGS = RunSettings("cpu", "float32", 128, "random", Path("."))
FRAMES = 30  # twice the default memory's reach (15 frames of object pointers)
LEGACY = "++model._target_=sam2.sam2_video_predictor_legacy.SAM2VideoPredictor"  # the layout of EdgeTAM's older predictor


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream") / "split"
    make_split(root, videos=1, frames=FRAMES, width=160, height=120, objects=1)
    frames = root / "JPEGImages_24fps" / "synth_000"
    return frames, read_mask(root / "Annotations_6fps" / "synth_000" / "000" / "00000.png")


def streamed(frames_dir: Path, image_size: int, decoder=lambda decode: decode) -> streaming.StreamedFrames:
    """The frames as the runner streams them, with the package's decoder (or `decoder` of it)."""
    mean, std = streaming.normalisation(load_video_frames)
    decode = getattr(sys.modules[load_video_frames.__module__], streaming.DECODER)
    return streaming.StreamedFrames(streaming.frame_paths(str(frames_dir)), image_size, decoder(decode), mean, std)


@pytest.mark.parametrize("image_size", [128, 200])
def test_streamed_frames_are_the_package_loaders_tensors_bit_for_bit(video, image_size):
    frames_dir, _ = video
    loaded, height, width = load_video_frames(str(frames_dir), image_size, offload_video_to_cpu=False, compute_device=torch.device("cpu"))
    frames = streamed(frames_dir, image_size)
    try:
        assert len(frames) == len(loaded) == FRAMES
        for index in [0, 17, 3, *range(FRAMES)]:  # out of order, then in order
            frame = frames[index]
            assert frame.dtype == loaded.dtype and frame.equal(loaded[index]), index
            assert frame.stride() == loaded[index].stride(), index  # the same layout: kernels may differ on another
        assert streaming.original_size(frames.paths[-1]) == (height, width) == (120, 160)
        with pytest.raises(IndexError):
            frames[FRAMES]
    finally:
        frames.close()


def test_frames_are_read_ahead_once_each_and_few_are_kept(video):
    frames_dir, _ = video
    decoded = []
    frames = streamed(frames_dir, 64, lambda decode: lambda path, size: decoded.append(Path(path).name) or decode(path, size))
    try:
        most_held = 0
        for index in range(FRAMES):
            frames[index]
            most_held = max(most_held, frames.held)
        frames.close()
        assert sorted(decoded) == [f"{i:05d}.jpg" for i in range(FRAMES)]  # each once, none twice
        assert most_held == streaming.KEPT_BEHIND + 1 + streaming.READ_AHEAD
    finally:
        frames.close()


def test_a_frame_that_cannot_be_decoded_is_named(tmp_path, video):
    frames_dir, _ = video
    for index in range(3):
        (tmp_path / f"{index:05d}.jpg").write_bytes((frames_dir / f"{index:05d}.jpg").read_bytes())
    (tmp_path / "00002.jpg").write_bytes(b"not a jpeg")
    frames = streamed(tmp_path, 64)
    try:
        frames[0]
        with pytest.raises(RuntimeError, match=r"^frame .*00002\.jpg: cannot identify image file"):
            frames[2]
    finally:
        frames.close()


def test_a_decoder_out_of_memory_stays_out_of_memory(video):
    """The row of a frame that could not be decoded for lack of memory says oom, not error."""
    from sav_benchmark.measure import is_out_of_memory

    frames_dir, _ = video

    def no_memory(path, size):
        raise MemoryError()

    frames = streamed(frames_dir, 64, lambda decode: no_memory)
    try:
        with pytest.raises(MemoryError) as raised:
            frames[0]
        assert is_out_of_memory(raised.value)
    finally:
        frames.close()


def test_watched_outputs_remember_a_read_of_what_was_dropped():
    outputs = streaming.WatchedOutputs({t: f"out{t}" for t in range(6)})
    assert outputs.get(0) == "out0" and len(outputs) == 6 and not outputs.misread  # nothing dropped yet
    outputs.drop_before(3, done=5)
    assert dict(dict.items(outputs)) == {3: "out3", 4: "out4", 5: "out5"} and set(outputs.dropped) == {0, 1, 2}
    assert outputs.get(3) == "out3" and outputs.get(9) is None and 4 in outputs and not outputs.misread
    assert outputs.get(1) is None
    assert outputs.misread == "the memory of frame 1, which the model read at frame 6"
    for look_at_all in (len, list, lambda o: o.keys(), lambda o: o.values(), lambda o: o.items(), lambda o: o.copy()):
        outputs.misread = ""
        look_at_all(outputs)
        assert outputs.misread == "the memory of frames 0-2, and the model went through every frame's at frame 6"


@given(st.lists(st.integers(0, 40), max_size=60))
def test_frame_runs_hold_the_same_frames_as_a_set(frames):
    runs, expected = streaming.FrameRuns(), set()
    for frame in frames:
        runs.add(frame)
        expected.add(frame)
        assert list(runs) == sorted(expected)  # in order, each once: runs neither overlap nor repeat
    assert all((frame in runs) == (frame in expected) for frame in range(-1, 42))
    assert bool(runs) == bool(expected) and "3" not in runs and 2.0 not in runs
    assert all((np.int64(frame) in runs) == (frame in expected) for frame in range(41))  # numpy's integers too, as a set
    if expected:
        assert (runs.first(), runs.last()) == (min(expected), max(expected))


def test_dropping_in_order_keeps_one_run():
    runs = streaming.FrameRuns()
    for frame in range(10_000):
        runs.add(frame)
    assert len(runs._starts) == 1 and 9_999 in runs and 10_000 not in runs


def test_tracked_frames_share_one_record_per_direction():
    tracked = streaming.TrackedFrames({0: {"reverse": False}})
    tracked[1] = {"reverse": False}
    tracked[2] = {"reverse": True}
    tracked[3] = {"reverse": False, "other": 1}  # not the record it knows: kept as it came
    assert tracked[1] is streaming.SHARED_RECORDS[False] and tracked[2] is streaming.SHARED_RECORDS[True]
    assert tracked[1]["reverse"] is False and tracked[2]["reverse"] is True and tracked[3] == {"reverse": False, "other": 1}
    with pytest.raises(TypeError):
        tracked[1]["reverse"] = True  # shared, so read-only


@pytest.mark.parametrize("overrides,key", [([], streaming.TRACKED_PER_OBJECT), ([LEGACY], streaming.TRACKED_ALL)], ids=["sam2", "legacy"])
def test_a_streamed_job_keeps_shared_records_of_its_tracked_frames(video, overrides, key):
    frames_dir, mask = video
    runner = built(Sam2Runner, SPEC, replace(SETTINGS, stream=True), overrides)
    try:
        track(runner, job_of(frames_dir, mask))
        records = runner.state[key][0] if key == streaming.TRACKED_PER_OBJECT else runner.state[key]
        assert isinstance(records, streaming.TrackedFrames) and sorted(records) == list(range(FRAMES))
        assert all(records[frame] is streaming.SHARED_RECORDS[False] for frame in range(1, FRAMES))
    finally:
        runner.cleanup()


class RecordingOutputs(dict):
    """Records every frame whose non-conditioning output the model looks up (an independent view of
    what the memory selection reads, to hold the window against)."""

    def __init__(self, outputs, reads):
        super().__init__(outputs)
        self.reads = reads

    def get(self, frame, default=None):
        self.reads.append(frame)
        return super().get(frame, default)


MEMORY_SETTINGS = [
    [],  # the config's own: num_maskmem 7, stride 1, 16 object pointers
    ["++model.memory_temporal_stride_for_eval=3"],
    ["++model.num_maskmem=3", "++model.max_obj_ptrs_in_encoder=4"],
    ["++model.max_obj_ptrs_in_encoder=2", "++model.memory_temporal_stride_for_eval=2"],
    ["++model.num_maskmem=9", "++model.max_obj_ptrs_in_encoder=2", "++model.memory_temporal_stride_for_eval=2"],
    ["++model.num_maskmem=2", "++model.max_obj_ptrs_in_encoder=1"],  # the previous frame alone
]


@pytest.mark.parametrize("overrides", MEMORY_SETTINGS)
def test_the_window_holds_every_output_the_model_reads_and_no_more(video, overrides):
    """On the plain path, what each tracked frame actually looks up: the oldest existing frame read
    is exactly oldest_output_read's answer (never older: the window holds it; once the video is
    long enough, equal: the window keeps nothing the model never reads)."""
    frames_dir, mask = video
    runner = Sam2Runner(SPEC, replace(SETTINGS, stream=False))
    base = runner.size_overrides
    runner.size_overrides = lambda imgsz: [*base(imgsz), *overrides]
    runner.build()
    job = job_of(frames_dir, mask)
    reads_per_frame = {}
    try:
        with runner.inference_context():
            runner.init_video(job)
            runner.add_prompt(job)
            per_object = runner.state["output_dict_per_obj"][0]
            reads = []
            per_object["non_cond_frame_outputs"] = RecordingOutputs(per_object["non_cond_frame_outputs"], reads)
            for frame, _ in runner.propagate(job):
                reads_per_frame[frame] = [t for t in reads if t in per_object["non_cond_frame_outputs"]]
                reads.clear()
        model = runner.predictor
        for frame, read in reads_per_frame.items():
            if read:
                assert min(read) >= streaming.oldest_output_read(model, frame, FRAMES), (frame, read)
        last = FRAMES - 1
        assert min(reads_per_frame[last]) == streaming.oldest_output_read(model, last, FRAMES)
    finally:
        runner.cleanup()


# The most non-conditioning outputs kept between frames, worked out by hand. Tracking frame g
# reads back to g - 15 with 16 object pointers. With stride 3 and 7 memories, to
# ((g - 2) // 3) * 3 - 12, which is g - 16 when g % 3 == 1. With stride 2, 7 memories and 2
# pointers, to ((g - 2) // 2) * 2 - 8, which is g - 11 for odd g. After frame f, frames
# oldest(f + 1) .. f stay. (Settings under which these random weights give the same outputs on
# every frame would compare nothing: those below do not.)
STREAMED = [([], 15), (MEMORY_SETTINGS[1], 16), (MEMORY_SETTINGS[3], 11), ([LEGACY], 15)]


@pytest.mark.parametrize("overrides,most_kept", STREAMED, ids=["default", "stride3", "short", "legacy"])
def test_streaming_gives_the_plain_paths_outputs_bit_for_bit(video, overrides, most_kept):
    frames_dir, mask = video
    result = compare_modes(Sam2Runner, SPEC, SETTINGS, job_of(frames_dir, mask), overrides)
    assert result["identical"] and result["frames"] == FRAMES
    assert result["changing_frames"] == FRAMES - 1  # outputs that move: the comparison means something
    assert result["columns"] == [{"stream": "off"}, {"stream": "on"}]
    assert result["most_kept"] == [FRAMES - 1, most_kept]  # the plain path keeps every frame's outputs


def test_streaming_from_a_later_prompt_frame(video):
    frames_dir, mask = video
    result = compare_modes(Sam2Runner, SPEC, SETTINGS, job_of(frames_dir, mask, prompt_frame=9))
    assert result["identical"] and result["frames"] == FRAMES - 9


def test_a_read_of_a_dropped_output_fails_the_job_and_names_the_frames(video, monkeypatch):
    frames_dir, mask = video
    window = streaming.oldest_output_read
    monkeypatch.setattr(streaming, "oldest_output_read", lambda model, frame, n: window(model, frame, n) + 1)  # one frame too few
    outcome = execute_job(Sam2Runner, SPEC, SETTINGS, job_of(frames_dir, mask), set(), _Progress())
    assert outcome.status == "error"
    assert outcome.reason == (
        "StreamingFailed: --stream dropped the memory of frame 1, which the model read at frame 16: this model "
        "selects its memory otherwise than streaming expects; rerun with --no-stream"
    )
    assert outcome.columns["stream"] == "on"


class _Progress:
    value = 0


def _reads_memory_otherwise(predictor_class):
    class Otherwise(predictor_class):
        def _prepare_memory_conditioned_features(self, *args, **kwargs):
            return super()._prepare_memory_conditioned_features(*args, **kwargs)

    return Otherwise


def test_a_predictor_whose_internals_differ_runs_the_plain_path_with_a_warning_in_its_row(video):
    frames_dir, mask = video

    class OtherPredictorRunner(Sam2Runner):
        def build(self):
            super().build()
            self.predictor.__class__ = _reads_memory_otherwise(type(self.predictor))

    outcome = execute_job(OtherPredictorRunner, SPEC, SETTINGS, job_of(frames_dir, mask), set(range(FRAMES)), _Progress())
    assert outcome.status == ""
    assert outcome.columns["stream"] == "off"
    assert outcome.columns["warning"] == (
        "--stream does not fit this predictor (its _prepare_memory_conditioned_features does not select memory from num_maskmem, "
        "memory_temporal_stride_for_eval, use_obj_ptrs_in_encoder, max_obj_ptrs_in_encoder as streaming expects); the job ran without it"
    )
    plain = execute_job(Sam2Runner, SPEC, replace(SETTINGS, stream=False), job_of(frames_dir, mask), set(range(FRAMES)), _Progress())
    assert all(np.array_equal(outcome.masks[0][f], plain.masks[0][f]) for f in range(FRAMES))


def test_each_thing_streaming_relies_on_is_checked(monkeypatch):
    from sam2.build_sam import build_sam2_video_predictor

    from sav_benchmark.runners.sizes import sam2_size_overrides

    predictor = build_sam2_video_predictor(SPEC.config, None, device="cpu", hydra_overrides_extra=sam2_size_overrides(64))
    assert streaming.streaming_problem(predictor) == ""

    class OwnLoading(type(predictor)):
        def init_state(self, video_path):
            return {}

    predictor.__class__ = OwnLoading
    assert streaming.streaming_problem(predictor) == "its init_state does not load frames through load_video_frames"
    predictor.__class__ = OwnLoading.__mro__[1]
    predictor.num_maskmem = 7.0
    assert streaming.streaming_problem(predictor) == "it has no integer setting num_maskmem"
    predictor.num_maskmem = 7
    misc = sys.modules[load_video_frames.__module__]
    monkeypatch.delattr(misc, streaming.DECODER)
    assert streaming.streaming_problem(predictor) == "sam2.utils.misc has no _load_img_as_tensor to decode one frame"


def test_packed_masks_give_back_the_masks():
    rng = np.random.default_rng(0)
    packed = PackedMasks()
    masks = {0: rng.random((7, 13)) > 0.5, 4: np.ones((1, 1), bool), 8: np.zeros((5, 3), bool)}
    for frame, mask in masks.items():
        packed.add(frame, mask)
    packed.add_empty(12, (3, 11))
    again = PackedMasks()
    again.copy_from(packed, 4)
    assert list(packed) == [0, 4, 8, 12] and len(packed) == 4 and list(again) == [4]
    for frame, mask in masks.items():
        assert packed[frame].dtype == bool and np.array_equal(packed[frame], mask)
    assert np.array_equal(packed[12], np.zeros((3, 11), bool))


def test_packed_masks_keep_a_large_mask_in_far_less_than_its_bits():
    """A 640x480 disk: 38,400 bytes as bits; what is kept (its compressed bits) is under a tenth of that."""
    rows, cols = np.ogrid[:480, :640]
    disk = (rows - 240) ** 2 + (cols - 300) ** 2 < 150**2
    packed = PackedMasks()
    packed.add(0, disk)
    assert np.array_equal(packed[0], disk)
    kept = len(packed._packed[0][1])
    assert kept < disk.size // 8 // 10, kept


def test_stream_and_no_stream_runs_write_the_same_mask_files(tmp_path):
    """The CLI both ways on a video longer than the memory reaches: the same PNGs, byte for byte; the rows say which ran."""
    make_split(tmp_path / "s", videos=1, frames=FRAMES + 3, width=160, height=120, objects=1)
    saved = {}
    for flag, stream in (("--stream", "on"), ("--no-stream", "off")):
        out = tmp_path / f"{stream}.csv"
        result = cli(
            "--split_dir",
            str(tmp_path / "s"),
            "--models",
            "sam2.1_tiny_points",
            "--weights",
            "random",
            "--device",
            "cpu",
            "--imgsz",
            "128",
            "--autocast_dtype",
            "float32",
            flag,
            "--output",
            str(out),
            "--save_masks",
            str(tmp_path / stream),
            timeout=900,
        )
        assert result.returncode == 0, result.stderr
        assert [(r["object_id"], r["status"], r["stream"], r["warning"]) for r in csv.DictReader(out.open())] == [
            ("000", "ok", stream, ""),
            ("001", "ok", stream, ""),
        ]
        saved[stream] = {p.relative_to(tmp_path / stream): p.read_bytes() for p in (tmp_path / stream).rglob("*.png")}
    assert len(saved["on"]) == 2 * 9 and saved["on"] == saved["off"]  # two objects, frames 0, 4, ..., 32
    masks = [read_mask(tmp_path / "on" / name) for name in saved["on"]]
    assert 1 < len({mask.tobytes() for mask in masks})  # not every mask alike
