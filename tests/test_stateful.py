"""A state machine (Hypothesis) that interrupts, damages and resumes runs through the real command
line, and after every step checks the overnight promise: the CSV parses, a refused command changed
no file, no job has two rows, every row is the row an uninterrupted run gives that job, and a
`crash` row appears only where a process died without cleaning up (twice in one job).

In CI it runs a bounded number of examples with a fixed seed (under two minutes on the 2-core
development machine). SAV_BENCHMARK_STATEFUL=long runs the longer profile:

    SAV_BENCHMARK_STATEFUL=long python -m pytest tests/test_stateful.py
"""

import csv
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import (
    COMMAND,
    ROOT,
    environment,
)
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from sav_benchmark.results import COLUMNS, run_files
from sav_benchmark.split.synthetic import make_split

PROFILES = {
    # no shrinking in CI: a failure is reported as found, within the time CI has
    "ci": settings(
        max_examples=10,
        stateful_step_count=8,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=list(HealthCheck),
    ),
    "long": settings(max_examples=150, stateful_step_count=15, deadline=None, database=None, suppress_health_check=list(HealthCheck)),
}
PROFILE = os.environ.get("SAV_BENCHMARK_STATEFUL", "ci")
MODELS = "static_mask,fake_slow"  # the baseline, and a test-only runner that sleeps on every frame
FRAME_DELAY = {"FAKE_FRAME_DELAY_S": "0.02"}
JOBS = 10
KILLS = {"SIGKILL": signal.SIGKILL, "SIGINT": signal.SIGINT, "SIGHUP": signal.SIGHUP}
EXITS = {signal.SIGINT: 130, signal.SIGHUP: 129}


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}


def before_the_program(stderr):
    """A Ctrl-C while the interpreter itself starts (importing site, about 40 ms here), before any
    line of ours runs: CPython reports it with a traceback of its own and exits 1 (or goes on),
    which no program can prevent. No line of this project is in that traceback: either no file of
    ours, or only the script at line 0, the check CPython makes before the script's first line."""
    ours = [line.strip() for line in stderr.splitlines() if f'File "{ROOT}' in line]
    return "KeyboardInterrupt" in stderr and all(line == f'File "{ROOT / "jetson_benchmark.py"}", line 0, in <module>' for line in ours)


def data_lines(out):
    """The CSV's lines after the header, each with its line ending."""
    return out.read_bytes().decode().splitlines(keepends=True)[1:] if out.exists() else []


