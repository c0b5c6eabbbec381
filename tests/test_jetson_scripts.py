"""scripts/setup_jetson.sh and scripts/overnight.sh, run as a user runs them, against the stand-ins of
tests/standins_jetson (nvpmodel, jetson_clocks, sudo, dpkg-query, systemctl, loginctl, systemd-run,
tmux, crontab, torch): this machine is no Jetson. The overnight runs are real runs of the CLI on a
small synthetic split with the test runners (static_mask, fake_slow), killed as a reboot kills them."""

import csv
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, cli_with_fakes, keys_of

STANDINS = ROOT / "tests" / "standins_jetson"
SETUP = ROOT / "scripts" / "setup_jetson.sh"
OVERNIGHT = ROOT / "scripts" / "overnight.sh"

L4T_RELEASE = "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025\n"
NVPMODEL_CONF = "< POWER_MODEL ID=0 NAME=15W >\n< POWER_MODEL ID=1 NAME=25W >\n< POWER_MODEL ID=2 NAME=MAXN_SUPER >\n"
MEMINFO = (
    "MemTotal:        7802344 kB\nMemFree:         5000000 kB\nMemAvailable:    5400000 kB\n"
    "SwapTotal:       3901168 kB\nSwapFree:        3801168 kB\n"
)
CLOCKS = """SOC family:tegra234  Machine:NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super
Online CPUs: 0-5
cpu0:  Online=1 Governor=schedutil MinFreq=729600 MaxFreq=1728000 CurrentFreq=729600 IdleStates: WFI=1 c7=1
GPU MinFreq={gpu_min} MaxFreq=1020000000 CurrentFreq={gpu_min}
EMC MinFreq=204000000 MaxFreq=3199000000 CurrentFreq=2133000000 FreqOverride=0
FAN Dynamic Speed control={fan}
NV Power Mode: {mode}
"""
UNLOCKED = {"gpu_min": 306000000, "fan": "active hwmon3_pwm=49"}
LOCKED = {"gpu_min": 1020000000, "fan": "inactive hwmon3_pwm=255"}
NVIDIA_TORCH = {"version": "2.5.0a0+872d972e41.nv24.08", "cuda": "12.6", "gpu": True, "device": "Orin", "torchvision": "0.20.0a0+afc54f7"}
WHEELS = "install NVIDIA's torch and torchvision wheels for JetPack 6 (https://docs.nvidia.com/deeplearning/frameworks/install-pytorch-jetson-platform/)"


