"""--shard auto: K/N from the array job the program runs in (a Slurm job array, a Kubernetes Indexed
Job), through the CLI as the scheduler starts it (its variables set, exact output), the part each
task then runs, the manifest's record of where it came from, and every refusal as one line before
any work. Slurm's variables are made here as slurmctld makes them from --array (`slurm`)."""

import json
import re

import pytest
from conftest import assert_usage_error, cli, keys_of, rows_of

from sav_benchmark.errors import UsageError
from sav_benchmark.split import parse_shard

SCHEDULER_VARIABLES = (
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_STEP",
    "JOB_COMPLETION_INDEX",
)
# Empty counts as unset: the tests' own environment (a CI job that is itself a Slurm task) must not leak in.
UNSET = {name: "" for name in SCHEDULER_VARIABLES}


def slurm_ids(spec: str) -> list[int]:
    """The task ids of sbatch --array=spec: ranges A-B with an optional :STEP, commas, a %LIMIT."""
    ids = set()
    for part in spec.partition("%")[0].split(","):
        span, _, step = part.partition(":")
        first, _, last = span.partition("-")
        ids.update(range(int(first), int(last or first) + 1, int(step or 1)))
    return sorted(ids)


def slurm(spec: str, task: int) -> dict[str, str]:
    """What Slurm (src/slurmctld/job_mgr.c, _create_job_array) puts in the environment of task
    `task` of --array=spec: the array's count, lowest and highest id, and as its step the number
    after the first ':' of the spec, else 1, whatever the ids are."""
    ids = slurm_ids(spec)
    assert task in ids
    step = re.match(r"\d*", spec.partition(":")[2]).group() or "1"
    return {
        **UNSET,
        "SLURM_ARRAY_TASK_ID": str(task),
        "SLURM_ARRAY_TASK_COUNT": str(len(ids)),
        "SLURM_ARRAY_TASK_MIN": str(ids[0]),
        "SLURM_ARRAY_TASK_MAX": str(ids[-1]),
        "SLURM_ARRAY_TASK_STEP": step,
    }


def kubernetes(index: int | str) -> dict[str, str]:
    return {**UNSET, "JOB_COMPLETION_INDEX": str(index)}


def test_the_slurm_emulation_gives_what_slurm_documents():
    assert slurm("1-7:2", 5) == {**UNSET, **dict(zip(SCHEDULER_VARIABLES[:5], ("5", "4", "1", "7", "2")))}
    assert slurm("1,3,5", 3)["SLURM_ARRAY_TASK_STEP"] == "1"  # a list has no ':', so its step reads 1
    assert slurm_ids("0-15:4%2") == [0, 4, 8, 12]


def prepared(tmp_path, name: str, split, shard: str, **variables: str) -> tuple[object, dict]:
    output = tmp_path / f"{name}.json"
    result = cli("prepare", "--split_dir", split, "--shard", shard, "--output", output, **{**UNSET, **variables})
    return result, (json.loads(output.read_text()) if output.exists() else {})


@pytest.mark.parametrize(
    "spec, task, expected",
    [("0-3", 2, "3/4"), ("1-4", 3, "3/4"), ("0-6:2", 4, "3/4"), ("1-7:2", 7, "4/4"), ("4", 4, "1/1"), ("0,1,2,3", 0, "1/4")],
    ids=["0-based", "1-based", "stepped", "stepped-from-1", "one-task", "contiguous-list"],
)
def test_a_slurm_array_task_prepares_exactly_what_shard_k_n_prepares(synthetic_split, tmp_path, spec, task, expected):
    split = synthetic_split(videos=4, frames=5, width=48, height=32)
    result, made = prepared(tmp_path, "auto", split, "auto", **slurm(spec, task))
    given, same = prepared(tmp_path, "given", split, expected)
    videos, objects = len(same["videos"]), sum(len(video["objects"]) for video in same["videos"])
    assert (given.returncode, given.stdout) == (0, f"prepared {videos} videos, {objects} objects: {tmp_path / 'given.json'}\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, given.stdout.replace("given.json", "auto.json"), "")
    assert made["shard"] == expected and made == same  # the same videos, objects, prompts


def run(split, output, shard: str, *more: str, **variables: str):
    """static_mask over the split's part: a run without a model, a second or so."""
    common = ("--split_dir", split, "--models", "static_mask", "--output", output, "--quiet")
    return cli(*common, "--shard", shard, *more, **{**UNSET, **variables})


def manifest(output) -> dict:
    return json.loads((output.parent / f"{output.name}.json").read_text())


def test_every_task_of_a_1_based_array_runs_its_own_part_and_the_parts_merge_into_the_whole(synthetic_split, tmp_path):
    split = synthetic_split(videos=3, frames=5, width=48, height=32)
    outputs = [tmp_path / f"task{task}.csv" for task in (1, 2, 3)]
    for task, output in zip((1, 2, 3), outputs):
        result = run(split, output, "auto", **slurm("1-3", task))
        assert (result.returncode, result.stderr, result.stdout.splitlines()[-1]) == (0, "", f"rows: {output}  manifest: {output}.json")
        assert {row["video_id"] for row in rows_of(output)} == {f"synth_{task - 1:03d}"}
        assert (manifest(output)["shard"], manifest(output)["shard_source"]) == (f"{task}/3", "slurm")
    merged = tmp_path / "merged.csv"
    result = cli("compare", *outputs, "--merge", merged)
    count = sum(len(rows_of(output)) for output in outputs)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"merged {count} rows from 3 files: {merged}\n", "")
    result = cli("compare", outputs[0], outputs[2], "--merge", tmp_path / "part.csv")  # task 2 never ran
    assert (result.returncode, result.stderr) == (
        0,
        "jetson_benchmark.py: warning: shard 2/3 is not among the files: the merged run is incomplete\n",
    )


