"""The docs site's reference pages, generated from the registries, the CLI parser and the schema.

Every function here is pure: it reads what the code registers and returns Markdown, so the
reference cannot drift from the code (the MkDocs hook ``docs/hooks.py`` adds the pages at build
time; nothing generated is committed). The registries are read through the ``listing()``
functions that ``gist-harness ls KIND`` prints: metadata only, no model is loaded and the data
folder is not read.

Example::

    from harness.reference import pages

    for path, text in pages().items():
        print(path, len(text))
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import textwrap
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

LISTED = {
    "strategies": ("Masking strategies", "summary"),
    "objectives": ("Loss objectives", "summary"),
    "models": ("Models", "origin"),
    "pairs": ("Student/guide pairs", "note"),
    "guides": ("Guides", "summary"),
    "datasets": ("Training sources", "description"),
    "mixtures": ("Mixtures", "description"),
    "suites": ("Evaluation suites", "description"),
    "tasks": ("Evaluation tasks", "category"),
}
"""Each ``gist-harness ls`` kind with its page title and the column that documents a row."""
_CODE_SPAN = re.compile(r"(``.*?``|`[^`]*`)")


@dataclass(frozen=True)
class FieldDoc:
    """One TOML field of an experiment file.

    Attributes:
        section: where it is written (``[train]``, ``[[ablation.arms]]``, ``[search_space.NAME]``).
        name: the key.
        type: its type, as a reader writes it in TOML terms.
        default: its default (``required`` when it has none).
        description: the attribute docstring under the field in the schema.
    """

    section: str
    name: str
    type: str
    default: str
    description: str


def pages() -> dict[str, str]:
    """Every generated reference page, by its path under ``docs/``."""
    out = {"reference/cli.md": cli_page(), "reference/config.md": config_page()}
    out.update({f"reference/{kind}.md": listing_page(kind) for kind in LISTED})
    return out


# --- registries -------------------------------------------------------------------------------


def listing(kind: str) -> list[dict[str, Any]]:
    """The rows ``gist-harness ls KIND`` prints."""
    from harness.cli.ls_cmd import LISTINGS

    return LISTINGS[kind]()


def listing_note(kind: str) -> str:
    """The note ``gist-harness ls KIND`` prints under its table ("" when none)."""
    from harness.cli.ls_cmd import NOTES

    return NOTES[kind]() if kind in NOTES else ""


def listing_page(kind: str) -> str:
    """One registry as a Markdown page: the table ``gist-harness ls KIND`` prints, and its note."""
    title, _ = LISTED[kind]
    parts = [
        f"# {title}\n",
        f"Generated from the registry at build time: the table `gist-harness ls {kind}` prints "
        f"(`--json` for the same rows as JSON).\n",
        markdown_table([{**row, "name": f"`{row['name']}`"} for row in listing(kind)]),
    ]
    if note := listing_note(kind):
        parts.append("\n" + _as_paragraphs(note))
    return "\n".join(parts) + "\n"


def undocumented(kind: str) -> list[str]:
    """Names registered under ``kind`` whose documenting column is empty."""
    _, column = LISTED[kind]
    return [str(row["name"]) for row in listing(kind) if not str(row.get(column) or "").strip(" -")]


# --- the command line -------------------------------------------------------------------------


def commands(parser: argparse.ArgumentParser | None = None, prefix: str = "gist-harness"):
    """Every command and sub-command as ``(full name, summary, parser)``, depth first."""
    if parser is None:
        from harness.cli import build_parser

        parser = build_parser()
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                out.append((f"{prefix} {name}", helps.get(name, ""), sub))
                out.extend(commands(sub, f"{prefix} {name}"))
    return out


def cli_page() -> str:
    """Every command with its usage and a table of its arguments and options."""
    from harness.cli import build_parser

    parser = build_parser()
    parts = [
        "# Command line\n",
        "Generated from `harness.cli.build_parser()` at build time: every command of "
        "`gist-harness` (also `python -m harness`) with its arguments, defaults and help.\n",
        _parser_section("gist-harness", parser.description or "", parser),
    ]
    parts += [_parser_section(name, summary, sub) for name, summary, sub in commands(parser)]
    return "\n".join(parts)


def _parser_section(name: str, summary: str, parser: argparse.ArgumentParser) -> str:
    depth = "#" * min(name.count(" ") + 2, 4)
    usage = parser.format_usage().replace("usage: ", "", 1).strip()
    text = [f"{depth} `{name}`\n", _md_escape(summary) + "\n" if summary else ""]
    if parser.description and parser.description != summary:
        text.append(_md_escape(" ".join(parser.description.split())) + "\n")
    text.append(f"```text\n{usage}\n```\n")
    rows = [_action_row(a, parser.prog) for a in parser._actions if _documented_action(a)]
    if rows:
        text.append(markdown_table(rows))
    return "\n".join(t for t in text if t)


def _documented_action(action: argparse.Action) -> bool:
    return not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)


def _action_row(action: argparse.Action, prog: str) -> dict[str, str]:
    name = ", ".join(action.option_strings) or action.metavar or action.dest
    value = "" if action.nargs == 0 else str(action.metavar or action.dest.upper())
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        value = " | ".join(str(c) for c in action.choices)
    default = action.default
    shown = "" if default in (None, False, argparse.SUPPRESS) or not action.option_strings else default
    return {
        "argument": f"`{name}`",
        "value": f"`{value}`" if value else "",
        "default": f"`{shown}`" if shown not in ("", []) else "",
        "help": _expand_help(action, prog),
    }


def _expand_help(action: argparse.Action, prog: str) -> str:
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    values = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
    values["prog"] = prog
    try:
        return action.help % values
    except (KeyError, TypeError, ValueError):
        return action.help


# --- the experiment schema --------------------------------------------------------------------


def config_page() -> str:
    """Every TOML field of an experiment file, section by section, with type, default and text."""
    from harness.config.schema import Experiment

    parts = [
        "# Experiment file (TOML)\n",
        "Generated from the pydantic schema `harness.config.Experiment` at build time: every "
        "field, its type, its default and the docstring under it in the schema. "
        "`gist-harness validate FILE` checks a file against it.\n",
    ]
    for section, model, fields in schema_sections(Experiment):
        parts.append(f"## `{section}`\n")
        if doc := _docstring(model):
            parts.append(_md_escape(doc) + "\n")
        parts.append(markdown_table([_field_row(f) for f in fields]))
    return "\n".join(parts)


def _field_row(field: FieldDoc) -> dict[str, str]:
    return {
        "field": f"`{field.name}`",
        "type": f"`{field.type}`",
        "default": f"`{field.default}`",
        "description": field.description,
    }


def schema_fields(root: type[BaseModel]) -> list[FieldDoc]:
    """Every TOML field under ``root``, nested sections included."""
    return [f for _, _, fields in schema_sections(root) for f in fields]


def schema_sections(root: type[BaseModel]) -> list[tuple[str, type[BaseModel], list[FieldDoc]]]:
    """``(section header, model, fields)`` for each section under ``root``, depth first.

    An arm's overrides (every ``[train]`` field) are listed once, under ``[train]``; the arm section
    lists only its own fields.
    """
    out: list[tuple[str, type[BaseModel], list[FieldDoc]]] = []
    for name, info in root.model_fields.items():
        for header, model in _sections_of(name, info.annotation):
            out.append((header, model, _model_fields(header, model)))
            out.extend(_nested(header, model))
    return out


def _nested(header: str, model: type[BaseModel]) -> list[tuple[str, type[BaseModel], list[FieldDoc]]]:
    out = []
    for name, info in _own_fields(model).items():
        for sub in _models_in(info.annotation):
            sub_header = f"{header.strip('[]')}.{name}"
            out.append((f"{sub_header} entries", sub, _model_fields(sub_header, sub)))
    return out


def _sections_of(name: str, annotation: Any) -> list[tuple[str, type[BaseModel]]]:
    models = _models_in(annotation)
    if typing.get_origin(annotation) is dict:  # [search_space.NAME]: one table per searched field
        return [(f'[{name}.NAME] type = "{_literal_of(m, "type")}"', m) for m in models]
    return [(f"[{name}]", m) for m in models]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (through Optional, unions, lists, dicts, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += [m for m in _models_in(arg) if m not in found]
    return found


def _literal_of(model: type[BaseModel], field: str) -> str:
    return str(typing.get_args(model.model_fields[field].annotation)[0])


def _own_fields(model: type[BaseModel]) -> dict[str, Any]:
    """The model's fields, less an arm's copies of the ``[train]`` fields (documented there)."""
    skip = set()
    for base in model.__mro__[1:]:
        if isinstance(base, type) and issubclass(base, BaseModel) and not _has_source(base):
            skip |= set(base.model_fields)
    return {k: v for k, v in model.model_fields.items() if k not in skip}


def _model_fields(section: str, model: type[BaseModel]) -> list[FieldDoc]:
    docs = attribute_docs(model)
    return [
        FieldDoc(section, name, type_name(info.annotation), _default(info), docs.get(name, ""))
        for name, info in _own_fields(model).items()
    ]


def _default(info: Any) -> str:
    if info.default_factory is not None:
        return repr(info.default_factory())
    if info.default is PydanticUndefined:
        return "required"
    return _toml_value(info.default)


def _toml_value(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, BaseModel):
        return "{}" if not value.model_fields_set else repr(value.model_dump())
    return repr(value)


def type_name(annotation: Any) -> str:
    """A type as a TOML reader thinks of it: ``int``, ``"a" | "b"``, ``list[str]``, ``table``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None):
        return "unset"
    if origin is typing.Literal:
        return " | ".join(_toml_value(a) for a in args)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(dict.fromkeys(type_name(a) for a in args if a is not type(None)))
    if origin in (list, tuple):
        return f"{'list' if origin is list else 'array'}[{', '.join(dict.fromkeys(map(type_name, args)))}]"
    if origin is dict:
        return f"table of {type_name(args[1])}" if args else "table"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    if annotation is Any:
        return "any"
    return getattr(annotation, "__name__", str(annotation))


