"""Printing rows of dicts as a readable table (rich) or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def print_rows(rows: Sequence[dict[str, Any]], title: str | None = None, as_json: bool = False) -> None:
    """Prints ``rows`` (all with the same keys) as a table, or as a JSON list with ``as_json``."""
    if as_json:
        print(json.dumps(list(rows), indent=2, default=str))
        return
    console = Console(width=max(Console().width, 160))
    if not rows:
        console.print(f"(no {title or 'rows'})")
        return
    table = Table(title=title, show_lines=False, header_style="bold")
    for i, key in enumerate(rows[0]):  # the first column (a name to copy) never folds
        table.add_column(str(key), overflow="fold", no_wrap=i == 0)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)
