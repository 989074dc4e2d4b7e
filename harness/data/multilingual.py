"""Multilingual training sources from the parallel STS-B train files (``stsb-multi-mt/``).

``stsb-multi-mt`` holds STS-B machine-translated (DeepL) into nine languages beside English; line
*i* of every language's train file translates line *i* of the English one and has its score. Two
families of sources are read from it (``gist-harness ls datasets``):

* ``stsb-multi-<lang>``: the train pairs of one language with ``score >= min_score`` (default 4.0
  of 5, as ``stsb-train``): 1,406 lines in every language before cleaning.
* ``stsb-translation-<l1>-<l2>``: translation pairs for cross-lingual training: each train line's
  sentence 1 in ``l1`` (anchor) with its sentence 1 in ``l2`` (positive), and the same for sentence
  2, every line whatever its score. English is the last code (``de-en``, like the cross-lingual STS
  task's subsets), the others in MTEB's order (``de-es``).

Every example carries its ``line``, and each source names the corpus (``Parallel``): the leakage
check compares every language's text of each line used with the evaluation texts, so a line that
leaks in one language is dropped in every language (``harness.data.mixtures.drop_leaked``).

Quirks of the files (the data folder's MANIFEST.md): ``nl`` train is partly English and has three
sentences without a word (``.``), and ``zh`` one two-character sentence; a translation pair with a
text without a word character is left out, and one whose two sides are equal (an untranslated ``nl``
line) is removed by the usual cleaning (``identical``). English train has one U+0012 control
character (``Treasury\\x12s``), kept as stored: the students' tokenizers drop control characters.
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import combinations
from pathlib import Path

from harness import files
from harness.data.examples import Example
from harness.data.sources import DATASETS, Parallel, offline

CORPUS = "stsb-multi-mt"
# MTEB's subset order of STSBenchmarkMultilingualSTS (tests/test_multilingual_sources.py compares).
LANGUAGES = ("en", "de", "es", "fr", "it", "nl", "pl", "pt", "ru", "zh")
# Translation pairs: English last, the others in MTEB's order.
TRANSLATION_PAIRS = tuple(combinations((*LANGUAGES[1:], "en"), 2))
MULTI_PREFIX, TRANSLATION_PREFIX = "stsb-multi-", "stsb-translation-"
_WORD = re.compile(r"\w")
_ALL_TRAIN_FILES = f"{CORPUS}/stsb-{{{','.join(LANGUAGES)}}}-train.csv"
_LICENCE = "scores CC BY-SA 4.0; text per STS-B source (stsb-multi-mt LICENSE)"


@lru_cache(maxsize=32)
def _train_rows(path: str) -> tuple[dict, ...]:
    """The rows of one language's train file (read once per process)."""
    return tuple(files.read_stsb_multi(Path(path)))


def train_rows(folder: Path, lang: str) -> tuple[dict, ...]:
    """``sentence1``, ``sentence2``, ``score`` of each line of ``stsb-<lang>-train.csv``."""
    return _train_rows(str(Path(folder) / CORPUS / f"stsb-{lang}-train.csv"))


def parallel_lines(folder: Path) -> list[tuple[str, ...]]:
    """Every text of each train line in every language: ``(en s1, en s2, de s1, de s2, ...)``."""
    by_language = [train_rows(folder, lang) for lang in LANGUAGES]
    return [
        tuple(text for rows in by_language for text in (rows[i]["sentence1"], rows[i]["sentence2"]))
        for i in range(len(by_language[0]))
    ]


PARALLEL = Parallel(CORPUS, parallel_lines)


def monolingual_pairs(folder: Path, lang: str, *, min_score: float = 4.0) -> list[Example]:
    """One language's (sentence1, sentence2) train pairs with ``score >= min_score``, with their line."""
    return [
        {"anchor": row["sentence1"], "positive": row["sentence2"], "line": i}
        for i, row in enumerate(train_rows(folder, lang))
        if row["score"] >= min_score
    ]


def translation_pairs(folder: Path, source: str, target: str) -> list[Example]:
    """Each train line's sentence 1, then sentence 2, in ``source`` paired with ``target``'s."""
    pairs = zip(train_rows(folder, source), train_rows(folder, target), strict=True)
    return [
        {"anchor": a[column], "positive": b[column], "line": i}
        for i, (a, b) in enumerate(pairs)
        for column in ("sentence1", "sentence2")
        if _WORD.search(a[column]) and _WORD.search(b[column])
    ]


