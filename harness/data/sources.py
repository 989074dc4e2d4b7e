"""Registered training sources: offline sets from the data folder, hub sets, and user files.

A source turns files into examples (``anchor``, ``positive``, [``negative``], [``label``]);
:func:`load_source` cleans them and returns a ``datasets.Dataset``. Names starting with
``file:`` load a user file (see :mod:`harness.data.userfiles`). A source read from the lines of a
parallel corpus (:class:`Parallel`, the multilingual sources of :mod:`harness.data.multilingual`)
also tags each example with its ``line``, so that a line leaking in one language is dropped in all.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness import files
from harness.data import conversion
from harness.data.examples import Example, clean, to_dataset
from harness.data.userfiles import read_user_file
from harness.errors import UserError
from harness.files import data_dir
from harness.registry import Registry

if TYPE_CHECKING:
    from datasets import Dataset


@dataclass(frozen=True)
class Parallel:
    """The corpus a parallel source is read from: line *i* of each language's file translates line *i*
    of every other, and the source's examples carry that ``line`` number.

    Attributes:
        corpus: the corpus name; sources of one corpus share line numbers.
        lines: ``lines(data_dir)`` -> the texts of each line in every language, indexed by line.
    """

    corpus: str
    lines: Callable[[Path], Sequence[tuple[str, ...]]]


@dataclass(frozen=True)
class SourceSpec:
    """A named training source.

    Attributes:
        name: registry name (``stsb-train``).
        description: one line on what the examples are.
        kind: ``offline`` (data folder), ``hub`` (Hugging Face Hub, needs network) or ``file``.
        origin: where the texts come from (paths under the data folder, or the hub id).
        licence: the licence as stated by the source (see the data folder's MANIFEST.md).
        columns: the dataset columns with default options.
        n_examples: examples after cleaning with default options (None where unknown offline).
        origins: the original (dataset, split) pairs read, for provenance and in-domain reports.
        build: ``build(data_dir, **options) -> list[example]``; keyword-only options with defaults.
        parallel: for a source read from a parallel corpus, that corpus (its examples carry ``line``).
    """

    name: str
    description: str
    kind: Literal["offline", "hub", "file"]
    origin: str
    licence: str
    columns: tuple[str, ...]
    n_examples: int | None
    origins: tuple[tuple[str, str], ...]
    build: Callable[..., list[Example]]
    parallel: Parallel | None = None

    def option_defaults(self) -> dict[str, Any]:
        """The options ``build`` accepts, with their defaults."""
        params = inspect.signature(self.build).parameters.values()
        return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


class SourceRegistry(Registry[SourceSpec]):
    """The dataset registry; a name of a registered family (``stsb-multi-<lang>``) with a code outside
    the family gets the family's own one-line message listing the valid codes."""

    def __init__(self) -> None:
        super().__init__("dataset")
        self.families: list[Callable[[str], str | None]] = []

    def unknown_message(self, name: str) -> str:
        for family in self.families:
            message = family(name)
            if message:
                return message
        return super().unknown_message(name)


DATASETS = SourceRegistry()


def get_source(name: str) -> SourceSpec:
    """The spec of a registered source, or an ad-hoc spec for ``file:PATH``."""
    if name.startswith("file:"):
        return file_source(name[len("file:") :])
    return DATASETS.get(name)


def file_source(path: str) -> SourceSpec:
    """An ad-hoc source spec for ``file:PATH`` (not registered)."""

    def build(_folder: Any, *, columns: Mapping[str, str] | None = None, file_format: str | None = None):
        return read_user_file(path, columns=columns, file_format=file_format)

    return SourceSpec(
        name=f"file:{path}", description="user file", kind="file", origin=str(path), licence="(user's)",
        columns=("anchor", "positive"), n_examples=None, origins=((str(path), "train"),), build=build,
    )  # fmt: skip


def check_options(spec: SourceSpec, options: dict[str, Any]) -> None:
    """Raises a ``UserError`` for options the source does not take, listing the valid ones."""
    valid = spec.option_defaults()
    unknown = sorted(set(options) - set(valid))
    if unknown:
        listed = ", ".join(f"{k}={v!r}" for k, v in valid.items()) or "none"
        raise UserError(
            f"dataset {spec.name!r}: unknown option(s) {', '.join(unknown)}; valid options: {listed}"
        )


def source_examples(name: str, folder: str | Path | None = None, **options: Any) -> list[Example]:
    """The raw (uncleaned) examples of a source; offline sources read from the data folder."""
    spec = get_source(name)
    check_options(spec, options)
    folder = data_dir(folder) if spec.kind == "offline" else folder
    return spec.build(folder, **options)


def load_source(name: str, data_dir: str | Path | None = None, **options: Any) -> Dataset:
    """Loads one source as a ``datasets.Dataset`` (anchor, positive, [negative], [label]).

    Blank texts, anchor == positive and exact duplicates are removed.

    Args:
        name: a registered source name (``gist-harness ls datasets``) or ``file:PATH``.
        data_dir: the data folder for offline sources (default: ``$GIST_HARNESS_DATA``).
        **options: source options (e.g. ``min_score`` for ``stsb-train``).

    Raises:
        UserError: unknown name or option, unreadable file, or no example left after cleaning.
    """
    cleaned = clean(source_examples(name, data_dir, **options))
    if not cleaned.examples:
        raise UserError(
            f"dataset {name!r}: no examples left after filtering (options: {options or 'defaults'})"
        )
    return to_dataset(cleaned.examples)


def listing() -> list[dict[str, Any]]:
    """One row per registered source for ``gist-harness ls datasets``."""
    return [
        {"name": name, "kind": s.kind, "examples": s.n_examples, "columns": ", ".join(s.columns),
         "origin": s.origin, "licence": s.licence, "description": s.description}
        for name, s in DATASETS.items()
    ]  # fmt: skip


# --- offline builders --------------------------------------------------------------------------


def _stsb_train(folder: Path, *, min_score: float = 4.0) -> list[Example]:
    return conversion.scored_pairs(
        files.read_stsb(folder / "stsbenchmark" / "sts-train.csv"), min_score=min_score
    )


def _sick_train(folder: Path, *, by: str = "entailment", min_score: float = 4.0) -> list[Example]:
    rows = files.read_sick(folder / "sick2014" / "SICK_train.txt")
    if by == "entailment":
        return [
            {"anchor": r["sentence1"], "positive": r["sentence2"]}
            for r in rows
            if r["entailment"] == "ENTAILMENT"
        ]
    if by == "relatedness":
        return conversion.scored_pairs(rows, min_score=min_score)
    raise UserError(f"dataset 'sick-train': option by={by!r}; expected 'entailment' or 'relatedness'")


def _msrp_train(folder: Path, *, include_val: bool = True) -> list[Example]:
    names = ["msr-para-train.tsv"] + (["msr-para-val.tsv"] if include_val else [])
    rows = [r for name in names for r in files.read_msrp(folder / "msr-paraphrase" / name)]
    return [{"anchor": r["sentence1"], "positive": r["sentence2"]} for r in rows if r["label"] == 1]


def _snli_triplets(folder: Path, *, splits: tuple[str, ...] = ("dev", "test")) -> list[Example]:
    return conversion.nli_triplets(
        [r for split in splits for r in files.read_snli(folder / "snli-senteval", split)]
    )


def _trecqa_train(folder: Path, *, with_negative: bool = False) -> list[Example]:
    return conversion.answer_pairs(
        files.read_trecqa(folder / "trecqa-wang" / "train.csv"), with_negative=with_negative
    )


def _banking77_pairs(folder: Path, *, seed: int = 0, with_negative: bool = False) -> list[Example]:
    rows = files.read_banking77(folder / "banking77" / "train.csv")
    return conversion.label_pairs(rows, seed=seed, with_negative=with_negative)


def _emotion_pairs(folder: Path, *, seed: int = 0, with_negative: bool = False) -> list[Example]:
    rows = files.read_emotion(folder / "emotion" / "train.txt")
    return conversion.label_pairs(rows, seed=seed, with_negative=with_negative)


def _amazon_cf_pairs(
    folder: Path, *, seed: int = 0, with_negative: bool = False, subset: str = "EN"
) -> list[Example]:
    if subset not in ("EN", "EN-ext"):
        raise UserError(f"dataset 'amazon-cf-pairs': option subset={subset!r}; expected 'EN' or 'EN-ext'")
    rows = files.read_amazon_counterfactual(folder / "amazon-counterfactual" / f"{subset}_train.tsv")
    named = [
        {"text": r["text"], "label": "counterfactual" if r["label"] else "not-counterfactual"} for r in rows
    ]
    return conversion.label_pairs(named, seed=seed, with_negative=with_negative)


def offline(name: str, build: Callable[..., list[Example]], **fields: Any) -> None:
    """Registers an offline source (read from the data folder)."""
    DATASETS.register(name, SourceSpec(name=name, kind="offline", build=build, **fields))


PAIR = ("anchor", "positive")
TRIPLET = ("anchor", "positive", "negative")
LABELLED = ("anchor", "positive", "label")

offline(
    "stsb-train", _stsb_train, columns=PAIR, n_examples=1393, origins=(("STSBenchmark", "train"),),
    description="STS-B train pairs with score >= min_score (default 4.0 of 5)",
    origin="stsbenchmark/sts-train.csv", licence="CC BY-SA 4.0 (scores); text per source",
)  # fmt: skip
offline(
    "sick-train", _sick_train, columns=PAIR, n_examples=1284, origins=(("SICK", "train"),),
    description="SICK train pairs judged ENTAILMENT (by='relatedness': score >= min_score)",
    origin="sick2014/SICK_train.txt", licence="CC BY-NC-SA 3.0",
)  # fmt: skip
offline(
    "msrp-train", _msrp_train, columns=PAIR, n_examples=2753, origins=(("MSRP", "train"), ("MSRP", "val")),
    description="MSR paraphrase pairs (Quality 1) from train + val",
    origin="msr-paraphrase/msr-para-{train,val}.tsv", licence="MSR Shared Source (non-commercial)",
)  # fmt: skip
offline(
    "snli-triplets", _snli_triplets, columns=TRIPLET, n_examples=6334, origins=(("SNLI", "dev"), ("SNLI", "test")),
    description="SNLI (premise, entailment, contradiction) triplets from dev + test",
    origin="snli-senteval/{s1,s2,labels}.{dev,test}", licence="CC BY-SA 4.0 (SNLI)",
)  # fmt: skip
offline(
    "trecqa-train", _trecqa_train, columns=PAIR, n_examples=348, origins=(("TrecQA", "train"),),
    description="TrecQA (question, correct answer sentence); with_negative adds a wrong answer",
    origin="trecqa-wang/train.csv", licence="public domain (TREC questions)",
)  # fmt: skip
offline(
    "banking77-pairs", _banking77_pairs, columns=LABELLED, n_examples=10003, origins=(("Banking77", "train"),),
    description="Banking77 train: two utterances of the same intent (label kept)",
    origin="banking77/train.csv", licence="CC BY 4.0",
)  # fmt: skip
offline(
    "emotion-pairs", _emotion_pairs, columns=LABELLED, n_examples=15999, origins=(("Emotion", "train"),),
    description="Emotion train: two texts of the same emotion (label kept)",
    origin="emotion/train.txt", licence="research/education use (dair-ai); repo MIT",
)  # fmt: skip
offline(
    "amazon-cf-pairs", _amazon_cf_pairs, columns=LABELLED, n_examples=4018,
    origins=(("AmazonCounterfactual", "train"),),
    description="AmazonCounterfactual EN train: two sentences of the same class (label kept)",
    origin="amazon-counterfactual/EN_train.tsv", licence="CC BY-NC 4.0",
)  # fmt: skip
