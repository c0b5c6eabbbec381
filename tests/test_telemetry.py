"""Telemetry: tegrastats lines from real Jetson boards (shared/fixtures/tegrastats_samples.txt)
parsed to hand-checked values; the energy integral; each source against a stand-in for hardware
this machine lacks (tests/standins.py); the sampler's life with its job."""

import importlib
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    assert_usage_error,
    cli,
    cli_with_fakes,
    rows_of,
)
from standins import AGX_ORIN_RAILS, ORIN_NANO_RAILS, make_sysfs_tree, write_fake_tegrastats, write_nvml_standin

from sav_benchmark.errors import UsageError
from sav_benchmark.measure import execute_job
from sav_benchmark.progress import FrameCounter
from sav_benchmark.runners import MODELS, load_runner_class
from sav_benchmark.runners.base import Job, Prompt, RunSettings
from sav_benchmark.telemetry import (
    Reading,
    Sampler,
    TelemetryConfig,
    TelemetryUnavailable,
    choose_telemetry,
    integral,
    module_power_w,
    open_source,
    parse_tegrastats,
    telemetry_columns,
)
from sav_benchmark.telemetry.nvml import NvmlSource
from sav_benchmark.telemetry.sysfs import SysfsSource
from sav_benchmark.telemetry.tegrastats import TegrastatsSource


def fixture_lines(fixtures_dir):
    """The sample lines, keyed by the board named in the comment above each."""
    lines, board = {}, None
    for line in (fixtures_dir / "tegrastats_samples.txt").read_text().splitlines():
        if line.startswith("#"):
            board = line
        elif line.strip():
            lines[board] = line
    return lines


def line_for(fixtures_dir, words):
    matches = [line for board, line in fixture_lines(fixtures_dir).items() if all(w in board for w in words)]
    assert len(matches) == 1, f"no single fixture line for {words}"
    return matches[0]


def test_agx_orin_jetpack_5_1(fixtures_dir):
    parsed = parse_tegrastats(line_for(fixtures_dir, ["AGX Orin", "JetPack 5.1"]))
    assert parsed == {
        "ram_used_mb": 1282,
        "ram_total_mb": 62795,
        "gpu_load_pct": 0,
        "gpu_freq_mhz": 0,  # GR3D_FREQ 0%@0
        "rails_mw": {"VDD_GPU_SOC": 2399, "VDD_CPU_CV": 400, "VIN_SYS_5V0": 4032, "VDDQ_VDD2_1V8AO": 301},  # two NC rails left out
        # CV0, CV1, CV2 and GPU read -256C (offline) and are left out; capital labels become lower case
        "temps_c": {"cpu": 42.593, "tboard": 32.0, "soc2": 39.343, "tdiode": 33.25, "soc0": 39.375, "tj": 42.593, "soc1": 40.468},
    }


def test_agx_orin_jetpack_6_0(fixtures_dir):
    parsed = parse_tegrastats(line_for(fixtures_dir, ["AGX Orin", "JetPack 6.0"]))
    assert parsed == {
        "ram_used_mb": 7517,
        "ram_total_mb": 62841,
        "gpu_load_pct": 0,
        "gpu_freq_mhz": None,  # GR3D_FREQ 0% has no frequency
        "rails_mw": {"VDD_GPU_SOC": 2388, "VDD_CPU_CV": 397, "VIN_SYS_5V0": 3824, "VDDQ_VDD2_1V8AO": 402},
        "temps_c": {"cpu": 45.625, "tboard": 35.75, "soc2": 42.531, "tdiode": 36.0, "soc0": 42.843, "tj": 45.625, "soc1": 42.593},
    }


def test_orin_nano_jetpack_6_2(fixtures_dir):
    parsed = parse_tegrastats(line_for(fixtures_dir, ["Orin Nano", "JetPack 6.2"]))
    assert parsed == {
        "ram_used_mb": 2147,
        "ram_total_mb": 7620,
        "gpu_load_pct": 0,
        "gpu_freq_mhz": None,
        "rails_mw": {"VDD_IN": 4556, "VDD_CPU_GPU_CV": 483, "VDD_SOC": 1451},
        "temps_c": {"cpu": 47.687, "soc2": 46.718, "soc0": 47.468, "gpu": 48.625, "tj": 48.625, "soc1": 48.25},
    }


