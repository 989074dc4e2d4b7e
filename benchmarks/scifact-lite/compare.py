"""Would a pooled-corpus SciFact-lite track full SciFact better than the committed per-query one?

``local:SciFact-lite`` ranks each of its 150 queries against its own candidates only (mteb's
``top_ranked``: the relevant abstracts plus BM25's top 10 for that query). Over the models of
``benchmarks/lite-validity*`` its rank agreement with full SciFact is the lowest of any lite task. This
scores each given model on variants that embed the same kind of texts, through one embedding cache:

* ``per-query``: the committed ``local:SciFact-lite`` (150 queries, each against its ~11 candidates);
* ``pooled``: the same 150 queries and the same 1,307 abstracts, but every query ranked against all of
  them (MTEB(eng, v2)'s way of cutting a retrieval task: one corpus pooled from every query's
  candidates), at no extra embedding;
* ``pooled-300``: every one of the 300 test queries, pooled the same way (more abstracts embedded).

and writes one row per model and variant to ``--out`` (``scores.csv``, appended; models already there
are skipped). ``summary`` then gives Spearman's ρ of each variant against the full task's scores in a
``gist-harness bench lite`` ``scores.csv``::

    python benchmarks/scifact-lite/compare.py score runs/gist-vs-infonce/trial-0000/model ... \
        --out benchmarks/scifact-lite/scores.csv
    python benchmarks/scifact-lite/compare.py summary benchmarks/scifact-lite/scores.csv \
        --full benchmarks/lite-validity-minilm/scores.csv --report reports/gist-vs-infonce

Every model is truncated to ``--max-seq-len`` (256, the studies' final length) before scoring.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path
from typing import Any

FIELDS = ["model", "variant", "queries", "abstracts", "main_score", "seconds"]


def _variants() -> dict[str, type]:
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData

    from harness.tasks import lite
    from harness.tasks.lite import LiteSciFact

    class Pooled(LiteSciFact):
        """The committed SciFact-lite's queries and abstracts, each query ranked against all of them."""

        queries = lite.QUERIES

        def read(self, data_dir: Path) -> Any:
            saved = lite.QUERIES
            lite.QUERIES = self.queries
            try:
                split = super().read(data_dir)["default"]["test"]
            finally:
                lite.QUERIES = saved
            pooled = RetrievalSplitData(
                corpus=split["corpus"],
                queries=split["queries"],
                relevant_docs=split["relevant_docs"],
                top_ranked=None,
            )
            return {"default": {"test": pooled}}

    class Pooled300(Pooled):
        queries = 300

    return {"per-query": LiteSciFact, "pooled": Pooled, "pooled-300": Pooled300}


def _model_key(path: str) -> str:
    """bench lite's key: ``runs/<study>/trial-NNNN/model`` -> ``<study>/trial-NNNN``; any other model
    (a registered name such as ``all-minilm-l6``) is the untrained student, ``untrained:<name>``."""
    parts = Path(path).parts
    if len(parts) >= 3 and parts[-1] == "model" and parts[-2].startswith("trial-"):
        return f"{parts[-3]}/{parts[-2]}"
    return f"untrained:{path}"


def score(models: list[str], out: Path, max_seq_len: int, data_dir: str | None, names: list[str]) -> None:
    from tqdm.auto import tqdm

    from harness.embedding_cache import CachedEncoder
    from harness.evaluate import score_task
    from harness.models import load_model, truncate

    done = set()
    if out.exists():
        with out.open(encoding="utf-8") as f:
            done = {(r["model"], r["variant"]) for r in csv.DictReader(f)}
    variants = {k: v for k, v in _variants().items() if k in names}
    out.parent.mkdir(parents=True, exist_ok=True)
    for path in tqdm(models, desc="models", unit="model", file=sys.stderr):
        key = _model_key(path)
        todo = [v for v in variants if (key, v) not in done]
        if not todo:
            continue
        model = load_model(path, device="cpu")
        truncate(model, max_seq_len)
        encoder = CachedEncoder(model, batch_size=32, progress=False, cache_retrieval=True)
        rows = []
        for name in todo:
            task = variants[name](data_dir)
            task.load_data()
            split = task.dataset["default"]["test"]
            start = time.perf_counter()
            encoder.warm(task.embedded_texts(), desc=name)
            result = score_task(encoder, task, 32)
            rows.append(
                {
                    "model": key,
                    "variant": name,
                    "queries": len(split["queries"]),
                    "abstracts": len(split["corpus"]),
                    "main_score": result.get_score(),
                    "seconds": round(time.perf_counter() - start, 2),
                }
            )
        new = not out.exists()
        with out.open("a", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, FIELDS)
            if new:
                writer.writeheader()
            writer.writerows(rows)


