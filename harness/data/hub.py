"""Hugging Face Hub sources: a dataset id, config, split and revision, read by ``datasets``.

A hub source maps the hub columns onto ``anchor``/``positive``/``negative``/``label``. MEDI-style
columns hold ``[instruction, text]`` lists; the text (last item) is used unless ``with_instruction``
joins both.

Online, ``datasets.load_dataset(id, config, split=..., revision=...)`` downloads (or reuses) the
data. Offline (``HF_HUB_OFFLINE=1``), ``datasets`` itself only finds a dataset it has prepared
before (its own cache, ``HF_DATASETS_CACHE``, revision not checked); when it finds none, the
dataset repo's snapshot in the Hub cache (``HF_HUB_CACHE``, as ``hf download --repo-type dataset``
leaves it, revision resolved through ``refs/``) is read as a local folder by ``datasets`` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.data.examples import Example
from harness.data.sources import DATASETS, SourceSpec
from harness.errors import UserError


@dataclass(frozen=True)
class HubSpec:
    """Where a hub dataset lives and how its columns map onto example fields.

    Attributes:
        dataset_id: the hub id (``sentence-transformers/all-nli``).
        config: the dataset config (subset) name, or None.
        split: the split, slicing allowed (``train[:10000]``).
        revision: a commit hash or tag to pin; None follows the default branch.
        columns: example field -> hub column (``{"anchor": "query", "positive": "pos"}``).
    """

    dataset_id: str
    config: str | None = None
    split: str = "train"
    revision: str | None = None
    columns: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def text_of(value: Any, *, with_instruction: bool = False) -> str:
    """The text of a hub cell: a string, or the last item of an ``[instruction, text]`` list."""
    if isinstance(value, (list, tuple)):
        if not value:
            return ""
        return " ".join(str(v) for v in value) if with_instruction else str(value[-1])
    return "" if value is None else str(value)


def map_row(row: Mapping[str, Any], columns: Mapping[str, str], *, with_instruction: bool = False) -> Example:
    """Maps one hub row onto an example (``label`` kept as a string)."""
    example = {
        f: text_of(row[c], with_instruction=with_instruction) for f, c in columns.items() if f != "label"
    }
    if "label" in columns:
        example["label"] = str(row[columns["label"]])
    return example


def check_columns(found: list[str], columns: Mapping[str, str], dataset_id: str) -> None:
    """Raises a ``UserError`` naming hub columns the mapping needs but the dataset lacks."""
    missing = [c for c in columns.values() if c not in found]
    if missing:
        raise UserError(
            f"hub dataset {dataset_id}: missing column(s) {', '.join(missing)}; columns found: {', '.join(found)}"
        )


def load_hub_examples(
    spec: HubSpec,
    *,
    split: str | None = None,
    revision: str | None = None,
    with_instruction: bool = False,
    loader: Callable[..., Any] | None = None,
) -> list[Example]:
    """Downloads (or reads from the HF cache) a hub dataset and maps it onto examples.

    Args:
        spec: the hub dataset and its column mapping.
        split: overrides ``spec.split`` (e.g. ``train[:50000]`` for a quick run).
        revision: overrides ``spec.revision``.
        with_instruction: join ``[instruction, text]`` cells instead of keeping the text only.
        loader: ``datasets.load_dataset`` (injected in tests).
    """
    if loader is None:
        from datasets import load_dataset

        loader = load_dataset
    split, revision = split or spec.split, revision or spec.revision
    try:
        dataset = loader(spec.dataset_id, spec.config, split=split, revision=revision)
    except ConnectionError:  # offline and not prepared by ``datasets`` before: the Hub cache's copy
        snapshot = cached_snapshot(spec.dataset_id, revision)
        dataset = loader(str(snapshot), spec.config, split=split, revision=None)
    check_columns(list(dataset.column_names), spec.columns, spec.dataset_id)
    return [map_row(row, spec.columns, with_instruction=with_instruction) for row in dataset]


def cached_snapshot(dataset_id: str, revision: str | None) -> Path:
    """The folder of a dataset repo's snapshot in the local Hub cache (``UserError`` when absent)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(
            snapshot_download(dataset_id, repo_type="dataset", revision=revision, local_files_only=True)
        )
    except LocalEntryNotFoundError:
        raise UserError(
            f"hub dataset {dataset_id}@{revision or 'main'}: offline, and neither the datasets cache nor "
            "the Hub cache holds it (download it online once, or `hf download --repo-type dataset`)"
        ) from None


def register_hub(name: str, spec: HubSpec, *, description: str, licence: str) -> SourceSpec:
    """Registers a hub dataset as a training source named ``name``."""

    def build(
        _folder: Any, *, split: str | None = None, revision: str | None = None, with_instruction: bool = False
    ):
        return load_hub_examples(spec, split=split, revision=revision, with_instruction=with_instruction)

    origin = spec.dataset_id + (f" ({spec.config})" if spec.config else "") + f" [{spec.split}]"
    source = SourceSpec(
        name=name, description=description, kind="hub", origin=origin, licence=licence,
        columns=tuple(spec.columns), n_examples=None, origins=((spec.dataset_id, spec.split),), build=build,
    )  # fmt: skip
    return DATASETS.register(name, source)


register_hub(
    "medi-mteb-triplets",
    HubSpec(
        "avsolatorio/medi-data-mteb_avs_triplets",
        columns={"anchor": "query", "positive": "pos", "negative": "neg"},
    ),
    description="the GISTEmbed paper's MEDI + MTEB classification triplets (~1.8M rows)",
    licence="see the dataset card (mixed sources)",
)
register_hub(
    "all-nli-triplets",
    HubSpec(
        "sentence-transformers/all-nli",
        "triplet",
        columns={"anchor": "anchor", "positive": "positive", "negative": "negative"},
    ),
    description="SNLI + MultiNLI (anchor, entailment, contradiction) triplets",
    licence="CC BY-SA 4.0 (SNLI); MultiNLI per genre (see card)",
)