def test_every_fixture_line_is_read(fixtures_dir):
    lines = fixture_lines(fixtures_dir)
    assert len(lines) == 3
    for line in lines.values():
        parsed = parse_tegrastats(line)
        assert parsed["ram_total_mb"] and parsed["rails_mw"] and parsed["temps_c"]


def test_unknown_fields_and_busy_gpu():
    line = "RAM 3000/7620MB (lfb 1x4MB) CPU [12%@1510,off] NVENC 115 NVDEC off GR3D_FREQ 87%@[918] NEW_FIELD 5 VDD_IN 9876mW/9000mW"
    parsed = parse_tegrastats(line)
    assert (parsed["gpu_load_pct"], parsed["gpu_freq_mhz"], parsed["rails_mw"], parsed["temps_c"]) == (87, 918, {"VDD_IN": 9876}, {})
    assert parse_tegrastats("not a tegrastats line") == {
        "ram_used_mb": None,
        "ram_total_mb": None,
        "gpu_load_pct": None,
        "gpu_freq_mhz": None,
        "rails_mw": {},
        "temps_c": {},
    }


def test_module_power_uses_the_input_rail_or_the_sum(fixtures_dir):
    nano = parse_tegrastats(line_for(fixtures_dir, ["Orin Nano"]))["rails_mw"]
    assert module_power_w(nano) == (4.556, ["VDD_IN"])
    agx = parse_tegrastats(line_for(fixtures_dir, ["AGX Orin", "JetPack 5.1"]))["rails_mw"]
    watts, rails = module_power_w(agx)
    assert watts == pytest.approx((2399 + 400 + 4032 + 301) / 1000)
    assert rails == ["VDDQ_VDD2_1V8AO", "VDD_CPU_CV", "VDD_GPU_SOC", "VIN_SYS_5V0"]
    assert module_power_w({}) == (None, [])


@pytest.fixture(autouse=True)
def fresh_sources():
    """open_source keeps what it opened for the process's life; each test starts without any."""
    open_source.cache_clear()
    yield
    open_source.cache_clear()


# --- the energy integral and the row's cells -------------------------------------------------

TRACE = [Reading(0.0, power_w=10.0), Reading(1.0, power_w=20.0), Reading(2.0, power_w=20.0), Reading(3.0, power_w=0.0)]


def test_energy_integrates_the_power_trace_over_the_window():
    # Linear between readings: at 0.5 s 15 W, at 2.5 s 10 W. By hand: 0.5*(15+20)/2 + 1*20 + 0.5*(20+10)/2 = 36.25 J.
    columns = telemetry_columns("test", TRACE, (0.5, 2.5), n_frames=29, peak_rss_mb=None)
    assert columns["energy_j"] == pytest.approx(36.25)
    assert columns["avg_power_w"] == pytest.approx(36.25 / 2.0)
    assert columns["energy_mj_per_frame"] == pytest.approx(36250.0 / 29)
    # Outside the readings the first and last values hold: 1*10 + 15 + 20 + 10 + 1*0 = 55 J over 5 s.
    assert integral([r.t for r in TRACE], [r.power_w for r in TRACE], (-1.0, 4.0)) == pytest.approx(55.0)


def test_a_window_between_two_readings_interpolates_them():
    # 10 W at 0 s, 20 W at 1 s: over [0.25, 0.75] the power rises from 12.5 to 17.5 W, 7.5 J in all.
    assert integral([0.0, 1.0], [10.0, 20.0], (0.25, 0.75)) == pytest.approx(7.5)


def test_an_energy_counter_is_read_at_the_loop_ends_and_preferred_to_the_power_draw():
    # Counter 1000 mJ at 0 s, 1500 at 1 s, 3500 at 2 s: at 0.5 s 1250, at 1.5 s 2500, so 1.25 J.
    readings = [
        Reading(0.0, power_w=99.0, energy_mj=1000.0),
        Reading(1.0, power_w=99.0, energy_mj=1500.0),
        Reading(2.0, power_w=99.0, energy_mj=3500.0),
    ]
    columns = telemetry_columns("nvml", readings, (0.5, 1.5), n_frames=5, peak_rss_mb=None)
    assert (columns["energy_j"], columns["avg_power_w"], columns["energy_mj_per_frame"]) == pytest.approx((1.25, 1.25, 250.0))


