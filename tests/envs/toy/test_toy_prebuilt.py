import json
import shutil
from pathlib import Path

import pytest
import torch

import banditspec.envs.toy.cache as cache
import banditspec.envs.toy.prebuilt as prebuilt
from banditspec.envs.toy import DEFAULT, TINY, load_world, prepare_world
from banditspec.envs.toy.world import ToyWorld


def _no_build(*args, **kwargs):
    pytest.fail("a world the package ships must be copied, not built")


def test_the_package_ships_the_default_world_under_its_current_key():
    folder = prebuilt.prebuilt_folder(DEFAULT)
    assert folder is not None, (f"no prebuilt default world for key {DEFAULT.key()} in {prebuilt.SHIPPED}: "
                                "refresh it with `python -m banditspec.envs.toy.prebuilt`")
    assert [p.name for p in prebuilt.SHIPPED.iterdir() if not p.name.startswith(".")] == [DEFAULT.key()]
    meta = json.loads((folder / "world.json").read_text())
    assert meta["origin"] == "built" and meta["key"] == DEFAULT.key()


def test_an_empty_cache_gets_a_verified_copy_of_the_default_world(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "build_world", _no_build)
    path, info = prepare_world(DEFAULT, cache_dir=tmp_path, progress=False)
    assert path == tmp_path / "toy" / DEFAULT.key() and info["origin"] == "prebuilt"
    shipped = prebuilt.prebuilt_folder(DEFAULT)
    for rel in json.loads((shipped / "world.json").read_text())["manifest"]:
        assert (path / rel).read_bytes() == (shipped / rel).read_bytes()
    world = load_world(DEFAULT, cache_dir=tmp_path, progress=False)  # checks the manifest, loads every model
    assert set(world.drafts) == {d.name for d in DEFAULT.drafts}


def test_a_damaged_copy_is_copied_again(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "build_world", _no_build)
    path, _ = prepare_world(DEFAULT, cache_dir=tmp_path, progress=False)
    (path / "target" / "model.safetensors").write_bytes(b"damaged")
    with pytest.warns(RuntimeWarning, match="remaking"):
        again, info = prepare_world(DEFAULT, cache_dir=tmp_path, progress=False)
    assert info["origin"] == "prebuilt"
    assert (again / "target" / "model.safetensors").read_bytes() == \
        (prebuilt.prebuilt_folder(DEFAULT) / "target" / "model.safetensors").read_bytes()


@pytest.fixture()
def shipped_tiny(tiny_world, tmp_path, monkeypatch) -> Path:
    """The tiny world as if the package shipped it (a copy of the session's build)."""
    shipped = tmp_path / "shipped"
    shutil.copytree(tiny_world.path, shipped / TINY.key())
    monkeypatch.setattr(prebuilt, "SHIPPED", shipped)
    return shipped / TINY.key()


def test_prebuilt_false_builds_here_even_where_a_copy_ships(shipped_tiny, tiny_world, tmp_path, monkeypatch):
    built = []
    real_build = cache.build_world
    monkeypatch.setattr(cache, "build_world", lambda *a, **k: built.append(1) or real_build(*a, **k))
    world = ToyWorld(TINY, cache_dir=str(tmp_path / "cache"), progress=False, prebuilt=False)
    assert built == [1] and world.origin == "built"
    copied = ToyWorld(TINY, cache_dir=str(tmp_path / "other"), progress=False)
    assert built == [1] and copied.origin == "prebuilt"
    for a, b in zip(world.models.target.parameters(), copied.models.target.parameters(), strict=True):
        assert torch.equal(a, b)  # the build is deterministic: a copy and a build of one world agree


def test_prebuilt_must_be_a_bool(tmp_path):
    with pytest.raises(ValueError, match="prebuilt"):
        ToyWorld(TINY, cache_dir=str(tmp_path), progress=False, prebuilt="no")


def test_ship_replaces_the_shipped_world_with_a_fresh_build(tmp_path):
    stale = tmp_path / "0123456789abcdef"
    stale.mkdir()
    (stale / "world.json").write_text("{}")
    folder = prebuilt.ship(TINY, shipped=tmp_path)
    assert folder == tmp_path / TINY.key() and not stale.exists()
    assert json.loads((folder / "world.json").read_text())["origin"] == "built"
    assert [p.name for p in tmp_path.iterdir()] == [TINY.key()]


def test_a_damaged_shipped_world_is_built_here_instead(shipped_tiny, tiny_world, tmp_path):
    (shipped_tiny / "target" / "model.safetensors").write_bytes(b"a broken install")
    with pytest.warns(RuntimeWarning, match="prebuilt toy world is damaged, building it here"):
        world = ToyWorld(TINY, cache_dir=str(tmp_path / "cache"), progress=False)
    assert world.origin == "built"
    for a, b in zip(world.models.target.parameters(), tiny_world.target.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not [p for p in (tmp_path / "cache" / "toy").iterdir() if p.name.startswith(".")]  # no copy left behind


def test_the_copy_takes_the_cache_s_modes_not_the_install_s(shipped_tiny, tmp_path):
    for file in shipped_tiny.rglob("*"):
        file.chmod(0o500 if file.is_dir() else 0o400)
    try:
        path, _ = prepare_world(TINY, cache_dir=tmp_path / "cache", progress=False)
    finally:
        for file in shipped_tiny.rglob("*"):
            file.chmod(0o755 if file.is_dir() else 0o644)
    weights = path / "target" / "model.safetensors"
    assert weights.stat().st_mode & 0o644 == 0o644 and (path / "target").stat().st_mode & 0o755 == 0o755
