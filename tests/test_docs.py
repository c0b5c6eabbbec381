"""The documentation: every link resolves (files and #anchors, by GitHub's heading slugs), every docs
page is reachable from the README, every flag of every command shown exists, and every block marked
runnable runs as written.

A block is runnable when the line before its ```sh fence is `<!-- runnable -->`: a page's runnable
blocks run in order, in one temporary folder (a later block may read what an earlier one wrote),
each with `bash -euo pipefail`, and must exit 0. Commands that need what the tests cannot have
(checkpoints, a dataset, a Jetson, the network) are shown in unmarked blocks; their flags are still
checked against the parser.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from sav_benchmark.cli import build_parser

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = "<!-- runnable -->"
FENCE = re.compile(r"^(```|~~~)")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
PROGRAMS = ("python jetson_benchmark.py", "jetson-benchmark", "python -m sav_benchmark ")


def prose_and_blocks(text: str) -> tuple[list[str], list[tuple[str, list[str], bool]]]:
    """The page's prose lines (code blocks blanked) and its code blocks: (kind, lines, runnable),
    kind 'fenced:<info>' or 'indented'."""
    prose, blocks = [], []
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = FENCE.match(line.strip())
        if fence:
            info = line.strip()[3:].strip()
            runnable = index > 0 and lines[index - 1].strip() == RUNNABLE
            body = []
            index += 1
            while index < len(lines) and not lines[index].strip().startswith(fence.group(1)):
                body.append(lines[index])
                index += 1
            blocks.append((f"fenced:{info}", body, runnable))
            prose.extend([""] * (len(body) + 2))
            index += 1
            continue
        if line.startswith("    ") and (index == 0 or not lines[index - 1].strip() or lines[index - 1].startswith("    ")):
            body = []
            while index < len(lines) and (lines[index].startswith("    ") or not lines[index].strip()):
                body.append(lines[index][4:])
                index += 1
            blocks.append(("indented", body, False))
            prose.extend([""] * len(body))
            continue
        prose.append(line)
        index += 1
    return prose, blocks


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but hyphens dropped, spaces to hyphens."""
    text = re.sub(r"`", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    prose, _ = prose_and_blocks(page.read_text())
    seen: dict[str, int] = {}
    found = set()
    for line in prose:
        match = re.match(r"^(#{1,6})\s+(.*)$", line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    prose, _ = prose_and_blocks(page.read_text())
    text = "\n".join(re.sub(r"`[^`]*`", "", line) for line in prose)
    return LINK.findall(text)


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page):
        if re.match(r"^[a-z]+://", target) or target.startswith("mailto:"):
            if not re.match(r"^https?://[\w.-]+\.[a-z]{2,}(/\S*)?$", target):
                broken.append(f"{target} (not a well-formed web address)")
            continue  # no network here: a web address is checked for its form only
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        if not destination.exists():
            broken.append(f"{target} (no file {destination.relative_to(ROOT) if destination.is_relative_to(ROOT) else destination})")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target} (no heading with anchor #{anchor} in {destination.name})")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_link_resolves(page):
    assert broken_links(page) == []


def test_the_link_check_finds_a_broken_file_and_a_broken_anchor(tmp_path):
    (tmp_path / "a.md").write_text("# Top\n\n## Two words\n\n[ok](#two-words) [file](b.md) [anchor](#nowhere) `[code](c.md)`\n")
    assert broken_links(tmp_path / "a.md") == [
        f"b.md (no file {tmp_path / 'b.md'})",
        "#nowhere (no heading with anchor #nowhere in a.md)",
    ]


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in links(ROOT / "README.md")}
    assert [page.name for page in PAGES[1:] if page.resolve() not in linked] == []


def test_the_readme_fits_on_a_few_screens():
    assert len((ROOT / "README.md").read_text().splitlines()) < 250


def commands(page: Path) -> list[str]:
    """Every invocation of the program in the page's code blocks, continuation lines joined."""
    _, blocks = prose_and_blocks(page.read_text())
    found = []
    for _, lines, _ in blocks:
        joined = "\n".join(lines).replace("\\\n", " ")
        for line in joined.split("\n"):
            line = line.strip().removeprefix("$ ")
            line = re.sub(r"^(\w+=\S+\s+)+", "", line)  # environment assignments before the command
            if any(line.startswith(program) for program in PROGRAMS):
                found.append(line)
    return found


def unknown_flags(command: str) -> list[str]:
    words = shlex.split(command.split(" | ")[0].split(" > ")[0].split(" 2>")[0], comments=True)
    words = words[2:] if words[0] == "python" and words[1] == "jetson_benchmark.py" else words[3:] if words[0] == "python" else words[1:]
    parser = build_parser()
    subparsers = next(action for action in parser._actions if action.choices and isinstance(action.choices, dict))
    name = words[0] if words and words[0] in subparsers.choices else "run"
    known = {option for action in subparsers.choices[name]._actions for option in action.option_strings}
    known |= {option for action in parser._actions for option in action.option_strings}
    flags = [word.split("=")[0] for word in words if word.startswith("--")]
    return [flag for flag in flags if flag not in known]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_flag_shown_exists(page):
    assert {command: unknown_flags(command) for command in commands(page) if unknown_flags(command)} == {}


def test_the_flag_check_finds_a_flag_that_does_not_exist():
    assert unknown_flags("python jetson_benchmark.py report results/a.csv --htm x.html") == ["--htm"]
    assert unknown_flags("python jetson_benchmark.py --split_dir s --model m") == ["--model"]
    assert unknown_flags("python jetson_benchmark.py run --split_dir s --models m --no-stream") == []


def missing_scripts(text: str) -> list[str]:
    """Every scripts/ or tests/ file a command on the page runs (bash, python, pytest) that does not exist."""
    named = re.findall(r"(?:bash|python3?|pytest|sh)\s+((?:scripts|tests)/[\w./-]+)", text)
    return sorted({path for path in named if not (ROOT / path).exists()})


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_script_shown_exists(page):
    assert missing_scripts(page.read_text()) == []


def test_the_script_check_finds_a_script_that_does_not_exist():
    text = "bash scripts/demo.sh, `python scripts/nowhere.py --x`, python -m pytest tests/test_docs.py tests/gone.py"
    assert missing_scripts(text) == ["scripts/nowhere.py"]


def runnable_script(page: Path) -> str:
    _, blocks = prose_and_blocks(page.read_text())
    return "\n".join("\n".join(lines) for kind, lines, runnable in blocks if runnable and kind == "fenced:sh")


RUNNABLE_PAGES = [page for page in PAGES if runnable_script(page)]


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_runnable_commands_run_as_written(page, tmp_path):
    (tmp_path / "jetson_benchmark.py").symlink_to(ROOT / "jetson_benchmark.py")
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", runnable_script(page)],
        cwd=tmp_path,
        env={**os.environ, "PATH": path, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"{page.name}'s runnable commands failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def test_the_readme_has_runnable_commands():
    assert "python jetson_benchmark.py run" in runnable_script(ROOT / "README.md")
