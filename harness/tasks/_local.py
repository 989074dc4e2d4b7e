"""What every local task shares: checksummed files, honest metadata, its texts.

A local task is an mteb abstract task (``AbsTaskSTS``, ``AbsTaskClassification``, ...) whose
``load_data`` reads the offline data folder instead of the Hugging Face Hub. mteb's own evaluator
scores it. The metadata's ``dataset`` names the local files and a checksum of them instead of a hub
repository and commit, so a result can never be mistaken for a hub run.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from mteb.abstasks.task_metadata import TaskMetadata

from harness.errors import UserError
from harness.files import folder
from harness.tasks._checksums import FILE_SHA256

if TYPE_CHECKING:
    from mteb.abstasks.abstask import AbsTask

Role = Literal["test", "train"]


def lowercase_words(text: str) -> str:
    """The lowercased word-character runs of ``text``, joined by one space: text compared for overlap,
    so SentEval's tokenised, lowercased copy of a sentence ("a man ' s hat .") matches the original
    ("A man's hat.")."""
    return " ".join(re.findall(r"\w+", text.lower()))


def revision(files: Iterable[str]) -> str:
    """A 40-hex digest of the files' relative paths and sha256 sums: the local task's 'revision'."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name} {FILE_SHA256[name]}\n".encode())
    return digest.hexdigest()[:40]


@cache
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify_files(data_dir: Path, files: Iterable[str]) -> None:
    """Refuses a data folder whose files are missing or differ from the checksummed copies."""
    problems = []
    for name in files:
        path = data_dir / name
        if not path.is_file():
            problems.append(f"{path} is missing")
            continue
        stat = path.stat()
        if _sha256(path, stat.st_size, stat.st_mtime_ns) != FILE_SHA256[name]:
            problems.append(f"{path} differs from the copy the task was checked against (sha256 mismatch)")
    if problems:
        raise UserError("data folder does not match MANIFEST.md: " + "; ".join(problems))


def local_metadata(
    *, name: str, files: Iterable[str], hub: type[AbsTask] | None = None, **fields: Any
) -> TaskMetadata:
    """Validated metadata for a local task.

    Args:
        name: the local task name (``local:...``), distinct from every hub task.
        files: data files read, relative to the data folder; their checksum becomes the revision.
        hub: the mteb task class this copy stands in for; its metadata (reference, licence, citation,
            main score, ...) is kept and ``adapted_from`` points at it.
        **fields: metadata fields to set or override.
    """
    files = tuple(files)
    dataset = {
        "path": "local:" + ",".join(sorted({f.split("/")[0] for f in files})),
        "revision": revision(files),
    }
    base: dict[str, Any] = {}
    if hub is not None:
        base = hub.metadata.model_dump(exclude={"superseded_by"})
        base["adapted_from"] = [hub.metadata.name]
    return TaskMetadata(**{**base, **fields, "name": name, "dataset": dataset})


class LocalTask:
    """Mixin placed before an mteb abstract task: data from the data folder, nothing from the hub.

    Subclasses set ``files`` and ``metadata`` and implement ``read(data_dir)``, which returns the
    ``dataset`` structure the mteb abstract task expects. ``splits_read`` names every split ``read``
    returns and its role: ``"test"`` (scored) or ``"train"`` (used by the evaluator, e.g. the
    examples a classification probe is fitted on).
    """

    files: ClassVar[tuple[str, ...]]
    splits_read: ClassVar[dict[str, Role]] = {"test": "test"}
    hub_name: ClassVar[str | None] = None  # the MTEB task this copy reproduces, if any
    dev_only: ClassVar[bool] = False  # data for HPO objectives only, never in a final suite
    downsampled_from: ClassVar[str | None] = None  # a lite task: the full local task it cuts down
    shares_texts_with: ClassVar[
        tuple[str, ...]
    ] = ()  # local tasks scoring the same sentences (translations aside)
    metadata: TaskMetadata
    dataset: Any
    data_loaded: bool
    hf_subsets: list[str]

    if TYPE_CHECKING:  # provided by the mteb abstract task this mixin is combined with

        @property
        def eval_splits(self) -> Sequence[str]: ...

    def __init__(self, data_dir: str | Path | None = None, seed: int = 42) -> None:
        self.data_dir = folder.data_dir(data_dir)
        super().__init__(seed=seed)  # type: ignore[call-arg]

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        """Reads the local files (checksums verified first); mteb calls this before evaluating."""
        if self.data_loaded:
            return
        verify_files(self.data_dir, self.files)
        self.dataset = self.read(self.data_dir)
        self.data_loaded = True

    def unload_data(self) -> None:
        """Frees the data (mteb's version would also drop the instance's metadata)."""
        self.dataset = None
        self.data_loaded = False

    def read(self, data_dir: Path) -> Any:
        raise NotImplementedError

    def texts(self) -> dict[str, set[str]]:
        """Every text of every split read, per split: what a leakage check compares training data with."""
        self.load_data()
        return {split: self.split_texts(split) for split in self.splits_read}

    def split_texts(self, split: str) -> set[str]:
        raise NotImplementedError

    def embedded_texts(self) -> set[str]:
        """Every text the evaluator embeds for the current eval splits (what a suite's cache warms)."""
        self.load_data()
        return set().union(*(self.split_texts(split) for split in self.eval_splits))

    def drop_pairs_with(self, split: str, banned: set[str]) -> int:
        """Removes the pairs of ``split`` with a sentence whose ``lowercase_words`` is in ``banned``.

        Used to keep a dev split disjoint from the final suites' test texts. Returns the number dropped.
        """
        self.load_data()
        data = self.dataset[split]
        self.dataset[split] = pairs_without(data, banned)
        return len(data) - len(self.dataset[split])

    def select_subsets(self, wanted: Sequence[str]) -> None:
        """Scores only the subsets ``wanted``: MTEB subset names (``deu-eng``) or ISO 639-3 language
        codes (``deu``: every subset with that language), kept in the metadata's order.

        Raises:
            UserError: one line naming an unknown value and listing the valid subsets and languages.
        """
        subsets = list(self.metadata.hf_subsets)
        by_language: dict[str, list[str]] = {}
        for subset, langscripts in self.metadata.hf_subsets_to_langscripts.items():
            for langscript in langscripts:
                by_language.setdefault(langscript.split("-")[0], []).append(subset)
        chosen: set[str] = set()
        for name in wanted:
            if name not in subsets and name not in by_language:
                raise UserError(
                    f"{self.metadata.name}: unknown subset or language {name!r}; subsets: "
                    f"{', '.join(subsets)}; languages: {', '.join(sorted(by_language))}"
                )
            chosen.update([name] if name in subsets else by_language[name])
        self.hf_subsets = [s for s in subsets if s in chosen]


def pairs_without(data: Any, banned: set[str]) -> Any:
    """The pairs of ``data`` (a ``Dataset`` with sentence1/sentence2) where neither sentence's
    ``lowercase_words`` is in ``banned``."""
    keep = [
        i
        for i, (a, b) in enumerate(zip(data["sentence1"], data["sentence2"], strict=True))
        if lowercase_words(a) not in banned and lowercase_words(b) not in banned
    ]
    return data.select(keep)
