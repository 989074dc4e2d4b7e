"""The sentence-transformers internals that ``harness.loss.st_private`` adapts exist, signatures unchanged.

Fails loudly on an upgrade that moves, renames or changes them, naming the symbol and the installed
version, instead of deep inside a GradCache training step.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest
import sentence_transformers

import harness
from harness.loss import st_private

VERSION = sentence_transformers.__version__
# (module, symbol, the parameters the harness relies on, in order)
EXPECTED = [
    (
        "sentence_transformers.base.losses.gradcache",
        "_create_minibatch",
        ["sentence_feature", "begin", "end"],
    ),
    (
        "sentence_transformers.base.losses.merged_forward",
        "embed_columns",
        ["model", "features_list", "separate_first"],
    ),
    ("sentence_transformers.base.losses", "RandContext", ["tensors"]),
    (
        "sentence_transformers.base.losses",
        "CachedLossMixin.forward_cached",
        ["self", "sentence_features", "labels"],
    ),
    (
        "sentence_transformers.base.losses",
        "CachedLossMixin.calculate_loss",
        ["self", "reps", "labels", "with_backward"],
    ),
    (
        "sentence_transformers.base.losses",
        "CachedLossMixin.embed_minibatch",
        ["self", "sentence_feature", "begin", "end", "with_grad", "copy_random_state", "random_state"],
    ),
    (
        "sentence_transformers.base.losses",
        "CachedLossMixin.embed_minibatch_iter",
        ["self", "sentence_feature", "with_grad", "copy_random_state", "random_states", "ranges"],
    ),
]


def _lookup(module: str, symbol: str) -> object:
    try:
        found: object = importlib.import_module(module)
        for part in symbol.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        pytest.fail(
            f"sentence-transformers {VERSION} no longer provides {module}.{symbol} ({exc}); "
            "harness/loss/st_private.py was written against 6.3.0: adapt it"
        )
    return found


@pytest.mark.parametrize(("module", "symbol", "params"), EXPECTED, ids=[e[1] for e in EXPECTED])
def test_symbol_and_signature(module, symbol, params):
    found = _lookup(module, symbol)
    target = found.__init__ if inspect.isclass(found) else found  # type: ignore[misc]
    actual = list(inspect.signature(target).parameters)
    if inspect.isclass(found):
        actual = actual[1:]  # without self
    assert actual == params, (
        f"sentence-transformers {VERSION} changed the signature of {module}.{symbol}: "
        f"parameters {actual}, harness/loss/st_private.py expects {params}"
    )


def test_adapter_reexports_the_installed_objects():
    assert st_private.create_minibatch is _lookup(*EXPECTED[0][:2])
    assert st_private.embed_columns is _lookup(*EXPECTED[1][:2])
    assert st_private.RandContext is _lookup("sentence_transformers.base.losses", "RandContext")
    assert st_private.CachedLossMixin is _lookup("sentence_transformers.base.losses", "CachedLossMixin")


def test_no_other_module_imports_sentence_transformers_internals():
    """Private names and the ``base.losses.*`` submodules are imported in ``st_private`` only."""
    root = Path(harness.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if path == Path(st_private.__file__):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(
                "sentence_transformers"
            ):
                continue
            private = [a.name for a in node.names if a.name.startswith("_")]
            if private or node.module.startswith("sentence_transformers.base.losses."):
                offenders.append(f"{path.relative_to(root.parent)}: from {node.module} import ...")
    assert not offenders, (
        "import sentence-transformers internals through harness.loss.st_private: " + "; ".join(offenders)
    )