def test_a_source_that_stopped_before_the_loop_ended_leaves_the_loop_cells_empty():
    # One reading at 0 s, then nothing: holding it over a loop from 10 s to 20 s would invent 20 J.
    readings = [Reading(0.0, power_w=2.0, gpu_util_pct=50.0, temp_c=60.0, device_mem_mb=700.0)]
    columns = telemetry_columns("tegrastats", readings, (10.0, 20.0), n_frames=10, peak_rss_mb=None, max_gap_s=0.45)
    assert [columns[c] for c in ("avg_power_w", "energy_j", "energy_mj_per_frame", "gpu_util_mean_pct", "temp_max_c")] == [None] * 5
    assert columns["peak_device_mem_mb"] == 700.0  # the peak of what was seen still stands
    # Readings 0.4 s before the start and 0.4 s after the end are close enough with a 0.45 s gap.
    near = [Reading(9.6, power_w=2.0), Reading(20.4, power_w=4.0)]
    assert telemetry_columns("sysfs", near, (10.0, 20.0), 10, None, max_gap_s=0.45)["energy_j"] == pytest.approx(30.0)


def test_without_a_power_reading_the_power_cells_are_empty_never_zero():
    readings = [Reading(0.0, rss_mb=100.0, sys_mem_mb=900.0), Reading(1.0, rss_mb=150.0, sys_mem_mb=950.0, cpu_util_pct=50.0)]
    columns = telemetry_columns("procfs", readings, (0.0, 1.0), n_frames=10, peak_rss_mb=None)
    assert (columns["avg_power_w"], columns["energy_j"], columns["energy_mj_per_frame"]) == (None, None, None)
    assert (columns["peak_device_mem_mb"], columns["gpu_util_mean_pct"], columns["throttled"]) == (None, None, None)
    assert (columns["peak_rss_mb"], columns["peak_sys_mem_mb"], columns["cpu_util_mean_pct"]) == (150.0, 950.0, 50.0)


def test_a_job_that_failed_before_its_last_frame_keeps_only_its_peaks():
    readings = [Reading(0.0, power_w=5.0, device_mem_mb=700.0, temp_c=50.0)]
    assert telemetry_columns("sysfs", readings, None, 0, peak_rss_mb=321.0) == {
        "telemetry_source": "sysfs",
        "peak_device_mem_mb": 700.0,
        "peak_rss_mb": 321.0,
        "peak_sys_mem_mb": None,
    }


def test_temperature_and_throttling_count_only_during_the_loop():
    readings = [
        Reading(0.0, temp_c=90.0, throttled=True),
        Reading(1.0, temp_c=50.0, throttled=False),
        Reading(2.0, temp_c=55.0, throttled=False),
        Reading(3.0, temp_c=99.0, throttled=True),
    ]
    columns = telemetry_columns("nvml", readings, (1.0, 2.0), n_frames=1, peak_rss_mb=None)
    assert (columns["temp_max_c"], columns["throttled"]) == (55.0, False)


# --- sources, each against a stand-in for its hardware ----------------------------------------


def read_once(source):
    reading = Reading(0.0)
    source.read(reading)
    return reading


def test_sysfs_stand_in_orin_nano_reads_its_input_rail(tmp_path):
    source = SysfsSource(make_sysfs_tree(tmp_path, [ORIN_NANO_RAILS]))
    reading = read_once(source)
    assert reading.power_w == pytest.approx(5000 * 911 / 1e6)  # VDD_IN only: the other rails are inside it
    assert (reading.temp_c, reading.gpu_clock_mhz, reading.gpu_util_pct) == (48.625, 612.0, 45.3)  # the offline zone is left out
    description = source.describe()
    assert (description["rails_summed"], description["power"]) == (["VDD_IN"], "VDD_IN: the module's whole input")


