"""Where the model code came from: the verdict on the sam2 installed here, and on stand-in installs
(a folder laid out as site-packages, with a dist-info) against the table of Meta's releases."""

import hashlib
import importlib.util
import json
import shutil
from importlib import metadata
from pathlib import Path

import pytest
from conftest import cli

from sav_benchmark import environment, provenance

META_COMMIT = "a" * 40
FILES = {"__init__.py": "", "build_sam.py": "def build():\n    return 1\n", "configs/sam2.1/t.yaml": "model: t\n"}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def table_of(files: dict[str, str], commit: str = META_COMMIT) -> dict:
    """A table with one release of Meta's sam2, whose files are `files`."""
    return {
        f"sam2@{commit[:12]}": {
            "repository": "https://github.com/facebookresearch/sam2",
            "commit": commit,
            "date": "2024-12-15",
            "version": "1.0",
            "release": "a stand-in",
            "module": "sam2",
            "files": {path: sha256(text) for path, text in files.items()},
        }
    }


def site(
    root: Path,
    files: dict[str, str] = FILES,
    direct_url: dict | None = None,
    home_page: str = "https://github.com/facebookresearch/sam2",
    name: str = "SAM-2",
    version: str = "1.0",
) -> Path:
    """A site-packages folder with `sam2` (these files) and the dist-info that pip writes."""
    for path, text in files.items():
        (root / "sam2" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "sam2" / path).write_text(text)
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nHome-page: {home_page}\nAuthor: someone\n")
    (info / "top_level.txt").write_text("sam2\n")
    (info / "INSTALLER").write_text("pip\n")
    (info / "RECORD").write_text("".join(f"sam2/{path},,\n" for path in files) + f"{info.name}/RECORD,,\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    return root


META_GIT = {"url": "https://github.com/facebookresearch/sam2.git", "vcs_info": {"vcs": "git", "commit_id": META_COMMIT}}


def inspect(root: Path, table: dict | None = None, module: str = "sam2") -> dict:
    return provenance.inspect(module, search_path=[str(root)], table=table_of(FILES) if table is None else table)


def test_the_sam2_installed_here_is_judged_as_what_it_is():
    """The registry's sam2 1.1.0 (another author, a fork as home page) holds Meta's files of the
    repository's HEAD of December 2024: repackaged-identical. Meta's own install would be meta."""
    if importlib.util.find_spec("sam2") is None:
        pytest.skip("sam2 is not installed here: nothing to judge")
    found = provenance.inspect("sam2")
    dist = metadata.distribution(found["distribution"])
    from_meta = "github.com/facebookresearch/" in (json.loads(dist.read_text("direct_url.json") or "{}").get("url") or "")
    from_meta = from_meta or "github.com/facebookresearch/" in (dist.metadata["Home-page"] or "")
    assert found["verdict"] == ("meta" if from_meta else "repackaged-identical"), found["reason"]
    assert found["differing_files"] == 0 and found["compared_files"] >= 38
    if found["version"] == "1.1.0" and not from_meta:  # the registry's: Meta's HEAD of 2024-12-15
        assert (found["distribution"], found["closest"], found["installer"]) == ("sam2", "sam2@2b90b9f5ceec", None)
        assert "is not Meta's" in found["reason"]
    listed = {line.split()[0]: line.split()[2] for line in cli("models", "--weights", "random").stdout.splitlines()}
    assert listed["sam2.1_tiny_points"] == listed["sam2_large_mask"] == found["verdict"]
    assert listed["static_mask"] == "-"


def test_meta_install_from_its_repository(tmp_path):
    found = inspect(site(tmp_path, direct_url=META_GIT))
    assert (found["verdict"], found["distribution"], found["version"]) == ("meta", "SAM-2", "1.0"), found["reason"]
    assert found["installer"] == {
        "url": META_GIT["url"],
        "commit": META_COMMIT,
        "requested_revision": None,
        "editable": False,
        "tool": "pip",
    }
    assert (found["closest"], found["differing_files"], found["compared_files"]) == ("sam2@aaaaaaaaaaaa", 0, 3)


def test_meta_install_from_a_local_copy_of_its_repository(tmp_path):
    """pip install . in a copy of Meta's repository: pip records the folder, the metadata names Meta."""
    found = inspect(site(tmp_path, direct_url={"url": (tmp_path / "copy").as_uri(), "dir_info": {}}))
    assert (found["verdict"], found["checkout"]) == ("meta", None), found["reason"]


def test_the_most_direct_record_of_the_origin_wins(tmp_path):
    """A fork installed from its own repository keeps Meta's home page in its metadata: not Meta's."""
    fork = {"url": "https://github.com/someone/sam2.git", "vcs_info": {"vcs": "git", "commit_id": META_COMMIT}}
    found = inspect(site(tmp_path, direct_url=fork))
    assert found["verdict"] == "repackaged-identical", found["reason"]


def test_the_same_files_from_another_publisher_are_repackaged_identical(tmp_path):
    found = inspect(site(tmp_path, home_page="https://github.com/someone/segment-anything-2", name="sam2", version="1.1.0"))
    assert found["verdict"] == "repackaged-identical", found["reason"]
    assert (
        found["installer"] is None
        and "sam2 1.1.0 (someone, https://github.com/someone/segment-anything-2) is not Meta's" in found["reason"]
    )


def test_one_changed_file_is_modified_and_named(tmp_path):
    found = inspect(site(tmp_path, {**FILES, "build_sam.py": "def build():\n    return 2\n"}, direct_url=META_GIT))
    assert found["verdict"] == "modified", found["reason"]
    assert found["differences"] == {"changed": ["build_sam.py"], "added": [], "missing": []}
    assert found["differing_files"] == 1 and "build_sam.py" in found["reason"]


def test_added_and_missing_files_count_compiled_ones_do_not(tmp_path):
    files = {**FILES, "tests/test_extra.py": "x = 1\n"}
    del files["configs/sam2.1/t.yaml"]
    root = site(tmp_path, files, home_page="https://github.com/someone/fork")
    found = inspect(root)
    assert found["verdict"] == "modified"
    assert found["differences"] == {"changed": [], "added": ["tests/test_extra.py"], "missing": ["configs/sam2.1/t.yaml"]}
    shutil.rmtree(root / "sam2" / "tests")
    (root / "sam2" / "configs/sam2.1").mkdir(parents=True)
    (root / "sam2" / "configs/sam2.1/t.yaml").write_text(FILES["configs/sam2.1/t.yaml"])
    (root / "sam2" / "_C.so").write_bytes(b"\x7fELF compiled here")
    (root / "sam2" / "__pycache__").mkdir()
    (root / "sam2" / "__pycache__" / "build_sam.cpython-311.pyc").write_bytes(b"bytecode")
    found = inspect(root)
    assert (found["verdict"], found["compiled"], found["not_compared"]) == ("repackaged-identical", ["_C.so"], 0)


def test_the_closest_release_is_named(tmp_path):
    newer = {**FILES, "build_sam.py": "def build():\n    return 2\n", "video.py": "v = 1\n"}
    table = {**table_of(FILES), **table_of(newer, "b" * 40)}
    found = inspect(site(tmp_path, {**newer, "video.py": "v = 2\n"}, home_page="https://github.com/someone/fork"), table)
    assert (found["verdict"], found["closest"], found["differences"]["changed"]) == ("modified", "sam2@bbbbbbbbbbbb", ["video.py"])


def test_an_install_is_compared_with_the_commit_it_recorded(tmp_path):
    """Installed from Meta's repository at one release, its files since made those of another: modified."""
    newer = {**FILES, "build_sam.py": "def build():\n    return 2\n"}
    table = {**table_of(FILES), **table_of(newer, "b" * 40)}
    found = inspect(site(tmp_path, newer, direct_url=META_GIT), table)
    assert (found["verdict"], found["closest"], found["differences"]["changed"]) == ("modified", "sam2@aaaaaaaaaaaa", ["build_sam.py"])


def test_a_commit_the_table_lacks(tmp_path):
    """pip's record of Meta's repository is believed; a checkout of it may hold edits: unknown."""
    other = {**FILES, "build_sam.py": "def build():\n    return 3\n"}
    unlisted = {**META_GIT, "vcs_info": {"vcs": "git", "commit_id": "c" * 40}}
    assert inspect(site(tmp_path / "pip", other, direct_url=unlisted))["verdict"] == "meta"
    checkout = tmp_path / "checkout"
    for path, text in other.items():
        (checkout / "sam2" / path).parent.mkdir(parents=True, exist_ok=True)
        (checkout / "sam2" / path).write_text(text)
    (checkout / ".git" / "refs" / "heads").mkdir(parents=True)
    (checkout / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (checkout / ".git" / "refs" / "heads" / "main").write_text("c" * 40 + "\n")
    (checkout / ".git" / "config").write_text('[remote "origin"]\n\turl = https://github.com/facebookresearch/sam2.git\n')
    found = provenance.inspect("sam2", checkout / "sam2", table=table_of(FILES))
    assert (found["verdict"], found["distribution"]) == ("unknown", None), found["reason"]
    assert found["checkout"] == {"remote": "https://github.com/facebookresearch/sam2.git", "commit": "c" * 40}
    (checkout / ".git" / "refs" / "heads" / "main").write_text(META_COMMIT + "\n")
    assert provenance.inspect("sam2", checkout / "sam2", table=table_of(FILES))["verdict"] == "modified"
    (checkout / "sam2" / "build_sam.py").write_text(FILES["build_sam.py"])
    assert provenance.inspect("sam2", checkout / "sam2", table=table_of(FILES))["verdict"] == "meta"


def test_unknown_without_a_table_entry_or_an_install(tmp_path):
    root = site(tmp_path, direct_url=META_GIT)
    found = inspect(root, table={})
    assert (found["verdict"], found["distribution"]) == ("unknown", "SAM-2") and "no table of upstream files for sam2" in found["reason"]
    assert inspect(root, module="not_a_model_package")["verdict"] == "unknown"
    assert provenance.inspect("sam2", tmp_path / "nowhere")["verdict"] == "unknown"


def test_the_table_holds_meta_releases_of_sam2_and_edgetam():
    table = provenance.load_table()
    assert table["sam2@2b90b9f5ceec"]["repository"] == "https://github.com/facebookresearch/sam2"
    assert {entry["repository"] for entry in table.values()} == {
        "https://github.com/facebookresearch/sam2",
        "https://github.com/facebookresearch/EdgeTAM",
    }
    for entry in table.values():
        assert entry["module"] == "sam2" and len(entry["commit"]) == 40
        assert entry["files"] and all(path.endswith((".py", ".yaml")) for path in entry["files"])


def test_the_manifest_records_each_model_package(tmp_path):
    info = environment.describe("cpu", False, ["static", "sam2.1", "sam2", "hf-sam2"])
    assert set(info["model_code"]) == {"sam2", "transformers"}
    assert info["model_code"]["sam2"]["verdict"] == provenance.inspect("sam2")["verdict"]
    assert info["model_code"]["transformers"]["verdict"] == "unknown"
    repo = tmp_path / "EdgeTAM"
    site(repo, direct_url=None)
    code = provenance.model_code(["edgetam"], repo)
    assert list(code) == ["edgetam_repo"] and code["edgetam_repo"]["path"] == str(repo / "sam2")
    assert environment.describe("cpu", False)["model_code"] == {}


@pytest.mark.parametrize(
    "url,meta",
    [
        ("https://github.com/facebookresearch/sam2.git", True),
        ("git@github.com:facebookresearch/sam2.git", True),
        ("ssh://git@github.com/facebookresearch/sam2", True),
        ("git+https://github.com/FacebookResearch/EdgeTAM@9cc44bf", True),
        ("https://x.org/?q=github.com/facebookresearch/", False),
        ("https://github.com.evil.org/facebookresearch/sam2", False),
        ("https://github.com/someone/sam2", False),
        ("", False),
    ],
)
def test_meta_is_told_by_the_host_and_the_organisation_not_by_a_substring(url, meta):
    assert provenance._is_meta(url) is meta
