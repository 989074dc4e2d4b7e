"""A wide committed report in headless Chromium: the page never scrolls sideways, its wide tables do,
inside their container, with the first column fixed.

Needs Debian's ``chromium`` (skipped without it), like ``tests/test_report_browser.py``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

WIDE = Path(__file__).resolve().parents[1] / "reports" / "gist-vs-infonce-static-cls-mixed" / "index.html"
PROBE = """<script>
window.addEventListener("load", () => {
  const table = document.getElementById("table-contrasts-per-task");
  const box = table.parentElement;
  const first = table.querySelector("tbody td");
  const before = first.getBoundingClientRect().left;
  box.scrollLeft = 400;
  const after = first.getBoundingClientRect().left;
  const out = {page: document.documentElement.scrollWidth, view: window.innerWidth,
               box: box.clientWidth, content: box.scrollWidth, sticky: getComputedStyle(first).position,
               moved: before - after, scrolled: box.scrollLeft};
  const pre = document.createElement("pre"); pre.id = "probe"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium): HTML report not rendered")


def test_wide_tables_scroll_inside_their_container_with_a_sticky_first_column(tmp_path):
    page = tmp_path / "wide.html"
    page.write_text(WIDE.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--window-size=1000,800", f"--user-data-dir={tmp_path / 'p'}",
               "--dump-dom", page.as_uri()]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    match = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout)
    assert match, f"probe did not run: {result.stderr[-2000:]}"
    probe = json.loads(match.group(1).replace("&amp;", "&"))
    assert probe["page"] <= probe["view"], probe  # the page itself never scrolls sideways
    assert probe["content"] > probe["box"] and probe["scrolled"] > 0, probe  # the table scrolls in its box
    assert probe["sticky"] == "sticky" and abs(probe["moved"]) < 1, probe  # and its first column stays
