"""``build_once``: an entry built once, atomically; what a killed build left behind is cleaned up."""

import os
import socket
import subprocess
import sys

import pytest

from banditspec.speculative.cache import build_once


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


def test_the_folder_of_a_killed_build_is_removed_by_the_next_build_but_a_running_ones_is_kept(tmp_path):
    host = socket.gethostname().replace("-", "_")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)  # a process that has ended
    killed = tmp_path / f".entry-1-{host}-{dead_pid}-abc123"
    running = tmp_path / f".entry-1-{host}-{os.getpid()}-def456"
    elsewhere = tmp_path / f".entry-1-otherhost-{dead_pid}-ghi789"
    unknown = tmp_path / ".entry-1-jkl012"  # not named by host and process: left alone
    other_entry = tmp_path / f".entry-2-{host}-{dead_pid}-mno345"
    for folder in (killed, running, elsewhere, unknown, other_entry):
        folder.mkdir()
    build_once(tmp_path / "entry-1", _write, done="done")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (tmp_path / "entry-1", running, elsewhere, unknown, other_entry))
