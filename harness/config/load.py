"""Reading an experiment file and reporting every problem in it at once, with line and field."""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from harness.config.checks import check_experiment
from harness.config.draft import draft, strip
from harness.config.schema import AblationConfig, ArmConfig, Experiment
from harness.config.static_preset import STATIC_SEARCH_SPACE
from harness.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(UserError):
    """Every problem found in one experiment; ``errors`` holds one line per problem."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        n = len(errors)
        super().__init__(f"{source}: {n} error{'s' * (n != 1)}\n" + "\n".join(f"  {e}" for e in errors))


def load_experiment(path: str | Path) -> Experiment:
    """Reads and validates an experiment file; raises ``ConfigError`` listing every problem.

    Nothing heavy is imported: registry names are checked against the registries only.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    return validate_experiment(data, source=str(path), text=text)


def validate_experiment(data: dict[str, Any], *, source: str = "<experiment>", text: str = "") -> Experiment:
    """Validates parsed TOML: the schema, then consistency between sections and every registered name.

    Args:
        data: the parsed TOML document.
        source: the file name used in messages.
        text: the TOML text, used to find line numbers (optional).
    """
    data, errors = _expand_search_preset(data)
    try:
        experiment = Experiment.model_validate(data)
    except ValidationError as exc:
        errors += [(tuple(e["loc"]), _pydantic_message(e)) for e in exc.errors()]
        experiment = draft(data)  # what pydantic accepted, so the checks still see the rest
    errors += check_experiment(experiment)
    if errors:
        lines = {_format(loc, msg, text): _line_of(text, strip(loc)) for loc, msg in errors}
        ordered = sorted(lines, key=lambda line: (lines[line] is None, lines[line] or 0))
        raise ConfigError(source, ordered)
    return experiment


SEARCH_PRESETS = {"static": STATIC_SEARCH_SPACE}
"""``search_preset = NAME``: a ready search space; explicit ``[search_space.FIELD]`` entries win."""


def _expand_search_preset(data: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[tuple, str]]]:
    if "search_preset" not in data:
        return data, []
    data = dict(data)
    name = data.pop("search_preset")
    if name not in SEARCH_PRESETS:
        return data, [
            (("search_preset",), f"unknown search preset {name!r}; valid: {', '.join(SEARCH_PRESETS)}")
        ]
    preset = SEARCH_PRESETS[name]
    raw_space = data.get("search_space")
    explicit = raw_space if isinstance(raw_space, dict) else {}
    data["search_space"] = {**preset, **explicit}
    return data, []


def _pydantic_message(error: Any) -> str:
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        valid = _fields_at(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), valid, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        return f"unknown field.{hint} Valid: {', '.join(valid)}"
    msg = error["msg"]
    if error["type"] != "missing" and not isinstance(error.get("input"), dict | list):
        msg += f" (got {error.get('input')!r})"
    return msg


def _fields_at(loc: tuple) -> list[str]:
    """The field names valid at ``loc`` (a path into the schema), for "did you mean" hints."""
    model: Any = Experiment
    for part in loc:
        if model is AblationConfig and part == "arms":
            model = ArmConfig
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            continue  # a list index or a search-space key
        args = getattr(field.annotation, "__args__", (field.annotation,))
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        model = models[0] if models else None
    return list(getattr(model, "model_fields", {}))


def _format(loc: tuple, msg: str, text: str) -> str:
    loc = strip(loc)
    field = ".".join(str(p) for p in loc) or "(file)"
    line = _line_of(text, loc)
    return f"line {line}: {field}: {msg}" if line else f"{field}: {msg}"


def _line_of(text: str, loc: tuple) -> int | None:
    """Best-effort line number of a field: finds its table header, then the key below it."""
    if not text or not loc:
        return None
    lines = text.splitlines()
    start, shift = -1, 1
    table: list[str] = []
    for part in loc:
        if isinstance(part, int):  # the n-th [[table]] of an array of tables
            header = re.compile(r"^\s*\[\[\s*" + re.escape(".".join(table)) + r"\s*\]\]")
            hits = [n for n, line in enumerate(lines) if header.match(line)]
            if part < len(hits):
                start = hits[part]
            continue
        table.append(str(part))
        header = re.compile(r"^\s*\[{1,2}\s*" + re.escape(".".join(table)) + r"\s*\]{1,2}\s*(#.*)?$")
        hit = next((n for n, line in enumerate(lines) if n > start and header.match(line)), None)
        if hit is None:  # only sub-tables are written out: [search_space.lr] for search_space
            sub = re.compile(r"^\s*\[{1,2}\s*" + re.escape(".".join(table)) + r"\.")
            hit = next((n - 1 for n, line in enumerate(lines) if n > start and sub.match(line)), None)
            shift = 2
        else:
            shift = 1
        if hit is not None:
            start = hit
            continue
        key = re.compile(r"^\s*[\"']?" + re.escape(str(part)) + r"[\"']?\s*[=.]")
        for n in range(start + 1, len(lines)):
            if lines[n].lstrip().startswith("["):
                break
            if key.match(lines[n]):
                return n + 1
        break
    return start + shift if start >= 0 else None
