"""Mixtures: several sources with weights or caps, deduplicated, shuffled, split into train and dev.

``build_mixture`` returns a :class:`Mixture` whose ``train`` and ``dev`` are the
``datasets.Dataset`` objects the trainer consumes (anchor, positive, [negative*], [label]).

Rows of a parallel source (``SourceSpec.parallel``: the multilingual STS-B sources) keep their
corpus line, and the mixture keeps every language's text of each line it uses: the leakage check
reads them all (``Mixture.texts_by_source``), and ``drop_leaked`` drops a row when any language's
text of its line leaked, so a line leaking in one language is dropped in every language.
"""

from __future__ import annotations

import difflib
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from harness.data.examples import Example, clean, text_columns, to_dataset
from harness.data.leakage import LeakageReport
from harness.data.sources import DATASETS, get_source, source_examples
from harness.errors import UserError
from harness.files import data_dir as resolve_data_dir
from harness.registry import Registry

if TYPE_CHECKING:
    from datasets import Dataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Component:
    """One source in a mixture.

    Attributes:
        source: a registered source name or ``file:PATH``.
        weight: relative share of the example budget when ``max_examples`` limits the mixture;
            without a limit every (capped) example is used.
        cap: at most this many examples of the source (a seeded random subset).
        options: source options (``{"min_score": 3.5}``).
    """

    source: str
    weight: float = 1.0
    cap: int | None = None
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not self.weight > 0:
            raise UserError(f"mixture component {self.source!r}: weight must be > 0, got {self.weight}")
        if self.cap is not None and self.cap < 1:
            raise UserError(f"mixture component {self.source!r}: cap must be >= 1, got {self.cap}")


@dataclass(frozen=True)
class MixtureSpec:
    """A named list of components.

    Attributes:
        name: registry name.
        components: the sources, in priority order for duplicate removal.
        description: one line for ``gist-harness ls mixtures``.
    """

    name: str
    components: tuple[Component, ...]
    description: str = ""


@dataclass(frozen=True)
class Mixture:
    """A built mixture.

    Attributes:
        name: the mixture (or single source) name.
        train: the training set (shuffled, sources interleaved).
        dev: the held-out dev set (same columns; disjoint examples).
        counts: training examples per source.
        dev_counts: dev examples per source.
        removed: per source, examples dropped: blank, identical, duplicates, unused (cap/budget).
        origins: per source, the original (dataset, split) pairs read.
        train_sources: the source of each training row.
        dev_sources: the source of each dev row.
        label_names: names of the ``label`` ids (``source:label``); empty without labels.
        train_lines: the corpus line of each training row of a parallel source (None for others).
        dev_lines: the same for the dev rows.
        line_texts: per parallel source, every language's texts of each line its rows use.
        leaked_lines: per parallel source, the lines ``drop_leaked`` dropped (a text of the line, in
            some language, occurs in a scored split).
    """

    name: str
    train: Dataset
    dev: Dataset
    counts: dict[str, int]
    dev_counts: dict[str, int]
    removed: dict[str, dict[str, int]]
    origins: dict[str, tuple[tuple[str, str], ...]]
    train_sources: tuple[str, ...]
    dev_sources: tuple[str, ...]
    label_names: tuple[str, ...] = ()
    train_lines: tuple[int | None, ...] = ()
    dev_lines: tuple[int | None, ...] = ()
    line_texts: Mapping[str, Mapping[int, tuple[str, ...]]] = field(default_factory=dict)
    leaked_lines: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def texts_by_source(self) -> dict[str, set[str]]:
        """Every text (train and dev, all text columns) per source, for :func:`check_leakage`; for a
        parallel source, every language's text of the lines it uses too."""
        texts: dict[str, set[str]] = {s: set() for s in self.counts}
        for source, lines in self.line_texts.items():
            texts[source].update(text for line_texts in lines.values() for text in line_texts)
        for dataset, sources in ((self.train, self.train_sources), (self.dev, self.dev_sources)):
            for column in (c for c in dataset.column_names if c != "label"):
                for source, text in zip(sources, dataset[column], strict=True):
                    if text is not None:  # a source without this negative column
                        texts[source].add(text)
        return texts


MIXTURES: Registry[MixtureSpec] = Registry("mixture")


