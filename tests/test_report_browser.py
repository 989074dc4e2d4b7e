"""The HTML report in headless Chromium: it renders, logs nothing to the console, and shows every figure.

Needs Debian's ``chromium`` package (``apt-get install -y chromium``); without it the test is skipped
with that reason. The screenshot is kept under pytest's tmp folder, or in ``$REPORT_SCREENSHOT_DIR``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.cli import main

pytestmark = pytest.mark.browser

FIXTURE = Path(__file__).parent / "fixtures" / "report_study"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
]  # fmt: skip
# Appended to a copy of the page: after load, lists every image's natural size in a <pre id="probe">.
PROBE = """<script>
window.addEventListener("load", () => {
  const sizes = [...document.images].map(i => ({alt: i.alt, width: i.naturalWidth, height: i.naturalHeight}));
  const pre = document.createElement("pre"); pre.id = "probe"; pre.textContent = JSON.stringify(sizes);
  document.body.appendChild(pre);
});
</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium): HTML report not rendered")


def _run(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"  # a fresh profile per run
    command = [_chromium(), *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _console(stderr: str) -> list[str]:
    """Chromium's ``--enable-logging=stderr`` writes page console messages as ``...:CONSOLE(...)] "text"``."""
    return [line for line in stderr.splitlines() if re.search(r":CONSOLE[(:]", line)]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reports")
    assert main(["report", str(FIXTURE), "--out", str(out)]) == 0
    return out / "fixture-ablation" / "index.html"


def test_console_messages_are_detected(tmp_path):
    """Guards the check below: a page that logs an error must be seen as logging one."""
    page = tmp_path / "noisy.html"
    page.write_text("<!DOCTYPE html><html><body><script>console.error('boom')</script></body></html>")
    result = _run(tmp_path, page, "--dump-dom")
    assert any("boom" in line for line in _console(result.stderr)), result.stderr[-2000:]


def test_report_renders_without_console_messages(report, tmp_path):
    screenshots = Path(os.environ.get("REPORT_SCREENSHOT_DIR", tmp_path))
    screenshots.mkdir(parents=True, exist_ok=True)
    shot = screenshots / "report.png"
    result = _run(tmp_path, report, "--window-size=1280,4000", f"--screenshot={shot}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert _console(result.stderr) == []
    from PIL import Image  # pillow comes with matplotlib

    with Image.open(shot) as image:
        assert image.size == (1280, 4000)
        colours = image.convert("L").resize((64, 200)).getextrema()
        assert colours[1] - colours[0] > 100, "screenshot is blank"


def test_every_figure_is_rendered(report, tmp_path):
    page = tmp_path / "probe.html"
    page.write_text(report.read_text().replace("</body>", PROBE + "</body>"))
    result = _run(tmp_path, page, "--dump-dom")
    match = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout)
    assert match, f"probe did not run: {result.stderr[-2000:]}"
    sizes = json.loads(match.group(1).replace("&amp;", "&"))
    assert len(sizes) == 8  # 2 forest plots replace the importances of the fixed ablation
    assert [s["alt"] for s in sizes if s["width"] == 0 or s["height"] == 0] == []
    assert _console(result.stderr) == []
