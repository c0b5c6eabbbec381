"""Where the model code came from: for a model package (`sam2`, `transformers`), its distribution,
version and installer record, and one word on whether its files are Meta's code. Imports no model
package: the module is looked up (find_spec), its distribution read (importlib.metadata), its files
hashed.

The verdict compares the package's files with the table of Meta's releases, data/upstream_hashes.json
(scripts/build_upstream_hashes.py writes it from Meta's repositories):
- meta: the files equal a release's and the code came from Meta: the most direct record of where it
  came from (pip's direct_url.json when it names a VCS or archive URL, else the git remote of the
  checkout it was installed or imported from, else the distribution's home page) names
  github.com/facebookresearch/; or pip installed it from Meta's repository at a commit the table
  does not hold (its files are then not compared).
- repackaged-identical: the files equal a release's, but the distribution is not Meta's (the
  registry's `sam2` 1.1.0 names another author and a fork as its home page) or nothing says.
- modified: the closest release differs in some files; they are named. A distribution that
  recorded a commit the table holds (pip's VCS record, a checkout's HEAD) is compared with that
  commit, so an edit after the install shows.
- unknown: not installed, unreadable, no table for the module (transformers: its distribution and
  version are recorded), or a checkout of Meta's repository at a commit the table does not hold.
Which files count: every .py and .yaml file under the package folder (what Python imports and what
hydra reads as configurations). A .py or .yaml file that the release lacks counts as a difference
(`added`), whatever it holds (tests too: a file that can be imported can change what runs), as does
a release file that is absent (`missing`). Not compared: __pycache__, compiled extensions (sam2's
optional _C, built on the machine from csrc/, whose bytes depend on the compiler: their names are
recorded) and any other file (the CUDA source, licences).
"""

from __future__ import annotations

import configparser
import hashlib
import importlib.machinery
import importlib.util
import json
import re
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import unquote, urlparse

TABLE_FILE = Path(__file__).resolve().parent / "data" / "upstream_hashes.json"
META = "github.com/facebookresearch/"
VERDICTS = ("meta", "repackaged-identical", "modified", "unknown")
COMPARED = (".py", ".yaml")
COMPILED = (".so", ".pyd", ".dylib")
EDGETAM_REPO_KEY = "edgetam_repo"  # the EdgeTAM checkout that --edgetam_repo gives, in model_code


def load_table(path: Path = TABLE_FILE) -> dict[str, dict[str, Any]]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def source_for(family: str, edgetam_repo: Path | None) -> tuple[str, str, Path | None] | None:
    """The model package a family's runner imports: (key in model_code, module, its folder when not
    the importable one), or None for a model without one (the baseline, a plugin's runner)."""
    if family in ("sam2", "sam2.1"):
        return "sam2", "sam2", None
    if family == "edgetam":  # the checkout's sam2 in a worker of its own, else the importable fork
        return (EDGETAM_REPO_KEY, "sam2", edgetam_repo / "sam2") if edgetam_repo is not None else ("sam2", "sam2", None)
    if family.startswith("hf-"):
        return "transformers", "transformers", None
    return None


def model_code(families: Iterable[str], edgetam_repo: Path | None = None) -> dict[str, dict[str, Any]]:
    """The provenance of each model package these model families use, for the run's manifest."""
    found: dict[str, dict[str, Any]] = {}
    for family in families:
        source = source_for(family, edgetam_repo)
        if source is not None and source[0] not in found:
            found[source[0]] = inspect(source[1], source[2])
    return found


def verdict_for(family: str, edgetam_repo: Path | None) -> str:
    """The one word for a model family ('-' when it uses no model package), as `models` prints it."""
    source = source_for(family, edgetam_repo)
    return "-" if source is None else _cached(source[1], source[2])["verdict"]


@lru_cache(maxsize=None)
def _cached(module: str, folder: Path | None) -> dict[str, Any]:
    return inspect(module, folder)