def resolve_spec(spec_or_name: MixtureSpec | str) -> MixtureSpec:
    """A mixture spec from a spec, a mixture name, or a single source name (``file:`` too)."""
    if isinstance(spec_or_name, MixtureSpec):
        return spec_or_name
    if spec_or_name in MIXTURES:
        return MIXTURES.get(spec_or_name)
    if spec_or_name in DATASETS or spec_or_name.startswith("file:"):
        return MixtureSpec(spec_or_name, (Component(spec_or_name),))
    for family in DATASETS.families:  # stsb-multi-<lang> with an unknown code: the valid codes
        message = family(spec_or_name)
        if message:
            raise UserError(message)
    known = MIXTURES.names() + DATASETS.names()
    close = difflib.get_close_matches(spec_or_name, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise UserError(f"unknown mixture or dataset {spec_or_name!r}.{hint} Known: {', '.join(known)}")


def allocate(available: Mapping[str, int], weights: Mapping[str, float], total: int | None) -> dict[str, int]:
    """Splits a budget of ``total`` examples across sources in proportion to ``weights``.

    A source never gets more than it has; what it cannot take goes to the others (water filling),
    and remainders go by largest fraction. ``total=None`` takes everything.
    """
    if total is None or total >= sum(available.values()):
        return dict(available)
    alloc = dict.fromkeys(available, 0)
    active, remaining = [s for s in available if available[s] > 0], total
    while remaining > 0 and active:
        share = {s: remaining * weights[s] / sum(weights[a] for a in active) for s in active}
        full = [s for s in active if available[s] <= share[s]]
        if full:  # these take all they have; re-split the rest among the others
            for s in full:
                alloc[s], remaining = available[s], remaining - available[s]
                active.remove(s)
            continue
        floors = {s: int(share[s]) for s in active}
        by_fraction = sorted(active, key=lambda s: floors[s] - share[s])  # stable: ties keep order
        for i, s in enumerate(by_fraction):
            alloc[s] = floors[s] + (1 if i < remaining - sum(floors.values()) else 0)
        remaining = 0
    return alloc


def dev_size(n: int, dev_fraction: float) -> int:
    """Dev examples held out of ``n``: ``round(n * dev_fraction)``, at least 1 when possible."""
    if dev_fraction <= 0 or n < 2:
        return 0
    return min(n - 1, max(1, round(n * dev_fraction)))


NEGATIVE_POLICIES = ("keep", "shared", "drop", "require")
"""What happens to sources' negative columns: keep each source's own (``keep``), keep only the
columns every source has (``shared``), drop them all (``drop``), or keep them and require every
source to have them (``require``). ``true``/``false`` in an experiment mean require/drop."""


def negative_policy(negatives: bool | str | None, batching: str = "mixed") -> str:
    """The policy name of a ``negatives`` setting; unset: ``keep`` per source, ``shared`` mixed."""
    if negatives is None:
        return "keep" if batching == "per_source" else "shared"
    if negatives is True or negatives is False:
        return "require" if negatives else "drop"
    if negatives not in NEGATIVE_POLICIES:
        raise UserError(
            f"negatives must be true, false or one of {', '.join(NEGATIVE_POLICIES)}; got {negatives!r}"
        )
    return negatives


def select_negatives(per_source: Mapping[str, Sequence[str]], policy: str) -> list[str]:
    """The negative columns kept under ``policy``, given each source's negative columns.

    Raises:
        UserError: ``require`` while a source has no negative column (naming the sources).
    """
    union = sorted({c for cols in per_source.values() for c in cols}, key=lambda c: (len(c), c))
    if policy == "drop":
        return []
    if policy == "require":
        lacking = [s for s, cols in per_source.items() if not cols or not set(union) <= set(cols)]
        if lacking:
            raise UserError(
                f"negatives = true (require) but source(s) {', '.join(lacking)} have no negative column; "
                'valid: "keep" (each source keeps its own), "shared", false (drop all)'
            )
    if policy in ("keep", "require"):
        return union
    return [c for c in union if all(c in cols for cols in per_source.values())]


def shared_negatives(examples: Mapping[str, list[Example]], negatives: bool | str | None) -> list[str]:
    """The negative columns kept under a policy (see ``NEGATIVE_POLICIES``; None: ``shared``)."""
    per_source = {
        s: [c for c in text_columns(ex[0]) if c.startswith("negative")] for s, ex in examples.items() if ex
    }
    return select_negatives(per_source, negative_policy(negatives))


def project(example: Example, source: str, columns: Sequence[str]) -> Example:
    """Keeps ``columns`` (those it has), a source-qualified label (``banking77-pairs:card_arrival``)
    and the corpus ``line`` of a parallel source's example."""
    label = example.get("label")
    kept = {c: example[c] for c in columns if c in example}
    return kept | {"label": None if label is None else f"{source}:{label}", "line": example.get("line")}


def _line_texts(
    spec: MixtureSpec, pools: Mapping[str, list[Example]], data_dir: str | Path | None
) -> dict[str, dict[int, tuple[str, ...]]]:
    """Per parallel source, every language's texts of each line its pool uses."""
    found: dict[str, dict[int, tuple[str, ...]]] = {}
    corpora: dict[str, Sequence[tuple[str, ...]]] = {}
    for component in spec.components:
        parallel = get_source(component.source).parallel
        if parallel is None:
            continue
        if parallel.corpus not in corpora:
            corpora[parallel.corpus] = parallel.lines(resolve_data_dir(data_dir))
        lines = corpora[parallel.corpus]
        used = {e["line"] for e in pools[component.source]}
        found[component.source] = {line: tuple(lines[line]) for line in sorted(used)}
    return found


def _load(component: Component, folder: str | Path | None, seed: int) -> list[Example]:
    options = dict(component.options)
    if "seed" in get_source(component.source).option_defaults():
        options.setdefault("seed", seed)
    return source_examples(component.source, folder, **options)


def _pools(
    spec: MixtureSpec, raw: Mapping[str, list[Example]], columns: Sequence[str], seed: int
) -> tuple[dict[str, list[Example]], dict[str, dict[str, int]]]:
    """Cleans each source (duplicates checked across sources, in component order), shuffles, caps."""
    seen: set[tuple[str, ...]] = set()
    pools, removed = {}, {}
    for component in spec.components:
        source = component.source
        cleaned = clean((project(e, source, columns) for e in raw[source]), seen)
        if not cleaned.examples:
            raise UserError(f"mixture {spec.name!r}: source {source!r} has no examples left after filtering")
        pool = cleaned.examples
        random.Random(f"{seed}:{source}").shuffle(pool)  # str seeds are stable across processes
        pools[source] = pool[: component.cap]
        removed[source] = {"blank": cleaned.blank, "identical": cleaned.identical,
                           "duplicates": cleaned.duplicates, "unused": len(pool) - len(pools[source])}  # fmt: skip
    return pools, removed


def build_mixture(
    spec_or_name: MixtureSpec | str,
    data_dir: str | Path | None = None,
    *,
    seed: int = 0,
    max_examples: int | None = None,
    dev_fraction: float = 0.05,
    negatives: bool | str | None = None,
) -> Mixture:
    """Loads, cleans, caps, splits and shuffles the sources of a mixture.

    Args:
        spec_or_name: a :class:`MixtureSpec`, a mixture name, or one source name.
        data_dir: the data folder for offline sources (default ``$GIST_HARNESS_DATA``).
        seed: seeds caps, dev split, shuffling and the sources' own draws.
        max_examples: at most this many training examples, split by component weight.
        dev_fraction: share of each source held out as dev (0 for none).
        negatives: the negative columns kept (see ``NEGATIVE_POLICIES``): None or "shared" keeps
            those every source has, "keep" each source's own (a row of a source without one holds
            None there), True ("require") requires them of every source, False ("drop") drops them.

    Raises:
        UserError: unknown names or options, a source left empty after cleaning, bad settings.
    """
    spec = resolve_spec(spec_or_name)
    if not 0 <= dev_fraction < 1:
        raise UserError(f"dev_fraction must be in [0, 1), got {dev_fraction}")
    if max_examples is not None and max_examples < 1:
        raise UserError(f"max_examples must be >= 1, got {max_examples}")
    sources = [c.source for c in spec.components]
    if len(set(sources)) != len(sources):
        raise UserError(f"mixture {spec.name!r} lists a source twice: {', '.join(sources)}")
    raw = {c.source: _load(c, data_dir, seed) for c in spec.components}
    columns = ["anchor", "positive", *shared_negatives(raw, negatives)]
    pools, removed = _pools(spec, raw, columns, seed)
    n_dev = {s: dev_size(len(p), dev_fraction) for s, p in pools.items()}
    budget = allocate({s: len(p) - n_dev[s] for s, p in pools.items()},
                      {c.source: c.weight for c in spec.components}, max_examples)  # fmt: skip
    train = [(s, e) for s, p in pools.items() for e in p[n_dev[s] : n_dev[s] + budget[s]]]
    dev = [(s, e) for s, p in pools.items() for e in p[: n_dev[s]]]
    for s, p in pools.items():
        removed[s]["unused"] += len(p) - n_dev[s] - budget[s]
    random.Random(seed).shuffle(train)
    labels = sorted({e["label"] for p in pools.values() for e in p if e["label"] is not None})
    label_names = labels or None

    def as_dataset(rows: list[tuple[str, Example]]):
        return to_dataset([e for _, e in rows], label_names, columns)

    return Mixture(
        name=spec.name, train=as_dataset(train), dev=as_dataset(dev),
        counts={s: budget[s] for s in pools}, dev_counts=n_dev, removed=removed,
        origins={c.source: get_source(c.source).origins for c in spec.components},
        train_sources=tuple(s for s, _ in train), dev_sources=tuple(s for s, _ in dev), label_names=tuple(labels),
        train_lines=tuple(e.get("line") for _, e in train), dev_lines=tuple(e.get("line") for _, e in dev),
        line_texts=_line_texts(spec, pools, data_dir),
    )  # fmt: skip


def drop_leaked(mixture: Mixture, report: LeakageReport) -> Mixture:
    """The mixture without rows any of whose texts leaked (policy ``drop``); counts updated.

    A row of a parallel source is dropped when any language's text of its corpus line leaked (the
    line is then dropped from every source of the mixture that uses it); those lines are kept in
    ``leaked_lines`` and logged, the rows counted in ``removed[source]["leaked"]``.
    """
    leaked_lines = _leaked_lines(mixture, report)

    def keep(dataset, sources: tuple[str, ...], lines: tuple[int | None, ...]) -> list[int]:
        text_cols = [c for c in dataset.column_names if c != "label"]
        rows = zip(sources, lines or (None,) * len(sources), *(dataset[c] for c in text_cols), strict=True)
        return [
            i
            for i, (s, line, *texts) in enumerate(rows)
            if line not in leaked_lines.get(s, ())
            and not any(t is not None and report.is_leaked(s, t) for t in texts)
        ]

    train_idx = keep(mixture.train, mixture.train_sources, mixture.train_lines)
    dev_idx = keep(mixture.dev, mixture.dev_sources, mixture.dev_lines)
    train_sources = tuple(mixture.train_sources[i] for i in train_idx)
    dev_sources = tuple(mixture.dev_sources[i] for i in dev_idx)
    removed = {s: r | {"leaked": mixture.counts[s] + mixture.dev_counts[s]
                       - train_sources.count(s) - dev_sources.count(s)}
               for s, r in mixture.removed.items()}  # fmt: skip
    if not train_idx:
        raise UserError(f"mixture {mixture.name!r}: no training examples left after dropping leaked texts")
    return replace(
        mixture, train=mixture.train.select(train_idx), dev=mixture.dev.select(dev_idx),
        counts={s: train_sources.count(s) for s in mixture.counts},
        dev_counts={s: dev_sources.count(s) for s in mixture.dev_counts},
        removed=removed, train_sources=train_sources, dev_sources=dev_sources,
        train_lines=tuple(mixture.train_lines[i] for i in train_idx) if mixture.train_lines else (),
        dev_lines=tuple(mixture.dev_lines[i] for i in dev_idx) if mixture.dev_lines else (),
        leaked_lines={s: tuple(sorted(lines)) for s, lines in leaked_lines.items()},
    )  # fmt: skip


def _leaked_lines(mixture: Mixture, report: LeakageReport) -> dict[str, set[int]]:
    """Per parallel source, the lines with a leaked text in any language (logged when any)."""
    leaked = {
        source: {line for line, texts in lines.items() if any(report.is_leaked(source, t) for t in texts)}
        for source, lines in mixture.line_texts.items()
    }
    for source, lines in leaked.items():
        if lines:
            log.warning(
                "leakage: %s drops %d line(s) whose text leaks in some language (lines %s)",
                source, len(lines), ", ".join(map(str, sorted(lines)[:20])) + (" ..." if len(lines) > 20 else ""),
            )  # fmt: skip
    return leaked


def mixture_listing() -> list[dict[str, Any]]:
    """One row per registered mixture for ``gist-harness ls mixtures``."""
    rows = []
    for name, spec in MIXTURES.items():
        parts, total = [], 0
        for c in spec.components:
            n = DATASETS.get(c.source).n_examples if c.source in DATASETS else None
            total += min(n, c.cap or n) if n else 0
            parts.append(
                c.source
                + (f" (cap {c.cap})" if c.cap else "")
                + (f" (w {c.weight:g})" if c.weight != 1 else "")
            )
        rows.append(
            {"name": name, "sources": ", ".join(parts), "examples": total, "description": spec.description}
        )
    return rows


MEDI = ("snli-triplets", "stsb-train", "msrp-train", "trecqa-train")
MIXTURES.register(
    "mini-medi",
    MixtureSpec("mini-medi", tuple(Component(s) for s in MEDI),
                "the paper's MEDI in miniature: SNLI triplets + STS-B + MSRP + TrecQA pairs"),
)  # fmt: skip
MIXTURES.register(
    "mini-medi+cls",
    MixtureSpec(
        "mini-medi+cls",
        tuple(Component(s) for s in MEDI)
        + tuple(Component(s, cap=4000) for s in ("banking77-pairs", "emotion-pairs", "amazon-cf-pairs")),
        "mini-medi plus MTEBcls-style pairs from Banking77, Emotion, AmazonCF train (4,000 each)",
    ),
)