def test_a_kubernetes_pod_runs_the_part_after_its_index_of_the_completions_given(synthetic_split, tmp_path):
    split = synthetic_split(videos=4, frames=5, width=48, height=32)
    output = tmp_path / "pod1.csv"
    result = run(split, output, "auto/4", **kubernetes(1))
    assert (result.returncode, result.stderr) == (0, "")
    assert {row["video_id"] for row in rows_of(output)} == {"synth_001"}
    made = manifest(output)
    assert (made["shard"], made["shard_source"], made["config"]["shard"]) == ("2/4", "kubernetes", [2, 4])


def test_a_given_shard_records_no_source(synthetic_split, tmp_path):
    output = tmp_path / "given.csv"
    assert run(synthetic_split(videos=4, frames=5, width=48, height=32), output, "2/4", **slurm("0-3", 3)).returncode == 0
    assert manifest(output)["shard"] == "2/4" and "shard_source" not in manifest(output)  # the flag wins over the scheduler


def test_the_same_array_task_restarted_resumes_the_same_part(synthetic_split, tmp_path):
    split = synthetic_split(videos=4, frames=5, width=48, height=32)
    output = tmp_path / "task.csv"
    task = slurm("0-6:2", 2)
    assert run(split, output, "auto", **task).returncode == 0
    rows = keys_of(output)
    result = run(split, output, "auto", "--resume", **task)
    assert (result.returncode, result.stderr) == (0, "")
    assert keys_of(output) == rows  # every job of the part had its row: nothing ran twice, nothing else joined
    first, again = manifest(output), manifest(output)["resumed"][-1]
    assert (first["shard"], first["shard_source"], first["config"]["shard"]) == ("2/4", "slurm", [2, 4])
    assert (again["shard_source"], again["config"]["shard"], again["videos"]) == ("slurm", [2, 4], first["videos"])


def test_resuming_a_csv_with_another_shard_is_refused_before_any_work(synthetic_split, tmp_path):
    """An array resubmitted with another size would put two parts' rows in one CSV, which a merge would then count twice."""
    split = synthetic_split(videos=4, frames=5, width=48, height=32)
    output = tmp_path / "task.csv"
    assert run(split, output, "auto", **slurm("0-3", 1)).returncode == 0
    before = output.read_bytes()
    result = run(split, output, "auto", "--resume", **slurm("0-2", 1))
    assert_usage_error(
        result,
        "--resume: settings differ from the earlier run's (shard '2/4' -> '2/3'); its rows would not be comparable. "
        "Use the same settings, a new --output, or --force",
    )
    assert output.read_bytes() == before


