"""Named parameters of registered things: masking strategies and loss objectives share this mechanism.

A registered item (``harness.masking.Strategy``, ``harness.loss.objectives.Objective``) lists its
keyword parameters as ``ParamSpec`` (default and valid range or choices). ``resolve`` overlays the
user's values on the defaults and checks each one, raising a one-line ``UserError`` that names the
item, the parameter and its range.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from harness.errors import UserError
from harness.registry import Registry


@dataclass(frozen=True)
class ParamSpec:
    """One strategy (or loss objective) parameter: default value and the valid range (or choices).

    The range is closed, ``[low, high]``, unless ``high_open`` (``[low, high)``, e.g. a prior in [0, 1)).
    """

    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    help: str = ""
    high_open: bool = False

    def describe(self) -> str:
        if self.choices is not None:
            return "|".join(self.choices)
        return f"[{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


class HasParams(Protocol):
    """A registered item with keyword parameters."""

    @property
    def params(self) -> Mapping[str, ParamSpec]: ...


def resolve(registry: Registry[Any], name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The defaults of item ``name`` overlaid with ``params``, each checked against its range.

    Args:
        registry: where ``name`` is registered; its ``kind`` ("strategy", "objective") names it in errors.
        name: the registered item, whose ``params`` are ``ParamSpec``.
        params: the user's values (None: the defaults).

    Raises:
        UserError: an unknown name or parameter, or a value outside its range (one line).
    """
    if name not in registry:
        raise UserError(registry.unknown_message(name))
    item: HasParams = registry.get(name)
    resolved = {key: spec.default for key, spec in item.params.items()}
    for key, value in (params or {}).items():
        spec = item.params.get(key)
        if spec is None:
            valid = ", ".join(item.params) or "none"
            raise UserError(f"{registry.kind} {name!r} has no parameter {key!r} (valid: {valid})")
        if value is None and spec.default is None:  # an optional parameter left unset (resolved twice)
            continue
        resolved[key] = check_param(f"{registry.kind} {name!r}: {key}", spec, value)
    return resolved


def check_param(where: str, spec: ParamSpec, value: Any) -> Any:
    """``value`` converted to the parameter's type, or a one-line ``UserError`` naming ``where`` and the range."""
    if spec.choices is not None:
        if value not in spec.choices:
            raise UserError(f"{where} must be one of {', '.join(spec.choices)}, got {value!r}")
        return value
    is_int = isinstance(spec.default, int)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (is_int and value != int(value)):
        kind = "an integer" if is_int else "a number"
        raise UserError(f"{where} must be {kind} in {spec.describe()}, got {value!r}")
    assert spec.low is not None and spec.high is not None, "numeric ParamSpec needs low and high"
    if not spec.low <= value <= spec.high or (spec.high_open and value == spec.high):
        raise UserError(f"{where} must be in {spec.describe()}, got {value!r}")
    return int(value) if is_int else float(value)


def listed(params: Mapping[str, ParamSpec]) -> str:
    """The parameters as ``ls`` shows them: ``name=default range; ...`` ("-" without any)."""
    return "; ".join(f"{k}={v.default!r} {v.describe()}" for k, v in params.items()) or "-"
