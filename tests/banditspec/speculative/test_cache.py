"""``build_once``: an entry built once, atomically; what a killed build left behind is cleaned up."""

import os
import socket
import subprocess
import sys
import time

import pytest

from banditspec.speculative import cache
from banditspec.speculative.cache import ABANDONED_AFTER, build_once


def _write(folder):
    (folder / "data.txt").write_text("built")
    (folder / "done").write_text("")


def test_an_entry_is_built_once_and_reused(tmp_path):
    calls = []
    for _ in range(2):
        path = build_once(tmp_path / "entry-1", lambda tmp: (calls.append(tmp), _write(tmp)), done="done")
    assert len(calls) == 1 and (path / "data.txt").read_text() == "built"
    assert [p.name for p in tmp_path.iterdir()] == ["entry-1"]  # no temporary folder left


def test_a_failed_build_leaves_nothing(tmp_path):
    def fails(tmp):
        (tmp / "part").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_once(tmp_path / "entry", fails, done="done")
    assert list(tmp_path.iterdir()) == []


def _dead_pid() -> int:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(gone.stdout)  # a process that has ended


def _age(folder, seconds):
    """Make ``folder`` and everything in it look last changed ``seconds`` ago."""
    then = time.time() - seconds
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (then, then))


def test_the_folder_of_a_killed_build_is_removed_by_a_later_build_but_a_running_or_recent_ones_is_kept(tmp_path):
    host, dead_pid, old = socket.gethostname().replace("-", "_"), _dead_pid(), ABANDONED_AFTER + 60
    killed = tmp_path / f".entry-1-{host}-{dead_pid}-abc123"
    running = tmp_path / f".entry-1-{host}-{os.getpid()}-def456"
    elsewhere = tmp_path / f".entry-1-otherhost-{dead_pid}-ghi789"
    unknown = tmp_path / ".entry-1-jkl012"  # not named by host and process: left alone
    other_entry = tmp_path / f".entry-2-{host}-{dead_pid}-mno345"
    recent = tmp_path / f".entry-1-{host}-{dead_pid}-pqr678"  # e.g. another container's live build, same pid
    written_inside = tmp_path / f".entry-1-{host}-{dead_pid}-stu901"  # an old folder, but a file written just now
    for folder in (killed, running, elsewhere, unknown, other_entry, recent, written_inside):
        (folder / "model").mkdir(parents=True)
        _age(folder, old)
    _age(recent, ABANDONED_AFTER - 60)
    (written_inside / "model" / "weights").write_text("still writing")
    build_once(tmp_path / "entry-1", _write, done="done")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (tmp_path / "entry-1", running, elsewhere, unknown, other_entry, recent, written_inside))


def test_on_windows_no_signal_probes_the_process_and_the_age_alone_decides(tmp_path, monkeypatch):
    host = socket.gethostname().replace("-", "_")
    old, recent = (tmp_path / f".entry-{host}-{os.getpid()}-{suffix}" for suffix in ("abc123", "def456"))
    for folder in (old, recent):
        folder.mkdir()
    _age(old, ABANDONED_AFTER + 60)
    monkeypatch.setattr(cache, "_WINDOWS", True)
    monkeypatch.setattr(cache.os, "kill", lambda *args: pytest.fail("os.kill would end the process on Windows"))
    cache._remove_abandoned(tmp_path / "entry")
    assert [p.name for p in tmp_path.iterdir()] == [recent.name]