def test_sysfs_stand_in_agx_orin_sums_its_rails_and_says_which(tmp_path):
    source = SysfsSource(make_sysfs_tree(tmp_path, AGX_ORIN_RAILS))
    assert read_once(source).power_w == pytest.approx((19000 * 126 + 19000 * 21 + 5000 * 806 + 5000 * 60) / 1e6)
    description = source.describe()
    assert description["rails_summed"] == ["VDDQ_VDD2_1V8AO", "VDD_CPU_CV", "VDD_GPU_SOC", "VIN_SYS_5V0"]  # NC channels left out
    assert description["power"] == (
        "the sum of the rails VDDQ_VDD2_1V8AO, VDD_CPU_CV, VDD_GPU_SOC, VIN_SYS_5V0: this board has no rail for the module's whole input"
    )


def test_sysfs_with_a_rail_that_cannot_be_read_has_no_power_rather_than_a_wrong_sum(tmp_path):
    root = make_sysfs_tree(tmp_path, [ORIN_NANO_RAILS])
    source = SysfsSource(root)
    (root / "sys/class/hwmon/hwmon1/curr1_input").unlink()  # VDD_IN gone: the other two rails are not the module's power
    reading = read_once(source)
    assert reading.power_w is None and reading.temp_c == 48.625


def test_sysfs_without_a_power_monitor_is_unavailable(tmp_path):
    with pytest.raises(TelemetryUnavailable, match="no INA3221 power monitor under"):
        SysfsSource(tmp_path)


@pytest.fixture
def nano_line(fixtures_dir):
    return line_for(fixtures_dir, ["Orin Nano"])


@pytest.fixture
def fake_tegrastats(tmp_path, nano_line, monkeypatch):
    """A stand-in tegrastats first on PATH; returns the file where each run notes its process id."""
    pid_file = tmp_path / "tegrastats.pids"
    write_fake_tegrastats(tmp_path / "bin", nano_line, pid_file)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return pid_file


def assert_all_ended(pid_file):
    pids = [int(p) for p in pid_file.read_text().split()]
    assert pids
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_tegrastats_stand_in_each_line_is_a_reading_and_the_process_ends(fake_tegrastats):
    source = TegrastatsSource()
    with Sampler(source, interval_ms=20) as sampler:
        deadline = time.monotonic() + 30
        while len(sampler.readings) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(sampler.readings) >= 3
    first = sampler.readings[0]
    assert (first.power_w, first.device_mem_mb, first.gpu_util_pct, first.gpu_clock_mhz, first.temp_c) == (4.556, 2147, 0, None, 48.625)
    assert first.rss_mb > 0 and first.sys_mem_mb > 0  # every reading also has the process's figures
    assert_all_ended(fake_tegrastats)
    assert source.describe()["rails_summed"] == ["VDD_IN"]


def test_tegrastats_missing_is_unavailable(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TelemetryUnavailable, match="no tegrastats executable on PATH"):
        TegrastatsSource()


@pytest.fixture
def nvml_standin(tmp_path, monkeypatch):
    def install(**kwargs):
        monkeypatch.syspath_prepend(str(write_nvml_standin(tmp_path / "nvml", **kwargs)))
        monkeypatch.delitem(sys.modules, "pynvml", raising=False)

    return install


def test_nvml_stand_in_present(nvml_standin):
    nvml_standin()
    source = NvmlSource("GPU-1234")
    reading = read_once(source)
    assert (reading.power_w, reading.device_mem_mb, reading.gpu_util_pct, reading.gpu_clock_mhz) == (250.0, 40 * 1024.0, 87.0, 1980.0)
    assert reading.temp_c is None  # the stand-in does not support it: empty, and not asked again
    assert reading.throttled is True  # 0x20: software thermal slowdown
    assert source.describe()["gpu"] == "NVIDIA H200 (stand-in)"


