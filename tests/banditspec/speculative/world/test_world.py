"""``preset``: how a world plug-in takes its config, as an object or by a preset's name."""

from dataclasses import dataclass

import pytest

from banditspec.speculative.world import preset


@dataclass(frozen=True)
class Settings:
    size: int


PRESETS = {"small": Settings(1), "large": Settings(9)}


def test_a_preset_is_found_by_name_and_a_config_object_is_kept():
    assert preset("large", PRESETS, Settings) is PRESETS["large"]
    own = Settings(4)
    assert preset(own, PRESETS, Settings) is own


@pytest.mark.parametrize("config", ["medium", 3, None, {"size": 1}])
def test_anything_else_is_refused_naming_the_presets(config):
    with pytest.raises(ValueError, match=r"config must be a Settings or one of \['large', 'small'\], got"):
        preset(config, PRESETS, Settings)