def unknown_language_message(name: str) -> str | None:
    """The one-line message for a ``stsb-multi-``/``stsb-translation-`` name that is not registered."""
    if name.startswith(MULTI_PREFIX):
        codes, form = name[len(MULTI_PREFIX) :].split("-"), "stsb-multi-<lang>"
    elif name.startswith(TRANSLATION_PREFIX):
        codes, form = name[len(TRANSLATION_PREFIX) :].split("-"), "stsb-translation-<l1>-<l2>"
    else:
        return None
    valid = f"valid codes: {', '.join(LANGUAGES)}"
    bad = [code for code in codes if code not in LANGUAGES]
    if bad:
        return f"dataset {name!r}: unknown language code {bad[0]!r}; {valid} ({form})"
    if (
        form.startswith(TRANSLATION_PREFIX)
        and len(codes) == 2
        and tuple(reversed(codes)) in TRANSLATION_PAIRS
    ):
        return (
            f"dataset {name!r}: registered as 'stsb-translation-{codes[1]}-{codes[0]}' "
            f"(English last, the others in the order {' '.join(LANGUAGES[1:])})"
        )
    return f"dataset {name!r}: expected {form} with two different codes; {valid}"


def _register_monolingual(lang: str, n_examples: int) -> None:
    def build(folder: Path, *, min_score: float = 4.0) -> list[Example]:
        return monolingual_pairs(folder, lang, min_score=min_score)

    offline(
        f"{MULTI_PREFIX}{lang}", build, columns=("anchor", "positive"), n_examples=n_examples,
        origins=((f"STSBenchmarkMultilingualSTS-{lang}", "train"),), parallel=PARALLEL,
        description=f"STS-B train pairs in {lang} (stsb-multi-mt) with score >= min_score (default 4.0 of 5)",
        origin=_ALL_TRAIN_FILES, licence=_LICENCE,
    )  # fmt: skip


def _register_translation(source: str, target: str, n_examples: int) -> None:
    def build(folder: Path) -> list[Example]:
        return translation_pairs(folder, source, target)

    offline(
        f"{TRANSLATION_PREFIX}{source}-{target}", build, columns=("anchor", "positive"),
        n_examples=n_examples, parallel=PARALLEL,
        origins=tuple((f"STSBenchmarkMultilingualSTS-{lang}", "train") for lang in (source, target)),
        description=f"STS-B train sentences in {source} (anchor) and their {target} translation, every line",
        origin=_ALL_TRAIN_FILES, licence=_LICENCE,
    )  # fmt: skip


# Examples after cleaning (tests/test_data_sources.py loads every source and compares).
_MONOLINGUAL_COUNTS = dict(
    zip(LANGUAGES, (1393, 1349, 1372, 1349, 1377, 1370, 1357, 1384, 1341, 1344), strict=True)
)
_TRANSLATION_COUNTS = dict(zip(TRANSLATION_PAIRS, (
    10492, 10466, 10491, 10474, 10464, 10499, 10461, 10477, 10536,  # de-es ... de-zh, de-en
    10478, 10491, 10493, 10479, 10486, 10484, 10473, 10534,  # es-fr ... es-en
    10481, 10473, 10454, 10488, 10443, 10452, 10533,  # fr-it ... fr-en
    10499, 10492, 10499, 10487, 10488, 10534,  # it-nl ... it-en
    10465, 10499, 10478, 10485, 10522,  # nl-pl ... nl-en
    10494, 10428, 10470, 10490,  # pl-pt ... pl-en
    10496, 10493, 10528,  # pt-ru, pt-zh, pt-en
    10452, 10535,  # ru-zh, ru-en
    10533,  # zh-en
), strict=True))  # fmt: skip

for _lang in LANGUAGES:
    _register_monolingual(_lang, _MONOLINGUAL_COUNTS[_lang])
for _source, _target in TRANSLATION_PAIRS:
    _register_translation(_source, _target, _TRANSLATION_COUNTS[(_source, _target)])
DATASETS.families.append(unknown_language_message)