def test_nvml_energy_comes_from_its_energy_counter_where_it_has_one(nvml_standin):
    nvml_standin(energy_counter=True)
    source = NvmlSource()
    with Sampler(source, interval_ms=10) as sampler:
        start = time.perf_counter()
        time.sleep(0.2)
        end = time.perf_counter()
    columns = sampler.columns((start, end), n_frames=4)
    assert columns["avg_power_w"] == pytest.approx(300.0, rel=1e-3)  # the counter's 300 W, not the 250 W draw
    assert columns["energy_j"] == pytest.approx(300.0 * (end - start), rel=1e-3)
    assert "energy counter" in source.describe()["power"]


def test_nvml_idle_and_application_clocks_are_not_throttling(nvml_standin):
    nvml_standin(reasons=0x1 | 0x2)
    assert read_once(NvmlSource()).throttled is False


def test_nvml_absent_or_not_starting_is_unavailable(nvml_standin, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # the module is not installed
    with pytest.raises(TelemetryUnavailable, match=r"^the pynvml module is not installed \(pip install nvidia-ml-py\)$"):
        NvmlSource()
    monkeypatch.delitem(sys.modules, "pynvml")
    nvml_standin(start_error="Driver Not Loaded")
    with pytest.raises(TelemetryUnavailable, match=r"^NVML did not start \(Driver Not Loaded\)$"):
        NvmlSource()


# --- choosing a source ------------------------------------------------------------------------


def test_auto_takes_the_first_source_that_works_and_says_why_not_the_others(tmp_path, monkeypatch, nvml_standin):
    monkeypatch.setenv("PATH", str(tmp_path))  # no tegrastats
    monkeypatch.setenv("SAV_BENCHMARK_SYSFS_ROOT", str(tmp_path / "empty"))
    config, description = choose_telemetry("auto", 100, "cpu", None, on_jetson=False)
    assert config.source == "procfs"
    assert description["not_used"] == {
        "sysfs": f"no INA3221 power monitor under {tmp_path / 'empty' / 'sys/class/hwmon'}",
        "tegrastats": "no tegrastats executable on PATH",
    }
    nvml_standin()
    config, description = choose_telemetry("auto", 100, "cuda", "GPU-1234", on_jetson=False)
    assert (config.source, config.gpu_uuid, description["gpu"]) == ("nvml", "GPU-1234", "NVIDIA H200 (stand-in)")
    make_sysfs_tree(tmp_path / "jetson", [ORIN_NANO_RAILS])
    monkeypatch.setenv("SAV_BENCHMARK_SYSFS_ROOT", str(tmp_path / "jetson"))
    config, description = choose_telemetry("auto", 50, "cuda", None, on_jetson=True)
    assert (config.source, config.interval_ms, description["rails_summed"]) == ("sysfs", 50, ["VDD_IN"])


def test_nvml_is_refused_on_a_jetson():
    with pytest.raises(UsageError, match="NVML does not report a Jetson's power or memory"):
        choose_telemetry("nvml", 100, "cuda", None, on_jetson=True)


def test_off_opens_nothing():
    config, description = choose_telemetry("off", 100, "cpu", None, on_jetson=False)
    assert (open_source(config), description) == (None, {"source": "off"})
    with Sampler(None, 100) as sampler:
        pass
    assert sampler.columns((0.0, 1.0), 10) == {"telemetry_source": "off"}


# --- the sampler's life with its job ----------------------------------------------------------


def failing_job(tmp_path):
    """A job of the fake_fail test runner (tests/plugins) that fails on its third frame."""
    from sav_benchmark.split.synthetic import make_split

    make_split(tmp_path / "split", videos=1, frames=9, width=32, height=24, objects=1)
    frames = tmp_path / "split" / "JPEGImages_24fps" / "synth_000"
    return Job(frames, 9, [Prompt(0, [[5, 5]], [0, 0, 10, 10], np.ones((24, 32), dtype=bool))])


def sampler_threads():
    return [t for t in threading.enumerate() if t.name == "sav-benchmark-telemetry"]


@pytest.mark.parametrize("source", ["tegrastats", "procfs"])
def test_the_sampler_stops_with_its_job_even_when_the_job_fails(source, tmp_path, fake_tegrastats, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL_VIDEOS", "synth_000")
    monkeypatch.setenv("FAKE_FRAME_DELAY_S", "0.2")  # it fails after 0.6 s: tegrastats has started by then
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "plugins"))
    monkeypatch.delitem(sys.modules, "fake_runners", raising=False)
    importlib.import_module("fake_runners")  # registers the fake models, reading the variables above
    spec = MODELS["fake_fail"]
    settings = RunSettings("cpu", "float32", None, "random", tmp_path, TelemetryConfig(source, interval_ms=10))
    outcome = execute_job(load_runner_class(spec), spec, settings, failing_job(tmp_path), set(), FrameCounter())
    assert (outcome.status, outcome.reason) == ("error", "ValueError: fake failure on video synth_000")
    assert sampler_threads() == []
    assert outcome.columns["telemetry_source"] == source
    assert outcome.columns["peak_rss_mb"] > 0  # how far it got
    assert "avg_power_w" not in outcome.columns  # no complete loop to average over
    if source == "tegrastats":
        assert_all_ended(fake_tegrastats)


