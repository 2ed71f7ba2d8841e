import numpy as np
import pytest

from banditspec.apps.cli import main
from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.env import ENVIRONMENTS

#: a run of each command that would do real work (build a world, collect, decode) if its checks let it through
COMMANDS = {
    "compare": ["compare", "--no-progress"],
    "demo": ["demo", "--env-arg", "config=tiny"],
    "reproduce": ["reproduce", "domains", "--world", "tiny"],
    "collect": ["collect", "--env", "toy", "--limit", "2"],
}


@pytest.fixture
def no_work(monkeypatch):
    """Every world the commands would build: building one fails the test (it means work began)."""

    def build(name, **params):
        raise AssertionError(f"the {name!r} world was built: the work started before the input was checked")

    monkeypatch.setattr(ENVIRONMENTS, "create", build)


@pytest.fixture
def dataset(tmp_path):
    """A small logged dataset with every arm's reward."""
    rng = np.random.default_rng(0)
    data = LoggedDataset(np.arange(40), rng.random((40, 3)), rng.integers(0, 2, 40), rng.random(40), np.full(40, 0.5),
                         arm_names=["ar", "draft"], all_rewards=rng.random((40, 2)))
    return data.save(tmp_path / "logged.parquet")


def one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith(f"banditspec {command}: error: ")
    return err


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "collect", "merge", "compare", "reproduce", "--debug"):
        assert command in out


def test_bad_input_is_one_clear_line_not_a_traceback(tmp_path, capsys):
    assert main(["merge", str(tmp_path / "missing"), "--out", str(tmp_path / "x.parquet")]) == 2
    assert "missing" in one_line_error(capsys, "merge")
    assert main(["collect", "--env", "synthetic", "--limit", "2", "--out", str(tmp_path / "c")]) == 2
    assert "does not decode real queries" in one_line_error(capsys, "collect")
    assert main(["collect", "--env", "toy", "--limit", "2", "--shard", "3/2", "--out", str(tmp_path / "c")]) == 2
    assert "--shard" in one_line_error(capsys, "collect")


def test_a_dataset_for_a_world_that_replays_none_is_refused(dataset, capsys, no_work):
    assert main(["compare", "--env", "synthetic", "--dataset", str(dataset), "--no-progress"]) == 2
    assert "--dataset is for environments that replay a logged dataset" in one_line_error(capsys, "compare")


def test_a_missing_dataset_is_named(tmp_path, capsys, no_work):
    assert main(["compare", "--env", "logged", "--dataset", str(tmp_path / "nothing.parquet")]) == 2
    assert "nothing.parquet: no such file or folder" in one_line_error(capsys, "compare")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unwritable_out_fails_before_any_work(command, tmp_path, capsys, no_work):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main([*COMMANDS[command], "--out", str(blocker / "results")]) == 2
    assert f"--out {blocker / 'results'}: {blocker} is a file, not a folder" in one_line_error(capsys, command)
    assert blocker.read_text() == ""


def test_train_checks_its_learner_and_data_before_any_work(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "s")]) == 2
    assert "--data" in one_line_error(capsys, "train") and not (tmp_path / "s").exists()
    assert main(["train", "--data", str(tmp_path), "--learner", "nope", "--out", str(tmp_path / "s")]) == 2
    assert "unknown policy 'nope'" in one_line_error(capsys, "train")


def test_merge_refuses_a_folder_as_its_output_file(dataset, tmp_path, capsys):
    assert main(["merge", str(dataset), "--out", str(tmp_path)]) == 2
    assert "is a folder; give a file name" in one_line_error(capsys, "merge")


@pytest.mark.parametrize("command, option", [
    ("compare", "--seeds"), ("compare", "--n-test"), ("demo", "--n-test"), ("demo", "--workers"),
    ("reproduce", "--n-train"),
])
def test_counts_below_one_are_refused_when_parsed(command, option, capsys, no_work):
    with pytest.raises(SystemExit) as exit_info:
        main([*COMMANDS[command], option, "0"])
    assert exit_info.value.code == 2 and "must be an integer >= 1, got '0'" in capsys.readouterr().err


@pytest.mark.parametrize("option, value", [("--limit", "0"), ("--chunk-size", "0"), ("--threads", "0"),
                                           ("--seed", "-1"), ("--calibration", "2")])
def test_collect_counts_are_checked_when_parsed(option, value, tmp_path, capsys, no_work):
    with pytest.raises(SystemExit) as exit_info:
        main([*COMMANDS["collect"], "--out", str(tmp_path / "c"), option, value])
    assert exit_info.value.code == 2 and f"must be an integer >=" in capsys.readouterr().err


def test_a_negative_alpha_is_refused(tmp_path, capsys, no_work):
    assert main([*COMMANDS["demo"], "--alpha", "-1", "--out", str(tmp_path / "d")]) == 2
    assert "--alpha must be a finite cost weight >= 0" in one_line_error(capsys, "demo")


def test_debug_shows_the_traceback(dataset, capsys, no_work):
    assert main(["--debug", "compare", "--env", "synthetic", "--dataset", str(dataset)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "check_arguments" in err
    assert err.rstrip().splitlines()[-1].startswith("banditspec compare: error: --dataset is for environments")


def test_an_unexpected_error_is_one_line_that_points_to_debug(tmp_path, capsys, monkeypatch):
    def build(name, **params):
        raise RuntimeError("the world broke")

    monkeypatch.setattr(ENVIRONMENTS, "create", build)
    assert main([*COMMANDS["collect"], "--out", str(tmp_path / "c")]) == 1
    assert one_line_error(capsys, "collect").rstrip() == (
        "banditspec collect: error: RuntimeError: the world broke (rerun with --debug for the traceback)")
