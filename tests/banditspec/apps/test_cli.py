import pytest

from banditspec.apps.cli import main


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "collect", "merge", "compare"):
        assert command in out


def test_bad_input_is_one_clear_line_not_a_traceback(tmp_path, capsys):
    assert main(["merge", str(tmp_path / "missing"), "--out", str(tmp_path / "x.parquet")]) == 2
    assert "banditspec merge: error:" in capsys.readouterr().err
    assert main(["collect", "--env", "synthetic", "--n", "2", "--out", str(tmp_path / "c")]) == 2
    assert "does not decode real queries" in capsys.readouterr().err
    assert main(["collect", "--env", "toy", "--n", "2", "--shard", "3/2", "--out", str(tmp_path / "c")]) == 2
    assert "--shard" in capsys.readouterr().err