ASK = "give --shard K/N"
REFUSALS = [
    (
        "auto",
        UNSET,
        "--shard auto: neither SLURM_ARRAY_TASK_ID (a task of a Slurm job array, sbatch --array) nor JOB_COMPLETION_INDEX "
        f"(a pod of a Kubernetes Indexed Job) is set here; run it as such a task, or {ASK}",
    ),
    (
        "auto/4",
        UNSET,
        "--shard auto/4: neither SLURM_ARRAY_TASK_ID (a task of a Slurm job array, sbatch --array) nor JOB_COMPLETION_INDEX "
        f"(a pod of a Kubernetes Indexed Job) is set here; run it as such a task, or {ASK}",
    ),
    (
        "auto",
        kubernetes(2),
        "--shard auto: JOB_COMPLETION_INDEX=2 is set, but Kubernetes does not give the Job's number of completions; "
        "give it as --shard auto/N, N the Job's spec.completions",
    ),
    (
        "auto/4",
        kubernetes(4),
        "--shard auto/4: JOB_COMPLETION_INDEX=4 is outside 0..3, the indexes of an Indexed Job of 4 completions; "
        "give N as the Job's spec.completions",
    ),
    (
        "auto/4",
        kubernetes("two"),
        "--shard auto/4: JOB_COMPLETION_INDEX='two' is not a whole number, 0 or more; it should come from Kubernetes: "
        f"do not set it by hand, or {ASK}",
    ),
    (
        "auto",
        slurm("1,3,5", 3),
        "--shard auto: the Slurm array's ids are not evenly spaced (SLURM_ARRAY_TASK_COUNT=3 ids from SLURM_ARRAY_TASK_MIN=1 "
        "to SLURM_ARRAY_TASK_MAX=5 by SLURM_ARRAY_TASK_STEP=1, as a list such as --array=1,3,5 gives), so task "
        f"SLURM_ARRAY_TASK_ID=3 has no part of its own; submit --array as a range (A-B or A-B:STEP, e.g. --array=0-2), or {ASK}",
    ),
    (
        "auto",
        slurm("1-7:2,20", 1),
        "--shard auto: the Slurm array's ids are not evenly spaced (SLURM_ARRAY_TASK_COUNT=5 ids from SLURM_ARRAY_TASK_MIN=1 "
        "to SLURM_ARRAY_TASK_MAX=20 by SLURM_ARRAY_TASK_STEP=2, as a list such as --array=1,3,5 gives), so task "
        f"SLURM_ARRAY_TASK_ID=1 has no part of its own; submit --array as a range (A-B or A-B:STEP, e.g. --array=0-4), or {ASK}",
    ),
    (
        "auto",
        {**slurm("0-7", 7), "SLURM_ARRAY_TASK_ID": "9"},
        "--shard auto: SLURM_ARRAY_TASK_ID=9 is outside the array (SLURM_ARRAY_TASK_COUNT=8 ids from SLURM_ARRAY_TASK_MIN=0 "
        f"to SLURM_ARRAY_TASK_MAX=7 by SLURM_ARRAY_TASK_STEP=1); they should come from Slurm, or {ASK}",
    ),
    (
        "auto",
        {**slurm("0-7", 1), "SLURM_ARRAY_TASK_COUNT": "eight"},
        "--shard auto: SLURM_ARRAY_TASK_COUNT='eight' is not a whole number, 1 or more; it should come from Slurm: "
        f"do not set it by hand, or {ASK}",
    ),
    (
        "auto",
        {**UNSET, "SLURM_ARRAY_TASK_ID": "1"},
        "--shard auto: SLURM_ARRAY_TASK_ID=1 is set but SLURM_ARRAY_TASK_COUNT is not, though Slurm sets both for every task "
        f"of a job array; {ASK}",
    ),
    (
        "auto/8",
        slurm("0-3", 1),
        "--shard auto/8: the Slurm array has SLURM_ARRAY_TASK_COUNT=4 tasks, not 8; give --shard auto (the count from Slurm), "
        "or submit --array with 8 tasks",
    ),
    (
        "auto/4",
        {**slurm("0-3", 1), "JOB_COMPLETION_INDEX": "1"},
        "--shard auto/4: both SLURM_ARRAY_TASK_ID=1 (Slurm) and JOB_COMPLETION_INDEX=1 (Kubernetes) are set, so which of them "
        f"numbers this part is unclear; unset the one that does not belong to this job, or {ASK}",
    ),
    (
        "auto/0",
        kubernetes(0),
        "argument --shard: must be auto, or auto/N with N the number of parts (1 or more), not auto/0 (see jetson_benchmark.py run --help)",
    ),
]