class Jetson:
    """A stand-in Jetson: the stand-in commands first on PATH, their state in `state`, its /etc and
    /proc files under `root`. As the test sets it up, an untuned Orin Nano Super: 15W, clocks not
    locked, the fan on its dynamic profile, a desktop, zram swap."""

    def __init__(self, tmp_path: Path) -> None:
        self.bin, self.state, self.root = tmp_path / "standin-bin", tmp_path / "standin-state", tmp_path / "jetson-root"
        shutil.copytree(STANDINS / "bin", self.bin)
        for tool in self.bin.iterdir():
            tool.chmod(0o755)
        self.state.mkdir()
        self.write("etc/nv_tegra_release", L4T_RELEASE + "# KERNEL_VARIANT: oot\n", root=True)
        self.write("etc/nvpmodel.conf", NVPMODEL_CONF, root=True)
        self.write("proc/meminfo", MEMINFO, root=True)
        self.write("proc/device-tree/model", "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super\0", root=True)
        self.power_mode("15W", 0, UNLOCKED)
        self.write("default-target", "graphical.target\n")
        self.torch(NVIDIA_TORCH)

    def write(self, name: str, text: str, root: bool = False) -> None:
        path = (self.root if root else self.state) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def power_mode(self, mode: str, ident: int, clocks: dict) -> None:
        self.write("nvpmodel-q", f"NV Power Mode: {mode}\n{ident}\n")
        self.write("jetson_clocks-show", CLOCKS.format(mode=mode, **clocks))

    def torch(self, facts: dict) -> None:
        self.write("torch.json", json.dumps(facts))

    def calls(self) -> list[str]:
        log = self.state / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def environment(self, **variables: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SAV_", "PYTORCH_CUDA_ALLOC_CONF", "PYTHONPATH"))}
        env.update(PATH=f"{self.bin}{os.pathsep}{os.environ['PATH']}", JETSON_STANDIN_DIR=str(self.state), **variables)
        return env


@pytest.fixture
def jetson(tmp_path):
    return Jetson(tmp_path)


# --- setup_jetson.sh --------------------------------------------------------------------------


def setup(jetson: Jetson, *args: str, **variables: str) -> subprocess.CompletedProcess:
    env = jetson.environment(
        SAV_JETSON_ROOT=str(jetson.root),
        SAV_JETSON_INSTALL=str(STANDINS / "install.sh"),
        PYTHON=sys.executable,
        PYTHONPATH=str(STANDINS / "python"),
    )
    env.update(variables)
    return subprocess.run(["bash", str(SETUP), *args], capture_output=True, text=True, env=env, cwd=jetson.state.parent, timeout=120)


def assert_blocked(result: subprocess.CompletedProcess, line: str) -> None:
    """Exit code 2 and exactly this one line on stderr."""
    assert (result.returncode, result.stderr) == (2, f"setup_jetson.sh: {line}\n"), result.stdout


def test_setup_on_a_machine_that_is_no_jetson_says_so_and_installs_nothing(jetson, tmp_path):
    shutil.rmtree(jetson.root / "etc")
    result = setup(jetson)
    assert_blocked(
        result,
        f"this is not a Jetson (no {jetson.root}/etc/nv_tegra_release, no nvidia-l4t-core package); on other machines install with: "
        "bash scripts/install.sh",
    )
    assert result.stdout == "" and not any(call.startswith("install.sh") for call in jetson.calls())


def test_setup_finds_l4t_from_its_package_where_the_release_file_is_missing(jetson):
    (jetson.root / "etc/nv_tegra_release").unlink()
    jetson.write("nvidia-l4t-core", "36.4.3-20250107174145")
    result = setup(jetson, "--check")
    assert result.returncode == 0, result.stderr
    assert "L4T R36.4.3 (JetPack 6); nvidia-l4t-core 36.4.3-20250107174145" in result.stdout.splitlines()[0]


@pytest.mark.parametrize(
    "facts,line",
    [
        (
            {"version": "2.9.1+cpu", "cuda": None, "gpu": False, "torchvision": "0.24.1+cpu"},
            "torch 2.9.1+cpu is a CPU-only build (the package registry's), not NVIDIA's: {python} -m pip uninstall torch torchvision, "
            f"then {WHEELS}",
        ),
        (
            {},
            "torch is not installed for {python}: " + WHEELS + ", then run this again (the package registry's torch has no Jetson GPU "
            "support, so pip must not install it)",
        ),
        (
            {"version": "2.9.1", "cuda": "12.8", "gpu": False, "torchvision": "0.24.1"},
            "torch 2.9.1 (CUDA 12.8) sees no GPU: it is not a build for Jetson (the registry's aarch64 wheels are not) or this user may "
            f"not use the GPU (groups video, render); {WHEELS}",
        ),
        (
            {"version": "2.5.0a0+nv24.08", "import_error": "libcudnn.so.9: cannot open shared object file: No such file or directory"},
            "torch cannot be imported (ImportError: libcudnn.so.9: cannot open shared object file: No such file or directory): JetPack's "
            f"CUDA/cuDNN libraries may be missing (sudo apt install nvidia-jetpack) or the wheel is for another JetPack; {WHEELS}",
        ),
        (
            {**NVIDIA_TORCH, "torchvision": None},
            "torchvision is not installed: install NVIDIA's torchvision wheel built for torch 2.5.0a0+872d972e41.nv24.08 (the same "
            "JetPack); the registry's would replace torch",
        ),
    ],
    ids=["registry-cpu-torch", "no-torch", "registry-cuda-torch", "torch-broken", "no-torchvision"],
)
def test_setup_refuses_a_torch_that_is_not_nvidias_in_one_line_before_installing(jetson, facts, line):
    jetson.torch(facts)
    result = setup(jetson)
    assert_blocked(result, line.format(python=sys.executable))
    assert not any(call.startswith("install.sh") for call in jetson.calls())  # nothing was installed over it


def test_setup_refuses_expandable_segments(jetson):
    result = setup(jetson, PYTORCH_CUDA_ALLOC_CONF="max_split_size_mb:128, expandable_segments:True")
    assert_blocked(
        result,
        "PYTORCH_CUDA_ALLOC_CONF=max_split_size_mb:128, expandable_segments:True: expandable_segments:True breaks PyTorch's allocator on "
        "Jetson and the benchmark refuses to start with it; unset it (or set expandable_segments:False), also where your shell sets it, "
        "then run this again",
    )
    assert setup(jetson, PYTORCH_CUDA_ALLOC_CONF="Expandable_Segments: true,max_split_size_mb:128").returncode == 2  # as the CLI reads it
    assert setup(jetson, "--check", PYTORCH_CUDA_ALLOC_CONF="expandable_segments:False").returncode == 0


def test_setup_on_a_good_jetson_installs_and_says_what_to_change(jetson):
    python3 = shutil.which("python3")  # no PYTHON: python3 from PATH, for the checks and the installer
    version = subprocess.run([python3, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True)
    result = setup(jetson, PYTHON="")
    assert (result.returncode, result.stderr) == (0, ""), result.stdout
    assert f"install.sh PYTHON={python3}" in jetson.calls()  # the installer ran, with the interpreter that was checked
    out = result.stdout.splitlines()
    assert out[:3] == [
        "board: NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super; L4T R36.4.3 (JetPack 6)",
        f"python: {version.stdout.strip()} ({python3})",
        "torch: 2.5.0a0+872d972e41.nv24.08 (CUDA 12.6, GPU: Orin); torchvision: 0.20.0a0+afc54f7",
    ]
    for line in (
        "  nvpmodel -q: NV Power Mode: 15W 0",
        "  change: power mode 15W: sudo nvpmodel -m 2 for MAXN_SUPER (it may ask for a reboot)",
        "    GPU MinFreq=306000000 MaxFreq=1020000000 CurrentFreq=306000000",  # the clocks, as jetson_clocks --show says them
        "  change: clocks not locked (GPU 306-1020 MHz, now 306): sudo jetson_clocks before the run (a reboot undoes it)",
        "  change: fan under dynamic control (pwm 49/255): sudo jetson_clocks --fan runs it at full speed, so heat does not throttle the "
        "clocks mid-run",
        "  change: a desktop starts at boot (it takes RAM the GPU shares, and GPU time): sudo systemctl set-default multi-user.target && "
        "sudo reboot (undo: set-default graphical.target)",
        "  memory: 5.1 GiB available of 7.4 GiB (CPU and GPU share it); swap 3.7 GiB, 0.1 GiB used",
        "  change: only 69% of the RAM is available: stop other programs (and the desktop) before the run",
        "  ok: PYTORCH_CUDA_ALLOC_CONF has no expandable_segments:True",
    ):
        assert line in out
    assert any(line.startswith("  change: swap is on (3.7 GiB; zram on JetPack)") for line in out)
    assert out[-1].startswith("ready: 6 thing(s) to change above for a clean benchmark; next: bash scripts/download_checkpoints.sh")


def test_setup_on_a_tuned_jetson_has_nothing_to_change(jetson):
    jetson.power_mode("MAXN_SUPER", 2, LOCKED)
    jetson.write("default-target", "multi-user.target\n")
    jetson.write("proc/meminfo", "MemTotal: 7802344 kB\nMemAvailable: 7400000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n", root=True)
    result = setup(jetson, "--check")
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith("  ok: ") or line.startswith("  change: ")] == [
        "  ok: power mode MAXN_SUPER",
        "  ok: clocks locked (GPU at 1020 MHz)",
        "  ok: fan at full speed",
        "  ok: no desktop (multi-user.target)",
        "  ok: 94% of the RAM available",
        "  ok: PYTORCH_CUDA_ALLOC_CONF has no expandable_segments:True",
    ]
    assert "install: skipped (--check)" in result.stdout and not any(call.startswith("install.sh") for call in jetson.calls())


def test_setup_without_root_asks_sudo_without_a_password_then_says_how_to_see_the_clocks(jetson):
    jetson.write("jetson_clocks-needs-root", "")
    result = setup(jetson, "--check")
    assert result.returncode == 0, result.stderr
    assert "sudo -n jetson_clocks --show" in jetson.calls()
    assert "  change: clocks unknown: jetson_clocks --show needs root here; see them with: sudo jetson_clocks --show" in result.stdout


def test_setup_refuses_an_install_that_replaced_torch(jetson):
    jetson.write("install-replaces-torch", "")
    assert_blocked(
        setup(jetson),
        f"the install changed torch (2.5.0a0+872d972e41.nv24.08, CUDA 12.6 -> 2.9.1+cpu, CUDA none, GPU 0): re{WHEELS}, and report this",
    )


# --- overnight.sh -----------------------------------------------------------------------------

FRAME_DELAY_S = "0.05"  # fake_slow's 7 jobs take about 4 s: time to kill the run in the middle


@pytest.fixture(scope="module")
def split(synthetic_split):
    return synthetic_split(videos=3, frames=13)  # 3 + 2 + 2 objects, 14 jobs with two models


@pytest.fixture(scope="module")
def reference_keys(split, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref.csv"
    assert cli_with_fakes("--split_dir", str(split), "--models", "static_mask,fake_slow", "--output", str(out)).returncode == 0
    return sorted(keys_of(out))


class Night:
    """overnight.sh with a stand-in Jetson, started in `home` with the split linked there as
    ./split (a relative path: every later attempt must run where the first was started)."""

    def __init__(self, jetson: Jetson, home: Path, split: Path, **variables: str) -> None:
        self.jetson, self.home, self.out = jetson, home, home / "night"
        (home / "split").symlink_to(split)
        defaults = dict(
            PYTHON=sys.executable,
            PYTHONPATH=os.pathsep.join([str(ROOT / "tests" / "plugins"), str(ROOT)]),
            SAV_BENCHMARK_PLUGINS="fake_runners",
            HF_HUB_OFFLINE="1",
            FAKE_FRAME_DELAY_S=FRAME_DELAY_S,
            SAV_OVERNIGHT_BOOT_DELAY_S="0",
            SAV_OVERNIGHT_RESTART_DELAY_S="0.2",
            SAV_OVERNIGHT_START_WAIT_S="60",
        )
        self.env = jetson.environment(**{**defaults, **variables})

    def __call__(self, *args: str, **variables: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(OVERNIGHT), *args], capture_output=True, text=True, env={**self.env, **variables}, cwd=self.home, timeout=300
        )

    def start(self, *run_args: str) -> subprocess.CompletedProcess:
        return self("start", "night", "--", "--split_dir", "split", "--models", "static_mask,fake_slow", *run_args)

    @property
    def csv(self) -> Path:
        return self.out / "results.csv"

    def state(self) -> str:
        return (self.out / "overnight" / "state").read_text().strip()

    def log(self) -> str:
        return (self.out / "overnight" / "log").read_text()

    def loop_pid(self) -> int:
        return int((self.out / "overnight" / "pid").read_text())

    def running(self) -> bool:
        """Whether a loop (or the run it started) holds the folder's lock."""
        with open(self.out / "overnight" / "loop.lock") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False

    def wait_for_rows(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.csv.exists() and self.csv.read_text().count("\n") >= count + 1:
                return
            assert self.state() == "running", self.log()
            time.sleep(0.02)
        raise AssertionError(f"no {count} rows after {timeout} s:\n{self.log()}")

    def wait_until_ended(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state() != "running" and not self.running():
                return self.state()
            time.sleep(0.1)
        raise AssertionError(f"still running after {timeout} s:\n{self.log()}")

    def boot_hooks(self) -> list[str]:
        table = self.jetson.state / "crontab"
        lines = table.read_text().splitlines() if table.exists() else []
        return [line for line in lines if line.startswith("@reboot") and line.endswith(f"# sav-overnight {self.out}")]

    def kill_everything(self) -> None:
        """As a power cut or a reboot: SIGKILL to the loop's whole process group, the run in it."""
        os.killpg(os.getpgid(self.loop_pid()), signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self.running():
            assert time.monotonic() < deadline, "the lock is still held after the kill"
            time.sleep(0.05)


@pytest.fixture
def night(jetson, tmp_path, split):
    made = []

    def make(**variables: str) -> Night:
        made.append(Night(jetson, tmp_path, split, **variables))
        return made[-1]

    yield make
    for each in made:  # leave no loop behind, whatever the test did
        try:
            if each.running():
                os.killpg(os.getpgid(each.loop_pid()), signal.SIGKILL)
        except (OSError, ValueError):
            pass


def assert_every_job_once(night: Night, reference_keys) -> None:
    keys = keys_of(night.csv)
    assert sorted(keys) == reference_keys, "a row lost or doubled"
    with open(f"{night.csv}.traces.csv", newline="") as f:
        frames = [(r["video_id"], r["object_id"], r["model"], r["frame"]) for r in csv.DictReader(f)]
    assert len(set(frames)) == len(frames), "a frame has two trace records"
    assert {frame[:3] for frame in frames} <= set(keys)


def assert_morning_files(night: Night) -> None:
    status = (night.out / "status.txt").read_text()
    assert status.startswith(f"{night.csv}: finished at ") and "jobs: 14 of 14 have a row (100%); 0 failed" in status
    assert (night.out / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert "| fake_slow |" in (night.out / "report.md").read_text()
    assert night.boot_hooks() == []  # the run is over: nothing to continue at boot


def test_a_reboot_in_the_middle_is_continued_by_the_boot_hook_with_every_row_once(jetson, night, reference_keys):
    jetson.write("linger", "yes\n")  # the user manager outlives the ssh session: a transient unit
    jetson.power_mode("MAXN_SUPER", 2, LOCKED)
    run = night()
    started = run.start()
    assert started.returncode == 0, started.stderr + run.log()
    assert started.stdout.startswith("overnight.sh: started (systemd-run --user unit sav-overnight-")
    assert [c for c in jetson.calls() if c.startswith("systemd-run")] and not [c for c in jetson.calls() if c.startswith("tmux")]
    assert len(run.boot_hooks()) == 1
    run.wait_for_rows(4)

    run.kill_everything()  # the reboot: the unit and the run die with no chance to clean up
    jetson.power_mode("15W", 0, UNLOCKED)  # and the board comes back with the clocks unlocked, in another mode
    assert run.state() == "running" and 4 <= len(keys_of(run.csv)) < 14
    status = run("status", "night")
    assert status.returncode == 1
    assert "overnight.sh: running; running now: no; attempts: 1;" in status.stdout
    assert "not running now: the next boot continues it (crontab @reboot)" in status.stdout
    assert "it was killed (kill -9, power, the OOM killer)" in status.stdout  # the CLI's own status follows

    (hook,) = run.boot_hooks()  # what cron runs at boot: its shell, its bare environment, in the home folder
    cron = {"HOME": os.environ.get("HOME", "/"), "LOGNAME": "root", "SHELL": "/bin/sh", "PATH": "/usr/bin:/bin"}
    booted = subprocess.run(["/bin/sh", "-c", hook.removeprefix("@reboot ")], capture_output=True, text=True, env=cron, cwd="/", timeout=60)
    assert booted.returncode == 0, booted.stderr
    assert run.wait_until_ended() == "done", run.log()

    assert_every_job_once(run, reference_keys)
    assert_morning_files(run)
    log = run.log()
    assert "attempt 1, 0 lines" in log and "attempt 2, " in log and "attempt 3" not in log
    assert len([c for c in jetson.calls() if c.startswith("systemd-run --user")]) == 2
    before, resumed, after = ((run.out / f"power-{when}.txt").read_text() for when in ("before", "resumed-1", "after"))
    assert "$ nvpmodel -q\nNV Power Mode: MAXN_SUPER\n2\n$ jetson_clocks --show\n" in before
    assert "GPU MinFreq=1020000000 MaxFreq=1020000000" in before
    for record in (resumed, after):
        assert "$ nvpmodel -q\nNV Power Mode: 15W\n0\n$ jetson_clocks --show\n" in record and "GPU MinFreq=306000000" in record
    assert resumed.startswith("# after a reboot (overnight.sh resume): ") and after.startswith("# after the run (done): ")
    final = run("status", "night")
    assert final.returncode == 0 and final.stdout.startswith("overnight.sh: done; running now: no; attempts: 2;")


def test_a_crash_of_the_run_is_run_again_by_the_loop_in_tmux(jetson, night, reference_keys):
    run = night()  # no linger: a user unit would end at logout, so tmux
    started = run.start()
    assert started.returncode == 0, started.stderr + run.log()
    assert started.stdout.startswith("overnight.sh: started (tmux session sav-overnight-")
    assert not [c for c in jetson.calls() if c.startswith("systemd-run")]
    run.wait_for_rows(3)
    children = subprocess.run(["pgrep", "-P", str(run.loop_pid())], capture_output=True, text=True).stdout.split()
    assert len(children) == 1
    os.kill(int(children[0]), signal.SIGKILL)  # the driver dies (the OOM killer, a segfault): the loop lives on
    assert run.wait_until_ended() == "done", run.log()
    assert "the run died (exit code 137, SIGKILL): again in 0.2 s" in run.log()
    assert (run.out / "overnight" / "attempts").read_text().strip() == "2"
    assert_every_job_once(run, reference_keys)
    assert_morning_files(run)
    assert not (run.out / "power-resumed-1.txt").exists() and (run.out / "power-after.txt").exists()


def test_a_run_that_dies_at_once_every_time_is_given_up(jetson, night, tmp_path):
    python = tmp_path / "dying-python"
    python.write_text("#!/bin/sh\nkill -9 $$\n")  # a driver that dies before its first row, every time
    python.chmod(0o755)
    run = night(PYTHON=str(python), SAV_OVERNIGHT_MAX_STALLED="2", SAV_OVERNIGHT_LAUNCHER="setsid")
    started = run.start()
    assert run.wait_until_ended() == "gave-up", run.log()
    assert started.returncode == 1 and "the run ended already: gave-up" in started.stdout
    assert (run.out / "overnight" / "attempts").read_text().strip() == "2"
    assert "2 attempts in a row added no row; fix the cause" in run.log()
    assert run.boot_hooks() == []  # a reboot would not help either
    assert run("resume", "--boot", "night").returncode == 0 and (run.out / "overnight" / "attempts").read_text().strip() == "2"


def test_stop_ends_the_run_between_rows_and_a_boot_leaves_it_stopped_until_resume(jetson, night, reference_keys):
    jetson.write("linger", "yes\n")
    run = night()
    assert run.start().returncode == 0, run.log()
    run.wait_for_rows(3)
    stopped = run("stop", "night")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.endswith(f"overnight.sh: stopped; nothing continues it at boot. To continue: bash {OVERNIGHT} resume {run.out}\n")
    assert run.state() == "stopped" and not run.running() and run.boot_hooks() == []
    assert "interrupted by SIGTERM; the current job was cleaned up and left no row" in run.log()
    rows = len(keys_of(run.csv))
    assert 3 <= rows < 14

    booted = run("resume", "--boot", "night")  # a reboot now: the run stays stopped
    assert booted.returncode == 0 and run.state() == "stopped" and len(keys_of(run.csv)) == rows
    resumed = run("resume", "night")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed (systemd-run --user unit" in resumed.stdout
    assert run.wait_until_ended() == "done", run.log()
    assert_every_job_once(run, reference_keys)
    assert_morning_files(run)
    assert (run.out / "power-resumed-1.txt").read_text().startswith("# resumed by hand (overnight.sh resume): ")


def test_start_refuses_what_cannot_run_in_one_line(jetson, night):
    run = night()
    result = run("start", "night", "--", "--split_dir", "split", "--output", "x.csv")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "overnight.sh: leave out --output: the run's CSV is OUT_DIR/results.csv\n"
    assert not run.out.exists()

    refused = run("start", "night", "--", "--split_dir", "split", "--models", "no_such_model")
    assert refused.returncode == 2
    assert refused.stderr.startswith("overnight.sh: the run was refused: jetson_benchmark.py: error: ")
    assert refused.stderr.count("\n") == 1 and "no_such_model" in refused.stderr
    assert run.wait_until_ended() == "refused" and run.boot_hooks() == []
    assert "no rows: the run was refused" in (run.out / "status.txt").read_text()

    for folder in ("night%1", "nuit-\u00e9t\u00e9"):  # cron reads % as a newline; /bin/sh cannot read $'...' quoting
        odd = run("start", folder, "--", "--split_dir", "split", "--models", "static_mask")
        assert odd.returncode == 2 and odd.stderr.endswith(
            "a path with %, a newline or characters other than printable ASCII cannot go in a crontab line\n"
        ), odd.stderr

    again = run.start()
    assert again.returncode == 2
    assert again.stderr == (
        f"overnight.sh: night: a run was started there already: bash {OVERNIGHT} status night (or resume it, or choose another folder)\n"
    )
    assert run("resume", "night").returncode == 2
