"""The backend registry and the errors given before any work."""

from __future__ import annotations

import sys

import pytest

from banditspec.speculative.backends import BACKENDS, create_backend, resolve_backend
from banditspec.speculative.backends.local import LocalBackend
from banditspec.speculative.world import WorldRecipe


def test_backends_are_registered_by_name():
    assert {"local", "ray"} <= set(BACKENDS.names())
    assert isinstance(create_backend("local"), LocalBackend)
    with pytest.raises(ValueError, match="unknown backend 'spark'.*local"):
        create_backend("spark")


def test_without_ray_the_ray_backend_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if Ray were missing
    with pytest.raises(ImportError, match=r"pip install 'banditspec\[ray\]'"):
        create_backend("ray", recipe=WorldRecipe(env="toy"))


def test_the_ray_backend_needs_a_recipe_and_valid_resources():
    pytest.importorskip("ray")
    with pytest.raises(ValueError, match="recipe=WorldRecipe"):
        create_backend("ray")
    with pytest.raises(ValueError, match="cpus_per_actor must be a number > 0"):
        create_backend("ray", recipe=WorldRecipe(env="toy"), cpus_per_actor=0)
    with pytest.raises(ValueError, match="actors"):
        create_backend("ray", recipe=WorldRecipe(env="toy"), actors=0)


def test_a_backend_given_by_name_takes_options_and_a_built_one_none():
    local = LocalBackend()
    assert resolve_backend(local) is local
    assert isinstance(resolve_backend("local"), LocalBackend)
    with pytest.raises(ValueError, match="already built"):
        resolve_backend(local, {"actors": 2})


def test_a_recipe_that_keeps_no_arm_is_refused():
    with pytest.raises(ValueError, match=r"arms=\(\) keeps no arm, so no world"):
        WorldRecipe(env="toy", arms=())
    assert WorldRecipe(env="toy", arms=("ar",)).arms == ("ar",)
