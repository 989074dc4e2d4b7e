"""Every decimal number a committed FINDINGS.md quotes stands in a table of the same report."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPORTS = Path(__file__).resolve().parents[1] / "reports"
FINDINGS = sorted(REPORTS.glob("*/FINDINGS.md")) if REPORTS.is_dir() else []
NUMBER = re.compile(r"(?<![\w.])[+-]?\d+\.\d+%?")


def _forms(number: str) -> set[str]:
    plain = number.lstrip("+")
    return {number, plain, plain.lstrip("-"), plain if plain.startswith("-") else "+" + plain}


@pytest.mark.parametrize("path", FINDINGS, ids=[p.parent.name for p in FINDINGS])
def test_findings_quote_only_numbers_from_the_report_tables(path):
    readme = (path.parent / "README.md").read_text(encoding="utf-8")
    tables = "\n".join(line for line in readme.splitlines() if line.startswith("|"))
    prose = re.sub(r"`[^`]*`", "", path.read_text(encoding="utf-8"))  # commands and names are not results
    missing = [
        n for n in NUMBER.findall(prose)
        if not any(re.search(r"(?<![\d.])" + re.escape(f) + r"(?!\d)", tables) for f in _forms(n))
    ]  # fmt: skip
    assert not missing, f"{path.parent.name}: FINDINGS.md quotes numbers no table shows: {missing}"
