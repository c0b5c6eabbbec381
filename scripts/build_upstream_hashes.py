"""Write sav_benchmark/data/upstream_hashes.json: the sha256 of every file of the `sam2` package (its
.py modules and its .yaml configurations) in Meta's repositories at the releases of interest, which
sav_benchmark/provenance.py compares an installed `sam2` with. The JSON is data, committed as such.

    python scripts/build_upstream_hashes.py --sam2 PATH --edgetam PATH [--output FILE]

PATH is a git repository (a clone, or a bare mirror) of github.com/facebookresearch/sam2 or of
github.com/facebookresearch/EdgeTAM; it is read with git (ls-tree, cat-file) and never changed.
The releases: Meta's sam2 never changed the version in its setup.py ("1.0" from the first commit
on; the registry's "sam2 1.1.0" is not Meta's), so they are the commits its RELEASE_NOTES.md names
(SAM 2, SAM 2.1, the 12/11/2024 update), the last commit before that update, and HEAD; EdgeTAM's is
HEAD. --sam2_commit / --edgetam_commit add more (a commit an install names in its direct_url.json).

What is hashed: the bytes of each blob as committed, nothing normalised, so a changed byte is a
changed file. Two differences between a commit and an install of it are handled, and only these:
- symbolic links (sam2/sam2_hiera_*.yaml point to configs/sam2/...): git stores the link's target
  path, an install (sdist, wheel, pip from git) holds the target's content; the target's bytes are
  hashed, as installed.
- line endings: none converted. The repositories have no .gitattributes and commit LF; a checkout
  made with core.autocrlf=true (Windows) holds CRLF files and is reported as modified, which it is
  byte for byte.
Which files: every *.py and *.yaml under sam2/ in the commit's tree. Other files there (the CUDA
source csrc/*.cu) are not listed; provenance.py compares only .py and .yaml files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import posixpath
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "sav_benchmark" / "data" / "upstream_hashes.json"
PACKAGE = "sam2"  # the module both repositories install
SUFFIXES = (".py", ".yaml")
SAM2 = "https://github.com/facebookresearch/sam2"
EDGETAM = "https://github.com/facebookresearch/EdgeTAM"
# Meta's sam2 releases (RELEASE_NOTES.md), oldest first; HEAD is added after them.
SAM2_RELEASES = {
    "0c5f8c5": "SAM 2 (07/29/2024)",
    "aa9b872": "SAM 2.1 (09/30/2024)",
    "c2ec8e1": "SAM 2.1, last commit before the 12/11/2024 update",
    "393ae33": "12/11/2024 update (full model compilation, new SAM2VideoPredictor)",
}


def git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(repo), *args], check=True, capture_output=True).stdout


def tree(repo: Path, commit: str) -> dict[str, tuple[str, str]]:
    """Every file of the commit under the package folder: path -> (mode, blob id)."""
    out = git(repo, "ls-tree", "-r", "-z", commit, "--", f"{PACKAGE}/")
    entries = {}
    for record in out.split(b"\0"):
        if record:
            info, path = record.decode().split("\t", 1)
            mode, kind, blob = info.split()
            if kind == "blob":
                entries[path] = (mode, blob)
    return entries


def content(repo: Path, commit: str, path: str, entries: dict[str, tuple[str, str]]) -> bytes:
    """The file's bytes as an install holds them: a symbolic link's target's (inside the tree)."""
    for _ in range(10):
        mode, blob = entries.get(path) or _entry(repo, commit, path)
        data = git(repo, "cat-file", "blob", blob)
        if mode != "120000":
            return data
        path = posixpath.normpath(posixpath.join(posixpath.dirname(path), data.decode()))
    raise SystemExit(f"{commit}:{path}: a chain of symbolic links")


def _entry(repo: Path, commit: str, path: str) -> tuple[str, str]:
    out = git(repo, "ls-tree", commit, "--", path).decode().split()
    if len(out) < 3:
        raise SystemExit(f"{commit}:{path}: a symbolic link to nothing in the tree")
    return out[0], out[2]


def source(repo: Path, url: str, commit: str, release: str) -> tuple[str, dict]:
    full = git(repo, "rev-parse", "--verify", f"{commit}^{{commit}}").decode().strip()
    date = git(repo, "show", "-s", "--format=%cs", full).decode().strip()
    setup = git(repo, "show", f"{full}:setup.py").decode()
    version = next((line.split("=", 1)[1].strip().strip("\"'") for line in setup.splitlines() if line.startswith("VERSION")), None)
    entries = tree(repo, full)
    files = {
        path[len(PACKAGE) + 1 :]: hashlib.sha256(content(repo, full, path, entries)).hexdigest()
        for path in sorted(entries)
        if path.endswith(SUFFIXES)
    }
    name = url.rsplit("/", 1)[1]
    entry = {"repository": url, "commit": full, "date": date, "version": version, "release": release, "module": PACKAGE, "files": files}
    return f"{name}@{full[:12]}", entry


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sam2", type=Path, required=True, help="a git repository of github.com/facebookresearch/sam2")
    parser.add_argument("--edgetam", type=Path, required=True, help="a git repository of github.com/facebookresearch/EdgeTAM")
    parser.add_argument("--sam2_commit", action="append", default=[], help="another sam2 commit to list")
    parser.add_argument("--edgetam_commit", action="append", default=[], help="another EdgeTAM commit to list")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    wanted = [
        *[(args.sam2, SAM2, commit, release) for commit, release in SAM2_RELEASES.items()],
        *[(args.sam2, SAM2, commit, "") for commit in args.sam2_commit],
        (args.sam2, SAM2, "HEAD", "HEAD of the repository when this table was built"),
        *[(args.edgetam, EDGETAM, commit, "") for commit in args.edgetam_commit],
        (args.edgetam, EDGETAM, "HEAD", "HEAD of the repository when this table was built"),
    ]
    table: dict[str, dict] = {}
    for repo, url, commit, release in wanted:
        key, entry = source(repo, url, commit, release)
        if key in table:  # HEAD is one of the named releases
            table[key]["release"] = ", ".join(filter(None, [table[key]["release"], release]))
            continue
        table[key] = entry
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    for key, entry in table.items():
        print(f"{key}  {entry['date']}  {len(entry['files'])} files  {entry['release']}")
    print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
