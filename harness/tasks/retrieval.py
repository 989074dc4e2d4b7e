"""Local retrieval task: SciFact (BEIR test queries and qrels over the 5,183-abstract corpus).

Scored by mteb's ``AbsTaskRetrieval`` (main score nDCG@10). A document is its title and abstract; mteb
joins them as ``title + " " + text`` before embedding, as on the hub.
"""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
from mteb.tasks import SciFact

from harness.files import read_beir_qrels, read_beir_queries, read_scifact_corpus
from harness.tasks._local import LocalTask, local_metadata


def document_text(title: str, text: str) -> str:
    """The string mteb embeds for a corpus entry (``mteb._create_dataloaders._corpus_to_dict``)."""
    return (title + " " + text).strip() if title else text.strip()


class LocalSciFact(LocalTask, AbsTaskRetrieval):
    """SciFact: 300 test claims, 339 relevance judgements, 5,183 abstracts."""

    files = ("scifact/scifact.zip", "scifact/beir/qrels/test.tsv", "scifact/beir/queries.jsonl")
    hub_name = "SciFact"
    metadata = local_metadata(
        name="local:SciFact",
        files=files,
        hub=SciFact,
        description=(
            "Local copy of MTEB SciFact: corpus from the SciFact release zip, test queries and qrels from "
            "the BEIR files."
        ),
    )

    def read(self, data_dir: Path) -> dict[str, dict[str, RetrievalSplitData]]:
        corpus = read_scifact_corpus(data_dir / "scifact/scifact.zip")
        qrels: dict[str, dict[str, int]] = {}
        for judgment in read_beir_qrels(data_dir / "scifact/beir/qrels/test.tsv"):
            qrels.setdefault(judgment["query_id"], {})[judgment["corpus_id"]] = judgment["score"]
        queries = {q["id"]: q["text"] for q in read_beir_queries(data_dir / "scifact/beir/queries.jsonl")}
        split = RetrievalSplitData(
            corpus=Dataset.from_dict(
                {
                    "id": [c["doc_id"] for c in corpus],
                    "title": [c["title"] for c in corpus],
                    # the abstract alone: mteb prepends the title itself (``document_text``)
                    "text": [" ".join(s.strip() for s in c["sentences"]) for c in corpus],
                }
            ),
            queries=Dataset.from_dict({"id": list(qrels), "text": [queries[q] for q in qrels]}),
            relevant_docs=qrels,
            top_ranked=None,
        )
        return {"default": {"test": split}}

    def split_texts(self, split: str) -> set[str]:
        data = self.dataset["default"][split]
        docs = {
            document_text(t, x) for t, x in zip(data["corpus"]["title"], data["corpus"]["text"], strict=True)
        }
        return docs | set(data["queries"]["text"])


RETRIEVAL_TASKS = [LocalSciFact]
