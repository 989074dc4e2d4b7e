"""Local reranking task that is *not* an MTEB task: TrecQA answer-sentence selection (Wang et al., 2007).

Each test question's candidate sentences are reranked by similarity to the question, in mteb's
retrieval format with ``top_ranked`` candidates (how MTEB v2 runs reranking). Questions without both a
correct and a wrong candidate are dropped, the usual "clean" TrecQA protocol. Main score MAP@1000 as
for MTEB's reranking tasks.
"""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData

from harness.files import read_trecqa
from harness.tasks._local import LocalTask, local_metadata


class LocalTrecQA(LocalTask, AbsTaskRetrieval):
    """TrecQA test: questions and their candidate answer sentences (label 1 = answers the question)."""

    files = ("trecqa-wang/test.csv",)
    metadata = local_metadata(
        name="local:TrecQA",
        files=files,
        description=(
            "Not an MTEB task. TrecQA answer-sentence reranking (Wang et al. 2007 test split, tokenised, "
            "numbers as <num>); questions with only correct or only wrong candidates dropped."
        ),
        reference="https://aclanthology.org/D07-1003/",
        type="Reranking",
        category="t2t",
        modalities=["text"],
        eval_splits=["test"],
        eval_langs=["eng-Latn"],
        main_score="map_at_1000",
        date=("1999-01-01", "2007-12-31"),
        domains=["News", "Written"],
        task_subtypes=["Question answering"],
        license="not specified",
        annotations_creators="human-annotated",
        dialect=[],
        sample_creation="found",
        bibtex_citation="",
    )

    def read(self, data_dir: Path) -> dict[str, dict[str, RetrievalSplitData]]:
        candidates: dict[str, list[tuple[int, str]]] = {}
        for row in read_trecqa(data_dir / self.files[0]):
            candidates.setdefault(row["question"], []).append((row["label"], row["answer"]))
        queries, docs = [], []
        relevant: dict[str, dict[str, int]] = {}
        top_ranked: dict[str, list[str]] = {}
        for q_index, (question, answers) in enumerate(candidates.items()):
            if len({label for label, _ in answers}) < 2:
                continue
            qid = f"q{q_index}"
            queries.append((qid, question))
            relevant[qid], top_ranked[qid] = {}, []
            for a_index, (label, answer) in enumerate(answers):
                did = f"{qid}_a{a_index}"
                docs.append((did, answer))
                relevant[qid][did] = label
                top_ranked[qid].append(did)
        split = RetrievalSplitData(
            corpus=Dataset.from_dict(
                {"id": [d[0] for d in docs], "title": [""] * len(docs), "text": [d[1] for d in docs]}
            ),
            queries=Dataset.from_dict({"id": [q[0] for q in queries], "text": [q[1] for q in queries]}),
            relevant_docs=relevant,
            top_ranked=top_ranked,
        )
        return {"default": {"test": split}}

    def split_texts(self, split: str) -> set[str]:
        data = self.dataset["default"][split]
        return {t.strip() for t in data["corpus"]["text"]} | set(data["queries"]["text"])


RERANKING_TASKS = [LocalTrecQA]
