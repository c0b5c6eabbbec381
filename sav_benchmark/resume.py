"""Continuing a run: the lock on its files, what is already in its CSV, and whether new settings
may add rows to it."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .configuration import RunConfig
from .errors import UsageError, os_reason
from .files import write_atomically
from .results import COLUMNS, LATER_COLUMNS, NOT_FAILED, earlier_headers, lock_path, manifest_path, row_problem

Key = tuple[str, str, str]


def resume_arguments(command: list[str], output: Path, retry_failed: bool = False, shard: str = "") -> str:
    """A run's command line (what started the program, then its arguments) that continues it: with
    --resume (and --retry_failed), its output made explicit, and a `--shard auto` replaced by the
    K/N it resolved to (`shard`), so that it also runs outside the array job."""
    args = _with_resolved_shard(list(command), shard)
    for flag in ("--resume", *(["--retry_failed"] if retry_failed else [])):
        if flag not in args:
            args.append(flag)
    if "--output" not in args and not any(a.startswith("--output=") for a in args):
        args += ["--output", str(output)]
    return shlex.join(args)


def _with_resolved_shard(args: list[str], shard: str) -> list[str]:
    for index, arg in enumerate(args):
        if shard and arg == "--shard" and index + 1 < len(args) and args[index + 1].startswith("auto"):
            args[index + 1] = shard
        elif shard and arg.startswith("--shard=auto"):
            args[index] = f"--shard={shard}"
    return args


def row_key(row: dict[str, Any]) -> Key:
    return row["video_id"], row["object_id"], row["model"]


class OutputLock:
    """The lock on a run's files, held until `release` or the end of this process (kill -9
    included: the kernel frees it). Its file is removed on release, so a refused or finished run
    leaves none behind; a run that finds the file replaced after locking it locks the new one."""

    def __init__(self, output: Path) -> None:
        self.path = lock_path(output)
        self._made_folders = [folder for folder in self.path.parents if not folder.exists()]  # removed again if left empty
        self._found = self.path.exists()  # left by a run that was killed: a refused run keeps it, as every other file
        while True:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                handle = open(self.path, "a")
            except OSError as exc:
                raise UsageError(f"--output {output}: cannot create it ({os_reason(exc)}); choose a writable path") from None
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                raise UsageError(
                    f"--output {output}: another run is writing it (it holds {self.path}); wait for it to end, or choose another --output"
                ) from None
            if _same_file(handle, self.path):
                self._handle: IO[str] | None = handle
                return
            handle.close()  # its holder released and removed it meanwhile: lock the file there now

    def release(self, ran: bool) -> None:
        """Unlock; the file goes unless the run was refused and found it there."""
        if self._handle is not None:
            if ran or not self._found:
                self.path.unlink(missing_ok=True)
            self._handle.close()
            self._handle = None
        for folder in self._made_folders:  # innermost first
            try:
                folder.rmdir()
            except OSError:  # the run's files are there
                break


def _same_file(handle: IO[str], path: Path) -> bool:
    try:
        there, held = os.stat(path), os.fstat(handle.fileno())
    except OSError:
        return False
    return (there.st_dev, there.st_ino) == (held.st_dev, held.st_ino)


@dataclass
class ResultFile:
    """A result CSV as --resume reads it. Reading changes nothing on disk: what must be mended (an
    incomplete last line, a last row without its newline, rows to drop) is mended by `rewrite`,
    once every check has passed."""

    path: Path
    rows: list[dict[str, str]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the line of each row, for messages
    partial: str = ""  # the end of the file after its last complete row: half a row a crash left
    unterminated: bool = False  # the last row is complete but its newline is missing
    columns: list[str] = field(default_factory=lambda: COLUMNS)  # its header: this version's, or an earlier one's
    lacks: int = 0  # how many groups of LATER_COLUMNS its header lacks (the newest ones)

    def duplicates(self) -> dict[Key, list[int]]:
        """Keys with more than one row, and the lines of those rows."""
        lines: dict[Key, list[int]] = {}
        for row, line in zip(self.rows, self.lines):
            lines.setdefault(row_key(row), []).append(line)
        return {key: found for key, found in lines.items() if len(found) > 1}

    def rewrite(self, kept: list[dict[str, str]]) -> str:
        """Make the file hold the header and the kept rows (atomically), where that changes it;
        returns what was mended, for a warning ('' when nothing was)."""
        if len(kept) == len(self.rows) and not self.partial and not self.unterminated and not self.lacks:
            return ""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(kept)
        write_atomically(self.path, buffer.getvalue())
        mended = []
        if self.lacks:
            added = LATER_COLUMNS[-self.lacks :]
            columns, meaning = ", ".join(column for group, _ in added for column in group), "; ".join(note for _, note in added)
            mended.append(f"added the columns this version has since {self.path} was begun ({columns}; {meaning})")
        if self.partial:
            mended.append(f"dropped a partial last line of {self.path} ({len(self.partial.encode())} bytes) left by an interrupted run")
        return "; ".join(mended)


HEADER_LINE = ",".join(COLUMNS)


def read_result_file(output: Path) -> ResultFile:
    """The rows of a result CSV, for --resume. Anything that is not a row of this benchmark is a
    UsageError naming its line, except an incomplete last line (a crash in the middle of a row),
    which `rewrite` drops. A last line is incomplete only when it does not parse as a full row."""
    try:
        data = output.read_bytes()
    except OSError as exc:
        raise UsageError(f"--resume: cannot read {output} ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(
            f"--resume: {output} is not a result CSV of this benchmark (it is not UTF-8 text); give the CSV of the run to continue"
        ) from None
    found = ResultFile(output)
    records, last = _records(text)
    if not records and HEADER_LINE.startswith(last.removesuffix("\r")):  # the header itself was cut short: no row yet
        found.partial = last
        return found
    header = next(csv.reader([records[0][1]]), None) if records else None
    lacks = earlier_headers().get(tuple(header or ()), 0)
    if lacks:
        found.columns, found.lacks = list(header), lacks
    elif header != COLUMNS:
        raise UsageError(
            f"--resume: {output} is not a result CSV of this benchmark version (its first line is not this version's header); "
            "give the CSV of the run to continue, or a new --output"
        )
    for number, record in records[1:]:
        _add_row(found, output, record, number, must_be_row=True)
    if last:
        if _add_row(found, output, last, records[-1][0] + records[-1][1].count("\n") + 1, must_be_row=False):
            found.unterminated = True
        else:
            found.partial = last
    return found


def _records(text: str) -> tuple[list[tuple[int, str]], str]:
    """(first line, text) of each CSV record that a newline ends, and the text after the last one.
    A quoted cell may hold a newline (a file name in an error): a record ends at a newline that
    follows an even number of quotes."""
    records: list[tuple[int, str]] = []
    *ended, last = text.split("\n")
    record, first = "", 1
    for number, line in enumerate(ended, start=1):
        record += line + "\n"
        if record.count('"') % 2 == 0:
            records.append((first, record.removesuffix("\n").removesuffix("\r")))
            record, first = "", number + 1
    return records, record + last


def _add_row(found: ResultFile, output: Path, line: str, number: int, must_be_row: bool) -> bool:
    """Add the row a record holds; one that is none is a UsageError, or False at the end of the file."""
    line = line.removesuffix("\r")
    if not line.strip():
        if must_be_row:
            raise UsageError(f"--resume: line {number} of {output} is blank; delete that line, then resume")
        return False
    try:
        cells = next(csv.reader([line], strict=True))
    except csv.Error as exc:
        cells, problem = [], f"({exc})"
    else:
        problem = f"(it has {len(cells)} cells, not {len(found.columns)})" if len(cells) != len(found.columns) else ""
    row = dict(zip(found.columns, cells))
    problem = problem or (f"({row_problem(row)})" if row_problem(row) else "")
    for added, _ in LATER_COLUMNS:
        for column, earlier_value in added.items():
            row.setdefault(column, earlier_value(row))
    if problem:
        if must_be_row:
            raise UsageError(
                f"--resume: line {number} of {output} is not a row of this benchmark {problem}; delete or mend that line, then resume"
            )
        return False
    found.rows.append(row)
    found.lines.append(number)
    return True


def sessions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [manifest, *manifest.get("resumed", [])]


def check_comparable(output: Path, config: RunConfig, checkpoints: dict[str, Any], force: bool) -> tuple[dict[str, Any], list[RunConfig]]:
    """The earlier run's manifest and its sessions' configurations, after refusing settings that
    would make its rows incomparable."""
    path = manifest_path(output)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"--resume: cannot read the manifest {path} of the earlier run ({exc}); start a new --output") from None
    if not isinstance(manifest, dict) or "run_id" not in manifest or not isinstance(manifest.get("config"), dict):
        raise UsageError(f"--resume: {path} is not the manifest of a run; start a new --output")
    differences = []
    configs = [RunConfig.from_manifest(session, str(path)) for session in sessions(manifest)]
    for session, earlier in zip(sessions(manifest), configs):  # the rows of every earlier session must stay comparable
        differences += config.differences(earlier)
        for name, digest in (session.get("checkpoints") or {}).items():
            if name in checkpoints and digest.get("sha256") != checkpoints[name]["sha256"]:
                differences.append(
                    f"checkpoint {name} has other contents (sha256 {digest.get('sha256', '?')[:12]}... -> "
                    f"{checkpoints[name]['sha256'][:12]}...)"
                )
    differences = list(dict.fromkeys(differences))
    if differences and not force:
        raise UsageError(
            f"--resume: settings differ from the earlier run's ({'; '.join(differences)}); its rows would not be "
            "comparable. Use the same settings, a new --output, or --force"
        )
    return manifest, configs


def keys_to_skip(rows: list[dict[str, str]], retry_failed: bool) -> set[Key]:
    """Jobs already done: every row's key, except failed ones when they are to be retried."""
    return {row_key(r) for r in rows if r["status"] in NOT_FAILED or not retry_failed}


def rows_of_partial_groups(rows: list[dict[str, str]], groups: list[set[Key]]) -> set[Key]:
    """The keys of rows whose group (rows made together) has only some of its rows: such a group
    runs again whole."""
    have = {row_key(row) for row in rows}
    return {key for group in groups if not group <= have for key in group & have}
