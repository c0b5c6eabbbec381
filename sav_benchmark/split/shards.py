"""`--shard auto`: the part K/N of the array job this process runs in, read from its scheduler's
environment, so that one command serves every task of the array.

- A Slurm job array (sbatch --array): Slurm gives each task SLURM_ARRAY_TASK_ID and, for the whole
  array, SLURM_ARRAY_TASK_COUNT (its number of tasks), _MIN and _MAX (its lowest and highest id) and
  _STEP (the number after ':' in --array, else 1). The ids MIN, MIN+STEP, ..., MAX are parts 1..N.
  An array whose ids are not so spaced (a list such as --array=1,3,5, reported with step 1) cannot
  be numbered from these variables alone, and is refused: only a task whose id lies on that grid
  gets a part, so no two tasks ever get the same one.
- A Kubernetes Indexed Job: each pod has JOB_COMPLETION_INDEX, 0 to completions-1, but not the
  number of completions, so it is given: `auto/N`. With Slurm, N must be the array's task count.

A task restarted (Slurm requeue, a pod replaced with the same index) reads the same variables and
so runs the same part. Anything missing or inconsistent is refused before any work, as one line.
"""

from __future__ import annotations

from typing import Mapping

from ..errors import UsageError

SLURM, KUBERNETES = "slurm", "kubernetes"  # where an automatic shard came from, as the run's manifest records it
SLURM_ID, SLURM_COUNT, SLURM_MIN, SLURM_MAX, SLURM_STEP = (
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_STEP",
)
K8S_INDEX = "JOB_COMPLETION_INDEX"
GIVE_IT = "give --shard K/N"


class Shard(tuple):
    """(K, N), the K-th of N parts counting from 1, as --shard K/N gives it, with where `auto` found it."""

    source = ""  # SLURM or KUBERNETES


def _shard(k: int, n: int, source: str) -> Shard:
    shard = Shard((k, n))
    shard.source = source
    return shard


def is_automatic(text: str) -> bool:
    return text == "auto" or text.startswith("auto/")


def scheduler_shard(text: str, environ: Mapping[str, str]) -> Shard:
    """K/N for `auto` or `auto/N` from the scheduler's variables in environ (an empty one counts as
    unset). Raises ValueError for a malformed N, UsageError for anything the environment lacks."""
    count = None
    if text != "auto":
        given = text.removeprefix("auto/")
        if not (given.isascii() and given.isdigit() and int(given) >= 1):
            raise ValueError(f"--shard must be auto, or auto/N with N the number of parts (1 or more), not {text}")
        count = int(given)
    slurm, index = environ.get(SLURM_ID, ""), environ.get(K8S_INDEX, "")
    if slurm and index:
        raise UsageError(
            f"--shard {text}: both {SLURM_ID}={_shown(slurm)} (Slurm) and {K8S_INDEX}={_shown(index)} (Kubernetes) are set, so "
            f"which of them numbers this part is unclear; unset the one that does not belong to this job, or {GIVE_IT}"
        )
    if slurm:
        return _slurm_shard(text, count, environ)
    if index:
        return _kubernetes_shard(text, count, index)
    raise UsageError(
        f"--shard {text}: neither {SLURM_ID} (a task of a Slurm job array, sbatch --array) nor {K8S_INDEX} (a pod of a "
        f"Kubernetes Indexed Job) is set here; run it as such a task, or {GIVE_IT}"
    )


def _shown(value: str) -> str:
    return value if value.isascii() and value.isdigit() else repr(value)  # quoted, on one line, unless a plain number


def _whole(text: str, name: str, value: str, least: int, who: str) -> int:
    if not (value.isascii() and value.isdigit() and int(value) >= least):
        raise UsageError(
            f"--shard {text}: {name}={_shown(value)} is not a whole number, {least} or more; it should come from {who}: "
            f"do not set it by hand, or {GIVE_IT}"
        )
    return int(value)


def _slurm_shard(text: str, count: int | None, environ: Mapping[str, str]) -> Shard:
    task = _whole(text, SLURM_ID, environ[SLURM_ID], 0, "Slurm")
    for name in (SLURM_COUNT, SLURM_MIN, SLURM_MAX):
        if not environ.get(name):
            raise UsageError(
                f"--shard {text}: {SLURM_ID}={task} is set but {name} is not, though Slurm sets both for every task of a job "
                f"array; {GIVE_IT}"
            )
    n = _whole(text, SLURM_COUNT, environ[SLURM_COUNT], 1, "Slurm")
    first = _whole(text, SLURM_MIN, environ[SLURM_MIN], 0, "Slurm")
    last = _whole(text, SLURM_MAX, environ[SLURM_MAX], 0, "Slurm")
    step = _whole(text, SLURM_STEP, environ.get(SLURM_STEP) or "1", 1, "Slurm")
    read = f"{SLURM_COUNT}={n} ids from {SLURM_MIN}={first} to {SLURM_MAX}={last} by {SLURM_STEP}={step}"
    if not first <= task <= last:
        raise UsageError(f"--shard {text}: {SLURM_ID}={task} is outside the array ({read}); they should come from Slurm, or {GIVE_IT}")
    if first + (n - 1) * step != last or (task - first) % step:
        raise UsageError(
            f"--shard {text}: the Slurm array's ids are not evenly spaced ({read}, as a list such as --array=1,3,5 gives), so "
            f"task {SLURM_ID}={task} has no part of its own; submit --array as a range (A-B or A-B:STEP, e.g. --array=0-{n - 1}), "
            f"or {GIVE_IT}"
        )
    if count is not None and count != n:
        raise UsageError(
            f"--shard {text}: the Slurm array has {SLURM_COUNT}={n} tasks, not {count}; give --shard auto (the count from "
            f"Slurm), or submit --array with {count} tasks"
        )
    return _shard((task - first) // step + 1, n, SLURM)


def _kubernetes_shard(text: str, count: int | None, value: str) -> Shard:
    index = _whole(text, K8S_INDEX, value, 0, "Kubernetes")
    if count is None:
        raise UsageError(
            f"--shard {text}: {K8S_INDEX}={index} is set, but Kubernetes does not give the Job's number of completions; "
            "give it as --shard auto/N, N the Job's spec.completions"
        )
    if index >= count:
        raise UsageError(
            f"--shard {text}: {K8S_INDEX}={index} is outside 0..{count - 1}, the indexes of an Indexed Job of {count} "
            "completions; give N as the Job's spec.completions"
        )
    return _shard(index + 1, count, KUBERNETES)
