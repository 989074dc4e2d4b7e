"""Local STS tasks: STS12-16 (SentEval's lowercased, tokenised copies), STS-B, SICK-R, BIOSSES.

Scored by mteb's ``AbsTaskSTS`` (main score: Spearman correlation of cosine similarities with the
gold scores), exactly as the hub tasks they stand in for.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from datasets import Dataset, DatasetDict
from mteb.abstasks.abstask import AbsTask
from mteb.abstasks.sts import AbsTaskSTS
from mteb.tasks import (
    STS12STS,
    STS13STS,
    STS14STS,
    STS15STS,
    STS16STS,
    BiossesSTS,
    SickrSTS,
    STSBenchmarkSTS,
)

from harness.files import Row, read_biosses, read_semeval_sts, read_sick, read_sts_input, read_stsb
from harness.tasks._local import LocalTask, Role, local_metadata

SENTEVAL = "sts12-16-senteval-tokenized"
# The sets of each SemEval year, in MTEB's order (STS13 has no SMT: its text is licensed by LDC).
SENTEVAL_SETS = {
    12: ["MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews"],
    13: ["FNWN", "headlines", "OnWN"],
    14: ["deft-forum", "deft-news", "headlines", "images", "OnWN", "tweet-news"],
    15: ["answers-forums", "answers-students", "belief", "headlines", "images"],
    16: ["answer-answer", "headlines", "plagiarism", "postediting", "question-question"],
}


def _pairs(rows: list[Row]) -> Dataset:
    """The scored pairs of ``rows`` in file order; unscored pairs (``score=None``) are dropped."""
    scored = [r for r in rows if r["score"] is not None]
    return Dataset.from_dict(
        {
            "sentence1": [r["sentence1"] for r in scored],
            "sentence2": [r["sentence2"] for r in scored],
            "score": [r["score"] for r in scored],
        }
    )


class LocalSTS(LocalTask, AbsTaskSTS):
    """Base: ``read`` returns ``{split: Dataset(sentence1, sentence2, score)}``."""

    def split_texts(self, split: str) -> set[str]:
        data = self.dataset[split]
        return set(data["sentence1"]) | set(data["sentence2"])


def _senteval_task(year: int, hub: type[AbsTask]) -> type[LocalSTS]:
    folder = f"{SENTEVAL}/STS{year}-en-test"
    sets = SENTEVAL_SETS[year]
    files = tuple(f"{folder}/STS.{kind}.{name}.txt" for name in sets for kind in ("input", "gs"))

    class SentEvalSTS(LocalSTS):
        __doc__ = f"STS{year} test from SentEval's copy (all scored pairs of {', '.join(sets)})."
        hub_name = hub.metadata.name
        metadata = local_metadata(
            name=f"local:STS{year}",
            files=files,
            hub=hub,
            description=(
                f"Local copy of MTEB {hub.metadata.name}: SemEval-20{year} STS test, lowercased and "
                f"Moses-tokenised by SentEval (same pairs, scores and text as MTEB's copy)."
            ),
        )

        def read(self, data_dir: Path) -> DatasetDict:
            rows = [
                row
                for name in sets
                for row in read_sts_input(
                    data_dir / folder / f"STS.input.{name}.txt", data_dir / folder / f"STS.gs.{name}.txt"
                )
            ]
            return DatasetDict({"test": _pairs(rows)})

    SentEvalSTS.files = files
    SentEvalSTS.__name__ = SentEvalSTS.__qualname__ = f"LocalSTS{year}"
    return SentEvalSTS


LocalSTS12 = _senteval_task(12, STS12STS)
LocalSTS13 = _senteval_task(13, STS13STS)
LocalSTS14 = _senteval_task(14, STS14STS)
LocalSTS15 = _senteval_task(15, STS15STS)
LocalSTS16 = _senteval_task(16, STS16STS)


class LocalSTSBenchmark(LocalSTS):
    """STS-B test (scored) and dev (the ``dev`` suite's split, never in a final suite)."""

    files = ("stsbenchmark/sts-dev.csv", "stsbenchmark/sts-test.csv")
    splits_read: ClassVar[dict[str, Role]] = {"validation": "test", "test": "test"}
    hub_name = "STSBenchmark"
    metadata = local_metadata(
        name="local:STSBenchmark",
        files=files,
        hub=STSBenchmarkSTS,
        description="Local copy of MTEB STSBenchmark: the original STS-B release (test; dev as 'validation').",
    )

    def read(self, data_dir: Path) -> DatasetDict:
        return DatasetDict(
            {
                "validation": _pairs(read_stsb(data_dir / "stsbenchmark/sts-dev.csv")),
                "test": _pairs(read_stsb(data_dir / "stsbenchmark/sts-test.csv")),
            }
        )


class LocalSICKR(LocalSTS):
    """SICK-R: all 9,927 pairs of train + trial + test, as MTEB scores them."""

    files = ("sick2014/SICK_train.txt", "sick2014/SICK_trial.txt", "sick2014/SICK_test_annotated.txt")
    hub_name = "SICK-R"
    metadata = local_metadata(
        name="local:SICK-R",
        files=files,
        hub=SickrSTS,
        description="Local copy of MTEB SICK-R: relatedness scores of all SICK 2014 pairs (train+trial+test).",
    )

    def read(self, data_dir: Path) -> DatasetDict:
        return DatasetDict({"test": _pairs([row for f in self.files for row in read_sick(data_dir / f)])})


class LocalBIOSSES(LocalSTS):
    """BIOSSES: 100 biomedical sentence pairs scored 0-4."""

    files = (
        "biosses/biosses_sentence_pairs_test_derived_from_github.txt",
        "biosses/annotation_scores_from_github.txt",
    )
    hub_name = "BIOSSES"
    metadata = local_metadata(
        name="local:BIOSSES",
        files=files,
        hub=BiossesSTS,
        description="Local copy of MTEB BIOSSES (Blagec et al.'s copy; whitespace differs in a few sentences).",
    )

    def read(self, data_dir: Path) -> DatasetDict:
        return DatasetDict({"test": _pairs(read_biosses(*(data_dir / f for f in self.files)))})


class LocalSTS12Train(LocalSTS):
    """SemEval-2012 STS *train* pairs (MSRpar, SMTeuroparl): dev-only data for HPO objectives."""

    files = ("semeval-sts-brmson/2012/MSRpar.train.tsv", "semeval-sts-brmson/2012/SMTeuroparl.train.tsv")
    splits_read: ClassVar[dict[str, Role]] = {"validation": "test"}
    dev_only = True
    metadata = local_metadata(
        name="local:STS12-train",
        files=files,
        hub=STS12STS,
        description=(
            "Not an MTEB task. SemEval-2012 STS train pairs (MSRpar 750, SMTeuroparl 734) as a dev split "
            "('validation'), original casing; disjoint from the STS12 test pairs MTEB scores."
        ),
        eval_splits=["validation"],
        adapted_from=None,
    )

    def read(self, data_dir: Path) -> DatasetDict:
        return DatasetDict(
            {"validation": _pairs([row for f in self.files for row in read_semeval_sts(data_dir / f)])}
        )


STS_TASKS: list[type[LocalSTS]] = [
    LocalSTS12,
    LocalSTS13,
    LocalSTS14,
    LocalSTS15,
    LocalSTS16,
    LocalSTSBenchmark,
    LocalSICKR,
    LocalBIOSSES,
    LocalSTS12Train,
]
