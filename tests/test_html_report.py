"""`report RUN.csv --html OUT.html` opened in a real headless browser (Debian's Chromium, which
scripts/install.sh installs where it can): every section is there, every picture decodes, and a
run without traces says why those sections are empty."""

import re
import shutil
import subprocess

import pytest
from conftest import TEST_INSTALL, assert_usage_error, cli, require

SECTIONS = ["summary", "accuracy-speed", "latency-frames", "stages", "memory-power", "objects", "manifest"]


def browser() -> str:
    """Chromium; a test install that has it must find it."""
    found = shutil.which("chromium")
    promised = TEST_INSTALL.is_file() and "chromium" in TEST_INSTALL.read_text().split()
    if found is None and promised:
        pytest.fail(f"{TEST_INSTALL} says scripts/install.sh installed chromium, but it is not on the PATH", pytrace=False)
    if found is None:
        pytest.skip("no chromium here (scripts/install.sh installs Debian's where apt runs as root)")
    return found


def rendered(page) -> str:
    """The page's DOM once loaded, as the browser built it (its script has counted the pictures)."""
    done = subprocess.run(
        [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def section(dom: str, key: str) -> str:
    return re.search(rf'<section id="{key}">(.*?)</section>', dom, re.DOTALL).group(1)


@pytest.fixture(scope="module")
def run(synthetic_split, tmp_path_factory):
    require("sam2.build_sam")
    require("matplotlib")
    out = tmp_path_factory.mktemp("run") / "o.csv"
    done = cli("--split_dir", synthetic_split(), "--models", "static_mask,sam2.1_tiny_mask", "--weights", "random", "--imgsz", "64",
               "--output", out)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def test_the_page_has_every_section_and_every_picture_decodes(run, tmp_path):
    page = tmp_path / "r.html"
    done = cli("report", run, "--html", page)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(f"html: {page}\n")
    dom = rendered(page)
    assert re.findall(r'<section id="([^"]+)">', dom) == SECTIONS
    assert 'data-pictures="4 pictures, 0 broken"' in dom  # accuracy-speed, latency-frames, stages, memory-power
    assert "sam2.1_tiny_mask" in section(dom, "summary") and "static_mask" in section(dom, "objects")
    assert "No power in this run" in section(dom, "memory-power")  # a CPU has no power source
    assert "http" not in page.read_text().replace("http-equiv", "")  # nothing fetched from a network
    # where the model code came from, in a word and its distribution (the manifest holds the rest)
    assert re.search(r"model_code: sam2</td>\s*<td>(meta|repackaged-identical|modified|unknown) \(\S+ \S+\)</td>", section(dom, "manifest"))


def test_a_run_without_traces_says_why_instead_of_drawing(run, tmp_path):
    bare = tmp_path / "o.csv"
    shutil.copy(run, bare)
    shutil.copy(f"{run}.json", f"{bare}.json")  # the traces stay behind
    page = tmp_path / "r.html"
    assert cli("report", bare, "--html", page).returncode == 0
    dom = rendered(page)
    assert re.findall(r'<section id="([^"]+)">', dom) == SECTIONS
    assert 'data-pictures="2 pictures, 0 broken"' in dom
    assert "No traces beside this CSV" in section(dom, "latency-frames") and "No traces beside this CSV" in section(dom, "memory-power")


def test_an_existing_page_is_not_overwritten_without_force(run, tmp_path):
    page = tmp_path / "r.html"
    page.write_text("mine")
    refused = f"--html {page} exists already; choose a new file, or add --force to overwrite it"
    assert_usage_error(cli("report", run, "--html", page), refused)
    assert page.read_text() == "mine"
    assert cli("report", run, "--html", page, "--force").returncode == 0


def test_a_comparison_page_puts_the_files_side_by_side_with_the_paired_ratios(run, tmp_path):
    page = tmp_path / "c.html"
    done = cli("compare", run, run, "--html", page)
    assert done.returncode == 0, done.stderr
    dom = rendered(page)
    assert re.findall(r'<section id="([^"]+)">', dom) == ["files", "comparison"]
    assert 'data-pictures="4 pictures, 0 broken"' in dom  # accuracy-speed and stages, per file
    assert dom.count('<div class="file">') == 2
    assert f"{run} against {run}" in section(dom, "comparison") and "sam2.1_tiny_mask" in section(dom, "comparison")
