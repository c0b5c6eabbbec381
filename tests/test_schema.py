"""One declared row schema: the CSV's columns in their order, and every producer of a row's cells
writes only columns of it (an unknown one would otherwise be found when the writer refuses a row,
in the middle of a night's run)."""

from pathlib import Path

import pytest
from conftest import require

from sav_benchmark.measure import execute_job
from sav_benchmark.memory import MemoryReading
from sav_benchmark.metrics import ObjectScore
from sav_benchmark.results import COLUMNS, ResultWriter
from sav_benchmark.rows import row_start, with_status
from sav_benchmark.run import make_job
from sav_benchmark.runners import MODELS, load_runner_class
from sav_benchmark.runners.base import RunSettings
from sav_benchmark.split import prepare_split
from sav_benchmark.telemetry.readings import Reading, telemetry_columns
from sav_benchmark.timing import latency_columns

# The file format: earlier runs' CSVs have this header, and --resume, report and compare read them.
HEADER = (
    "run_id,timestamp_utc,video_id,object_id,model,prompt,prompt_detail,weights,device,dtype,imgsz,stream,"
    "postprocessing,tracking,objects_in_job,oom_retry_from_imgsz,status,error,warning,n_frames,prompt_frame,n_propagated,n_eval_frames,protocol,J,F,JF,V,F_dot,JF_dot,JF_dot_disappear,"
    "JF_dot_reappear,fps,"
    "latency_ms_mean,latency_ms_p50,latency_ms_p90,latency_ms_p99,latency_ms_max,build_s,init_s,prompt_ms,"
    "propagate_s,setup_s,wall_s,overhead_s,compiled_graphs,"
    "stage_image_encoder_ms_p50,stage_image_encoder_ms_mean,stage_memory_attention_ms_p50,stage_memory_attention_ms_mean,"
    "stage_mask_decoder_ms_p50,stage_mask_decoder_ms_mean,stage_memory_encoder_ms_p50,stage_memory_encoder_ms_mean,"
    "stage_rest_ms_p50,stage_rest_ms_mean,mem_alloc_before_mb,mem_reserved_before_mb,"
    "peak_alloc_mb,peak_reserved_mb,mem_alloc_after_cleanup_mb,mem_reserved_after_cleanup_mb,telemetry_source,"
    "avg_power_w,energy_j,energy_mj_per_frame,peak_device_mem_mb,peak_rss_mb,peak_sys_mem_mb,cpu_util_mean_pct,"
    "gpu_util_mean_pct,gpu_clock_mhz_mean,temp_max_c,throttled"
)


def in_schema(cells):
    unknown = set(cells) - set(COLUMNS)
    assert not unknown, f"cells outside the schema: {sorted(unknown)}"


def test_the_header_is_the_file_format_that_earlier_csvs_have(tmp_path):
    ResultWriter(tmp_path / "o.csv").close()
    assert (tmp_path / "o.csv").read_bytes() == (HEADER + "\r\n").encode()
    assert len(set(COLUMNS)) == len(COLUMNS)


def test_latency_columns_by_hand():
    cells = latency_columns([0.1, 0.3])
    in_schema(cells)
    assert cells == pytest.approx(
        {
            "n_propagated": 2,
            "propagate_s": 0.4,
            "fps": 5.0,
            "latency_ms_mean": 200.0,
            "latency_ms_p50": 200.0,
            "latency_ms_p90": 280.0,
            "latency_ms_p99": 298.0,
            "latency_ms_max": 300.0,
        }
    )
    assert latency_columns([]) == {"n_propagated": 0, "propagate_s": 0}


def test_memory_columns_name_each_reading():
    reading = MemoryReading(1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    assert reading.columns() == {
        "mem_alloc_before_mb": 1.0,
        "mem_reserved_before_mb": 2.0,
        "peak_alloc_mb": 3.0,
        "peak_reserved_mb": 4.0,
        "mem_alloc_after_cleanup_mb": 5.0,
        "mem_reserved_after_cleanup_mb": 6.0,
    }
    in_schema(reading.columns())


def test_score_and_telemetry_columns():
    in_schema(ObjectScore(80.0, 70.0, 75.0, 3).columns())
    readings = [Reading(t, power_w=5.0, device_mem_mb=10.0, rss_mb=1.0, cpu_util_pct=50.0, temp_c=40.0, throttled=False) for t in (0, 1, 2)]
    cells = telemetry_columns("test", readings, (0.0, 2.0), 4, None)
    in_schema(cells)
    assert cells["energy_j"] == pytest.approx(10.0) and cells["energy_mj_per_frame"] == pytest.approx(2500.0)


@pytest.fixture(scope="module")
def split(synthetic_split):
    return prepare_split(synthetic_split(videos=1, frames=5, objects=1))


class Frames:
    value = 0


@pytest.mark.parametrize("model", ["static_mask", "sam2.1_tiny_points"])
def test_every_cell_of_a_jobs_row_is_in_the_schema(split, model, tmp_path):
    if model != "static_mask":
        require("sam2.build_sam")
    spec, video = MODELS[model], split.videos[0]
    obj = video.objects[0]
    settings = RunSettings("cpu", "float32", 128, "random", Path(tmp_path))
    row = row_start("run", settings, spec, video, obj)
    outcome = execute_job(load_runner_class(spec), spec, settings, make_job(split, video, [obj]), set(obj.annotated_frames), Frames())
    assert outcome.status == "", outcome.traceback
    in_schema(with_status({**row, **outcome.columns}, "ok", ""))
    if spec.uses_torch:
        assert outcome.columns["stream"] == "on"  # the runner's own cell
