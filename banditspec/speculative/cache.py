"""The project's cache folder and atomic writes of folders into it.

Everything built once and reused (converted checkpoints, distilled drafts,
the toy world's models) lives under ``$BANDITSPEC_CACHE`` (default
``~/.cache/banditspec``). :func:`build_once` writes a folder into a sibling
temporary folder and renames it into place, so an interrupted build never
leaves a half entry behind and a finished one is never rebuilt. A temporary
folder names the host and process building it, so one left by a process
killed outright (``kill -9``) is removed by a later build of that entry:
one of this host, whose process no longer runs, and in which nothing has
changed for :data:`ABANDONED_AFTER` seconds. The age keeps a live build safe
where the process check cannot be trusted: containers that share a host name
but not their process ids, and Windows, where no signal probes a process
(``os.kill`` would end it), so the age alone decides there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["ABANDONED_AFTER", "build_once", "cache_home", "file_digest"]

_WINDOWS = sys.platform == "win32"  # os.kill(pid, 0) would end the process there

#: Seconds without any change after which a dead process's temporary build folder is removed (a day).
ABANDONED_AFTER = 24 * 3600.0


def file_digest(path: str | os.PathLike[str]) -> str:
    """A BLAKE2b digest (16 hex digits) of the file's bytes: what identifies a model file in a cache key.

    Unlike its modification time, it stays the same when the file is copied
    or its package installed again.
    """
    digest = hashlib.blake2b(digest_size=8)
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_home(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``cache_dir``, else ``$BANDITSPEC_CACHE``, else ``~/.cache/banditspec``."""
    base = cache_dir or os.environ.get("BANDITSPEC_CACHE") or Path.home() / ".cache" / "banditspec"
    return Path(base).expanduser()


def build_once(path: str | os.PathLike[str], build: Callable[[Path], None], *, done: str) -> Path:
    """The folder ``path``, built first by ``build(tmp)`` unless its file ``done`` exists.

    ``build`` writes into a new temporary sibling folder, which is renamed to
    ``path`` once it returns; ``done`` (a file ``build`` writes last) marks a
    finished entry. A half-built or damaged ``path`` without ``done`` is
    removed and built again.
    """
    path = Path(path)
    if (path / done).is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(path, ignore_errors=True)
    _remove_abandoned(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-{_host()}-{os.getpid()}-", dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the entry is shared like the rest of the cache
    try:
        build(tmp)
        if not (tmp / done).is_file():
            raise RuntimeError(f"building {path} wrote no {done}")
        try:
            tmp.rename(path)
        except OSError:  # another process finished the same entry first
            if not (path / done).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _host() -> str:
    """This machine's name as a temporary folder's name holds it (no ``-``)."""
    return socket.gethostname().replace("-", "_")


def _remove_abandoned(path: Path) -> None:
    """Remove the temporary folders of ``path`` left by processes of this host that no longer run.

    Only a folder in which nothing changed for :data:`ABANDONED_AFTER`
    seconds: a live build is never removed, even where another process
    (another container's) has the same host name and process id.
    """
    prefix = f".{path.name}-"
    for tmp in path.parent.glob(f"{prefix}*"):
        parts = tmp.name[len(prefix):].split("-")  # host, pid, mkdtemp's suffix
        if (len(parts) == 3 and parts[0] == _host() and parts[1].isdigit() and not _running(int(parts[1]))
                and time.time() - _last_change(tmp) >= ABANDONED_AFTER):
            shutil.rmtree(tmp, ignore_errors=True)


def _last_change(folder: Path) -> float:
    """The newest modification time of ``folder`` and everything in it (now, if it changes while read)."""
    try:
        return max(p.lstat().st_mtime for p in [folder, *folder.rglob("*")])
    except OSError:  # removed or renamed meanwhile: its build is live or done
        return time.time()


def _running(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host; False on Windows, where no signal probes it (the age decides)."""
    if _WINDOWS:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True