class Overnight:
    """The split, and the rows of one uninterrupted run, made once."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="stateful-"))
        self.split = self.folder / "split"
        make_split(self.split, videos=2, frames=9, width=32, height=32, objects=2)  # 3 + 2 objects, 10 jobs
        reference = self.folder / "reference.csv"
        result = self.cli("--output", str(reference))
        assert result.returncode == 0, result.stderr
        self.reference = {key(row): outcome(row) for row in csv.DictReader(reference.open(newline=""))}
        assert len(self.reference) == JOBS

    def command(self, *args: str) -> list[str]:
        return [*COMMAND, "--split_dir", str(self.split), "--models", MODELS, *args]

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(*args), capture_output=True, text=True, env=environment(True, **FRAME_DELAY), cwd=ROOT, timeout=300
        )


def key(row):
    return row["video_id"], row["object_id"], row["model"]


def outcome(row):
    return row["status"], row["J"], row["F"]


OVERNIGHT: Overnight | None = None


def overnight() -> Overnight:
    global OVERNIGHT
    if OVERNIGHT is None:
        OVERNIGHT = Overnight()
    return OVERNIGHT


class Runs(RuleBasedStateMachine):
    """Rules that do not apply to the files as they are do nothing: what applies depends on where
    a signal landed, so it cannot be a precondition, which Hypothesis needs to be repeatable."""

    def __init__(self) -> None:
        super().__init__()
        self.world = overnight()
        self.folder = Path(tempfile.mkdtemp(prefix="runs-", dir=self.world.folder))
        self.out = self.folder / "o.csv"
        self.damage = ""  # a line the test broke on purpose: "blank", "garbage" or "duplicate"
        self.deaths: Counter = Counter()  # per job: in-process runs that SIGKILL ended while it ran
        self.counted = b""  # the job-state file as it was at the last death counted

    # what a user does

    def _args(self, isolation: str, retry_failed: bool) -> list[str]:
        args = ["--output", str(self.out), "--isolation", isolation]
        if any(path.exists() for path in run_files(self.out)):  # as the refusal of a new run says
            args.append("--resume")
            if retry_failed:
                args.append("--retry_failed")
        return args

    def _expect_refusal(self, retry_failed: bool) -> bool:
        return self.damage in ("blank", "garbage") or (self.damage == "duplicate" and not retry_failed)

    def _count_death(self) -> None:
        """The job that an in-process run was running when SIGKILL ended it, from the run's own
        job-state file (each state counted once: a run killed before its first job left it as it was)."""
        current = Path(f"{self.out}.current")
        state = current.read_bytes() if current.exists() else b""
        if state and state != self.counted:
            in_progress = json.loads(state)["in_progress"]
            if in_progress:
                self.deaths[tuple(in_progress)] += 1
        self.counted = state

    def _judge(self, code: int, stderr: str, before: dict, retry_failed: bool, ended_by: int | None, isolation: str = "none") -> None:
        if code == 2:
            assert self._expect_refusal(retry_failed), stderr
            assert snapshot(self.folder) == before, "a refused command changed a file"
            assert stderr.count("\n") == 1 and stderr.startswith("jetson_benchmark.py: error: "), stderr
            return
        signalled = set() if ended_by is None else {EXITS.get(ended_by, -ended_by), -ended_by}  # -SIGINT: before Python's handler
        if ended_by is not None and before_the_program(stderr):
            signalled |= {0, 1}
        else:
            assert "Traceback" not in stderr, stderr
        if code == -signal.SIGKILL and isolation == "none":
            self._count_death()
        if self._expect_refusal(retry_failed):  # only a signal that came first keeps it from refusing
            assert code in signalled, f"damage {self.damage} was accepted: {stderr}"
            assert self.out.read_bytes() == before[self.out.name]
            return
        if self.damage == "duplicate":  # --retry_failed mends it, unless the signal came first
            keys = [key(row) for row in csv.DictReader(data_lines(self.out), fieldnames=COLUMNS)]
            self.damage = "duplicate" if len(keys) != len(set(keys)) else ""
        crashed = any(row["status"] == "crash" for row in csv.DictReader(data_lines(self.out), fieldnames=COLUMNS))
        assert code in ({0, 1} if crashed else {0}) | signalled, (code, stderr)  # 1: a job the run died in twice got a crash row

    @rule(
        isolation=st.sampled_from(["none", "process"]),
        retry_failed=st.booleans(),
        signal_name=st.sampled_from(sorted(KILLS)),
        rows_before=st.integers(0, JOBS - 1),
        delay=st.floats(0, 0.25),
    )
    def run_and_interrupt(self, isolation, retry_failed, signal_name, rows_before, delay):
        """Start or resume the run, then send a signal at a random moment: in a job, between jobs,
        while the finisher writes a row, while a worker starts."""
        before = snapshot(self.folder)
        signum = KILLS[signal_name]
        process = subprocess.Popen(
            self.world.command(*self._args(isolation, retry_failed)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(True, **FRAME_DELAY),
            cwd=ROOT,
        )
        deadline = time.monotonic() + 60
        while process.poll() is None and len(data_lines(self.out)) < rows_before and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        signalled = process.poll() is None
        if signalled:
            process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
        self._judge(process.returncode, stderr, before, retry_failed, signum if signalled else None, isolation)

    @rule(isolation=st.sampled_from(["none", "process"]), retry_failed=st.booleans())
    def resume_to_the_end(self, isolation, retry_failed):
        before = snapshot(self.folder)
        result = self.world.cli(*self._args(isolation, retry_failed))
        self._judge(result.returncode, result.stderr, before, retry_failed, None, isolation)

    @rule()
    def resume_with_other_settings(self):
        if not Path(f"{self.out}.json").exists():
            return  # nothing to differ from yet
        before = snapshot(self.folder)
        result = self.world.cli("--output", str(self.out), "--resume", "--num_points", "2")
        assert result.returncode == 2, result.stderr
        assert snapshot(self.folder) == before, "a refused command changed a file"

    # what goes wrong with the file

    @rule(garbage=st.booleans())
    def append_a_bad_line(self, garbage):
        if not self.out.exists() or self.damage or not self.out.read_bytes().endswith(b"\n"):
            return
        with open(self.out, "ab") as f:
            f.write(b"garbage,line\r\n" if garbage else b"\r\n")
        self.damage = "garbage" if garbage else "blank"

    @rule()
    def delete_the_bad_line(self):
        """What the refusal tells the user to do."""
        if self.damage not in ("blank", "garbage"):
            return
        text = self.out.read_bytes()
        self.out.write_bytes(text[: text.rstrip(b"\r\n").rfind(b"\n") + 1])
        self.damage = ""

    @rule(cut=st.floats(0.05, 0.95))
    def truncate_the_last_line(self, cut):
        """As a crash in the middle of writing a row would leave it."""
        if not data_lines(self.out) or self.damage:
            return
        lines = data_lines(self.out)
        text = self.out.read_bytes()
        last = len(lines[-1].encode())
        self.out.write_bytes(text[: len(text) - last + max(1, int(last * cut))])

    @rule(index=st.integers(0, JOBS - 1))
    def duplicate_a_row(self, index):
        if not data_lines(self.out) or self.damage or not self.out.read_bytes().endswith(b"\n"):
            return
        lines = data_lines(self.out)
        with open(self.out, "ab") as f:
            f.write(lines[index % len(lines)].encode())
        self.damage = "duplicate"

    # the promise

    @invariant()
    def rows_are_those_of_an_uninterrupted_run(self):
        lines = data_lines(self.out)
        if self.damage in ("blank", "garbage"):
            lines = lines[:-1]
        if lines and not lines[-1].endswith("\n"):
            lines = lines[:-1]  # a partial last line, which the next resume drops
        rows = list(csv.DictReader(lines, fieldnames=COLUMNS))
        assert all(None not in row and None not in row.values() for row in rows), "a row that does not parse"
        keys = [key(row) for row in rows]
        repeated = len(keys) - len(set(keys))
        assert repeated == (1 if self.damage == "duplicate" else 0), keys
        for row in rows:
            assert key(row) in self.world.reference, key(row)
            if row["status"] == "crash":
                assert self.deaths[key(row)] >= 2, (row, self.deaths)
            else:
                assert outcome(row) == self.world.reference[key(row)], (row, self.world.reference[key(row)])

    def teardown(self):
        """Whatever happened, the run can be mended and finished: every job once, as uninterrupted."""
        try:
            if self.damage in ("blank", "garbage"):
                self.delete_the_bad_line()
            result = self.world.cli(*self._args("none", retry_failed=True))
            assert result.returncode == 0, result.stderr
            rows = list(csv.DictReader(self.out.open(newline="")))
            assert {key(row): outcome(row) for row in rows} == self.world.reference and len(rows) == JOBS
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


Runs.TestCase.settings = PROFILES[PROFILE]
test_interrupted_damaged_and_resumed_runs = Runs.TestCase


@pytest.fixture(scope="module", autouse=True)
def _remove_the_split():
    yield
    if OVERNIGHT is not None:
        shutil.rmtree(OVERNIGHT.folder, ignore_errors=True)
