"""What the manifest says about the machine, and the Jetson allocator guard.

The Jetson files and tools are stand-ins (this machine is no Jetson): real-format contents in temporary
files, and a stand-in `nvpmodel` executable on PATH.
"""

import os
import stat

import pytest

from sav_benchmark import environment
from sav_benchmark.errors import UsageError


@pytest.fixture
def jetson_stand_in(tmp_path, monkeypatch):
    model = tmp_path / "model"
    model.write_bytes(b"NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super\x00")
    release = tmp_path / "nv_tegra_release"
    release.write_text(
        "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025\n# "
        "KERNEL_VARIANT: oot\n"
    )
    tools = tmp_path / "bin"
    tools.mkdir()
    for name, body in (("nvpmodel", 'echo "NV Power Mode: MAXN_SUPER"; echo 2'), ("jetson_clocks", "echo 'needs root' >&2; exit 1")):
        tool = tools / name
        tool.write_text(f"#!/bin/sh\n{body}\n")
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(environment, "JETSON_MODEL_FILE", model)
    monkeypatch.setattr(environment, "L4T_RELEASE_FILE", release)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")


def test_jetson_facts_are_read_without_root(jetson_stand_in):
    assert environment.jetson_info() == {
        "board": "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
        "l4t_release": "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025",
        "power_mode": "NV Power Mode: MAXN_SUPER\n2",
        "clocks": None,  # jetson_clocks --show needs root here: recorded as unknown, not as an error
    }


def test_no_jetson_facts_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setattr(environment, "JETSON_MODEL_FILE", tmp_path / "absent")
    monkeypatch.setattr(environment, "L4T_RELEASE_FILE", tmp_path / "absent")
    assert environment.jetson_info() is None
    environment.check_allocator_config({"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"})  # fine off Jetson


def test_expandable_segments_is_refused_on_jetson(jetson_stand_in):
    with pytest.raises(UsageError) as info:
        environment.check_allocator_config({"PYTORCH_CUDA_ALLOC_CONF": "max_split_size_mb:128, expandable_segments:True"})
    assert str(info.value) == (
        "PYTORCH_CUDA_ALLOC_CONF=max_split_size_mb:128, expandable_segments:True: expandable_segments:True breaks "
        "PyTorch's CUDA caching allocator on Jetson (Tegra); remove it from the variable (or set expandable_segments:False)"
    )
    environment.check_allocator_config({"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:False"})
    environment.check_allocator_config({})