@pytest.mark.parametrize(
    "shard, variables, message",
    REFUSALS,
    ids=[
        "none-set",
        "none-set-with-count",
        "kubernetes-without-count",
        "kubernetes-index-outside",
        "kubernetes-not-a-number",
        "slurm-list",
        "slurm-stepped-range-and-more",
        "slurm-task-outside",
        "slurm-not-a-number",
        "slurm-count-missing",
        "slurm-count-differs",
        "both",
        "count-zero",
    ],
)
def test_a_shard_auto_that_cannot_be_resolved_is_refused_as_one_line_before_any_work(tmp_path, shard, variables, message):
    output = tmp_path / "o.csv"
    result = run(tmp_path / "no-such-split", output, shard, **variables)  # the shard is refused first
    assert_usage_error(result, message)
    assert list(tmp_path.iterdir()) == []


ARRAYS = ["0-7", "1-8", "0-15:2", "3-21:3", "0-15%4", "0-15:4%2", "5", "0,1,2,3", "1,3,5", "0,1,4", "1-7:2,20", "0-4:2,5,7", "0-0:2,1,4"]
EVENLY_SPACED = {"0-7", "1-8", "0-15:2", "3-21:3", "0-15%4", "0-15:4%2", "5", "0,1,2,3"}


@pytest.mark.parametrize("spec", ARRAYS)
def test_no_two_tasks_of_an_array_get_one_part_and_an_evenly_spaced_array_gets_every_part_in_order(spec):
    ids = slurm_ids(spec)
    parts = {}
    for task in ids:
        try:
            parts[task] = parse_shard("auto", slurm(spec, task))
        except UsageError:
            pass
    assert len(set(parts.values())) == len(parts) and all(shard[1] == len(ids) for shard in parts.values())
    assert {shard.source for shard in parts.values()} <= {"slurm"}
    if spec in EVENLY_SPACED:
        assert [parts.get(task) for task in ids] == [(k, len(ids)) for k in range(1, len(ids) + 1)]
    else:
        assert len(parts) < len(ids)  # the pathological "0-0:2,1,4": ids 0 and 4 fit steps of 2, task 1 is refused


@pytest.mark.parametrize("completions", [1, 2, 5])
def test_every_pod_of_an_indexed_job_gets_its_own_part(completions):
    parts = [parse_shard(f"auto/{completions}", kubernetes(index)) for index in range(completions)]
    assert parts == [(k, completions) for k in range(1, completions + 1)]
    assert {part.source for part in parts} == {"kubernetes"}


def test_the_shard_of_a_prepared_split_is_the_runs_shard_when_resumed(synthetic_split, tmp_path):
    """--prepared forbids --shard: the part the prepared split holds is what the rows cover, and what a resume compares."""
    split = synthetic_split(videos=4, frames=5, width=48, height=32)
    output = tmp_path / "r.csv"
    assert run(split, output, "1/2").returncode == 0
    common = ("--models", "static_mask", "--output", output, "--quiet", "--resume")
    result = cli("--prepared", f"{output}.prepared.json", *common, **UNSET)
    assert (result.returncode, result.stderr) == (0, "")  # the same part, given by its prepared split
    for part in ("1/2", "2/2"):
        assert cli("prepare", "--split_dir", split, "--shard", part, "--output", tmp_path / f"p{part[0]}.json", **UNSET).returncode == 0
    before = output.read_bytes()
    result = cli("--prepared", tmp_path / "p2.json", *common, **UNSET)
    assert_usage_error(
        result,
        "--resume: settings differ from the earlier run's (shard '1/2' -> '2/2'); its rows would not be comparable. "
        "Use the same settings, a new --output, or --force",
    )
    assert output.read_bytes() == before


def test_a_printed_resume_command_names_the_part_so_that_it_runs_outside_the_array_too():
    from pathlib import Path

    from sav_benchmark.resume import resume_arguments

    command = ["python", "jetson_benchmark.py", "--split_dir", "s", "--shard", "auto", "--output", "o.csv"]
    assert resume_arguments(command, Path("o.csv"), shard="3/8") == (
        "python jetson_benchmark.py --split_dir s --shard 3/8 --output o.csv --resume"
    )
    assert resume_arguments(["jetson-benchmark", "--shard=auto/4"], Path("o.csv"), True, "2/4") == (
        "jetson-benchmark --shard=2/4 --resume --retry_failed --output o.csv"
    )
    assert resume_arguments(["jetson-benchmark", "--shard", "1/2"], Path("o.csv"), shard="1/2") == (
        "jetson-benchmark --shard 1/2 --resume --output o.csv"
    )