def test_a_source_that_fails_while_sampling_costs_the_cells_not_the_job(caplog):
    class Broken(SysfsSource):
        def __init__(self):
            pass

        def read(self, reading):
            raise OSError("sensor gone")

    with Sampler(Broken(), 10) as sampler:
        start = time.perf_counter()
    columns = sampler.columns((start, time.perf_counter()), 1)
    assert sampler.readings == [] and sampler_threads() == []
    assert [r.getMessage() for r in caplog.records] == ["telemetry: the sysfs source failed: OSError: sensor gone"]
    assert (columns["telemetry_source"], columns["avg_power_w"]) == ("sysfs", None)
    assert columns["peak_rss_mb"] > 0  # the kernel's figure, which needs no source


# --- through the command line -----------------------------------------------------------------


@pytest.fixture(scope="module")
def split(synthetic_split):
    return synthetic_split(videos=1, frames=9, objects=2)


def manifest_telemetry(out):
    return json.loads(Path(f"{out}.json").read_text())["telemetry"]


POWER_CELLS = ("avg_power_w", "energy_j", "energy_mj_per_frame")


def test_a_cpu_run_records_the_process_and_leaves_power_and_device_memory_empty(split, tmp_path):
    out = tmp_path / "o.csv"
    result = cli_with_fakes(
        "--split_dir",
        str(split),
        "--models",
        "static_mask,fake_slow",
        "--output",
        str(out),
        "--telemetry_interval_ms",
        "10",
        "--quiet",
        FAKE_FRAME_DELAY_S="0.03",
        PATH=str(tmp_path),
        SAV_BENCHMARK_SYSFS_ROOT=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    for row in rows_of(out):
        assert row["telemetry_source"] == "procfs"
        assert float(row["peak_rss_mb"]) > 10 and float(row["peak_sys_mem_mb"]) > float(row["peak_rss_mb"])
        assert [row[c] for c in (*POWER_CELLS, "peak_device_mem_mb", "gpu_util_mean_pct", "temp_max_c", "throttled")] == [""] * 7
    assert 0 <= float(rows_of(out)[1]["cpu_util_mean_pct"]) <= 100  # fake_slow ran 0.24 s: long enough to measure
    telemetry = manifest_telemetry(out)
    assert telemetry["source"] == "procfs" and "peak_device_mem_mb stays empty" in telemetry["device_memory"]
    assert set(telemetry["not_used"]) == {"sysfs", "tegrastats"}


def test_a_jetson_run_on_a_sysfs_stand_in_fills_power_energy_and_thermals(split, tmp_path):
    sysfs = make_sysfs_tree(tmp_path / "jetson", [ORIN_NANO_RAILS])
    out = tmp_path / "o.csv"
    result = cli_with_fakes(
        "--split_dir",
        str(split),
        "--models",
        "fake_slow",
        "--output",
        str(out),
        "--telemetry_interval_ms",
        "10",
        FAKE_FRAME_DELAY_S="0.03",
        SAV_BENCHMARK_SYSFS_ROOT=str(sysfs),
    )
    assert result.returncode == 0, result.stderr
    for row in rows_of(out):
        watts = 5000 * 911 / 1e6  # the stand-in's VDD_IN never changes, so the average is exact
        assert row["telemetry_source"] == "sysfs"
        assert float(row["avg_power_w"]) == pytest.approx(watts)
        # over the loop's time: propagate_s and the harness's microseconds between frames (keeping masks)
        assert float(row["energy_j"]) == pytest.approx(watts * float(row["propagate_s"]), rel=1e-2)
        assert float(row["energy_mj_per_frame"]) == pytest.approx(1000 * float(row["energy_j"]) / int(row["n_propagated"]))
        assert float(row["temp_max_c"]) == 48.625
        assert (float(row["gpu_util_mean_pct"]), float(row["gpu_clock_mhz_mean"])) == pytest.approx((45.3, 612.0))  # time averages
        assert row["peak_device_mem_mb"] == row["peak_sys_mem_mb"] != ""  # memory is unified on a Jetson
        assert row["throttled"] == ""
    assert manifest_telemetry(out)["rails_summed"] == ["VDD_IN"]


def test_tegrastats_in_a_worker_process(split, tmp_path, nano_line):
    pid_file = tmp_path / "tegrastats.pids"
    write_fake_tegrastats(tmp_path / "bin", nano_line, pid_file)
    out = tmp_path / "o.csv"
    result = cli_with_fakes(
        "--split_dir",
        str(split),
        "--models",
        "fake_slow",
        "--output",
        str(out),
        "--telemetry",
        "tegrastats",
        "--telemetry_interval_ms",
        "50",
        "--isolation",
        "process",
        FAKE_FRAME_DELAY_S="0.1",
        PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
    )
    assert result.returncode == 0, result.stderr
    for row in rows_of(out):
        assert (row["telemetry_source"], row["peak_device_mem_mb"]) == ("tegrastats", "2147")
        assert float(row["avg_power_w"]) == pytest.approx(4.556)  # a time average of the same value
    assert manifest_telemetry(out)["power"] == "VDD_IN: the module's whole input"
    assert len(pid_file.read_text().split()) == 1 + len(rows_of(out))  # the driver's look at the rails, then one per job
    assert_all_ended(pid_file)


@pytest.mark.parametrize(
    "flags, extra_env, message",
    [
        (
            ["--telemetry", "sysfs"],
            {},
            "--telemetry sysfs: no INA3221 power monitor under /sys/class/hwmon; a Jetson's INA3221 power monitors "
            "appear there (set SAV_BENCHMARK_SYSFS_ROOT where sysfs is mounted elsewhere); else use --telemetry auto",
        ),
        (
            ["--telemetry", "tegrastats"],
            {"PATH": "/nonexistent"},
            "--telemetry tegrastats: no tegrastats executable on PATH; "
            "it comes with JetPack (/usr/bin/tegrastats); elsewhere use --telemetry auto",
        ),
        (
            ["--telemetry", "nvml"],
            "no nvml",
            "--telemetry nvml: NVML did not start (Driver Not Loaded); "
            "pip install nvidia-ml-py and check the NVIDIA driver, or use --telemetry auto",
        ),
        (
            ["--telemetry", "power"],
            {},
            "argument --telemetry: invalid choice: 'power' (choose from 'auto', 'off', 'sysfs', 'tegrastats', 'nvml', 'procfs') "
            "(see jetson_benchmark.py run --help)",
        ),
        (
            ["--telemetry_interval_ms", "5"],
            {},
            "argument --telemetry_interval_ms: must be at least 10, not 5 (see jetson_benchmark.py run --help)",
        ),
    ],
)
def test_a_source_that_cannot_run_here_stops_the_run_before_any_work(split, tmp_path, flags, extra_env, message):
    pythonpath = ()
    if extra_env == "no nvml":
        pythonpath, extra_env = (write_nvml_standin(tmp_path / "nvml", start_error="Driver Not Loaded"),), {}
    out = tmp_path / "o.csv"
    result = cli("--split_dir", split, "--models", "static_mask", "--output", out, *flags, fakes=True, pythonpath=pythonpath, **extra_env)
    assert_usage_error(result, message)
    assert not out.exists()
