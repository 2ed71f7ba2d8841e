import argparse
import os

import pytest

from banditspec.apps.checks import non_negative_int, output_file, output_folder, positive_int


def test_a_folder_to_create_passes_and_nothing_is_created(tmp_path):
    assert output_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert output_folder(str(tmp_path)) == tmp_path
    assert list(tmp_path.iterdir()) == []


def test_a_file_where_a_folder_must_be_is_named(tmp_path):
    (tmp_path / "f").write_text("kept")
    with pytest.raises(ValueError, match=r"--out .*f: .*f is a file, not a folder; choose another --out"):
        output_folder(tmp_path / "f")
    with pytest.raises(ValueError, match=r"--work .*f/sub: .*f is a file, not a folder; choose another --work"):
        output_folder(tmp_path / "f" / "sub", option="--work")
    assert (tmp_path / "f").read_text() == "kept"


def test_an_output_file_needs_a_file_name_in_a_folder_that_can_be_made(tmp_path):
    assert output_file(tmp_path / "new" / "data.parquet") == tmp_path / "new" / "data.parquet"
    (tmp_path / "data.parquet").write_text("")
    assert output_file(tmp_path / "data.parquet") == tmp_path / "data.parquet"
    with pytest.raises(ValueError, match="is a folder; give a file name"):
        output_file(tmp_path)
    with pytest.raises(ValueError, match="data.parquet is a file, not a folder"):
        output_file(tmp_path / "data.parquet" / "x.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.parquet"]


def test_counts_as_argparse_types():
    assert positive_int("3") == 3 and non_negative_int("0") == 0
    for parse, text in ((positive_int, "0"), (positive_int, "x"), (non_negative_int, "-1"), (non_negative_int, "1.5")):
        with pytest.raises(argparse.ArgumentTypeError, match="must be an integer >="):
            parse(text)


def test_a_folder_nobody_can_write_in_is_refused_even_where_os_access_says_yes(tmp_path, monkeypatch):
    # root passes os.access everywhere; the check writes for real, so a read-only folder is caught for root too
    import tempfile

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    with pytest.raises(ValueError, match=r"--out .*results: cannot write in .* \(Read-only file system\); choose another"):
        output_folder(tmp_path / "results")
    with pytest.raises(ValueError, match="cannot write in"):
        output_file(tmp_path / "data.parquet")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_proc_is_not_a_place_for_results():
    with pytest.raises(ValueError, match="cannot write in /proc"):
        output_folder("/proc/banditspec-results")
