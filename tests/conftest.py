"""The tests' one harness: the program run as a user runs it (a subprocess, exact output), the
usage-error assertion, the test runners of tests/plugins, and synthetic splits made once."""

import contextlib
import csv
import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sav_benchmark.split.synthetic import make_split  # noqa: E402  (after the path above)

PROGRAM = "jetson_benchmark.py"
COMMAND = [sys.executable, str(ROOT / PROGRAM)]
USAGE_ERROR = f"{PROGRAM}: error: "  # how every refused command's one line starts


def environment(fakes: bool = False, pythonpath: tuple = (), **variables: str) -> dict[str, str]:
    """This process's environment, with the test runners of tests/plugins registered (fake_slow,
    fake_crash, ...: they fail as `variables` say) when `fakes`, and more import paths first.
    Hugging Face's hub is told it is offline: no test reaches the network."""
    assert "PYTHONPATH" not in variables, "give import paths as pythonpath=(...)"
    paths = [*map(str, pythonpath), *([str(ROOT / "tests" / "plugins")] if fakes else [])]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **variables}
    if paths:
        env["PYTHONPATH"] = os.pathsep.join([*paths, str(ROOT)])
    if fakes:
        env["SAV_BENCHMARK_PLUGINS"] = "fake_runners"
    return env


def cli(*args, fakes: bool = False, pythonpath: tuple = (), cwd: Path = ROOT, timeout: float = 900, **variables: str):
    """The program with these arguments, as a user runs it: its exit code, stdout and stderr."""
    return subprocess.run(
        [*COMMAND, *map(str, args)],
        capture_output=True,
        text=True,
        env=environment(fakes, pythonpath, **variables),
        cwd=cwd,
        timeout=timeout,
    )


def cli_with_fakes(*args, **variables: str):
    """cli with the test runners of tests/plugins."""
    return cli(*args, fakes=True, **variables)


def start(*args, fakes: bool = True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **variables: str) -> subprocess.Popen:
    """The program started in the background (with the test runners unless told), to be signalled or killed."""
    return subprocess.Popen(
        [*COMMAND, *map(str, args)], stdout=stdout, stderr=stderr, text=True, env=environment(fakes, **variables), cwd=ROOT
    )


def assert_usage_error(result, message: str) -> None:
    """Refused before any work: exit code 2, nothing on stdout, one line on stderr."""
    assert (result.returncode, result.stdout, result.stderr) == (2, "", USAGE_ERROR + message + "\n")


def rows_of(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def keys_of(path) -> list[tuple[str, str, str]]:
    return [(r["video_id"], r["object_id"], r["model"]) for r in rows_of(path)]


def wait_for_rows(path: Path, count: int, process: subprocess.Popen, timeout: float = 60) -> None:
    """Until the CSV holds `count` rows; the process must still be running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= count + 1:
            return
        assert process.poll() is None, "the run ended before it was interrupted"
        time.sleep(0.02)
    raise AssertionError(f"no {count} rows in {path} after {timeout} s")


@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """A tmpfs of `size` mounted at `folder` (made here) for the block, to fill up; the test is
    skipped where no tmpfs can be mounted (it needs root)."""
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root), so no disk can be filled")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture(scope="session")
def synthetic_split(tmp_path_factory):
    """make_split's split of this shape, made once per session and shared: tests read it and
    never change it (a test that corrupts a split makes its own)."""
    made: dict[tuple, Path] = {}

    def split(videos: int = 2, frames: int = 9, width: int = 64, height: int = 48, **options) -> Path:
        shape = (videos, frames, width, height, tuple(sorted(options.items())))
        if shape not in made:
            made[shape] = tmp_path_factory.mktemp("split")
            make_split(made[shape], videos=videos, frames=frames, width=width, height=height, **options)
        return made[shape]

    return split


TEST_INSTALL = ROOT / ".test-install"  # written by scripts/install.sh: the modules it installed


def require(module: str, reason: str = "the test install (scripts/install.sh) has it"):
    """The module, imported; where scripts/install.sh made this a test install and installed it, a
    failure to import it fails the test (a broken install is no reason to skip), elsewhere skips it."""
    promised = TEST_INSTALL.is_file() and module in TEST_INSTALL.read_text().split()
    if not promised:
        return pytest.importorskip(module, reason=reason)
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"{module} cannot be imported ({exc}), though {TEST_INSTALL} says scripts/install.sh installed it", pytrace=False)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"shared fixtures not found at {FIXTURES}: the checkout must sit beside shared/")
    return FIXTURES
