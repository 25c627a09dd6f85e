"""``crystallize report``: one self-contained HTML file, opened in a real headless browser."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from cli_project import cli

pytestmark = pytest.mark.slow

BASELINE_BLUE = (0x1F, 0x77, 0xB4)  # the report's first condition colour (matplotlib tab10)
FAST_ORANGE = (0xFF, 0x7F, 0x0E)
TABLE_HEADER = (0xDD, 0xE6, 0xF3)  # <th> background
FAILED_BADGE = (0xC6, 0x28, 0x28)


@pytest.fixture(scope="module")
def reports(cli_runs, tmp_path_factory):
    project, root, _ = cli_runs
    out = tmp_path_factory.mktemp("reports")
    made = {}
    for target in ("train@v1", "evaluate"):
        path = out / f"{target.replace('@', '-')}.html"
        done = cli("report", target, "-o", str(path), root=root, cwd=project)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"wrote {path}")
        made[target] = path
    return made


def test_the_report_is_one_file_that_needs_no_network_or_script(reports):
    page = reports["train@v1"].read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\((?!#)", page, re.IGNORECASE)  # url(#id) is in-page
    assert not re.search(r"(src|href)=\"(https?:|//|file:)", page)
    assert page.count("<svg") == 3  # a plot per numeric metric (loss, accuracy), and the lineage
    assert "accuracy: replicates, mean and 95% CI" in page  # plot text stays text
    for section in ("Metrics", "Hypotheses", "Failed replicates (1)", "Lineage", "Artifacts", "Provenance"):
        assert f"<h2>{section}</h2>" in page
    assert "diverged at replicate 2" in page and "significant" in page


def test_the_report_draws_the_lineage_of_the_experiment_graph(reports):
    page = reports["evaluate"].read_text()
    lineage = page[page.index("<h2>Lineage</h2>") : page.index("<h2>Artifacts</h2>")]
    assert "<svg" in lineage and "train@v1" in lineage and "evaluate@v0" in lineage
    upstream = reports["train@v1"].read_text()
    assert "evaluate@v0" in upstream[upstream.index("<h2>Lineage</h2>") :]  # the run that read it


def _pixels_near(image, colour, tolerance=24):
    """Coordinates of pixels within ``tolerance`` of ``colour`` on every channel."""
    found = []
    rgb = image.convert("RGB")
    width, height = rgb.size
    data = rgb.load()
    for y in range(0, height):
        for x in range(0, width):
            r, g, b = data[x, y]
            if abs(r - colour[0]) <= tolerance and abs(g - colour[1]) <= tolerance and abs(b - colour[2]) <= tolerance:
                found.append((x, y))
    return found


def test_the_report_renders_its_plots_and_tables_in_a_real_browser(reports, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium); .ci/run installs it")
    pil = pytest.importorskip("PIL.Image", reason="Pillow comes with matplotlib (the report extra)")
    shot = tmp_path / "report.png"
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,1400",
        f"--screenshot={shot}",
        reports["train@v1"].as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert shot.exists(), done.stderr[-2000:]
    image = pil.open(shot)
    assert image.size == (1200, 1400)
    headers = _pixels_near(image, TABLE_HEADER, tolerance=6)
    blue = _pixels_near(image, BASELINE_BLUE)
    orange = _pixels_near(image, FAST_ORANGE)
    badge = _pixels_near(image, FAILED_BADGE, tolerance=12)
    # tables: the metrics, hypotheses and failures headers (each row of <th> ~ 20 px high)
    assert len(headers) > 30_000, len(headers)  # 57,000 measured with Debian's chromium
    # plots: 6 baseline and 5-6 fast points per plot, in two plots, each point ~20 px
    assert len(blue) > 200 and len(orange) > 200, (len(blue), len(orange))  # 372 and 298 measured
    assert len(badge) > 1_000, len(badge)  # the "failed" status badge: 2,333 measured
    first_table_top = min(y for _, y in headers)
    plots_top = min(y for _, y in blue)
    assert plots_top > first_table_top  # the plots come after the metrics table
    xs = sorted(x for x, _ in blue)
    assert xs[-1] - xs[0] > 250  # points in both plots, side by side
