"""Files written so that a crash leaves the old version or the new one, never half of either;
CSV lines appended so that a crash leaves only whole appends behind the last one."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import IO, Iterable


def write_atomically(path: Path, content: str | bytes) -> None:
    """Write a file so that a crash leaves the old version or the new one, never half of either."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(content.encode("utf-8") if isinstance(content, str) else content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # named by the file the user asked for, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    finally:
        tmp.unlink(missing_ok=True)


def append_durably(handle: IO[str], lines: Iterable[Iterable[str]]) -> None:
    """CSV lines in one write, flushed and fsynced before this returns."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(lines)
    handle.write(buffer.getvalue())
    handle.flush()
    os.fsync(handle.fileno())