def inspect(
    module: str, folder: Path | None = None, search_path: list[str] | None = None, table: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The provenance of top-level module `module`: the importable one (or the one found on
    `search_path`), or the package in `folder`. Never imports it."""
    if folder is None:
        folder = _locate(module, search_path)
    record: dict[str, Any] = {"module": module, "path": str(folder) if folder else None}
    if folder is None or not folder.is_dir():
        return {**record, "verdict": "unknown", "reason": f"{module} is not installed (no package folder of that name on the import path)"}
    dist = _owner(module, folder, search_path)
    record.update(_distribution(dist) if dist else {"distribution": None})
    # a git checkout the code was installed from (pip's file: URL) or is imported from (no install)
    local = (record.get("installer") or {}).get("url", "")
    checkout = _checkout(Path(unquote(urlparse(local).path))) if local.startswith("file:") else None if dist else _checkout(folder.parent)
    record["checkout"] = checkout
    entries = {key: entry for key, entry in (load_table() if table is None else table).items() if entry.get("module") == module}
    if not entries:
        return {
            **record,
            "verdict": "unknown",
            "reason": f"no table of upstream files for {module}: its distribution and version are recorded",
        }
    try:
        files, compiled, others = _hash_files(folder)
    except OSError as exc:
        return {**record, "verdict": "unknown", "reason": f"cannot read {folder} ({exc.strerror or exc})"}
    record.update(compared_files=len(files), compiled=compiled, not_compared=others)
    return {**record, **_judge(files, entries, record)}


def _locate(module: str, search_path: list[str] | None) -> Path | None:
    try:
        spec = importlib.machinery.PathFinder.find_spec(module, search_path) if search_path else importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _owner(module: str, folder: Path, search_path: list[str] | None) -> metadata.Distribution | None:
    """The installed distribution whose files are this folder: listed in its RECORD, or under the
    checkout an editable install names. None for a folder on the import path that no install owns."""
    init = (folder / "__init__.py").resolve()
    for dist in metadata.distributions(**({"path": search_path} if search_path else {})):
        top_level = dist.read_text("top_level.txt")
        if top_level is not None and module not in top_level.split():
            continue
        if any(str(path).replace("\\", "/") == f"{module}/__init__.py" for path in dist.files or ()):
            if Path(dist.locate_file(f"{module}/__init__.py")).resolve() == init:
                return dist
        installer = _direct_url(dist)
        if installer and installer.get("editable") and installer["url"].startswith("file:"):
            root = Path(unquote(urlparse(installer["url"]).path)).resolve()
            if init.is_relative_to(root):
                return dist
    return None


def _direct_url(dist: metadata.Distribution) -> dict[str, Any] | None:
    try:
        found = json.loads(dist.read_text("direct_url.json") or "null")
    except ValueError:
        return None
    if not isinstance(found, dict) or not isinstance(found.get("url"), str):
        return None
    vcs = found.get("vcs_info") or {}
    return {
        "url": found["url"],
        "commit": vcs.get("commit_id"),
        "requested_revision": vcs.get("requested_revision"),
        "editable": bool((found.get("dir_info") or {}).get("editable")),
    }


def _distribution(dist: metadata.Distribution) -> dict[str, Any]:
    meta = dist.metadata
    urls = [url.split(",", 1)[-1].strip() for url in meta.get_all("Project-URL") or []]
    installer = _direct_url(dist)
    if installer is not None:
        installer["tool"] = (dist.read_text("INSTALLER") or "").strip() or None
    return {
        "distribution": meta["Name"],
        "version": meta["Version"],
        "author": meta["Author"] or meta["Author-email"],
        "home_page": meta["Home-page"] or (urls[0] if urls else None),
        "installer": installer,  # pip's direct_url.json: None for an install from the registry
    }


def _checkout(root: Path) -> dict[str, Any] | None:
    """The remote (origin's, else the first) and HEAD commit of a git checkout, read from its files."""
    git = root / ".git"
    try:
        if git.is_file():  # a worktree or submodule: "gitdir: PATH"
            git = (root / git.read_text().split(":", 1)[1].strip()).resolve()
        if not (git / "HEAD").is_file():
            return None
        config = configparser.ConfigParser(strict=False, interpolation=None)
        config.read(git / "config", encoding="utf-8")
        remotes = [section for section in config.sections() if section.startswith("remote ")]
        remotes.sort(key=lambda section: section != 'remote "origin"')
        head = (git / "HEAD").read_text().strip()
        if head.startswith("ref:"):
            ref = head.split(":", 1)[1].strip()
            packed = (git / "packed-refs").read_text().splitlines() if (git / "packed-refs").is_file() else []
            loose = git / ref
            head = (
                loose.read_text().strip()
                if loose.is_file()
                else next((line.split()[0] for line in packed if line.endswith(f" {ref}")), None)
            )
    except (OSError, configparser.Error, IndexError, UnicodeDecodeError):
        return None
    return {"remote": config.get(remotes[0], "url", fallback=None) if remotes else None, "commit": head}


def _hash_files(folder: Path) -> tuple[dict[str, str], list[str], int]:
    """sha256 of each .py and .yaml file under the folder (by path relative to it), the compiled
    extensions' paths, and how many other files there are."""
    files, compiled, others = {}, [], 0
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if "__pycache__" in path.relative_to(folder).parts or not path.is_file():
            continue
        if path.suffix in COMPARED:
            files[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.suffix in COMPILED:
            compiled.append(relative)
        else:
            others += 1
    return files, compiled, others


def _differences(files: dict[str, str], release: dict[str, str]) -> dict[str, list[str]]:
    return {
        "changed": sorted(p for p in files.keys() & release.keys() if files[p] != release[p]),
        "added": sorted(files.keys() - release.keys()),
        "missing": sorted(release.keys() - files.keys()),
    }


def _is_meta(url: str | None) -> bool:
    """Whether a URL (https, ssh or scp-like git@host:path, with or without git+) names a repository
    of Meta's GitHub organisation."""
    if not url:
        return False
    text = url.strip().lower().removeprefix("git+")
    scp_like = re.match(r"^[\w.-]+@([\w.-]+):(?!//)(.*)$", text)
    if scp_like:
        host, path = scp_like.groups()
    else:
        parsed = urlparse(text)
        host, path = parsed.hostname or "", parsed.path
    return f"{host}/{path.lstrip('/')}".startswith(META)


def _judge(files: dict[str, str], entries: dict[str, dict[str, Any]], record: dict[str, Any]) -> dict[str, Any]:
    installer, checkout, home_page = record.get("installer"), record.get("checkout"), record.get("home_page")
    pip_url = installer["url"] if installer and not installer["url"].startswith("file:") else None  # a VCS or archive URL
    # a checkout whose files are the ones imported (editable, or on the import path), not a copy made at
    # install time from a checkout that may have moved on since
    live = checkout if not record.get("distribution") or (installer or {}).get("editable") else None
    recorded = (installer or {}).get("commit") or (live or {}).get("commit")
    pinned = [key for key, entry in entries.items() if recorded and entry["commit"] == recorded]
    found = {key: _differences(files, entries[key]["files"]) for key in entries}
    # the release the install recorded, else the closest (the newest of equally close ones)
    closest = pinned[0] if pinned else min(reversed(list(found)), key=lambda key: sum(map(len, found[key].values())))
    differences = found[closest]
    count = sum(map(len, differences.values()))
    entry = entries[closest]
    release = f"{entry['repository']} at {entry['commit'][:12]} ({entry['date']})"
    result: dict[str, Any] = {"closest": closest, "differing_files": count, "differences": differences}
    if count == 0:
        origin = pip_url or (checkout or {}).get("remote") or home_page  # the most direct record first
        if _is_meta(origin):
            return {**result, "verdict": "meta", "reason": f"its {len(files)} files equal {release}, and it came from {origin}"}
        who = (
            f"the distribution {record['distribution']} {record['version']} "
            f"({record['author']}, {home_page or 'no home page'}) is not Meta's"
            if record.get("distribution")
            else "no installer record or git remote says where it came from"
        )
        return {**result, "verdict": "repackaged-identical", "reason": f"its {len(files)} files equal {release}, but {who}"}
    if _is_meta(pip_url) and not pinned:
        at = f"at {installer['commit']}" if installer.get("commit") else "(no commit recorded)"
        return {
            **result,
            "verdict": "meta",
            "reason": f"pip installed it from {pip_url} {at}, which the table does not hold: files not compared",
        }
    if live and _is_meta(live.get("remote")) and not pinned:
        return {
            **result,
            "verdict": "unknown",
            "reason": f"a checkout of {live['remote']} at {live.get('commit')}, which the table does not hold "
            "(add it: scripts/build_upstream_hashes.py --sam2_commit/--edgetam_commit)",
        }
    named = [f"{kind} {path}" for kind, paths in differences.items() for path in paths]
    shown = ", ".join(named[:3]) + (f" and {len(named) - 3} more" if len(named) > 3 else "")
    return {**result, "verdict": "modified", "reason": f"{count} of its files differ from {release}: {shown}"}