def attribute_docs(model: type) -> dict[str, str]:
    """The docstrings written under each field of ``model`` and of its bases (read with ``ast``)."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if _has_source(cls):
            docs.update(_class_attribute_docs(cls))
    return docs


def _has_source(cls: type) -> bool:
    if cls.__module__ in ("builtins", "typing") or cls.__module__.startswith("pydantic"):
        return False
    try:
        inspect.getsource(cls)
    except (OSError, TypeError):
        return False
    return True


@cache
def _class_attribute_docs(cls: type) -> dict[str, str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for stmt, following in zip(body, body[1:], strict=False):
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and _is_text(following):
            docs[stmt.target.id] = " ".join(following.value.value.split())  # type: ignore[attr-defined]
    return docs


def _is_text(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _docstring(model: type) -> str:
    return " ".join((inspect.getdoc(model) or "").split("\n\n")[0].split()) if model.__doc__ else ""


# --- Markdown ---------------------------------------------------------------------------------


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Rows of one shape as a Markdown table (columns in the first row's order)."""
    if not rows:
        return "*(none registered)*\n"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    text = " ".join(("" if value is None else str(value)).split())
    return _outside_code(text, lambda part: _escape_html(part).replace("|", "\\|"))


def _md_escape(text: str) -> str:
    return _outside_code(text, _escape_html)


def _escape_html(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _outside_code(text: str, change: Callable[[str], str]) -> str:
    """``change`` applied to the text outside code spans (a code span shows its text as written)."""
    parts = _CODE_SPAN.split(text)
    return "".join(part if i % 2 else change(part) for i, part in enumerate(parts))


def _as_paragraphs(note: str) -> str:
    return "\n\n".join(" ".join(p.split()) for p in note.split("\n\n")) + "\n"
