"""Toy worlds that ship with the package, built once by :func:`~banditspec.envs.toy.cache.build_world`.

Training the default world's target takes about 100 s of two CPU cores, more
than the rest of a demo run. Its built folder (15 MB: the tokenizer, the
target, seven drafts and ``world.json`` with the manifest) therefore ships in
``banditspec/envs/toy/worlds/<key>/``; a cache without the world gets a copy
of it instead of a build, and ``world.json`` of the copy records
``"origin": "prebuilt"``. Build it here instead with ``prebuilt=False``
(``--env-arg prebuilt=false`` on the command line) on an empty cache.

When a change of the toy world's code or of :data:`DEFAULT` changes the
world's key, refresh the shipped folder (a test fails until it is done)::

    python -m banditspec.envs.toy.prebuilt
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

from banditspec.envs.toy.config import DEFAULT, ToyConfig

__all__ = ["SHIPPED", "copy_prebuilt", "prebuilt_folder", "ship"]

SHIPPED: Path = Path(str(files("banditspec.envs.toy") / "worlds"))
"""Where the package keeps its prebuilt worlds, one folder per key."""

_META = "world.json"


def prebuilt_folder(config: ToyConfig) -> Path | None:
    """The shipped folder of ``config``'s world, or None if the package has no prebuilt copy of it."""
    folder = SHIPPED / config.key()
    return folder if (folder / _META).is_file() else None


def copy_prebuilt(source: Path, path: Path) -> None:
    """Copy the shipped world ``source`` into the new folder ``path``, its ``world.json`` marked ``prebuilt``.

    The manifest covers every file but ``world.json``, so the copy is checked
    on load like a world built here.
    """
    shutil.copytree(source, path, dirs_exist_ok=True, copy_function=shutil.copyfile)  # the cache's own modes
    for folder in [path, *(f for f in path.rglob("*") if f.is_dir())]:
        folder.chmod(0o755)  # shared like the rest of the cache, whatever the install's modes
    meta = json.loads((source / _META).read_text())
    (path / _META).write_text(json.dumps({**meta, "origin": "prebuilt"}, indent=1))


def ship(config: ToyConfig = DEFAULT, *, shipped: Path = SHIPPED) -> Path:
    """Build ``config``'s world from scratch and make it the package's prebuilt copy, replacing older keys.

    Returns
    -------
    Path
        The new shipped folder.
    """
    from banditspec.envs.toy.cache import build_world  # cache.py imports this module

    destination = shipped / config.key()
    shipped.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=shipped, prefix=".build-") as tmp:
        build_world(config, Path(tmp) / "world")
        shutil.rmtree(destination, ignore_errors=True)
        (Path(tmp) / "world").rename(destination)
    for old in shipped.iterdir():
        if old.is_dir() and not old.name.startswith(".") and old != destination:
            shutil.rmtree(old)
    return destination


if __name__ == "__main__":
    print(ship(), file=sys.stdout)
