"""Local multilingual tasks: STS-B in 10 languages, Tatoeba (12 pairs), AmazonCounterfactual de/ja,
and the harness's own cross-lingual STS-B.

Each MTEB copy keeps MTEB's subset names, splits and main score and is scored by mteb's own abstract
task (``AbsTaskSTS``, ``AbsTaskBitextMining``, ``AbsTaskClassification``), so a subset's score is the
one MTEB would report on the same texts:

* ``local:STSBenchmarkMultilingualSTS``: subsets en, de, es, fr, it, nl, pl, pt, ru, zh; splits dev
  and test (MTEB's names), Spearman of cosine similarities.
* ``local:Tatoeba``: the 12 ``<xxx>-eng`` pairs of the data folder; sentence1 = the ``<xxx>``
  sentence, sentence2 = the English one; main score: MTEB's weighted F1 of nearest-neighbour
  matching. Each sentence keeps its line's trailing newline, as MTEB's copy does (its character
  counts are one per sentence longer than the stripped lines').
* ``local:AmazonCounterfactualClassification-de-ja``: MTEB's subsets ``de`` and ``ja``, its splits
  validation and test (the probe draws from train), beside the English
  ``local:AmazonCounterfactualClassification``.
* ``local:STSBenchmarkCrossLingual`` (not an MTEB task): the parallel STS-B test files paired across
  languages, sentence 1 in one language and sentence 2 in English (subset ``de-en``: German sentence
  1, English sentence 2), gold score unchanged.
* ``local:STSBenchmarkMultilingualSTS-heldout`` (not an MTEB task; tuning only): every tenth line of
  the stsb-multi-mt **train** files (``HELDOUT_EVERY``), in each language and crossed with English, as
  a validation split. MTEB scores the dev and test files, so a multilingual study tunes on these
  training lines instead; a study that scores them (its ``[objective]`` and ``[tuning]`` suite
  ``multilingual-dev``) with ``leakage = "drop"`` removes them from its training rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from datasets import Dataset, DatasetDict
from mteb.abstasks.sts import AbsTaskSTS
from mteb.abstasks.text.bitext_mining import AbsTaskBitextMining
from mteb.tasks import (
    AmazonCounterfactualClassification,
    STSBenchmarkMultilingualSTS,
    TatoebaBitextMining,
)

from harness.files import Row, read_amazon_counterfactual, read_stsb_multi, read_tatoeba
from harness.tasks._local import LocalTask, Role, local_metadata, pairs_without
from harness.tasks.classification import LocalClassification
from harness.tasks.classification import _split as _text_label_split

STSB_MULTI = "stsb-multi-mt"
STSB_LANGUAGES: dict[str, list[str]] = STSBenchmarkMultilingualSTS.metadata.hf_subsets_to_langscripts
STSB_SPLITS = ("dev", "test")
# The Tatoeba pairs in the data folder (ISO 639-3 code of the non-English side), MTEB's subset order.
TATOEBA_SOURCES = ("ara", "cmn", "deu", "fra", "ita", "jpn", "nld", "pol", "por", "rus", "spa", "tur")
TATOEBA_LANGUAGES = {
    f"{x}-eng": TatoebaBitextMining.metadata.hf_subsets_to_langscripts[f"{x}-eng"] for x in TATOEBA_SOURCES
}
# AmazonCounterfactual subsets read here and the file prefix of each; file split names by MTEB's.
COUNTERFACTUAL_FILES = {"de": "DE", "ja": "JP"}
COUNTERFACTUAL_SPLITS = {"train": "train", "validation": "valid", "test": "test"}
HELDOUT_EVERY = 10
"""``local:STSBenchmarkMultilingualSTS-heldout`` keeps train lines 0, 10, 20, ... (575 of 5,749)."""
CROSS_LINGUAL_LANGUAGES = {
    f"{lang}-en": [*STSB_LANGUAGES[lang], *STSB_LANGUAGES["en"]] for lang in STSB_LANGUAGES if lang != "en"
}


def stsb_multi_file(lang: str, split: str) -> str:
    """The data-folder path of one stsb-multi-mt file (``split`` is train, dev or test)."""
    return f"{STSB_MULTI}/stsb-{lang}-{split}.csv"


def _pairs(rows: list[Row]) -> Dataset:
    return Dataset.from_dict(
        {
            "sentence1": [r["sentence1"] for r in rows],
            "sentence2": [r["sentence2"] for r in rows],
            "score": [r["score"] for r in rows],
        }
    )


class MultilingualPairs(LocalTask):
    """Base for tasks whose ``dataset`` is ``{subset: DatasetDict(split: sentence1, sentence2, ...)}``.

    Texts (for the leakage check and the suite's warm-up) are those of the subsets scored.
    """

    def split_texts(self, split: str) -> set[str]:
        return {
            text
            for subset in self.hf_subsets
            for column in ("sentence1", "sentence2")
            for text in self.dataset[subset][split][column]
        }

    def drop_pairs_with(self, split: str, banned: set[str]) -> int:
        self.load_data()
        dropped = 0
        for subset in self.hf_subsets:
            data = self.dataset[subset][split]
            self.dataset[subset][split] = pairs_without(data, banned)
            dropped += len(data) - len(self.dataset[subset][split])
        return dropped


class LocalSTSBenchmarkMultilingual(MultilingualPairs, AbsTaskSTS):
    """STS-B machine-translated into 9 languages plus English: dev and test, as MTEB scores them."""

    files = tuple(stsb_multi_file(lang, split) for lang in STSB_LANGUAGES for split in STSB_SPLITS)
    splits_read: ClassVar[dict[str, Role]] = {"dev": "test", "test": "test"}
    hub_name = STSBenchmarkMultilingualSTS.metadata.name
    shares_texts_with = ("local:STSBenchmark",)  # en is STS-B; the rest translate it
    metadata = local_metadata(
        name="local:STSBenchmarkMultilingualSTS",
        files=files,
        hub=STSBenchmarkMultilingualSTS,
        description=(
            "Local copy of MTEB STSBenchmarkMultilingualSTS: PhilipMay's stsb-multi-mt dev and test files "
            "(DeepL translations of STS-B) in en, de, es, fr, it, nl, pl, pt, ru, zh."
        ),
    )

    def read(self, data_dir: Path) -> dict[str, DatasetDict]:
        return {
            lang: DatasetDict(
                {
                    split: _pairs(read_stsb_multi(data_dir / stsb_multi_file(lang, split)))
                    for split in STSB_SPLITS
                }
            )
            for lang in STSB_LANGUAGES
        }


class LocalTatoeba(MultilingualPairs, AbsTaskBitextMining):
    """Tatoeba bitext mining for the 12 language pairs in the data folder (1,000 pairs each)."""

    files = tuple(f"tatoeba/tatoeba.{x}-eng.{side}" for x in TATOEBA_SOURCES for side in (x, "eng"))
    hub_name = TatoebaBitextMining.metadata.name
    metadata = local_metadata(
        name="local:Tatoeba",
        files=files,
        hub=TatoebaBitextMining,
        description=(
            "Local copy of MTEB Tatoeba (bitext mining), 12 of its 112 pairs: LASER's tatoeba v1 files "
            "for ara, cmn, deu, fra, ita, jpn, nld, pol, por, rus, spa, tur with English."
        ),
        eval_langs=TATOEBA_LANGUAGES,
    )

    def read(self, data_dir: Path) -> dict[str, DatasetDict]:
        subsets = {}
        for x in TATOEBA_SOURCES:
            rows = read_tatoeba(
                data_dir / f"tatoeba/tatoeba.{x}-eng.{x}", data_dir / f"tatoeba/tatoeba.{x}-eng.eng"
            )
            # MTEB's texts keep each line's newline (its lengths are one character longer per line).
            test = Dataset.from_dict(
                {
                    "sentence1": [r["sentence1"] + "\n" for r in rows],
                    "sentence2": [r["sentence2"] + "\n" for r in rows],
                }
            )
            subsets[f"{x}-eng"] = DatasetDict({"test": test})
        return subsets


class LocalAmazonCounterfactualMultilingual(LocalClassification):
    """Amazon counterfactual reviews, MTEB subsets ``de`` and ``ja``: 2 labels, 32 examples per label."""

    files = tuple(
        f"amazon-counterfactual/{prefix}_{split}.tsv"
        for prefix in COUNTERFACTUAL_FILES.values()
        for split in COUNTERFACTUAL_SPLITS.values()
    )
    splits_read: ClassVar[dict[str, Role]] = {"train": "train", "validation": "test", "test": "test"}
    hub_name = AmazonCounterfactualClassification.metadata.name
    samples_per_label = AmazonCounterfactualClassification.samples_per_label
    metadata = local_metadata(
        name="local:AmazonCounterfactualClassification-de-ja",
        files=files,
        hub=AmazonCounterfactualClassification,
        description=(
            "Local copy of MTEB AmazonCounterfactualClassification, subsets 'de' and 'ja', validation and "
            "test splits as MTEB scores them (the English subset is local:AmazonCounterfactualClassification)."
        ),
        eval_langs={
            subset: AmazonCounterfactualClassification.metadata.hf_subsets_to_langscripts[subset]
            for subset in COUNTERFACTUAL_FILES
        },
    )

    def read(self, data_dir: Path) -> dict[str, DatasetDict]:
        return {
            subset: DatasetDict(
                {
                    split: _text_label_split(
                        read_amazon_counterfactual(data_dir / f"amazon-counterfactual/{prefix}_{name}.tsv")
                    )
                    for split, name in COUNTERFACTUAL_SPLITS.items()
                }
            )
            for subset, prefix in COUNTERFACTUAL_FILES.items()
        }

    def split_texts(self, split: str) -> set[str]:
        return {text for subset in self.hf_subsets for text in self.dataset[subset][split]["text"]}

    def embedded_texts(self) -> set[str]:
        """The scored splits' texts plus, per subset, the training rows mteb's probe draws."""
        self.load_data()
        drawn = (self.drawn_texts(self.dataset[subset][self.train_split]) for subset in self.hf_subsets)
        return set().union(*(self.split_texts(split) for split in self.eval_splits), *drawn)


class LocalSTSBenchmarkCrossLingual(MultilingualPairs, AbsTaskSTS):
    """The harness's own cross-lingual STS: STS-B test pairs with sentence 1 translated, sentence 2 English."""

    files = tuple(stsb_multi_file(lang, "test") for lang in STSB_LANGUAGES)
    shares_texts_with = ("local:STSBenchmark", "local:STSBenchmarkMultilingualSTS")
    metadata = local_metadata(
        name="local:STSBenchmarkCrossLingual",
        files=files,
        hub=STSBenchmarkMultilingualSTS,
        description=(
            "Not an MTEB task. The harness's cross-lingual STS-B: stsb-multi-mt test pair i with sentence 1 "
            "from the <lang> file and sentence 2 from the English file (subset '<lang>-en'), gold score "
            "unchanged (the files are line-aligned translations with equal scores)."
        ),
        eval_splits=["test"],
        eval_langs=CROSS_LINGUAL_LANGUAGES,
        adapted_from=None,
    )

    def read(self, data_dir: Path) -> dict[str, DatasetDict]:
        english = read_stsb_multi(data_dir / stsb_multi_file("en", "test"))
        subsets = {}
        for subset in CROSS_LINGUAL_LANGUAGES:
            lang = subset.split("-")[0]
            rows = read_stsb_multi(data_dir / stsb_multi_file(lang, "test"))
            crossed = [
                {"sentence1": r["sentence1"], "sentence2": e["sentence2"], "score": e["score"]}
                for r, e in zip(rows, english, strict=True)
            ]
            subsets[subset] = DatasetDict({"test": _pairs(crossed)})
        return subsets


class LocalSTSBenchmarkMultilingualHeldOut(MultilingualPairs, AbsTaskSTS):
    """Tuning data for multilingual studies: held-out stsb-multi-mt train lines, per language and crossed."""

    files = tuple(stsb_multi_file(lang, "train") for lang in STSB_LANGUAGES)
    splits_read: ClassVar[dict[str, Role]] = {"validation": "test"}
    dev_only = True
    metadata = local_metadata(
        name="local:STSBenchmarkMultilingualSTS-heldout",
        files=files,
        hub=STSBenchmarkMultilingualSTS,
        description=(
            "Not an MTEB task; for tuning only. Every tenth line of PhilipMay's stsb-multi-mt train files "
            "(575 pairs) as a 'validation' split, in en, de, es, fr, it, nl, pl, pt, ru, zh and crossed "
            "with English ('<lang>-en': sentence 1 translated, sentence 2 English); disjoint from the dev "
            "and test files MTEB scores."
        ),
        eval_splits=["validation"],
        eval_langs={**STSB_LANGUAGES, **CROSS_LINGUAL_LANGUAGES},
        adapted_from=None,
    )

    def read(self, data_dir: Path) -> dict[str, DatasetDict]:
        lines = {
            lang: read_stsb_multi(data_dir / stsb_multi_file(lang, "train"))[::HELDOUT_EVERY]
            for lang in STSB_LANGUAGES
        }
        subsets = {lang: DatasetDict({"validation": _pairs(rows)}) for lang, rows in lines.items()}
        for subset in CROSS_LINGUAL_LANGUAGES:
            crossed = [
                {"sentence1": r["sentence1"], "sentence2": e["sentence2"], "score": e["score"]}
                for r, e in zip(lines[subset.split("-")[0]], lines["en"], strict=True)
            ]
            subsets[subset] = DatasetDict({"validation": _pairs(crossed)})
        return subsets


MULTILINGUAL_TASKS: list[type[LocalTask]] = [
    LocalSTSBenchmarkMultilingual,
    LocalSTSBenchmarkCrossLingual,
    LocalSTSBenchmarkMultilingualHeldOut,
    LocalTatoeba,
    LocalAmazonCounterfactualMultilingual,
]
