"""The draft of an experiment that pydantic refused: what it accepted, for the cross-section checks.

``validate_experiment`` reports pydantic's errors and the checks' errors together. When pydantic
refuses the file there is no :class:`Experiment` to check, so the checks read a draft instead: each
section validated on its own with every refused field left out (its default stands in). A refused
item of a list leaves the whole list out (its neighbours' positions would shift otherwise), a table
that misses a required field is left out, and a required section left out is None in the draft.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import TypeAdapter, ValidationError

from harness.config.schema import Experiment

DISCRIMINATORS = ("float", "int", "categorical")
"""Tags pydantic puts into the location of a search-space entry's error (not part of the file)."""
_REFUSED = object()


def strip(loc: tuple) -> tuple:
    """The location in the file of a pydantic error (the discriminator tags dropped)."""
    return tuple(p for p in loc if p not in DISCRIMINATORS)


def draft(data: dict[str, Any]) -> Experiment:
    """The experiment as far as pydantic accepts it (not validated as a whole: required sections may be None)."""
    sections: dict[str, Any] = {name: None for name, f in Experiment.model_fields.items() if f.is_required()}
    for name, field in Experiment.model_fields.items():
        if name in data:
            value = accepted(TypeAdapter(field.annotation or Any), copy.deepcopy(data[name]))
            if value is not _REFUSED:
                sections[name] = value
    return Experiment.model_construct(**sections)


def accepted(adapter: TypeAdapter[Any], value: Any) -> Any:
    """``value`` validated, after leaving out what was refused; ``_REFUSED`` when nothing is left."""
    holder = {"value": value}
    while "value" in holder:
        try:
            return adapter.validate_python(holder["value"])
        except ValidationError as exc:
            refused = [(("value", *strip(tuple(e["loc"]))), e["type"] == "missing") for e in exc.errors()]
            if not any([_leave_out(holder, loc, missing) for loc, missing in refused]):
                break
    return _REFUSED


def _leave_out(node: Any, loc: tuple, missing: bool) -> bool:
    """Removes the refused field at ``loc`` (for a ``missing`` one, the table that misses it). Within a
    list, the nearest table key above is removed instead: the item's neighbours keep their positions.
    False when it was removed already.

    A part of ``loc`` that is not a key where it stands names a union member pydantic tried (``str``,
    ``SourceRef``, ``tuple[str, str]``...) and is skipped.
    """
    parts = loc[:-1] if missing else loc
    path: list[tuple[Any, Any]] = []
    for i, part in enumerate(parts):
        if isinstance(node, dict) and part not in node:
            if i == len(parts) - 1:
                return False  # removed already
            continue
        if isinstance(node, list) and not (isinstance(part, int) and 0 <= part < len(node)):
            break
        if not isinstance(node, dict | list):
            break
        path.append((node, part))
        node = node[part]
    for container, key in reversed(path):
        if isinstance(container, dict):
            del container[key]
            return True
    return False