def summary(scores: Path, full: list[Path], reports: list[Path]) -> None:
    import pandas as pd
    from scipy.stats import spearmanr

    mine = pd.read_csv(scores).pivot_table(index="model", columns="variant", values="main_score")
    bench = pd.concat([pd.read_csv(p) for p in full])
    truth = (
        bench[(bench.task == "local:SciFact") & (bench.suite == "offline-all")]
        .groupby("model")
        .main_score.mean()
        .rename("full")
    )
    both = mine.join(truth, how="inner")
    print(f"{len(both)} models with full SciFact scores\n")
    print("| variant | ρ against full SciFact | mean | sd over models | sd full |")
    print("|:---|---:|---:|---:|---:|")
    for variant in [c for c in both.columns if c != "full"]:
        rho = spearmanr(both[variant], both["full"]).statistic
        print(
            f"| {variant} | {rho:.3f} | {both[variant].mean():.4f} | {both[variant].std():.4f} | "
            f"{both['full'].std():.4f} |"
        )
    if not reports:
        return
    arms = {}
    for folder in reports:  # trial -> arm, from each report's results.csv
        rows = pd.read_csv(folder / "results.csv", usecols=["study", "trial", "arm"]).dropna()
        for study, trial, arm in rows.drop_duplicates().itertuples(index=False):
            arms[f"{study}/trial-{int(trial):04d}"] = arm
    both["arm"] = [arms.get(m, "untrained" if m.startswith("untrained:") else None) for m in both.index]
    means = both.dropna(subset=["arm"]).groupby("arm").mean(numeric_only=True)
    seeds = both.groupby("arm").size()
    print("\nMean over seeds per arm (points), and each arm's difference to infonce:\n")
    columns = [c for c in both.columns if c != "arm"]
    print("| arm | seeds | " + " | ".join(columns) + " |")
    print("|:---|---:|" + "---:|" * len(columns))
    for arm, row in means.iterrows():
        cells = [f"{100 * row[c]:.2f}" for c in columns]
        print(f"| {arm} | {seeds[arm]} | " + " | ".join(cells) + " |")
    if "infonce" in means.index:
        for arm in [a for a in means.index if a not in ("infonce", "untrained")]:
            cells = [f"{100 * (means.loc[arm, c] - means.loc['infonce', c]):+.2f}" for c in columns]
            print(f"| {arm} − infonce | | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score")
    s.add_argument("models", nargs="+", help="model folders (runs/<study>/trial-NNNN/model) or names")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--max-seq-len", type=int, default=256)
    s.add_argument("--data-dir")
    s.add_argument(
        "--variants",
        default="per-query,pooled,pooled-300",
        help="comma-separated variants to score (default: all three)",
    )
    m = sub.add_parser("summary")
    m.add_argument("scores", type=Path)
    m.add_argument("--full", type=Path, action="append", required=True, help="bench lite scores.csv")
    m.add_argument(
        "--report", type=Path, action="append", default=[], help="report folder: arms of its trials"
    )
    args = parser.parse_args()
    if args.command == "score":
        score(args.models, args.out, args.max_seq_len, args.data_dir, args.variants.split(","))
    else:
        summary(args.scores, args.full, args.report)


if __name__ == "__main__":
    main()
