"""tegrastats lines from real Jetson boards (shared/fixtures/tegrastats_samples.txt), parsed to hand-checked values."""

import pytest

from sav_benchmark.telemetry import module_power_w, parse_tegrastats


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
        "ram_used_mb": None, "ram_total_mb": None, "gpu_load_pct": None, "gpu_freq_mhz": None, "rails_mw": {}, "temps_c": {},
    }  # fmt: skip


def test_module_power_uses_the_input_rail_or_the_sum(fixtures_dir):
    nano = parse_tegrastats(line_for(fixtures_dir, ["Orin Nano"]))["rails_mw"]
    assert module_power_w(nano) == (4.556, ["VDD_IN"])
    agx = parse_tegrastats(line_for(fixtures_dir, ["AGX Orin", "JetPack 5.1"]))["rails_mw"]
    watts, rails = module_power_w(agx)
    assert watts == pytest.approx((2399 + 400 + 4032 + 301) / 1000)
    assert rails == ["VDDQ_VDD2_1V8AO", "VDD_CPU_CV", "VDD_GPU_SOC", "VIN_SYS_5V0"]
    assert module_power_w({}) == (None, [])
